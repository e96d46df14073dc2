//! The typed artefact store of a cycle.
//!
//! Each phase owns the type of what it produces and puts a value of it here; a later phase
//! asks for it by type. The runner never names a phase's type: it only keeps, per type, the
//! value of this iteration, the value the previous iteration ended with, and the first value
//! ever stored (World0 for the world state).
//!
//! Values are shared (`Arc`), so keeping the previous and the first one costs no copy; a phase
//! that edits a value it did not create gets its own copy on the first write.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

/// A value a phase hands to the phases after it.
pub trait Artefact: Any + Send + Sync + Clone {
    /// What it is and which phase makes it, for errors: for example `a world state (θ1)`.
    const WHAT: &'static str;
}

#[derive(Clone)]
struct Entry {
    value: Arc<dyn Any + Send + Sync>,
    what: &'static str,
}

type Slots = HashMap<TypeId, Entry, foldhash::fast::RandomState>;

/// The artefacts of a running cycle, by type.
#[derive(Clone, Default)]
pub struct Artefacts {
    current: Slots,
    previous: Slots,
    first: Slots,
}

impl std::fmt::Debug for Artefacts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut held: Vec<&str> = self.current.values().map(|e| e.what).collect();
        held.sort_unstable();
        f.debug_struct("Artefacts")
            .field("current", &held)
            .finish_non_exhaustive()
    }
}

/// A phase asked for an artefact that no earlier phase produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("phase {phase} needs {missing}, which no earlier phase produced")]
pub struct MissingInput {
    /// The phase that could not start.
    pub phase: String,
    /// What it missed, for example `a world state (θ1)`.
    pub missing: &'static str,
}

impl Artefacts {
    /// Stores `value` as this iteration's `T`, replacing the one there. The first `T` ever
    /// stored is also kept as [`Artefacts::first`].
    pub fn put<T: Artefact>(&mut self, value: T) {
        self.put_shared(Arc::new(value));
    }

    /// Stores a shared `value` as this iteration's `T` (see [`Artefacts::put`]), without a copy.
    pub fn put_shared<T: Artefact>(&mut self, value: Arc<T>) {
        let entry = Entry { value, what: T::WHAT };
        self.first.entry(TypeId::of::<T>()).or_insert_with(|| entry.clone());
        self.current.insert(TypeId::of::<T>(), entry);
    }

    /// This iteration's `T`, shared: for an embedding that holds it beside the store.
    #[must_use]
    pub fn get_shared<T: Artefact>(&self) -> Option<Arc<T>> {
        shared(self.current.get(&TypeId::of::<T>()))
    }

    /// This iteration's `T`, if a phase stored one (or an earlier iteration did and no phase
    /// replaced it since).
    #[must_use]
    pub fn get<T: Artefact>(&self) -> Option<&T> {
        downcast(self.current.get(&TypeId::of::<T>()))
    }

    /// [`Artefacts::get`], or an error naming `phase` and what it misses.
    ///
    /// # Errors
    /// [`MissingInput`] when no `T` is stored.
    pub fn require<T: Artefact>(&self, phase: &str) -> Result<&T, MissingInput> {
        self.get::<T>().ok_or_else(|| MissingInput {
            phase: phase.to_owned(),
            missing: T::WHAT,
        })
    }

    /// This iteration's `T`, to edit in place. The value is copied first if the previous or
    /// first slot still shares it, so that those keep what they saw.
    pub fn get_mut<T: Artefact>(&mut self) -> Option<&mut T> {
        let entry = self.current.get_mut(&TypeId::of::<T>())?;
        if Arc::get_mut(&mut entry.value).is_none() {
            let copy: T = entry.value.downcast_ref::<T>()?.clone();
            entry.value = Arc::new(copy);
        }
        Arc::get_mut(&mut entry.value)?.downcast_mut::<T>()
    }

    /// Removes this iteration's `T` and returns it (a copy if another slot shares it).
    pub fn take<T: Artefact>(&mut self) -> Option<T> {
        let entry = self.current.remove(&TypeId::of::<T>())?;
        let value = entry.value.downcast::<T>().ok()?;
        Some(Arc::try_unwrap(value).unwrap_or_else(|shared| (*shared).clone()))
    }

    /// The `T` the previous iteration ended with.
    #[must_use]
    pub fn previous<T: Artefact>(&self) -> Option<&T> {
        downcast(self.previous.get(&TypeId::of::<T>()))
    }

    /// The first `T` stored in this cycle: for the world state, World0.
    #[must_use]
    pub fn first<T: Artefact>(&self) -> Option<&T> {
        downcast(self.first.get(&TypeId::of::<T>()))
    }

    /// [`Artefacts::previous`], shared.
    #[must_use]
    pub fn previous_shared<T: Artefact>(&self) -> Option<Arc<T>> {
        shared(self.previous.get(&TypeId::of::<T>()))
    }

    /// [`Artefacts::first`], shared.
    #[must_use]
    pub fn first_shared<T: Artefact>(&self) -> Option<Arc<T>> {
        shared(self.first.get(&TypeId::of::<T>()))
    }

    /// Starts an iteration: what the last one ended with becomes [`Artefacts::previous`], and
    /// stays current until a phase replaces it.
    pub(crate) fn begin_iteration(&mut self) {
        self.previous.clone_from(&self.current);
    }
}

fn downcast<T: Artefact>(entry: Option<&Entry>) -> Option<&T> {
    entry?.value.downcast_ref::<T>()
}

fn shared<T: Artefact>(entry: Option<&Entry>) -> Option<Arc<T>> {
    Arc::clone(&entry?.value).downcast::<T>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct Count(u32);

    impl Artefact for Count {
        const WHAT: &'static str = "a count (test)";
    }

    #[test]
    fn put_get_and_the_first_value_is_kept() {
        let mut a = Artefacts::default();
        assert!(a.get::<Count>().is_none());
        a.put(Count(1));
        a.put(Count(2));
        assert_eq!(a.get::<Count>(), Some(&Count(2)));
        assert_eq!(a.first::<Count>(), Some(&Count(1)));
    }

    #[test]
    fn editing_after_a_new_iteration_leaves_the_previous_value_alone() {
        let mut a = Artefacts::default();
        a.put(Count(1));
        a.begin_iteration();
        a.get_mut::<Count>().unwrap().0 = 5;
        assert_eq!(a.get::<Count>(), Some(&Count(5)));
        assert_eq!(a.previous::<Count>(), Some(&Count(1)));
        assert_eq!(a.first::<Count>(), Some(&Count(1)));
        assert_eq!(a.take::<Count>(), Some(Count(5)));
        assert!(a.get::<Count>().is_none());
        assert_eq!(a.previous::<Count>(), Some(&Count(1)));
    }

    #[test]
    fn require_names_the_phase_and_what_it_misses() {
        let a = Artefacts::default();
        let e = a.require::<Count>("planning").unwrap_err();
        assert_eq!(
            e.to_string(),
            "phase planning needs a count (test), which no earlier phase produced"
        );
    }
}
