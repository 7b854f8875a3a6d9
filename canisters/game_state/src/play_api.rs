//! The game's endpoints (topics, challengers, judges, rules, the pool,
//! results): each reads the caller and the time and calls the logic in its
//! module. Access rules are documented in `game_state.did`.

use candid::Principal;
use mainer_types::game::{Challenge, ChallengeId, GameResult};
use mainer_types::game_play::{
    ChallengeOrigin, ChallengeResult, Earnings, GameAgent, GameAgentKind, GameSettings, GeneratedChallenge, JudgeTask,
    Judgement, LeaderboardEntry, LeaderboardRequest, NewTopic, Payout, PayoutId, PayoutTo, RankedAnswer, RewardPool,
    ScoreAccepted, ScoreReport, Topic, TopicId, TopicTicket,
};
use mainer_types::{Page, PageRequest};

use crate::state::{mutate_state, read_state};
use crate::{agents, caller, judging, logged, loud, now, pool, results, rules, topics};

#[ic_cdk::update]
fn add_topic(new: NewTopic) -> GameResult<Topic> {
    let result = mutate_state(|s| topics::add(s, &caller(), new));
    logged("add_topic", result, |t| format!("added topic {} (weight {})", t.id, t.weight), loud)
}

#[ic_cdk::update]
fn update_topic(id: TopicId, new: NewTopic) -> GameResult<Topic> {
    let result = mutate_state(|s| topics::update(s, &caller(), id, new));
    logged("update_topic", result, |t| format!("updated topic {} (weight {})", t.id, t.weight), loud)
}

#[ic_cdk::update]
fn remove_topic(id: TopicId) -> GameResult<()> {
    let result = mutate_state(|s| topics::remove(s, &caller(), id));
    logged("remove_topic", result, |_| format!("removed topic {id}"), loud)
}

#[ic_cdk::query]
fn list_topics(page: PageRequest) -> GameResult<Page<Topic>> {
    read_state(|s| topics::list(s, &caller(), page))
}

#[ic_cdk::update]
fn register_game_agent(agent: Principal, kind: GameAgentKind) -> GameResult<GameAgent> {
    let result = mutate_state(|s| agents::register(s, &caller(), agent, kind, now()));
    logged("register_game_agent", result, |a| format!("registered {} as {:?}", a.agent, a.kind), loud)
}

#[ic_cdk::update]
fn unregister_game_agent(agent: Principal) -> GameResult<()> {
    let result = mutate_state(|s| agents::unregister(s, &caller(), agent));
    logged("unregister_game_agent", result, |_| format!("unregistered {agent}"), loud)
}

#[ic_cdk::query]
fn list_game_agents(page: PageRequest) -> GameResult<Page<GameAgent>> {
    read_state(|s| agents::list(s, &caller(), page))
}

#[ic_cdk::update]
fn set_game_settings(settings: GameSettings) -> GameResult<GameSettings> {
    let result = mutate_state(|s| rules::set(s, &caller(), settings));
    logged("set_game_settings", result, |g| format!("{g:?}"), loud)
}

#[ic_cdk::query]
fn game_settings() -> GameSettings {
    read_state(|s| s.play.settings())
}

/// Admins attach the cycles to add; nothing is accepted from anyone else.
#[ic_cdk::update]
fn fund_reward_pool() -> GameResult<RewardPool> {
    let caller = caller();
    let result = mutate_state(|s| {
        crate::access::require_admin(s.config(), &caller)?;
        let cycles = ic_cdk::api::msg_cycles_accept(ic_cdk::api::msg_cycles_available());
        pool::fund(s, &caller, cycles)
    });
    logged("fund_reward_pool", result, |p| format!("pool: {} available, {} funded", p.available, p.funded), loud)
}

#[ic_cdk::query]
fn reward_pool() -> GameResult<RewardPool> {
    read_state(|s| pool::get(s, &caller()))
}

#[ic_cdk::update]
fn set_payout_to(mainer: Principal, to: PayoutTo) -> GameResult<()> {
    let result = mutate_state(|s| pool::set_payout_to(s, &caller(), mainer, to));
    logged("set_payout_to", result, |_| format!("payouts of {mainer} changed"), loud)
}

