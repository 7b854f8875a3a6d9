//! Topics and the challengers' side: admins keep a list of topics with
//! weights; a registered challenger asks for the next topic (refused while
//! `max_open_challenges` are open) and adds the question it generated as a
//! challenge with the topic's settings and closing rule, and its evidence.
//!
//! Topics are handed out by smooth weighted round robin: every pick adds
//! each topic's weight to its credit and hands out the one with the most
//! credit (the oldest on a tie), which then pays back the total weight. Over
//! any run of picks each topic's share follows its weight, interleaved
//! rather than in bursts, and the order is the same on every replica.

use mainer_types::game::{Challenge, GameError, GameResult, NewChallenge};
use mainer_types::game_play::{
    ChallengeOrigin, GameAgentKind, GeneratedChallenge, NewTopic, Topic, TopicId, TopicTicket,
};
use mainer_types::{Page, PageRequest};

use crate::access::{Caller, is_admin, require_admin};
use crate::agents;
use crate::challenges::{LAZY_SWEEP_LIMIT, insert_new, sweep, validate as validate_challenge};
use crate::judging::validate_llm_evidence;
use crate::paging::page_of;
use crate::state::{Candid, State};

/// Longest topic text, in bytes.
pub const MAX_TOPIC_BYTES: usize = 1024;
/// Most topics kept (each pick walks them all).
pub const MAX_TOPICS: u64 = 1_000;
const NS_PER_SECOND: u64 = 1_000_000_000;

fn validate(t: &NewTopic) -> GameResult<()> {
    let invalid = |why: &str| Err(GameError::InvalidInput(why.into()));
    if t.text.trim().is_empty() || t.text.len() > MAX_TOPIC_BYTES {
        return invalid("the topic's text must be 1 to 1024 bytes, not blank");
    }
    if t.scored_to_close == Some(0) || t.open_seconds == Some(0) {
        return invalid("scored_to_close and open_seconds must be positive");
    }
    if t.open_seconds.is_some_and(|s| s.checked_mul(NS_PER_SECOND).is_none()) {
        return invalid("open_seconds is too large");
    }
    // The rest is what a challenge of this topic must pass.
    let sample = NewChallenge {
        question: t.text.clone(),
        settings: t.settings.clone(),
        max_submissions: t.max_submissions,
        deadline_ns: None,
    };
    validate_challenge(&sample, 0)
}

fn stored(id: TopicId, t: NewTopic, challenges: u64) -> Topic {
    Topic {
        id,
        text: t.text,
        weight: t.weight,
        settings: t.settings,
        max_submissions: t.max_submissions,
        scored_to_close: t.scored_to_close,
        open_seconds: t.open_seconds,
        challenges,
    }
}

/// Admins only. Ids count up from 1.
pub fn add(state: &mut State, caller: &Caller, new: NewTopic) -> GameResult<Topic> {
    require_admin(state.config(), caller)?;
    validate(&new)?;
    if state.play.topics.len() >= MAX_TOPICS {
        return Err(GameError::InvalidInput(format!("at most {MAX_TOPICS} topics")));
    }
    let id = state.play.topics.last_key_value().map_or(1, |(id, _)| id + 1);
    let topic = stored(id, new, 0);
    state.play.topics.insert(id, Candid(topic.clone()));
    state.play.topic_credit.insert(id, 0);
    Ok(topic)
}

/// Admins only: replaces a topic's text, weight, settings and closing rule
/// (challenges already generated keep theirs).
pub fn update(state: &mut State, caller: &Caller, id: TopicId, new: NewTopic) -> GameResult<Topic> {
    require_admin(state.config(), caller)?;
    validate(&new)?;
    let old = state.play.topics.get(&id).ok_or(GameError::TopicNotFound(id))?.0;
    let topic = stored(id, new, old.challenges);
    state.play.topics.insert(id, Candid(topic.clone()));
    Ok(topic)
}

/// Admins only. Its challenges stay.
pub fn remove(state: &mut State, caller: &Caller, id: TopicId) -> GameResult<()> {
    require_admin(state.config(), caller)?;
    state.play.topics.remove(&id).ok_or(GameError::TopicNotFound(id))?;
    state.play.topic_credit.remove(&id);
    Ok(())
}

/// Admins and challengers, in id order.
pub fn list(state: &State, caller: &Caller, page: PageRequest) -> GameResult<Page<Topic>> {
    if !is_admin(state.config(), caller) {
        agents::require(state, caller, GameAgentKind::Challenger)?;
    }
    Ok(page_of(state.play.topics.values(), state.play.topics.len(), page, |t| t.0))
}

/// Refuses while as many challenges are open as the game allows.
fn check_room(state: &mut State, now_ns: u64) -> GameResult<u64> {
    sweep(state, now_ns, LAZY_SWEEP_LIMIT);
    let open = state.open_challenges.len();
    let max = state.play.settings().max_open_challenges;
    if open >= max {
        return Err(GameError::TooManyOpenChallenges { open, max });
    }
    Ok(open)
}

