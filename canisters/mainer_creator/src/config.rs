//! The creator's configuration: admins, the game state, settings (kept in
//! `State`).

use candid::{CandidType, Principal};
use mainer_types::creator::{CreatorError, CreatorSettings, CreatorUpgrade};
use serde::Deserialize;

/// Longest job round interval: a day (so seconds never overflow in nanoseconds).
pub const MAX_JOB_INTERVAL_SECONDS: u64 = 86_400;

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub admins: Vec<Principal>,
    pub game_state: Principal,
    pub allowed_creators: Vec<Principal>,
    pub settings: CreatorSettings,
}

impl Config {
    /// Applies the fields that are `Some`.
    pub fn upgraded(mut self, up: CreatorUpgrade) -> Result<Config, CreatorError> {
        if let Some(a) = up.admins {
            self.admins = a;
        }
        if let Some(g) = up.game_state {
            self.game_state = g;
        }
        if let Some(a) = up.allowed_creators {
            self.allowed_creators = a;
        }
        if let Some(s) = up.settings {
            validate(&s)?;
            self.settings = s;
        }
        Ok(self)
    }
}

/// Refuses settings whose arithmetic could wrap or that would stop the factory.
pub fn validate(s: &CreatorSettings) -> Result<(), CreatorError> {
    let bad = |why: &str| Err(CreatorError::InvalidInput(why.to_string()));
    if !(1..=MAX_JOB_INTERVAL_SECONDS).contains(&s.job_interval_seconds) {
        return bad("job_interval_seconds must be between 1 and 86400");
    }
    if !(1..=100).contains(&s.max_parallel_jobs) || !(1..=100).contains(&s.chunks_per_round) {
        return bad("max_parallel_jobs and chunks_per_round must be between 1 and 100");
    }
    // Sums of a few of these must not wrap: keep each below 2^100.
    let limit = 1u128 << 100;
    if [s.controller_cycles, s.llm_cycles, s.reserve_cycles].iter().any(|c| *c >= limit) {
        return bad("cycle amounts must be below 2^100");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_that_could_wrap_are_refused() {
        let ok = CreatorSettings::default();
        assert_eq!(validate(&ok), Ok(()));
        for bad in [
            CreatorSettings { job_interval_seconds: 0, ..ok.clone() },
            CreatorSettings { job_interval_seconds: u64::MAX, ..ok.clone() },
            CreatorSettings { max_parallel_jobs: 0, ..ok.clone() },
            CreatorSettings { chunks_per_round: 0, ..ok.clone() },
            CreatorSettings { llm_cycles: u128::MAX, ..ok.clone() },
            CreatorSettings { reserve_cycles: u128::MAX, ..ok.clone() },
        ] {
            assert!(matches!(validate(&bad), Err(CreatorError::InvalidInput(_))), "{bad:?}");
        }
    }
}
