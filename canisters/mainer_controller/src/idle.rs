//! Idle pulls back off: a mAIner (Own, ShareAgent) whose pull brought
//! nothing new while it has no work waits twice as long before the next
//! pull, up to [`MAX_FACTOR`] × the pull interval (and at most
//! [`MAX_SECONDS`]); any work found puts it back to the pull interval. So an
//! idle agent costs a few pulls an hour instead of one a minute, and a new
//! challenge is seen within the longest wait. The count of quiet pulls is
//! heap state: an upgrade starts it again at the interval.

use std::cell::Cell;

/// The longest wait, as a multiple of the pull interval.
pub const MAX_FACTOR: u64 = 16;
/// The longest wait in seconds, whatever the interval (unless the interval itself is longer).
pub const MAX_SECONDS: u64 = 3_600;

thread_local! {
    static QUIET_PULLS: Cell<u32> = const { Cell::new(0) };
}

/// Seconds before the next pull after `quiet` pulls in a row that found nothing to do.
pub fn delay_seconds(interval: u64, quiet: u32) -> u64 {
    let cap = interval.saturating_mul(MAX_FACTOR).min(MAX_SECONDS).max(interval);
    interval.saturating_mul(1u64 << quiet.min(30)).min(cap)
}

/// A pull round ended; `found_work`: it queued a challenge or work is waiting.
pub fn observe(found_work: bool) {
    QUIET_PULLS.with(|q| q.set(if found_work { 0 } else { q.get().saturating_add(1) }));
}

pub fn quiet_pulls() -> u32 {
    QUIET_PULLS.with(Cell::get)
}

/// Settings changed (or the timers were armed again): pull at the interval.
pub fn reset() {
    QUIET_PULLS.with(|q| q.set(0));
}

/// Seconds until the next pull, from the quiet pulls so far.
pub fn next_delay_seconds(interval: u64) -> u64 {
    delay_seconds(interval, quiet_pulls())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_pulls_wait_twice_as_long_up_to_a_cap_and_work_resets_them() {
        let waits: Vec<u64> = (0..7).map(|q| delay_seconds(60, q)).collect();
        assert_eq!(waits, [60, 120, 240, 480, 960, 960, 960], "16 × 60 s at most");
        assert_eq!(delay_seconds(600, 10), 3_600, "never more than an hour");
        assert_eq!(delay_seconds(7_200, 3), 7_200, "an interval longer than the cap stays as it is");
        assert_eq!(delay_seconds(u64::MAX, u32::MAX), u64::MAX, "no overflow");
        reset();
        observe(false);
        observe(false);
        assert_eq!(next_delay_seconds(10), 40);
        observe(true);
        assert_eq!(next_delay_seconds(10), 10, "work found: back to the interval");
    }
}