/// The smooth weighted round robin's next topic (see the module doc).
fn pick(state: &mut State) -> Option<TopicId> {
    let weights: Vec<(TopicId, i64)> =
        state.play.topics.iter().map(|e| (*e.key(), e.value().0.weight as i64)).collect();
    let total: i64 = weights.iter().map(|(_, w)| w).sum();
    if total == 0 {
        return None;
    }
    let mut best: Option<(TopicId, i64)> = None;
    for (id, w) in &weights {
        let credit = state.play.topic_credit.get(id).unwrap_or(0) as i64 + w;
        state.play.topic_credit.insert(*id, credit as u64);
        if *w > 0 && best.is_none_or(|(_, c)| credit > c) {
            best = Some((*id, credit));
        }
    }
    let (id, credit) = best?;
    state.play.topic_credit.insert(id, (credit - total) as u64);
    Some(id)
}

/// Challengers only: the topic to write the next question about.
pub fn next_topic(state: &mut State, caller: &Caller, now_ns: u64) -> GameResult<TopicTicket> {
    agents::require(state, caller, GameAgentKind::Challenger)?;
    let open = check_room(state, now_ns)?;
    let id = pick(state).ok_or(GameError::NoTopic)?;
    let topic = state.play.topics.get(&id).expect("a picked topic exists").0;
    Ok(TopicTicket { topic, open_challenges: open, max_open_challenges: state.play.settings().max_open_challenges })
}

/// Challengers only: adds a generated question as a challenge with its
/// topic's settings and closing rule, keeping the challenger's evidence.
pub fn add_generated(state: &mut State, caller: &Caller, g: GeneratedChallenge, now_ns: u64) -> GameResult<Challenge> {
    agents::require(state, caller, GameAgentKind::Challenger)?;
    validate_llm_evidence(&g.evidence)?;
    let mut topic = state.play.topics.get(&g.topic_id).ok_or(GameError::TopicNotFound(g.topic_id))?.0;
    check_room(state, now_ns)?;
    let new = NewChallenge {
        question: g.question,
        settings: topic.settings.clone(),
        max_submissions: topic.max_submissions,
        deadline_ns: topic.open_seconds.map(|s| now_ns.saturating_add(s * NS_PER_SECOND)),
    };
    validate_challenge(&new, now_ns)?;
    let challenge = insert_new(state, new, now_ns);
    let scored_to_close = topic.scored_to_close.unwrap_or(state.play.settings().scored_to_close);
    let origin = ChallengeOrigin {
        challenge_id: challenge.id,
        author: caller.principal,
        topic_id: Some(topic.id),
        evidence: Some(g.evidence),
        scored_to_close,
    };
    crate::finalize::track(state, origin);
    topic.challenges += 1;
    state.play.topics.insert(topic.id, Candid(topic));
    agents::count_done(state, &caller.principal);
    Ok(challenge)
}

