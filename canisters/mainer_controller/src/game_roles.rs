//! The two game roles of the controller wasm. A **Judge** leases the next
//! submission from the game state, scores it with one of its LLMs from the
//! judge prompt (temperature 0, a fixed seed), reads the score robustly
//! (`game_prompts::parse_score`) and reports it with its evidence; output
//! without a score is generated again, at most [`MAX_TRIES`] times, then
//! reported unscorable with the raw output. A **Challenger** asks for a
//! topic (the game state refuses while enough challenges are open: that is
//! the throttle), generates a question from the challenger prompt and adds
//! it as a challenge with its evidence.
//!
//! Each role holds one task at a time, in stable memory (`State::game_task`)
//! before any call is made for it, so an upgrade in the middle picks it up
//! again: a judge asks nothing new until its task is reported, and the game
//! state's lease makes a second report of the same task harmless. As in the
//! work queue, a call that got no answer from the LLM is someone else's
//! outage: the task waits [`OUTAGE_WAIT_NS`] and is tried again without
//! counting; the LLM's refusal of the prompt (too long for its context, say)
//! counts as a try like unreadable output. The LLMs come
//! from the controller's pool (round robin, one generation each), the calls
//! from `llm_client`, the timer from `timers.rs`.

use candid::{CandidType, Principal};
use mainer_types::MainerRole;
use mainer_types::calls::game_state as g;
use mainer_types::controller::StepReport;
use mainer_types::game::{GameError, GenerationSettings};
use mainer_types::game_play::{GeneratedChallenge, JudgeTask, LlmEvidence, ScoreOutcome, ScoreReport, TopicTicket};
use mainer_types::game_prompts::{
    CHALLENGER_TEMPLATE, JUDGE_TEMPLATE, challenger_prompt, clean_question, judge_prompt, parse_score,
};
use mainer_types::llm_client::{Generation, LlmError, LlmSession};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::calls;
use crate::ic::Runtime;
use crate::state::{mutate_state, read_state};

/// What the pool records as the game task's "item" while an LLM works on it.
pub const GAME_ITEM: u64 = u64::MAX;
/// Generations of one task whose output cannot be read, before it is given up.
pub const MAX_TRIES: u32 = 3;
/// Tokens a judge lets its LLM generate: a score is a word.
pub const JUDGE_MAX_TOKENS: u64 = 6;
/// The judge's fixed seed (with temperature 0 the output is the model's greedy one).
pub const JUDGE_SEED: u32 = 42;
/// Tokens of a generated question.
pub const QUESTION_MAX_TOKENS: u64 = 48;
/// How long a task waits after an outage (an LLM or the game state unreachable).
pub const OUTAGE_WAIT_NS: u64 = 10 * 1_000_000_000;

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq)]
pub enum GameWork {
    Judge(JudgeTask),
    Challenger(TopicTicket),
}

/// The role's current task, as stored.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq)]
pub struct GameTask {
    pub work: GameWork,
    /// Generations whose output could not be read.
    pub tries: u32,
    pub last_output: Option<String>,
    pub not_before_ns: u64,
}

impl GameTask {
    fn new(work: GameWork) -> GameTask {
        GameTask { work, tries: 0, last_output: None, not_before_ns: 0 }
    }

    /// The prompt (before the controller's prompt format) and how to generate.
    pub fn prompt(&self) -> (String, GenerationSettings) {
        match &self.work {
            GameWork::Judge(t) => {
                let settings = GenerationSettings {
                    max_tokens: JUDGE_MAX_TOKENS,
                    temperature: 0.0,
                    seed: JUDGE_SEED,
                    top_k: None,
                    top_p: None,
                };
                (judge_prompt(JUDGE_TEMPLATE, &t.question, &t.answer, t.score_min, t.score_max), settings)
            }
            GameWork::Challenger(t) => {
                let settings = GenerationSettings { max_tokens: QUESTION_MAX_TOKENS, ..t.topic.settings.clone() };
                (challenger_prompt(CHALLENGER_TEMPLATE, &t.topic.text), settings)
            }
        }
    }

