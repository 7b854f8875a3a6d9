//! The factory: artefacts, mAIners, their jobs, LLMs and fleet operations.

use std::time::Duration;

use candid::{CandidType, Principal};
use mainer_types::calls::{Method, controller as controller_calls, creator as creator_calls, llm as llm_calls};
use mainer_types::controller::{ControllerSettings, HealthReport, LlmStatus, PromptFormat};
use mainer_types::creator::{
    ArtefactInfo, CreateMainerRequest, CreatorResult, FleetJobView, JobStatus, JobView, MainerView, SlotView, Step,
    UpgradeControllersRequest, UploadStatus,
};
use mainer_types::llama_cpp::StatusCodeRecordResult;
use mainer_types::{MainerRole, Page, PageRequest};

use crate::cli::{CreateArgs, FleetArgs, JobsArgs, KindArg, PromptArg, RoleArg};
use crate::config::parse_principal;
use crate::ctx::Ctx;
use crate::error::CliError;
use crate::fmt::{self, Table};
use crate::{note, outln};

pub fn role(r: RoleArg) -> MainerRole {
    match r {
        RoleArg::Own => MainerRole::Own,
        RoleArg::ShareService => MainerRole::ShareService,
        RoleArg::ShareAgent => MainerRole::ShareAgent,
        RoleArg::Challenger => MainerRole::Challenger,
        RoleArg::Judge => MainerRole::Judge,
    }
}

fn short(p: &Principal) -> String {
    let t = p.to_text();
    if t.len() > 11 { format!("{}…", &t[..11]) } else { t }
}

fn status_text(s: &JobStatus) -> String {
    match s {
        JobStatus::Running => "Running".into(),
        JobStatus::Done => "Done".into(),
        JobStatus::Failed { reason } => format!("Failed: {reason}"),
    }
}

// ----------------------------------------------------------------------
// Artefacts and uploads
// ----------------------------------------------------------------------

pub fn artefacts(ctx: &mut Ctx, kind: Option<KindArg>) -> Result<(), CliError> {
    let kind = kind.map(super::upload::kind);
    let all: Vec<ArtefactInfo> =
        ctx.all_pages(|c, page| c.creator_call(&creator_calls::LIST_ARTEFACTS, (kind, page)))?;
    if ctx.json {
        ctx.print_json(&all);
        return Ok(());
    }
    let mut t = Table::new(&["sha256", "kind", "name", "size", "uploaded"]);
    for a in &all {
        t.row(vec![
            a.sha256.clone(),
            format!("{:?}", a.kind),
            a.name.clone(),
            fmt::bytes(a.size),
            fmt::time(a.uploaded_at_ns),
        ]);
    }
    t.write(ctx.out);
    Ok(())
}

pub fn uploads(ctx: &mut Ctx) -> Result<(), CliError> {
    let all: Vec<UploadStatus> = ctx.all_pages(|c, page| c.creator_call(&creator_calls::LIST_UPLOADS, (page,)))?;
    if ctx.json {
        ctx.print_json(&all);
        return Ok(());
    }
    let mut t = Table::new(&["upload", "kind", "name", "received", "size", "started"]);
    for u in &all {
        t.row(vec![
            u.upload_id.to_string(),
            format!("{:?}", u.kind),
            u.name.clone(),
            u.received.to_string(),
            u.total_size.to_string(),
            fmt::time(u.started_at_ns),
        ]);
    }
    t.write(ctx.out);
    Ok(())
}

pub fn cancel_upload(ctx: &mut Ctx, id: u64) -> Result<(), CliError> {
    ctx.creator_call(&creator_calls::CANCEL_UPLOAD, (id,))?;
    outln!(ctx, "cancelled upload {id}");
    Ok(())
}

// ----------------------------------------------------------------------
// mAIners and jobs
// ----------------------------------------------------------------------

