//! One guard for every "do not overlap" rule: a key held in a set of keys
//! in use for as long as the guard lives. Taking a key that is held fails;
//! the key is released when the guard is dropped, whether the work ended in
//! `Ok`, in `Err` or in a trap (on the IC the future of a trapped call is
//! dropped in the cleanup, which runs `Drop`; natively, unwinding does).
//!
//! The set is heap memory on purpose: an upgrade or a trap that ends every
//! call in flight also ends every claim.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::thread::LocalKey;

/// The keys in use for one rule.
pub type Keys<K> = LocalKey<RefCell<BTreeSet<K>>>;

#[must_use = "the key is released when the guard is dropped"]
pub struct Guard<K: Ord + Clone + 'static> {
    keys: &'static Keys<K>,
    key: K,
}

impl<K: Ord + Clone + 'static> Guard<K> {
    /// Claims `key`, or None when it is held already.
    pub fn take(keys: &'static Keys<K>, key: K) -> Option<Guard<K>> {
        keys.with(|k| k.borrow_mut().insert(key.clone())).then_some(Guard { keys, key })
    }

    /// Whether `key` is held.
    pub fn is_held(keys: &'static Keys<K>, key: &K) -> bool {
        keys.with(|k| k.borrow().contains(key))
    }
}

impl<K: Ord + Clone + 'static> Drop for Guard<K> {
    fn drop(&mut self) {
        // `try_with`: during thread teardown in native tests the set may be gone.
        let _ = self.keys.try_with(|k| k.borrow_mut().remove(&self.key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        static KEYS: RefCell<BTreeSet<u32>> = const { RefCell::new(BTreeSet::new()) };
    }

    fn guarded(key: u32, outcome: Result<(), ()>) -> Result<(), ()> {
        let _g = Guard::take(&KEYS, key).ok_or(())?;
        assert!(Guard::take(&KEYS, key).is_none(), "a held key cannot be taken twice");
        outcome
    }

    #[test]
    fn the_key_is_released_on_ok_err_and_panic() {
        assert_eq!(guarded(1, Ok(())), Ok(()));
        assert!(!Guard::is_held(&KEYS, &1));
        assert_eq!(guarded(1, Err(())), Err(()));
        assert!(!Guard::is_held(&KEYS, &1));
        let panicked = std::panic::catch_unwind(|| {
            let _g = Guard::take(&KEYS, 1).unwrap();
            panic!("a trap mid-step");
        });
        assert!(panicked.is_err());
        assert!(!Guard::is_held(&KEYS, &1), "released by the unwinding");
        // Keys are independent.
        let a = Guard::take(&KEYS, 1).unwrap();
        let _b = Guard::take(&KEYS, 2).unwrap();
        assert!(Guard::is_held(&KEYS, &1) && Guard::is_held(&KEYS, &2));
        drop(a);
        assert!(!Guard::is_held(&KEYS, &1) && Guard::is_held(&KEYS, &2));
    }

    #[test]
    fn the_key_is_released_when_a_waiting_future_is_abandoned() {
        use std::future::Future;
        use std::task::{Context, Poll, Waker};
        // A step that holds the key across a call that never comes back: on
        // the IC, a trap in its callback drops the future in the cleanup.
        let mut step = Box::pin(async {
            let _g = Guard::take(&KEYS, 5).unwrap();
            std::future::pending::<()>().await;
        });
        assert_eq!(step.as_mut().poll(&mut Context::from_waker(Waker::noop())), Poll::Pending);
        assert!(Guard::is_held(&KEYS, &5), "held while the call is outstanding");
        drop(step);
        assert!(!Guard::is_held(&KEYS, &5), "released with the future");
    }
}
