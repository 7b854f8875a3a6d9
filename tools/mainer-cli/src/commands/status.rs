//! The operator's overview: `status` (the whole fleet on one screen),
//! `logs` and `metrics` of one canister (its `/logs` and `/metrics`, read
//! with the `http_request` query the HTTP gateway uses), and fleet-wide
//! `pause` / `resume`.

use candid::{CandidType, Principal};
use mainer_types::MainerRole;
use mainer_types::calls::{controller as controller_calls, creator as creator_calls, game_state as game_calls};
use mainer_types::controller::HealthReport;
use mainer_types::creator::{JobStatus, JobView, MainerView};
use mainer_types::game::GameCounts;
use mainer_types::http::{HttpRequest, HttpResponse};

use crate::cli::{FleetSwitch, RoleArg};
use crate::ctx::Ctx;
use crate::error::CliError;
use crate::fmt::{self, Table};
use crate::{note, outln};

/// One line of counts per subject, as `status` prints and `--json` gives it.
#[derive(CandidType, Default, Debug, PartialEq, Eq)]
pub struct FleetStatus {
    pub mainers: u64,
    pub own: u64,
    pub share_services: u64,
    pub share_agents: u64,
    /// The game's own roles (Challenger, Judge).
    pub challengers: u64,
    pub judges: u64,
    pub ready: u64,
    pub paused: u64,
    pub low_cycles: u64,
    pub unreachable: u64,
    pub queued: u64,
    pub in_flight: u64,
    /// Answers not yet submitted or delivered.
    pub answered: u64,
    pub llms: u64,
    pub healthy_llms: u64,
    /// Cycles held by the controllers.
    pub controller_cycles: u128,
    /// The median of the mAIners' cycles per answer (controller and LLMs), where known.
    pub median_cycles_per_answer: Option<u128>,
    pub jobs_running: u64,
    pub jobs_done: u64,
    pub jobs_failed: u64,
    pub game: Option<GameCounts>,
    /// One line per mAIner that is not ready or not reachable.
    pub problems: Vec<String>,
}

/// Folds what was read into the summary (pure: unit-tested).
pub fn summarize(
    mainers: &[(MainerView, Result<HealthReport, String>)],
    jobs: &[JobView],
    game: Option<GameCounts>,
) -> FleetStatus {
    let mut s = FleetStatus { game, ..FleetStatus::default() };
    let mut per_answer = Vec::new();
    for (m, health) in mainers {
        s.mainers += 1;
        match m.role {
            MainerRole::Own => s.own += 1,
            MainerRole::ShareService => s.share_services += 1,
            MainerRole::ShareAgent => s.share_agents += 1,
            MainerRole::Challenger => s.challengers += 1,
            MainerRole::Judge => s.judges += 1,
        }
        if let Some(c) = m.cycles.as_ref().and_then(|c| c.per_answer) {
            per_answer.push(c);
        }
        match health {
            Ok(h) => {
                s.ready += h.ready as u64;
                s.paused += h.paused as u64;
                s.low_cycles += h.low_cycles as u64;
                s.queued += h.queued;
                s.in_flight += h.in_flight;
                s.answered += h.answered;
                s.llms += h.llms;
                s.healthy_llms += h.healthy_llms;
                s.controller_cycles = s.controller_cycles.saturating_add(h.cycles);
                if !h.ready {
                    s.problems.push(format!("{} ({:?}): {}", m.controller, m.role, h.problems.join("; ")));
                }
            }
            Err(e) => {
                s.unreachable += 1;
                s.problems.push(format!("{} ({:?}): unreachable: {e}", m.controller, m.role));
            }
        }
    }
    per_answer.sort_unstable();
    s.median_cycles_per_answer = per_answer.get(per_answer.len() / 2).copied();
    for j in jobs {
        match j.status {
            JobStatus::Running => s.jobs_running += 1,
            JobStatus::Done => s.jobs_done += 1,
            JobStatus::Failed { .. } => s.jobs_failed += 1,
        }
    }
    s
}

