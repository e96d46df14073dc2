//! [`Interrupt`]: a request to wind down, raised by whoever catches the signal (SIGTERM, a lost
//! lease) and read by the work in flight.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A request to stop, shared by clones: the runner starts no phase once it is raised, and θ4
/// starts no step (the steps in flight finish, so that no instance is left stopped).
///
/// A child ([`Interrupt::child`]) is raised when it or its parent is: a worker's interrupt
/// stops every request it runs, a request's stops only that one.
#[derive(Debug, Clone, Default)]
pub struct Interrupt {
    own: Arc<AtomicBool>,
    parent: Option<Arc<AtomicBool>>,
}

impl Interrupt {
    /// One not raised.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A new interrupt, raised also when `self` is.
    #[must_use]
    pub fn child(&self) -> Self {
        Self {
            own: Arc::new(AtomicBool::new(false)),
            parent: Some(Arc::clone(&self.own)),
        }
    }

    /// Raises it (and so every child).
    pub fn raise(&self) {
        self.own.store(true, Ordering::SeqCst);
    }

    /// True once it or its parent was raised.
    #[must_use]
    pub fn is_raised(&self) -> bool {
        self.own.load(Ordering::SeqCst) || self.parent.as_ref().is_some_and(|p| p.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parent_raises_its_children_and_a_child_only_itself() {
        let worker = Interrupt::new();
        let (a, b) = (worker.child(), worker.child());
        a.raise();
        assert!(a.is_raised() && !b.is_raised() && !worker.is_raised());
        worker.raise();
        assert!(b.is_raised());
        assert!(worker.clone().is_raised(), "clones share it");
    }
}