fn request(a: &CreateArgs) -> Result<CreateMainerRequest, CliError> {
    let role = role(a.role);
    let owner = parse_principal(&a.owner, "--owner")?;
    let share_service = a.share_service.as_deref().map(|s| parse_principal(s, "--share-service")).transpose()?;
    let cycles = |v: &Option<String>, flag: &str| {
        v.as_deref().map(|s| fmt::parse_cycles(s).map_err(|e| CliError::Usage(format!("{flag}: {e}")))).transpose()
    };
    let custom = a.prompt.is_some() || a.system.is_some() || a.pull_interval.is_some() || a.process_interval.is_some();
    let controller_settings = custom.then(|| {
        let mut s = ControllerSettings::default();
        match (a.prompt, &a.system) {
            (Some(PromptArg::Plain), _) => s.prompt_format = PromptFormat::Plain,
            (_, Some(system)) => s.prompt_format = PromptFormat::ChatMl { system: system.clone() },
            _ => {}
        }
        if let Some(p) = a.pull_interval {
            s.pull_interval_seconds = p;
        }
        if let Some(p) = a.process_interval {
            s.process_interval_seconds = p;
        }
        s
    });
    if let Some(s) = &controller_settings {
        s.validate().map_err(|e| CliError::Usage(e.to_string()))?;
    }
    Ok(CreateMainerRequest {
        role,
        owner,
        share_service,
        llm_count: a.llms.unwrap_or(if role.has_llms() { 1 } else { 0 }),
        controller_cycles: cycles(&a.controller_cycles, "--controller-cycles")?,
        llm_cycles: cycles(&a.llm_cycles, "--llm-cycles")?,
        controller_wasm: a.controller_wasm.clone(),
        llm_wasm: a.llm_wasm.clone(),
        model: a.model.clone(),
        controller_settings,
        max_tokens_update: a.max_tokens_update,
    })
}

pub fn create_mainer(ctx: &mut Ctx, a: &CreateArgs) -> Result<(), CliError> {
    let req = request(a)?;
    let job: JobView = ctx.creator_call(&creator_calls::CREATE_MAINER, (req,))?;
    if a.follow {
        if !ctx.json {
            outln!(ctx, "job {}: {}", job.id, job.kind);
        }
        return follow_job(ctx, job.id);
    }
    if ctx.json {
        ctx.print_json(&job);
    } else {
        outln!(ctx, "job {}: {} ({})", job.id, job.kind, status_text(&job.status));
        outln!(ctx, "follow it with: mainer jobs {} --follow", job.id);
    }
    Ok(())
}

fn slot_line(s: &SlotView) -> String {
    let mut line = format!("{}: {}", s.label, s.step);
    if s.step == Step::UploadModel && s.bytes_total > 0 {
        let pct = s.bytes_copied as f64 * 100.0 / s.bytes_total as f64;
        line.push_str(&format!(" {pct:.0}% of {}", fmt::bytes(s.bytes_total)));
    }
    if let Some(c) = s.canister {
        line.push_str(&format!(" ({c})"));
    }
    line
}

pub fn jobs(ctx: &mut Ctx, a: &JobsArgs) -> Result<(), CliError> {
    match (a.id, a.follow) {
        (Some(id), true) => follow_job(ctx, id),
        (Some(id), false) => {
            let job: JobView = ctx.creator_call(&creator_calls::JOB, (id,))?;
            if ctx.json {
                ctx.print_json(&job);
            } else {
                print_job(ctx, &job);
            }
            Ok(())
        }
        (None, _) => {
            let page: Page<JobView> =
                ctx.creator_call(&creator_calls::LIST_JOBS, (PageRequest { offset: 0, limit: a.limit },))?;
            if ctx.json {
                ctx.print_json(&page.items);
                return Ok(());
            }
            let mut t = Table::new(&["job", "kind", "status", "steps", "updated"]);
            for j in &page.items {
                let steps: Vec<String> = j.slots.iter().map(|s| format!("{} {}", s.label, s.step)).collect();
                t.row(vec![
                    j.id.to_string(),
                    j.kind.to_string(),
                    fmt::clip(&status_text(&j.status), 40),
                    steps.join(", "),
                    fmt::time(j.updated_at_ns),
                ]);
            }
            t.write(ctx.out);
            if page.total > page.items.len() as u64 {
                outln!(ctx, "({} of {} jobs; --limit N for more)", page.items.len(), page.total);
            }
            Ok(())
        }
    }
}

