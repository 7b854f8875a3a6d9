//! The game: challenges and submissions.

use mainer_types::calls::game_state as game_calls;
use mainer_types::game::{Challenge, ChallengeStatus, GenerationSettings, NewChallenge, Submission, SubmissionStatus};
use mainer_types::{Page, PageRequest};

use crate::cli::{ChallengeAddArgs, SubmissionsArgs};
use crate::config::parse_principal;
use crate::ctx::Ctx;
use crate::error::CliError;
use crate::fmt::{self, Table};
use crate::outln;

fn challenge_status(s: &ChallengeStatus) -> String {
    match s {
        ChallengeStatus::Open => "Open".into(),
        ChallengeStatus::Closed { reason, .. } => format!("Closed ({reason:?})"),
    }
}

pub fn add(ctx: &mut Ctx, a: &ChallengeAddArgs) -> Result<(), CliError> {
    let deadline_ns = a.deadline_in.map(|s| ctx.client.now_ns().saturating_add(s.saturating_mul(1_000_000_000)));
    let challenge = NewChallenge {
        question: a.question.clone(),
        settings: GenerationSettings {
            max_tokens: a.max_tokens,
            temperature: a.temperature,
            seed: a.seed,
            top_k: a.top_k,
            top_p: a.top_p,
        },
        max_submissions: a.max_submissions,
        deadline_ns,
    };
    let c: Challenge = ctx.game_call(&game_calls::ADD_CHALLENGE, (challenge,))?;
    if ctx.json {
        ctx.print_json(&c);
    } else {
        outln!(ctx, "challenge {} added: \"{}\" (max {} tokens)", c.id, c.question, c.settings.max_tokens);
    }
    Ok(())
}

pub fn list(ctx: &mut Ctx) -> Result<(), CliError> {
    let all: Vec<Challenge> = ctx.all_pages(|c, page| c.game_call(&game_calls::LIST_CHALLENGES, (page,)))?;
    if ctx.json {
        ctx.print_json(&all);
        return Ok(());
    }
    let mut t = Table::new(&["id", "status", "submissions", "max tokens", "deadline", "question"]);
    for c in &all {
        let subs = match c.max_submissions {
            Some(max) => format!("{}/{max}", c.submissions),
            None => c.submissions.to_string(),
        };
        t.row(vec![
            c.id.to_string(),
            challenge_status(&c.status),
            subs,
            c.settings.max_tokens.to_string(),
            c.deadline_ns.map_or("-".into(), fmt::time),
            fmt::clip(&c.question, 60),
        ]);
    }
    t.write(ctx.out);
    Ok(())
}

pub fn close(ctx: &mut Ctx, id: u64) -> Result<(), CliError> {
    let c: Challenge = ctx.game_call(&game_calls::CLOSE_CHALLENGE, (id,))?;
    if ctx.json {
        ctx.print_json(&c);
    } else {
        outln!(ctx, "challenge {}: {}", c.id, challenge_status(&c.status));
    }
    Ok(())
}

pub fn submissions(ctx: &mut Ctx, a: &SubmissionsArgs) -> Result<(), CliError> {
    let all: Vec<Submission> = match (a.challenge, &a.mainer) {
        (Some(id), _) => ctx.all_pages(|c, page: PageRequest| {
            c.game_call::<_, Page<Submission>>(&game_calls::SUBMISSIONS_BY_CHALLENGE, (id, page))
        })?,
        (None, Some(m)) => {
            let mainer = parse_principal(m, "--mainer")?;
            ctx.all_pages(|c, page: PageRequest| {
                c.game_call::<_, Page<Submission>>(&game_calls::SUBMISSIONS_BY_MAINER, (mainer, page))
            })?
        }
        (None, None) => return Err(CliError::Usage("give --challenge ID or --mainer PRINCIPAL".into())),
    };
    if ctx.json {
        ctx.print_json(&all);
        return Ok(());
    }
    let mut t = Table::new(&["challenge", "mAIner", "role", "status", "tokens", "LLM calls", "submitted", "answer"]);
    for s in &all {
        let status = match &s.status {
            SubmissionStatus::Judged { score } => format!("Judged ({score})"),
            other => format!("{other:?}"),
        };
        t.row(vec![
            s.challenge_id.to_string(),
            s.mainer.to_text(),
            format!("{:?}", s.role),
            status,
            fmt::opt(&s.evidence.generated_tokens),
            s.evidence.llm_calls.to_string(),
            fmt::time(s.submitted_at_ns),
            fmt::clip(&s.answer, 48),
        ]);
    }
    t.write(ctx.out);
    outln!(ctx, "{} submissions", all.len());
    Ok(())
}