pub fn status(ctx: &mut Ctx) -> Result<(), CliError> {
    let all: Vec<MainerView> = ctx.all_pages(|c, page| c.creator_call(&creator_calls::LIST_MAINERS, (page,)))?;
    let jobs: Vec<JobView> = ctx.all_pages(|c, page| c.creator_call(&creator_calls::LIST_JOBS, (page,)))?;
    let mut read = Vec::with_capacity(all.len());
    for m in all {
        let health = ctx.call(m.controller, &controller_calls::HEALTH, ()).map_err(|e| e.to_string());
        read.push((m, health));
    }
    let game = match ctx.game_state() {
        Ok(game) => ctx.call(game, &game_calls::COUNTS, ()).ok(),
        Err(_) => None,
    };
    let s = summarize(&read, &jobs, game);
    if ctx.json {
        ctx.print_json(&s);
        return Ok(());
    }
    let mut t = Table::new(&["fleet", ""]);
    let row = |t: &mut Table, k: &str, v: String| t.row(vec![k.to_string(), v]);
    row(
        &mut t,
        "mAIners",
        format!(
            "{} (Own {}, ShareService {}, ShareAgent {}, Challenger {}, Judge {})",
            s.mainers, s.own, s.share_services, s.share_agents, s.challengers, s.judges
        ),
    );
    row(
        &mut t,
        "state",
        format!("ready {}, paused {}, low cycles {}, unreachable {}", s.ready, s.paused, s.low_cycles, s.unreachable),
    );
    row(&mut t, "work", format!("queued {}, in flight {}, answered to hand on {}", s.queued, s.in_flight, s.answered));
    row(&mut t, "LLMs", format!("{} ({} healthy)", s.llms, s.healthy_llms));
    let per_answer = s.median_cycles_per_answer.map_or("-".into(), fmt::cycles);
    row(
        &mut t,
        "cycles",
        format!("{} in controllers; {per_answer} per answer (median)", fmt::cycles(s.controller_cycles)),
    );
    row(&mut t, "jobs", format!("running {}, done {}, failed {}", s.jobs_running, s.jobs_done, s.jobs_failed));
    if let Some(g) = &s.game {
        row(
            &mut t,
            "game",
            format!(
                "{} challenges ({} open), {} submissions, {} mAIners registered",
                g.challenges, g.open_challenges, g.submissions, g.mainers
            ),
        );
    }
    t.write(&mut *ctx.out);
    if !s.problems.is_empty() {
        outln!(ctx, "problems:");
        for p in &s.problems {
            outln!(ctx, "  {p}");
        }
    }
    Ok(())
}

/// GET `path` of `canister` through its `http_request` query.
fn http_get(ctx: &mut Ctx, canister: &str, path: &str) -> Result<String, CliError> {
    let canister = Principal::from_text(canister).map_err(|e| CliError::Usage(format!("{canister}: {e}")))?;
    let req = HttpRequest { method: "GET".into(), url: path.into(), headers: vec![], body: Vec::new().into() };
    let arg = candid::encode_one(&req).expect("encodes");
    let bytes = ctx
        .client
        .query(canister, "http_request", arg)
        .map_err(|e| CliError::from_client(&e, canister, "http_request", ctx.caller()))?;
    let resp: HttpResponse = candid::decode_one(&bytes).map_err(|e| {
        CliError::Canister(format!("{canister}.http_request does not answer as the gateway expects: {e}"))
    })?;
    if resp.status_code != 200 {
        return Err(CliError::Canister(format!("{canister} {path}: HTTP {}", resp.status_code)));
    }
    String::from_utf8(resp.body.into_vec()).map_err(|_| CliError::Canister(format!("{canister} {path}: not UTF-8")))
}