fn print_job(ctx: &mut Ctx, j: &JobView) {
    outln!(ctx, "job {}: {} — {}", j.id, j.kind, status_text(&j.status));
    outln!(
        ctx,
        "created {}, updated {}, attempts of the current step: {}",
        fmt::time(j.created_at_ns),
        fmt::time(j.updated_at_ns),
        j.attempts
    );
    let mut t = Table::new(&["slot", "step", "canister", "model copied"]);
    for s in &j.slots {
        let copied = if s.bytes_total > 0 {
            format!("{} / {}", fmt::bytes(s.bytes_copied), fmt::bytes(s.bytes_total))
        } else {
            "-".into()
        };
        t.row(vec![s.label.clone(), s.step.to_string(), fmt::opt(&s.canister), copied]);
    }
    t.write(ctx.out);
    for e in &j.errors {
        outln!(ctx, "error: {e}");
    }
}

/// Polls until `done` says the fetched value is finished; gives up after `--follow-timeout`.
fn poll<T>(
    ctx: &mut Ctx,
    what: &str,
    mut fetch: impl FnMut(&mut Ctx) -> Result<T, CliError>,
    mut show: impl FnMut(&mut Ctx, &T) -> bool,
) -> Result<T, CliError> {
    let mut waited = Duration::ZERO;
    loop {
        let value = fetch(ctx)?;
        if show(ctx, &value) {
            return Ok(value);
        }
        if ctx.follow_timeout.is_some_and(|limit| waited >= limit) {
            return Err(CliError::Transport(format!(
                "{what} is still running after {}s; follow it again later",
                waited.as_secs()
            )));
        }
        ctx.client.sleep(ctx.poll);
        waited += ctx.poll;
    }
}

/// Follows job `id` to its end, printing each slot's step as it changes.
pub fn follow_job(ctx: &mut Ctx, id: u64) -> Result<(), CliError> {
    let mut last: Vec<String> = Vec::new();
    let mut errors_seen = 0;
    let job = poll(
        ctx,
        &format!("job {id}"),
        |c| c.creator_call::<_, JobView>(&creator_calls::JOB, (id,)),
        |c, j| {
            if !c.json {
                for (i, s) in j.slots.iter().enumerate() {
                    let line = slot_line(s);
                    if last.get(i) != Some(&line) {
                        outln!(c, "job {id}: {line}");
                    }
                }
                for e in j.errors.iter().skip(errors_seen) {
                    outln!(c, "job {id}: error (retried): {e}");
                }
            }
            last = j.slots.iter().map(slot_line).collect();
            errors_seen = j.errors.len();
            j.status != JobStatus::Running
        },
    )?;
    if ctx.json {
        ctx.print_json(&job);
    }
    match &job.status {
        JobStatus::Failed { reason } => Err(CliError::Canister(format!(
            "job {id} failed: {reason}\nfix the cause, then: mainer retry-job {id} --follow"
        ))),
        _ => {
            if !ctx.json {
                let controller = job.slots.first().and_then(|s| s.canister).map_or("-".into(), |c| c.to_text());
                let llms: Vec<String> =
                    job.slots.iter().skip(1).filter_map(|s| s.canister).map(|c| c.to_text()).collect();
                outln!(
                    ctx,
                    "job {id} done: mAIner {controller}{}",
                    if llms.is_empty() { String::new() } else { format!(", LLMs {}", llms.join(", ")) }
                );
            }
            Ok(())
        }
    }
}

pub fn retry_job(ctx: &mut Ctx, id: u64, follow: bool) -> Result<(), CliError> {
    let job: JobView = ctx.creator_call(&creator_calls::RETRY_JOB, (id,))?;
    if follow {
        return follow_job(ctx, id);
    }
    if ctx.json {
        ctx.print_json(&job);
    } else {
        outln!(ctx, "job {id} resumed ({})", status_text(&job.status));
    }
    Ok(())
}

#[derive(CandidType)]
struct MainerRow {
    mainer: MainerView,
    health: Option<HealthReport>,
    health_error: Option<String>,
}