    fn cache_name(&self, now_ns: u64) -> String {
        let of = match &self.work {
            GameWork::Judge(t) => format!("judge-{}", t.lease_id),
            GameWork::Challenger(t) => format!("challenge-{}", t.topic.id),
        };
        format!("{of}-try-{}-{now_ns}", self.tries)
    }
}

/// What is sent to the game state for a task's generation.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    Score(ScoreReport),
    Question(GeneratedChallenge),
    /// Unreadable output: generate again.
    Retry,
    /// A challenger's output stayed unreadable: the topic is given up.
    GiveUp,
}

/// Reads a generation of `task` (pure): the report to send, or what to do instead.
pub fn verdict(task: &GameTask, text: &str, evidence: LlmEvidence) -> Verdict {
    let last_try = task.tries + 1 >= MAX_TRIES;
    match &task.work {
        GameWork::Judge(t) => match parse_score(text, t.score_min, t.score_max) {
            Some(score) => {
                Verdict::Score(ScoreReport { lease_id: t.lease_id, outcome: ScoreOutcome::Scored { score }, evidence })
            }
            None if last_try => Verdict::Score(ScoreReport {
                lease_id: t.lease_id,
                outcome: ScoreOutcome::Unscorable { raw_output: text.to_string() },
                evidence,
            }),
            None => Verdict::Retry,
        },
        GameWork::Challenger(t) => match clean_question(text) {
            Some(question) => Verdict::Question(GeneratedChallenge { topic_id: t.topic.id, question, evidence }),
            None if last_try => Verdict::GiveUp,
            None => Verdict::Retry,
        },
    }
}

/// Paused by an admin, or by itself for want of cycles.
fn paused() -> bool {
    read_state(|s| s.paused() || s.low_cycles())
}

/// A new task from the game state, stored before anything is done with it.
async fn fetch<RT: Runtime>(rt: &RT, role: MainerRole, game: Principal, notes: &mut Vec<String>) -> Option<GameTask> {
    let work = match role {
        MainerRole::Judge => match calls::call(rt, game, &g::NEXT_TO_JUDGE, ()).await {
            Ok(Ok(t)) => GameWork::Judge(t),
            Ok(Err(GameError::NothingToJudge)) => return None,
            Ok(Err(e)) => {
                notes.push(format!("no lease: {e}"));
                return None;
            }
            Err(e) => {
                notes.push(format!("game state unreachable: {e}"));
                return None;
            }
        },
        MainerRole::Challenger => match calls::call(rt, game, &g::NEXT_TOPIC, ()).await {
            Ok(Ok(t)) => GameWork::Challenger(t),
            Ok(Err(e @ GameError::TooManyOpenChallenges { .. })) => {
                notes.push(format!("waiting: {e}"));
                return None;
            }
            Ok(Err(e)) => {
                notes.push(format!("no topic: {e}"));
                return None;
            }
            Err(e) => {
                notes.push(format!("game state unreachable: {e}"));
                return None;
            }
        },
        _ => return None,
    };
    let task = GameTask::new(work);
    mutate_state(|s| s.set_game_task(Some(task.clone())));
    Some(task)
}

/// Generates with `llm` (the pool's slot is freed and counted here); the
/// outcome and the prompt as sent.
async fn generate<RT: Runtime>(rt: &RT, llm: Principal, task: &GameTask) -> (Result<Generation, LlmError>, String) {
    let (format, limits) = read_state(|s| (s.settings().prompt_format, s.settings().llm_limits));
    let (prompt, settings) = task.prompt();
    let prompt = format.render(&prompt);
    let mut session = LlmSession::new(task.cache_name(rt.time()), prompt.clone(), settings, limits);
    while let Some(call) = session.next_call() {
        let result = calls::llm(rt, llm, &call).await;
        session.on_result(result);
    }
    let outcome = session.outcome().cloned().expect("the session is over");
    let calls = session.calls();
    mutate_state(|s| s.game_generation_done(llm, outcome.as_ref().err(), calls, rt.time()));
    (outcome, prompt)
}

