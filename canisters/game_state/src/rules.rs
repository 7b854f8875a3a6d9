//! The game's rules (`GameSettings`): set by admins, read by anyone.

use mainer_types::game::{GameError, GameResult};
use mainer_types::game_play::GameSettings;

use crate::access::{Caller, require_admin};
use crate::state::State;

/// The longest lease a judge may get (a day): longer ones would hold a
/// submission for a dead judge too long.
pub const MAX_LEASE_SECONDS: u64 = 24 * 60 * 60;
/// More leases per submission than this would let one bad answer take the judges' time.
pub const MAX_JUDGING_ATTEMPTS: u32 = 10;

pub fn validate(s: &GameSettings) -> GameResult<()> {
    let invalid = |why: &str| Err(GameError::InvalidInput(why.into()));
    if s.max_open_challenges == 0 {
        return invalid("max_open_challenges must be positive");
    }
    if s.scored_to_close == 0 {
        return invalid("scored_to_close must be positive");
    }
    if !(1..=MAX_LEASE_SECONDS).contains(&s.lease_seconds) {
        return invalid("lease_seconds must be in 1..=86400");
    }
    if !(1..=MAX_JUDGING_ATTEMPTS).contains(&s.max_judging_attempts) {
        return invalid("max_judging_attempts must be in 1..=10");
    }
    if s.score_min > s.score_max {
        return invalid("score_min must not exceed score_max");
    }
    crate::rewards::validate_split(&s.split).map_err(GameError::InvalidInput)
}

/// Admins only. Changes apply to what comes next: challenges finalized
/// later use the new split and reward; leases given later the new time-out.
pub fn set(state: &mut State, caller: &Caller, settings: GameSettings) -> GameResult<GameSettings> {
    require_admin(state.config(), caller)?;
    validate(&settings)?;
    state.play.set_settings(settings.clone());
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use candid::Principal;
    use mainer_types::game_play::RewardSplit;

    #[test]
    fn only_admins_set_valid_rules() {
        let mut s = state();
        assert_eq!(s.play.settings(), GameSettings::default());
        let stranger = Caller::user(Principal::from_slice(&[50]));
        let new = GameSettings { scored_to_close: 3, ..GameSettings::default() };
        assert!(matches!(set(&mut s, &stranger, new.clone()), Err(GameError::Unauthorized(_))));
        assert_eq!(set(&mut s, &admin(), new.clone()).unwrap(), new);
        assert_eq!(s.play.settings(), new);
        let d = GameSettings::default;
        for bad in [
            GameSettings { max_open_challenges: 0, ..d() },
            GameSettings { scored_to_close: 0, ..d() },
            GameSettings { lease_seconds: 0, ..d() },
            GameSettings { lease_seconds: MAX_LEASE_SECONDS + 1, ..d() },
            GameSettings { max_judging_attempts: 0, ..d() },
            GameSettings { score_min: 6, score_max: 5, ..d() },
            GameSettings { split: RewardSplit { participants_bp: 4_499, ..RewardSplit::default() }, ..d() },
        ] {
            assert!(matches!(set(&mut s, &admin(), bad.clone()), Err(GameError::InvalidInput(_))), "{bad:?}");
        }
        assert_eq!(s.play.settings(), new, "a refusal changes nothing");
    }
}