pub fn mainers(ctx: &mut Ctx) -> Result<(), CliError> {
    let all: Vec<MainerView> = ctx.all_pages(|c, page| c.creator_call(&creator_calls::LIST_MAINERS, (page,)))?;
    let mut rows = Vec::new();
    for m in all {
        let (health, health_error) = match ctx.call(m.controller, &controller_calls::HEALTH, ()) {
            Ok(h) => (Some(h), None),
            Err(e) => (None, Some(e.to_string())),
        };
        rows.push(MainerRow { mainer: m, health, health_error });
    }
    if ctx.json {
        ctx.print_json(&rows);
        return Ok(());
    }
    let mut t =
        Table::new(&["controller", "role", "owner", "LLMs", "job", "made", "health", "queued", "in flight", "cycles"]);
    for r in &rows {
        let m = &r.mainer;
        let role = match m.share_service {
            Some(s) => format!("{:?} → {}", m.role, short(&s)),
            None => format!("{:?}", m.role),
        };
        let (health, queued, in_flight, cycles) = match &r.health {
            Some(h) => {
                let state = if h.paused {
                    "paused".to_string()
                } else if h.ready && h.role.has_llms() {
                    format!("ready ({}/{} LLMs healthy)", h.healthy_llms, h.llms)
                } else if h.ready {
                    "ready".to_string()
                } else {
                    format!("not ready: {}", h.problems.join("; "))
                };
                (state, h.queued.to_string(), h.in_flight.to_string(), fmt::cycles(h.cycles))
            }
            None => ("unreachable".into(), "-".into(), "-".into(), "-".into()),
        };
        t.row(vec![
            m.controller.to_text(),
            role,
            short(&m.owner),
            m.llms.len().to_string(),
            m.job.to_string(),
            if m.ready { "yes".into() } else { "being made".into() },
            health,
            queued,
            in_flight,
            cycles,
        ]);
    }
    t.write(ctx.out);
    for r in rows.iter().filter(|r| r.health_error.is_some()) {
        note!(ctx, "{}: health: {}", r.mainer.controller, r.health_error.as_deref().unwrap_or(""));
    }
    Ok(())
}

#[derive(CandidType)]
struct LlmRow {
    llm: Principal,
    mainer: Principal,
    role: MainerRole,
    /// The controller's view of it (None when the controller did not answer).
    status: Option<LlmStatus>,
    /// The LLM's own `health`: true when it answered Ok.
    health: Option<bool>,
    cycles: Option<candid::Nat>,
}

pub fn llms(ctx: &mut Ctx) -> Result<(), CliError> {
    let all: Vec<MainerView> = ctx.all_pages(|c, page| c.creator_call(&creator_calls::LIST_MAINERS, (page,)))?;
    let mut rows = Vec::new();
    for m in all.iter().filter(|m| !m.llms.is_empty()) {
        let statuses: Vec<LlmStatus> = match ctx.controller_call(m.controller, &controller_calls::LIST_LLMS, ()) {
            Ok(s) => s,
            Err(e) => {
                note!(ctx, "{}: list_llms: {e}", m.controller);
                Vec::new()
            }
        };
        for llm in &m.llms {
            let health =
                ctx.call(*llm, &llm_calls::HEALTH, ()).ok().map(|r| matches!(r, StatusCodeRecordResult::Ok(_)));
            let cycles = ctx.client.canister_cycles(*llm).ok().map(candid::Nat::from);
            let status = statuses.iter().find(|s| s.canister == *llm).cloned();
            rows.push(LlmRow { llm: *llm, mainer: m.controller, role: m.role, status, health, cycles });
        }
    }
    if ctx.json {
        ctx.print_json(&rows);
        return Ok(());
    }
    let mut t =
        Table::new(&["LLM", "mAIner", "role", "in controller", "answers", "failures", "in flight", "health", "cycles"]);
    for r in &rows {
        let (state, answers, failures, in_flight) = match &r.status {
            Some(s) => {
                let state = if s.draining {
                    "draining"
                } else if s.healthy {
                    "healthy"
                } else {
                    "resting"
                };
                (state.to_string(), s.answers.to_string(), s.failures.to_string(), fmt::opt(&s.in_flight))
            }
            None => ("not listed".into(), "-".into(), "-".into(), "-".into()),
        };
        let health = match r.health {
            Some(true) => "ok",
            Some(false) => "not ok",
            None => "unreachable",
        };
        let cycles = r.cycles.as_ref().map_or("-".into(), |c| fmt::cycles(u128::try_from(&c.0).unwrap_or(u128::MAX)));
        t.row(vec![
            r.llm.to_text(),
            short(&r.mainer),
            format!("{:?}", r.role),
            state,
            answers,
            failures,
            in_flight,
            health.into(),
            cycles,
        ]);
    }
    t.write(ctx.out);
    Ok(())
}

// ----------------------------------------------------------------------
// Fleet operations
// ----------------------------------------------------------------------