/// One round of the role: fetch a task if there is none, generate, report.
pub async fn game_round<RT: Runtime + Clone + 'static>(rt: &RT) -> StepReport {
    let mut notes = vec![];
    let done = |notes: Vec<String>, started: u64, finished: u64| {
        for n in &notes {
            canister_common::info!("{n}");
        }
        StepReport { started, finished, notes }
    };
    if paused() {
        return done(vec!["paused".into()], 0, 0);
    }
    let (role, game) = read_state(|s| (s.role(), s.config().game_state));
    let task = match read_state(|s| s.game_task()) {
        Some(t) => t,
        None => match fetch(rt, role, game, &mut notes).await {
            Some(t) => t,
            None => return done(notes, 0, 0),
        },
    };
    if task.not_before_ns > rt.time() {
        return done(notes, 0, 0);
    }
    let Some(llm) = mutate_state(|s| s.take_llm_for_game(rt.time())) else {
        notes.push("no free LLM".into());
        return done(notes, 0, 0);
    };
    let (outcome, prompt) = generate(rt, llm, &task).await;
    let evidence = |calls, prompt_tokens, generated_tokens| LlmEvidence {
        prompt_sha256: hex::encode(Sha256::digest(prompt.as_bytes())),
        llm_canister: llm,
        model_sha256: read_state(|s| s.llm(llm).and_then(|l| l.model_sha256)),
        llm_calls: calls,
        prompt_tokens,
        generated_tokens,
    };
    let (generation, evidence) = match outcome {
        Ok(g) => {
            let e = evidence(g.calls, g.prompt_tokens, g.generated_tokens);
            (g, e)
        }
        // No answer at all (the LLM stopped, trapped, upgrading): someone else's outage.
        Err(e @ LlmError::CallFailed { .. }) => {
            let wait = GameTask { not_before_ns: rt.time() + OUTAGE_WAIT_NS, ..task };
            mutate_state(|s| s.set_game_task(Some(wait)));
            notes.push(format!("LLM {llm} unreachable: {e}"));
            return done(notes, 1, 0);
        }
        // The LLM refused this prompt (too long for its context, say): a try
        // that counts, its refusal kept as the output.
        Err(e) => {
            let refusal = format!("(the LLM refused: {e})");
            let tries = task.tries + 1;
            if tries < MAX_TRIES {
                notes.push(format!("{refusal} (try {tries} of {MAX_TRIES})"));
                mutate_state(|s| s.set_game_task(Some(GameTask { tries, last_output: Some(refusal), ..task })));
                return done(notes, 1, 0);
            }
            let GameWork::Judge(t) = &task.work else {
                notes.push(format!("no question after {MAX_TRIES} tries: {refusal}"));
                mutate_state(|s| s.set_game_task(None));
                return done(notes, 1, 1);
            };
            let report = ScoreReport {
                lease_id: t.lease_id,
                outcome: ScoreOutcome::Unscorable { raw_output: refusal },
                evidence: evidence(0, None, None),
            };
            let sent = calls::call(rt, game, &g::SUBMIT_SCORE, (report,)).await.map(|r| r.map(|_| ()));
            return finish(sent, task, rt.time(), notes, done);
        }
    };
    let sent = match verdict(&task, &generation.text, evidence) {
        Verdict::Retry => {
            let again = GameTask { tries: task.tries + 1, last_output: Some(generation.text.clone()), ..task };
            notes.push(format!("unreadable output (try {} of {MAX_TRIES}): {:?}", again.tries, generation.text));
            mutate_state(|s| s.set_game_task(Some(again)));
            return done(notes, 1, 0);
        }
        Verdict::GiveUp => {
            notes.push(format!("no question after {MAX_TRIES} tries: {:?}", generation.text));
            mutate_state(|s| s.set_game_task(None));
            return done(notes, 1, 1);
        }
        Verdict::Score(report) => calls::call(rt, game, &g::SUBMIT_SCORE, (report,)).await.map(|r| r.map(|_| ())),
        Verdict::Question(q) => calls::call(rt, game, &g::ADD_GENERATED_CHALLENGE, (q,)).await.map(|r| r.map(|_| ())),
    };
    finish(sent, task, rt.time(), notes, done)
}

