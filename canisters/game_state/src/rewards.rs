//! Pure reward arithmetic: the ranking order and the split of a challenge's
//! reward, in integers, so that the rewards sum exactly to what the
//! challenge took from the pool.
//!
//! Where the rounding goes: each place's share (first, second, third) is
//! rounded down; the participants' share is everything left after the
//! places, so it takes their rounding and the share of any place nobody holds
//! (fewer than three scored answers); it is divided equally among all ranked
//! answers, and the remainder of that division goes to the winner.

use mainer_types::game_play::RewardSplit;

pub const BASIS_POINTS: u32 = 10_000;

pub fn validate_split(split: &RewardSplit) -> Result<(), String> {
    let sum = [split.first_bp, split.second_bp, split.third_bp, split.participants_bp]
        .iter()
        .try_fold(0u32, |a, b| a.checked_add(*b));
    if sum != Some(BASIS_POINTS) {
        return Err(format!("the split's basis points must sum to {BASIS_POINTS}"));
    }
    Ok(())
}

/// The rank order: higher score first, then the earlier submission (its
/// place in the submission log), so no two answers share a rank.
pub fn rank_key(score: u32, seq: u64) -> (std::cmp::Reverse<u32>, u64) {
    (std::cmp::Reverse(score), seq)
}

/// The reward of each of `ranked` answers, in rank order; sums to `total`
/// exactly (no answers: nothing).
pub fn split(total: u128, split: &RewardSplit, ranked: usize) -> Vec<u128> {
    if ranked == 0 {
        return vec![];
    }
    let share = |bp: u32| {
        total / BASIS_POINTS as u128 * bp as u128 + total % BASIS_POINTS as u128 * bp as u128 / BASIS_POINTS as u128
    };
    let places: Vec<u128> =
        [split.first_bp, split.second_bp, split.third_bp].iter().take(ranked).map(|bp| share(*bp)).collect();
    let participants = total - places.iter().sum::<u128>();
    let each = participants / ranked as u128;
    let remainder = participants % ranked as u128;
    let mut rewards = vec![each; ranked];
    for (r, p) in rewards.iter_mut().zip(&places) {
        *r += p;
    }
    rewards[0] += remainder;
    rewards
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_split_is_35_15_5_and_45_shared() {
        let r = split(10_000, &RewardSplit::default(), 5);
        // 45 % of 10,000 over 5: 900 each.
        assert_eq!(r, vec![3_500 + 900, 1_500 + 900, 500 + 900, 900, 900]);
        assert_eq!(r.iter().sum::<u128>(), 10_000);
    }

    #[test]
    fn rewards_always_sum_to_the_pool_share_and_the_remainder_goes_to_the_winner() {
        let splits = [
            RewardSplit::default(),
            RewardSplit { first_bp: 3_333, second_bp: 3_333, third_bp: 3_333, participants_bp: 1 },
            RewardSplit { first_bp: 10_000, second_bp: 0, third_bp: 0, participants_bp: 0 },
            RewardSplit { first_bp: 0, second_bp: 0, third_bp: 0, participants_bp: 10_000 },
        ];
        for s in &splits {
            for total in [0u128, 1, 2, 7, 9_999, 10_001, 18_190_327_330, u128::MAX / 3, u128::MAX] {
                for n in [1usize, 2, 3, 4, 7, 27, 1_000] {
                    let r = split(total, s, n);
                    assert_eq!(r.len(), n);
                    assert_eq!(r.iter().sum::<u128>(), total, "{s:?} {total} {n}");
                    // Everyone but the winner gets exactly the rounded-down shares.
                    let places: Vec<u128> = [s.first_bp, s.second_bp, s.third_bp]
                        .iter()
                        .take(n)
                        .map(|bp| total / 10_000 * *bp as u128 + total % 10_000 * *bp as u128 / 10_000)
                        .collect();
                    let each = (total - places.iter().sum::<u128>()) / n as u128;
                    for (i, reward) in r.iter().enumerate().skip(1) {
                        assert_eq!(*reward, each + places.get(i).copied().unwrap_or(0));
                    }
                }
            }
        }
        // 10 cycles over 3 answers: places 3, 1, 0; participants 6, 2 each.
        assert_eq!(split(10, &RewardSplit::default(), 3), vec![5, 3, 2]);
        // A place nobody holds goes to the participants: 2 answers of 100.
        assert_eq!(split(100, &RewardSplit::default(), 2), vec![35 + 25, 15 + 25]);
        assert!(split(100, &RewardSplit::default(), 0).is_empty());
    }

    #[test]
    fn ties_go_to_the_earlier_submission() {
        let mut answers = vec![(4, 12), (5, 30), (4, 10), (5, 31), (1, 1)];
        answers.sort_by_key(|(score, seq)| rank_key(*score, *seq));
        assert_eq!(answers, vec![(5, 30), (5, 31), (4, 10), (4, 12), (1, 1)]);
    }

    #[test]
    fn splits_must_sum_to_ten_thousand_basis_points() {
        assert!(validate_split(&RewardSplit::default()).is_ok());
        assert!(validate_split(&RewardSplit { first_bp: 1, ..RewardSplit::default() }).is_err());
        let overflow = RewardSplit { first_bp: u32::MAX, second_bp: 1, third_bp: 0, participants_bp: 0 };
        assert!(validate_split(&overflow).is_err());
    }
}