fn canisters(n: usize) -> String {
    if n == 1 { "1 canister".into() } else { format!("{n} canisters") }
}

fn upgrade_request(a: &FleetArgs) -> Result<UpgradeControllersRequest, CliError> {
    let targets =
        a.targets.iter().map(|t| parse_principal(t, "--targets")).collect::<Result<Vec<Principal>, CliError>>()?;
    Ok(UpgradeControllersRequest {
        wasm_sha256: a.wasm.clone(),
        targets: (!targets.is_empty()).then_some(targets),
        batch_size: a.batch,
    })
}

/// `upgrade_controllers` or `upgrade_llms`, then follows the fleet job.
pub fn fleet_upgrade(
    ctx: &mut Ctx,
    method: &Method<(UpgradeControllersRequest,), CreatorResult<FleetJobView>>,
    a: &FleetArgs,
) -> Result<(), CliError> {
    let req = upgrade_request(a)?;
    let job: FleetJobView = ctx.creator_call(method, (req,))?;
    fleet_started(ctx, job, !a.no_follow)
}

pub fn remove_llm(ctx: &mut Ctx, llm: &str, follow: bool) -> Result<(), CliError> {
    let llm = parse_principal(llm, "LLM")?;
    let job: FleetJobView = ctx.creator_call(&creator_calls::REMOVE_LLM, (llm,))?;
    fleet_started(ctx, job, follow)
}

fn fleet_started(ctx: &mut Ctx, job: FleetJobView, follow: bool) -> Result<(), CliError> {
    if follow {
        if !ctx.json {
            let n = canisters(job.targets.len());
            outln!(ctx, "fleet job {}: {} of {n}, {} at a time", job.id, job.kind, job.batch_size);
        }
        return follow_fleet(ctx, job.id);
    }
    if ctx.json {
        ctx.print_json(&job);
    } else {
        let n = canisters(job.targets.len());
        outln!(ctx, "fleet job {}: {} of {n} ({})", job.id, job.kind, status_text(&job.status));
        outln!(ctx, "follow it with: mainer fleet-job {} --follow", job.id);
    }
    Ok(())
}

pub fn fleet_job(ctx: &mut Ctx, id: u64, follow: bool) -> Result<(), CliError> {
    if follow {
        return follow_fleet(ctx, id);
    }
    let job: FleetJobView = ctx.creator_call(&creator_calls::FLEET_JOB, (id,))?;
    if ctx.json {
        ctx.print_json(&job);
        return Ok(());
    }
    outln!(ctx, "fleet job {}: {} — {}", job.id, job.kind, status_text(&job.status));
    if !job.wasm_sha256.is_empty() {
        outln!(ctx, "wasm {}, {} at a time", job.wasm_sha256, job.batch_size);
    }
    let mut t = Table::new(&["canister", "step", "error"]);
    for tv in &job.targets {
        t.row(vec![tv.canister.to_text(), tv.step.to_string(), fmt::opt(&tv.error)]);
    }
    t.write(ctx.out);
    Ok(())
}

fn follow_fleet(ctx: &mut Ctx, id: u64) -> Result<(), CliError> {
    let mut last: Vec<String> = Vec::new();
    let job = poll(
        ctx,
        &format!("fleet job {id}"),
        |c| c.creator_call::<_, FleetJobView>(&creator_calls::FLEET_JOB, (id,)),
        |c, j| {
            let lines: Vec<String> = j
                .targets
                .iter()
                .map(|t| match &t.error {
                    Some(e) => format!("{}: {} (error: {e})", t.canister, t.step),
                    None => format!("{}: {}", t.canister, t.step),
                })
                .collect();
            if !c.json {
                for (i, line) in lines.iter().enumerate() {
                    if last.get(i) != Some(line) {
                        outln!(c, "fleet job {id}: {line}");
                    }
                }
            }
            last = lines;
            j.status != JobStatus::Running
        },
    )?;
    if ctx.json {
        ctx.print_json(&job);
    }
    match &job.status {
        JobStatus::Failed { reason } => Err(CliError::Canister(format!("fleet job {id} failed: {reason}"))),
        _ => {
            if !ctx.json {
                outln!(ctx, "fleet job {id} done: {}", canisters(job.targets.len()));
            }
            Ok(())
        }
    }
}