#[ic_cdk::query]
fn list_payouts(page: PageRequest) -> GameResult<Page<Payout>> {
    read_state(|s| pool::list_payouts(s, &caller(), page))
}

/// Admins: sends the due payouts now (the timer does every 10 s).
#[ic_cdk::update]
fn run_payouts() -> GameResult<u64> {
    read_state(|s| crate::access::require_admin(s.config(), &caller()))?;
    Ok(crate::payouts::run_round(&crate::payout_ic::IcPayouts) as u64)
}

#[ic_cdk::update]
fn resolve_payout(id: PayoutId, arrived: bool) -> GameResult<Payout> {
    let result = mutate_state(|s| crate::payouts::resolve(s, &caller(), id, arrived, now()));
    logged("resolve_payout", result, |p| format!("payout {} is {:?}", p.id, p.state), loud)
}

#[ic_cdk::update]
fn next_topic() -> GameResult<TopicTicket> {
    let result = mutate_state(|s| topics::next_topic(s, &caller(), now()));
    let quiet = |e: &mainer_types::game::GameError| {
        matches!(
            e,
            mainer_types::game::GameError::TooManyOpenChallenges { .. } | mainer_types::game::GameError::NoTopic
        )
    };
    logged("next_topic", result, |t| format!("topic {}", t.topic.id), quiet)
}

#[ic_cdk::update]
fn add_generated_challenge(generated: GeneratedChallenge) -> GameResult<Challenge> {
    let result = mutate_state(|s| topics::add_generated(s, &caller(), generated, now()));
    logged("add_generated_challenge", result, |c| format!("added challenge {}", c.id), loud)
}

#[ic_cdk::query]
fn challenge_origin(id: ChallengeId) -> GameResult<ChallengeOrigin> {
    read_state(|s| topics::origin(s, &caller(), id))
}

#[ic_cdk::update]
fn next_to_judge() -> GameResult<JudgeTask> {
    let result = mutate_state(|s| judging::next(s, &caller(), now()));
    let quiet = |e: &mainer_types::game::GameError| matches!(e, mainer_types::game::GameError::NothingToJudge);
    logged(
        "next_to_judge",
        result,
        |t| format!("lease {} on challenge {} of {}", t.lease_id, t.challenge_id, t.mainer),
        quiet,
    )
}

#[ic_cdk::update]
fn submit_score(report: ScoreReport) -> GameResult<ScoreAccepted> {
    let result = mutate_state(|s| judging::report(s, &caller(), report, now()));
    logged("submit_score", result, |a| format!("{a:?}").chars().take(200).collect(), loud)
}

#[ic_cdk::query]
fn judgements_by_challenge(id: ChallengeId, page: PageRequest) -> GameResult<Page<Judgement>> {
    read_state(|s| judging::by_challenge(s, &caller(), id, page))
}

#[ic_cdk::query]
fn challenge_result(id: ChallengeId) -> GameResult<ChallengeResult> {
    read_state(|s| results::result(s, id))
}

#[ic_cdk::query]
fn challenge_ranking(id: ChallengeId, page: PageRequest) -> GameResult<Page<RankedAnswer>> {
    read_state(|s| results::ranking(s, id, page))
}

#[ic_cdk::query]
fn mainer_results(mainer: Principal, page: PageRequest) -> GameResult<Page<RankedAnswer>> {
    read_state(|s| results::mainer_results(s, &caller(), mainer, page))
}

#[ic_cdk::query]
fn mainer_earnings(mainer: Principal) -> GameResult<Earnings> {
    read_state(|s| results::mainer_earnings(s, &caller(), mainer))
}

#[ic_cdk::query]
fn owner_results(owner: Principal, page: PageRequest) -> GameResult<Page<RankedAnswer>> {
    read_state(|s| results::owner_results(s, &caller(), owner, page))
}

#[ic_cdk::query]
fn owner_earnings(owner: Principal) -> GameResult<Earnings> {
    read_state(|s| results::owner_earnings(s, &caller(), owner))
}

#[ic_cdk::query]
fn leaderboard(req: LeaderboardRequest) -> GameResult<Page<LeaderboardEntry>> {
    read_state(|s| results::leaderboard(s, req))
}