/// A canister's `/logs` (JSON), optionally only some priorities and the latest `limit`.
pub fn logs(ctx: &mut Ctx, canister: &str, priority: Option<&str>, limit: Option<u32>) -> Result<(), CliError> {
    let mut query = Vec::new();
    if let Some(p) = priority {
        query.push(format!("priority={p}"));
    }
    if let Some(n) = limit {
        query.push(format!("limit={n}"));
    }
    let path = if query.is_empty() { "/logs".to_string() } else { format!("/logs?{}", query.join("&")) };
    let body = http_get(ctx, canister, &path)?;
    outln!(ctx, "{}", body.trim_end());
    Ok(())
}

/// A canister's `/metrics` (Prometheus text).
pub fn metrics(ctx: &mut Ctx, canister: &str) -> Result<(), CliError> {
    let body = http_get(ctx, canister, "/metrics")?;
    outln!(ctx, "{}", body.trim_end());
    Ok(())
}

/// Pauses or resumes every mAIner made by the creator (or those of one
/// role); a mAIner that refuses is reported and the others go on.
pub fn switch(ctx: &mut Ctx, which: FleetSwitch, role: Option<RoleArg>) -> Result<(), CliError> {
    let all: Vec<MainerView> = ctx.all_pages(|c, page| c.creator_call(&creator_calls::LIST_MAINERS, (page,)))?;
    let method = match which {
        FleetSwitch::Pause => &controller_calls::PAUSE,
        FleetSwitch::Resume => &controller_calls::RESUME,
    };
    let (mut done, mut failed) = (0u64, 0u64);
    for m in all.iter().filter(|m| m.ready && role.is_none_or(|r| crate::commands::factory::role(r) == m.role)) {
        match ctx.controller_call(m.controller, method, ()) {
            Ok(()) => done += 1,
            Err(e) => {
                failed += 1;
                note!(ctx, "{}: {e}", m.controller);
            }
        }
    }
    outln!(ctx, "{}: {done} mAIners, {failed} refused or unreachable", method.name);
    if failed > 0 { Err(CliError::Canister(format!("{failed} mAIners did not {}", method.name))) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mainer_types::game::MainerCyclesReport;

    fn view(n: u8, role: MainerRole, per_answer: Option<u128>) -> MainerView {
        MainerView {
            controller: Principal::from_slice(&[n]),
            role,
            owner: Principal::anonymous(),
            share_service: None,
            llms: vec![],
            job: n as u64,
            ready: true,
            cycles: per_answer.map(|c| MainerCyclesReport {
                spent: c,
                per_answer: Some(c),
                per_day: None,
                reported_at_ns: 0,
            }),
        }
    }

    fn health(ready: bool, queued: u64) -> HealthReport {
        HealthReport {
            role: MainerRole::Own,
            paused: !ready,
            ready,
            problems: if ready { vec![] } else { vec!["paused".into()] },
            queued,
            in_flight: 1,
            answered: 2,
            llms: 2,
            healthy_llms: 1,
            cycles: 1_000,
            timers_armed: true,
            last_handed_on_ns: None,
            waiting_since_ns: None,
            low_cycles: false,
            cycles_per_answer: None,
        }
    }

    #[test]
    fn the_summary_counts_roles_states_work_and_the_median_cost() {
        let mainers = vec![
            (view(1, MainerRole::Own, Some(30)), Ok(health(true, 3))),
            (view(2, MainerRole::ShareService, Some(10)), Ok(health(false, 0))),
            (view(3, MainerRole::ShareAgent, Some(20)), Err("stopped".to_string())),
        ];
        let s = summarize(&mainers, &[], None);
        assert_eq!((s.mainers, s.own, s.share_services, s.share_agents), (3, 1, 1, 1));
        assert_eq!((s.ready, s.paused, s.unreachable), (1, 1, 1));
        assert_eq!((s.queued, s.in_flight, s.llms, s.healthy_llms, s.controller_cycles), (3, 2, 4, 2, 2_000));
        assert_eq!(s.median_cycles_per_answer, Some(20));
        assert_eq!(s.problems.len(), 2, "{:?}", s.problems);
        assert!(s.problems[1].contains("unreachable: stopped"));
    }
}