/// Admins and registered mAIners: who added a challenge and how it was generated.
pub fn origin(state: &State, caller: &Caller, id: mainer_types::game::ChallengeId) -> GameResult<ChallengeOrigin> {
    if !is_admin(state.config(), caller) && state.mainer(&caller.principal).is_none() {
        agents::require(state, caller, GameAgentKind::Judge)?;
    }
    state.play.origins.get(&id).map(|o| o.0).ok_or(GameError::ChallengeNotFound(id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use mainer_types::game_play::GameSettings;

    #[test]
    fn only_admins_keep_topics_and_bad_ones_are_refused() {
        let mut s = state();
        let stranger = Caller::user(p(50));
        assert!(matches!(add(&mut s, &stranger, topic("sea", 1)), Err(GameError::Unauthorized(_))));
        let t = add(&mut s, &admin(), topic("sea", 1)).unwrap();
        assert_eq!((t.id, t.challenges), (1, 0));
        for bad in [
            NewTopic { text: " ".into(), ..topic("x", 1) },
            NewTopic { scored_to_close: Some(0), ..topic("x", 1) },
            NewTopic { open_seconds: Some(0), ..topic("x", 1) },
            NewTopic { open_seconds: Some(u64::MAX), ..topic("x", 1) },
            NewTopic { max_submissions: Some(0), ..topic("x", 1) },
        ] {
            assert!(matches!(add(&mut s, &admin(), bad.clone()), Err(GameError::InvalidInput(_))), "{bad:?}");
        }
        let t2 = update(&mut s, &admin(), t.id, topic("ocean", 3)).unwrap();
        assert_eq!((t2.text.as_str(), t2.weight), ("ocean", 3));
        assert!(matches!(update(&mut s, &stranger, t.id, topic("x", 1)), Err(GameError::Unauthorized(_))));
        assert_eq!(update(&mut s, &admin(), 9, topic("x", 1)), Err(GameError::TopicNotFound(9)));
        assert!(matches!(list(&s, &stranger, PageRequest::first(5)), Err(GameError::NotAChallenger(_))));
        make_challenger(&mut s, p(30));
        assert_eq!(list(&s, &Caller::user(p(30)), PageRequest::first(5)).unwrap().total, 1);
        assert!(matches!(remove(&mut s, &stranger, t.id), Err(GameError::Unauthorized(_))));
        remove(&mut s, &admin(), t.id).unwrap();
        assert_eq!(remove(&mut s, &admin(), t.id), Err(GameError::TopicNotFound(t.id)));
    }

    #[test]
    fn topics_are_handed_out_by_weight_interleaved() {
        let mut s = state();
        set_settings(&mut s, GameSettings { max_open_challenges: 100, ..GameSettings::default() });
        add(&mut s, &admin(), topic("a", 3)).unwrap();
        add(&mut s, &admin(), topic("b", 1)).unwrap();
        add(&mut s, &admin(), topic("paused", 0)).unwrap();
        make_challenger(&mut s, p(30));
        let c = Caller::user(p(30));
        let picks: Vec<_> = (0..8).map(|_| next_topic(&mut s, &c, 1).unwrap().topic.text).collect();
        assert_eq!(picks, ["a", "a", "b", "a", "a", "a", "b", "a"]);
        update(&mut s, &admin(), 1, topic("a", 0)).unwrap();
        update(&mut s, &admin(), 2, topic("b", 0)).unwrap();
        assert_eq!(next_topic(&mut s, &c, 1), Err(GameError::NoTopic));
    }

    #[test]
    fn challengers_are_throttled_by_the_open_challenges() {
        let mut s = state();
        set_settings(&mut s, GameSettings { max_open_challenges: 2, ..GameSettings::default() });
        let t = add(&mut s, &admin(), NewTopic { open_seconds: Some(10), ..topic("sea", 1) }).unwrap();
        make_challenger(&mut s, p(30));
        let c = Caller::user(p(30));
        assert_eq!(next_topic(&mut s, &Caller::user(p(50)), 1), Err(GameError::NotAChallenger(p(50))));
        let first = add_generated(&mut s, &c, generated(t.id, "What is the sea?"), 1).unwrap();
        assert_eq!(first.deadline_ns, Some(1 + 10 * NS_PER_SECOND), "the topic's closing rule");
        crate::challenges::add(&mut s, &admin(), question("an admin's"), 2).unwrap();
        assert_eq!(next_topic(&mut s, &c, 3), Err(GameError::TooManyOpenChallenges { open: 2, max: 2 }));
        assert_eq!(
            add_generated(&mut s, &c, generated(t.id, "Another?"), 3),
            Err(GameError::TooManyOpenChallenges { open: 2, max: 2 })
        );
        // Admins are not throttled.
        crate::challenges::add(&mut s, &admin(), question("and another"), 3).unwrap();
        // An admin closes one and the generated one's deadline passes: room again.
        let later = 2 + 10 * NS_PER_SECOND;
        crate::challenges::close(&mut s, &admin(), 2, later).unwrap();
        assert_eq!(next_topic(&mut s, &c, later).unwrap().open_challenges, 1);
        let second = add_generated(&mut s, &c, generated(t.id, "Why is it blue?"), later).unwrap();
        let origin = origin(&s, &admin(), second.id).unwrap();
        assert_eq!((origin.author, origin.topic_id, origin.scored_to_close), (p(30), Some(t.id), 27));
        assert_eq!(origin.evidence, Some(llm_evidence()));
        assert_eq!(s.play.topics.get(&t.id).unwrap().0.challenges, 2);
        assert_eq!(s.play.agents.get(&p(30)).unwrap().done, 2);
        assert!(matches!(crate::topics::origin(&s, &Caller::user(p(50)), second.id), Err(GameError::NotAJudge(_))));
    }

    #[test]
    fn generated_challenges_are_validated() {
        let mut s = state();
        let t = add(&mut s, &admin(), topic("sea", 1)).unwrap();
        make_challenger(&mut s, p(30));
        let c = Caller::user(p(30));
        assert_eq!(add_generated(&mut s, &c, generated(9, "q"), 1), Err(GameError::TopicNotFound(9)));
        assert!(matches!(add_generated(&mut s, &c, generated(t.id, " "), 1), Err(GameError::InvalidInput(_))));
        let mut g = generated(t.id, "q");
        g.evidence.prompt_sha256 = "xyz".into();
        assert!(matches!(add_generated(&mut s, &c, g, 1), Err(GameError::InvalidInput(_))));
        assert_eq!(s.counts().challenges, 0);
    }
}
