//! ShareService: an agent's request is answered only for the question and
//! generation settings of the challenge as the game state has it, so that
//! nobody can have the service's LLMs answer a question of its own under a
//! real challenge id. The game state is asked once per challenge; what it
//! said is kept (a digest per challenge id, in the heap, bounded), so that
//! many agents asking for the same challenge cost one call.

use std::cell::RefCell;
use std::collections::BTreeMap;

use mainer_types::calls::game_state;
use mainer_types::controller::{ControllerError, ControllerResult, ServiceChallenge};
use mainer_types::game::{Challenge, ChallengeId, GenerationSettings};
use sha2::{Digest, Sha256};

use crate::calls;
use crate::ic::Runtime;
use crate::state::read_state;

/// Challenges whose digest is kept; the oldest ids go first.
const MAX_KEPT: usize = 512;

thread_local! {
    static CONFIRMED: RefCell<BTreeMap<ChallengeId, [u8; 32]>> = const { RefCell::new(BTreeMap::new()) };
}

/// What must match: the question and the generation settings.
fn digest(question: &str, settings: &GenerationSettings) -> [u8; 32] {
    let bytes = candid::encode_args((question, settings)).expect("a challenge encodes");
    Sha256::digest(bytes).into()
}

fn digest_of(c: &Challenge) -> [u8; 32] {
    digest(&c.question, &c.settings)
}

fn compare(claimed: &ServiceChallenge, real: [u8; 32]) -> ControllerResult<()> {
    if digest(&claimed.question, &claimed.settings) == real {
        Ok(())
    } else {
        canister_common::warn!("a request for challenge {} does not match the game state's", claimed.id);
        Err(ControllerError::ChallengeMismatch { challenge_id: claimed.id })
    }
}

fn remember(id: ChallengeId, d: [u8; 32]) {
    CONFIRMED.with(|c| {
        let mut c = c.borrow_mut();
        c.insert(id, d);
        while c.len() > MAX_KEPT {
            c.pop_first();
        }
    });
}

/// Ok when `claimed` has the question and settings of the game state's
/// challenge with its id; `ChallengeMismatch` when not; `CallFailed` when the
/// game state cannot be asked (the agent retries later).
pub async fn verify<RT: Runtime>(rt: &RT, claimed: &ServiceChallenge) -> ControllerResult<()> {
    if let Some(known) = CONFIRMED.with(|c| c.borrow().get(&claimed.id).copied()) {
        return compare(claimed, known);
    }
    let game = read_state(|s| s.config().game_state);
    match calls::call(rt, game, &game_state::CHALLENGE, (claimed.id,)).await {
        Ok(Ok(real)) => {
            let d = digest_of(&real);
            remember(real.id, d);
            compare(claimed, d)
        }
        Ok(Err(e)) => {
            Err(ControllerError::InvalidInput(format!("the game state does not confirm challenge {}: {e}", claimed.id)))
        }
        Err(e) => Err(ControllerError::CallFailed {
            canister: game,
            method: game_state::CHALLENGE.name.into(),
            reason: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::work::tests::challenge;

    #[test]
    fn only_the_question_and_settings_of_the_challenge_pass() {
        let real = challenge(7);
        let d = digest_of(&real);
        let claimed = ServiceChallenge::from(&real);
        assert_eq!(compare(&claimed, d), Ok(()));
        let forged = ServiceChallenge { question: "my own question".into(), ..claimed.clone() };
        assert_eq!(compare(&forged, d), Err(ControllerError::ChallengeMismatch { challenge_id: 7 }));
        let mut longer = claimed.clone();
        longer.settings.max_tokens += 1;
        assert!(compare(&longer, d).is_err(), "other settings");
        let counted = Challenge { submissions: 3, ..real };
        assert_eq!(compare(&ServiceChallenge::from(&counted), d), Ok(()), "the counts may differ");
    }

    #[test]
    fn the_kept_digests_are_bounded() {
        for id in 0..(MAX_KEPT as u64 + 10) {
            remember(id, [0; 32]);
        }
        CONFIRMED.with(|c| {
            assert_eq!(c.borrow().len(), MAX_KEPT);
            assert!(!c.borrow().contains_key(&0));
        });
    }
}