/// After a report: the task is over, unless the game state was unreachable.
fn finish(
    sent: Result<Result<(), GameError>, crate::ic::CallError>,
    task: GameTask,
    now_ns: u64,
    mut notes: Vec<String>,
    done: impl FnOnce(Vec<String>, u64, u64) -> StepReport,
) -> StepReport {
    match sent {
        Ok(Ok(())) => {
            notes.push("reported".into());
            mutate_state(|s| s.set_game_task(None));
            done(notes, 1, 1)
        }
        // Refused (a lease that expired, a challenge the game no longer takes): this task is over.
        Ok(Err(e)) => {
            notes.push(format!("the game state refused the report: {e}"));
            mutate_state(|s| s.set_game_task(None));
            done(notes, 1, 1)
        }
        // Unreachable: the same task again later (a repeated report is harmless).
        Err(e) => {
            let wait = GameTask { not_before_ns: now_ns + OUTAGE_WAIT_NS, ..task };
            mutate_state(|s| s.set_game_task(Some(wait)));
            notes.push(format!("game state unreachable: {e}"));
            done(notes, 1, 0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mainer_types::game_play::Topic;

    fn judge_task() -> GameTask {
        GameTask::new(GameWork::Judge(JudgeTask {
            lease_id: 7,
            challenge_id: 1,
            mainer: Principal::anonymous(),
            question: "Why is the sea salty?".into(),
            answer: "Rivers bring salt.".into(),
            answer_sha256: String::new(),
            score_min: 1,
            score_max: 5,
            expires_at_ns: 0,
            attempt: 1,
        }))
    }

    fn evidence() -> LlmEvidence {
        LlmEvidence {
            prompt_sha256: "ab".repeat(32),
            llm_canister: Principal::anonymous(),
            model_sha256: None,
            llm_calls: 1,
            prompt_tokens: None,
            generated_tokens: None,
        }
    }

    #[test]
    fn a_judge_prompts_with_temperature_zero_and_a_fixed_seed() {
        let (prompt, settings) = judge_task().prompt();
        assert!(prompt.contains("Why is the sea salty?") && prompt.contains("Rivers bring salt."));
        assert_eq!((settings.temperature, settings.seed, settings.max_tokens), (0.0, JUDGE_SEED, JUDGE_MAX_TOKENS));
    }

    #[test]
    fn a_score_is_reported_and_unreadable_output_is_retried_then_reported_unscorable() {
        let t = judge_task();
        let Verdict::Score(r) = verdict(&t, " 4warm 4sand", evidence()) else { panic!() };
        assert_eq!((r.lease_id, r.outcome), (7, ScoreOutcome::Scored { score: 4 }));
        assert_eq!(verdict(&t, " warm sand", evidence()), Verdict::Retry);
        assert_eq!(verdict(&t, " 9", evidence()), Verdict::Retry, "out of range");
        let last = GameTask { tries: MAX_TRIES - 1, ..t };
        let Verdict::Score(r) = verdict(&last, " warm sand", evidence()) else { panic!() };
        assert_eq!(r.outcome, ScoreOutcome::Unscorable { raw_output: " warm sand".into() });
    }

    #[test]
    fn a_challenger_adds_the_question_it_read_or_gives_the_topic_up() {
        let topic = Topic {
            id: 3,
            text: "the sea".into(),
            weight: 1,
            settings: GenerationSettings::default(),
            max_submissions: None,
            scored_to_close: None,
            open_seconds: None,
            challenges: 0,
        };
        let t = GameTask::new(GameWork::Challenger(TopicTicket { topic, open_challenges: 0, max_open_challenges: 4 }));
        assert!(t.prompt().0.contains("the sea"));
        let Verdict::Question(q) = verdict(&t, "Question: Why is it blue?\n", evidence()) else { panic!() };
        assert_eq!((q.topic_id, q.question.as_str()), (3, "Why is it blue?"));
        assert_eq!(verdict(&t, "  \n", evidence()), Verdict::Retry);
        assert_eq!(verdict(&GameTask { tries: MAX_TRIES - 1, ..t }, "", evidence()), Verdict::GiveUp);
    }
}
