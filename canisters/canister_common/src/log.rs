//! Bounded, leveled logs: one ring buffer per priority
//! ([`ic_canister_log::LogBuffer`]), so that chatty info lines never push
//! out the errors. Messages are cut at [`MAX_MESSAGE_BYTES`], so the logs
//! take at most a few MiB of heap. They live on the heap and start empty
//! after an upgrade (the entry counter too), as in dfinity's canisters.
//!
//! Write with the macros: `info!("item {id} submitted")`, `warn!(..)` for
//! a retry or a refusal, `error!(..)` for a failure given up on, `debug!(..)`
//! for detail. Read with [`entries`] (or `/logs`, see [`crate::http`]).

use ic_canister_log::{GlobalBuffer, LogEntry, Sink, declare_log_buffer, entry_counter};
use serde::Serialize;

/// Longer messages are cut (at a character boundary) and marked with `…`.
pub const MAX_MESSAGE_BYTES: usize = 512;

const ERROR_CAPACITY: usize = 500;
const WARN_CAPACITY: usize = 1000;
const INFO_CAPACITY: usize = 1000;
const DEBUG_CAPACITY: usize = 500;

declare_log_buffer!(name = ERROR_BUFFER, capacity = ERROR_CAPACITY);
declare_log_buffer!(name = WARN_BUFFER, capacity = WARN_CAPACITY);
declare_log_buffer!(name = INFO_BUFFER, capacity = INFO_CAPACITY);
declare_log_buffer!(name = DEBUG_BUFFER, capacity = DEBUG_CAPACITY);

/// How much a log line matters, most important first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Priority {
    /// A failure that was given up on, or that needs someone to act.
    Error,
    /// A retry, a refusal, a fault that the canister works around.
    Warn,
    /// A step done.
    Info,
    /// Detail for diagnosis.
    Debug,
}

impl Priority {
    pub const ALL: [Priority; 4] = [Priority::Error, Priority::Warn, Priority::Info, Priority::Debug];

    pub fn name(self) -> &'static str {
        match self {
            Priority::Error => "ERROR",
            Priority::Warn => "WARN",
            Priority::Info => "INFO",
            Priority::Debug => "DEBUG",
        }
    }

    /// Parses a name as [`Priority::name`] writes it, in any case.
    pub fn parse(name: &str) -> Option<Priority> {
        Priority::ALL.into_iter().find(|p| p.name().eq_ignore_ascii_case(name))
    }

    /// How many entries this priority keeps.
    pub fn capacity(self) -> usize {
        match self {
            Priority::Error => ERROR_CAPACITY,
            Priority::Warn => WARN_CAPACITY,
            Priority::Info => INFO_CAPACITY,
            Priority::Debug => DEBUG_CAPACITY,
        }
    }

    fn buffer(self) -> &'static GlobalBuffer {
        match self {
            Priority::Error => &ERROR_BUFFER,
            Priority::Warn => &WARN_BUFFER,
            Priority::Info => &INFO_BUFFER,
            Priority::Debug => &DEBUG_BUFFER,
        }
    }
}

/// One log line as `/logs` serves it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Nanoseconds since the epoch (IC time).
    pub timestamp: u64,
    pub priority: Priority,
    /// Order of writing since install or the last upgrade.
    pub counter: u64,
    pub file: &'static str,
    pub line: u32,
    pub message: String,
}

/// IC time in canisters; 0 in native unit tests (no system API there).
fn now() -> u64 {
    #[cfg(target_arch = "wasm32")]
    {
        ic_cdk::api::time()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0
    }
}

fn bounded(mut message: String) -> String {
    if message.len() > MAX_MESSAGE_BYTES {
        let mut cut = MAX_MESSAGE_BYTES - '…'.len_utf8();
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push('…');
    }
    message
}

/// Writes one entry (the macros call this).
pub fn append(priority: Priority, file: &'static str, line: u32, message: String) {
    append_at(priority, now(), file, line, message);
}

fn append_at(priority: Priority, timestamp: u64, file: &'static str, line: u32, message: String) {
    let entry = LogEntry { timestamp, counter: entry_counter::increment(), message: bounded(message), file, line };
    priority.buffer().append(entry);
}

/// The kept entries of `priorities`, in the order they were written.
pub fn entries(priorities: &[Priority]) -> Vec<Entry> {
    let mut all = Vec::new();
    for &priority in priorities {
        priority.buffer().with(|b| {
            all.extend(b.borrow().iter().map(|e| Entry {
                timestamp: e.timestamp,
                priority,
                counter: e.counter,
                file: e.file,
                line: e.line,
                message: e.message.clone(),
            }))
        });
    }
    all.sort_by_key(|e| e.counter);
    all
}

/// How many entries `priority` keeps now.
pub fn len(priority: Priority) -> usize {
    priority.buffer().with(|b| b.borrow().iter().count())
}

/// Writes a log line: `log!(Priority::Warn, "retrying {id}")`.
#[macro_export]
macro_rules! log {
    ($priority:expr, $($arg:tt)*) => {
        $crate::log::append($priority, ::std::file!(), ::std::line!(), ::std::format!($($arg)*))
    };
}

/// A failure given up on, or that needs someone to act.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log!($crate::log::Priority::Error, $($arg)*) };
}

/// A retry, a refusal, a fault worked around.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log!($crate::log::Priority::Warn, $($arg)*) };
}

/// A step done.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log!($crate::log::Priority::Info, $($arg)*) };
}

/// Detail for diagnosis.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log!($crate::log::Priority::Debug, $($arg)*) };
}

#[cfg(test)]
pub(crate) fn append_for_test(priority: Priority, timestamp: u64, message: &str) {
    append_at(priority, timestamp, file!(), line!(), message.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_round_trip_by_name() {
        for p in Priority::ALL {
            assert_eq!(Priority::parse(p.name()), Some(p));
            assert_eq!(Priority::parse(&p.name().to_lowercase()), Some(p));
        }
        assert_eq!(Priority::parse("LOUD"), None);
    }

    #[test]
    fn entries_merge_priorities_in_writing_order() {
        crate::info!("first {}", 1);
        crate::error!("second");
        crate::debug!("third");
        let got = entries(&Priority::ALL);
        let messages: Vec<_> = got.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(messages, ["first 1", "second", "third"]);
        assert_eq!(got[1].priority, Priority::Error);
        assert!(got[0].file.ends_with("log.rs") && got[0].line > 0);
        let errors = entries(&[Priority::Error]);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].message, "second");
    }

    #[test]
    fn each_buffer_is_bounded_and_keeps_the_newest() {
        for i in 0..Priority::Warn.capacity() + 10 {
            crate::warn!("retry {i}");
        }
        crate::error!("kept");
        assert_eq!(len(Priority::Warn), Priority::Warn.capacity());
        let warns = entries(&[Priority::Warn]);
        assert_eq!(warns[0].message, "retry 10");
        assert_eq!(warns.last().unwrap().message, format!("retry {}", Priority::Warn.capacity() + 9));
        // Chatter at one priority does not evict another's entries.
        assert_eq!(entries(&[Priority::Error])[0].message, "kept");
    }

    #[test]
    fn long_messages_are_cut_at_a_character_boundary() {
        crate::info!("{}", "é".repeat(MAX_MESSAGE_BYTES));
        let message = &entries(&[Priority::Info])[0].message;
        assert!(message.len() <= MAX_MESSAGE_BYTES, "{}", message.len());
        assert!(message.ends_with('…'));
    }
}
