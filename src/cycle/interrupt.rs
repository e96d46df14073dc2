//! [`Interrupt`]: a request to wind down, raised by whoever catches the signal (SIGTERM, a lost
//! lease) and read by the work in flight.

use std::sync::Arc;

use tokio::sync::watch;

/// A request to stop, shared by clones: the runner starts no phase once it is raised, and θ4
/// starts no step (the steps in flight finish, so that no instance is left stopped).
///
/// A child ([`Interrupt::child`]) is raised when it or its parent is: a worker's interrupt
/// stops every request it runs, a request's stops only that one.
#[derive(Debug, Clone)]
pub struct Interrupt {
    own: Arc<watch::Sender<bool>>,
    parent: Option<Arc<watch::Sender<bool>>>,
}

impl Default for Interrupt {
    fn default() -> Self {
        Self {
            own: Arc::new(watch::Sender::new(false)),
            parent: None,
        }
    }
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
            own: Arc::new(watch::Sender::new(false)),
            parent: Some(Arc::clone(&self.own)),
        }
    }

    /// Raises it (and so every child).
    pub fn raise(&self) {
        self.own.send_replace(true);
    }

    /// True once it or its parent was raised.
    #[must_use]
    pub fn is_raised(&self) -> bool {
        *self.own.borrow() || self.parent.as_ref().is_some_and(|p| *p.borrow())
    }

    /// Returns once it or its parent is raised.
    pub async fn raised(&self) {
        // `self` holds both senders, so neither wait can end with the channel closed.
        let mut own = self.own.subscribe();
        let own = async move { drop(own.wait_for(|raised| *raised).await) };
        match &self.parent {
            None => own.await,
            Some(parent) => {
                let mut parent = parent.subscribe();
                tokio::select! {
                    () = own => {}
                    _ = parent.wait_for(|raised| *raised) => {}
                }
            }
        }
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

    #[tokio::test]
    async fn a_wait_ends_when_the_parent_or_the_child_is_raised() {
        let worker = Interrupt::new();
        let (a, b) = (worker.child(), worker.child());
        let waiting = tokio::spawn({
            let a = a.clone();
            async move { a.raised().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "nothing raised yet");
        b.raise();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "a sibling's raise is not a's");
        worker.raise();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("the parent's raise ends the wait")
            .unwrap();
        b.raised().await; // raised before: returns at once
    }
}
