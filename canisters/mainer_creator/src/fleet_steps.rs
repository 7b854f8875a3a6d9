//! Runs fleet jobs (`fleet.rs`): one step of every target in a job's
//! window per timer round, through the runtime seam; each step's outcome is
//! written back to the job record.

use candid::Principal;
use mainer_types::calls::{controller as controller_calls, llm as llm_calls};
use mainer_types::controller::{ControllerArgs, ControllerError, ControllerUpgrade};
use mainer_types::creator::FleetStep;
use mainer_types::llama_cpp::{InputRecord, MaxTokensRecord, OutputRecordResult, StatusCodeRecordResult};

use crate::fleet::{FleetJob, FleetKind, FleetTarget};
use crate::ic::{InstallMode, Runtime};
use crate::job::MODEL_PATH;
use crate::management::{self as mgmt, StepError, call, fatal, retry};
use crate::state::{mutate_state, read_state};

const MAX_TARGET_ATTEMPTS: u32 = 5;
/// Restoring a target after a failure is retried for longer (about ten
/// minutes of job rounds): an LLM left drained or stopped is lost to work.
const MAX_RESTORE_ATTEMPTS: u32 = 300;

/// Advances every target in the job's window by one step, concurrently.
pub async fn advance<RT: Runtime + Clone + 'static>(rt: &RT, id: u64) {
    let Some(job) = read_state(|s| s.fleet_job(id)) else { return };
    let steps = job.window().into_iter().map(|i| {
        let target = job.targets[i].clone();
        let job = &job;
        async move { (i, run(rt, &target, job).await) }
    });
    let results = futures::future::join_all(steps).await;
    let Some(mut job) = read_state(|s| s.fleet_job(id)) else { return };
    for (i, result) in results {
        let t = &mut job.targets[i];
        match result {
            Ok(true) => {
                canister_common::info!("fleet job {id}: {} {:?} done", t.canister, t.step);
                t.step = if t.step == FleetStep::Restore { FleetStep::Failed } else { job.kind.after(t.step) };
                t.attempts = 0;
                if t.step == FleetStep::Done && job.kind == FleetKind::RemoveLlm {
                    forget_llm(t.canister);
                }
            }
            // Not yet (waiting for the LLM to be idle): try again next round.
            Ok(false) => {}
            Err(e) => {
                t.attempts += 1;
                t.error = Some(format!("{:?}: {}", t.step, e.message));
                canister_common::warn!(
                    "fleet job {id}: {} {:?} attempt {}: {}",
                    t.canister,
                    t.step,
                    t.attempts,
                    e.message
                );
                if t.step == FleetStep::Restore {
                    if t.attempts >= MAX_RESTORE_ATTEMPTS {
                        canister_common::error!("fleet job {id}: {} could not be restored: {}", t.canister, e.message);
                        t.step = FleetStep::Failed;
                    }
                } else if e.fatal || t.attempts >= MAX_TARGET_ATTEMPTS {
                    // Never leave a canister stopped or drained behind: restore
                    // it (a step of its own, durable and retried) before giving up.
                    t.step = if job.kind.restores_after(t.step) { FleetStep::Restore } else { FleetStep::Failed };
                    t.attempts = 0;
                }
            }
        }
    }
    job.updated_at_ns = rt.time();
    job.settle();
    mutate_state(|s| s.put_fleet_job(job));
}

/// Drains `llm` in its controller, or puts it back to work (an LLM the
/// controller no longer has needs neither).
async fn set_draining<RT: Runtime>(rt: &RT, llm: Principal, draining: bool) -> Result<(), StepError> {
    let controller = controller_of(llm)?;
    match call(rt, controller, &controller_calls::SET_LLM_DRAINING, (llm, draining)).await? {
        Ok(_) => Ok(()),
        Err(ControllerError::NotFound(_)) if !draining => Ok(()),
        Err(e) => Err(retry(format!("set_llm_draining: {e}"))),
    }
}

/// A deleted LLM leaves its mAIner's job record (and the index).
fn forget_llm(llm: Principal) {
    mutate_state(|s| {
        if let Some(job) = s.job_of_llm(&llm) {
            s.update_job(job.id, |j| j.llms.retain(|slot| slot.canister != Some(llm)));
        }
    });
}

/// Runs the target's current step: Ok(true) when it completed, Ok(false)
/// when it must wait for the next round.
async fn run<RT: Runtime>(rt: &RT, target: &FleetTarget, job: &FleetJob) -> Result<bool, StepError> {
    let id = target.canister;
    match target.step {
        FleetStep::Drain | FleetStep::Undrain => set_draining(rt, id, target.step == FleetStep::Drain).await?,
        FleetStep::Restore => {
            // Starting a running canister changes nothing.
            rt.start_canister(id).await.map_err(|e| mgmt::failed("start", e))?;
            if job.kind.drains() {
                set_draining(rt, id, false).await?;
            }
        }
        FleetStep::WaitIdle => {
            let controller = controller_of(id)?;
            let llms = call(rt, controller, &controller_calls::LIST_LLMS, ())
                .await?
                .map_err(|e| retry(format!("list_llms: {e}")))?;
            if llms.iter().any(|l| l.canister == id && l.in_flight.is_some()) {
                return Ok(false);
            }
        }
        FleetStep::Unregister => {
            let controller = controller_of(id)?;
            match call(rt, controller, &controller_calls::REMOVE_LLM, (id,)).await? {
                Ok(()) | Err(ControllerError::NotFound(_)) => {}
                Err(e) => return Err(retry(format!("remove_llm: {e}"))),
            }
        }
        FleetStep::ReturnCycles => {
            // Our LLM canister (and the test fixture) hand their cycles back;
            // a wasm without `return_cycles` (the llama.cpp canister) cannot,
            // and its cycles go with it.
            let method = llm_calls::RETURN_CYCLES;
            let arg = method.encode((rt.canister_self(),)).expect("a principal encodes");
            match rt.call_raw(id, method.name, arg).await {
                Ok(reply) => match method.decode(&reply) {
                    Ok(Ok(_)) | Err(_) => {}
                    Ok(Err(e)) => return Err(retry(format!("return_cycles: {e}"))),
                },
                Err(e) if e.message.contains("has no update method") => {}
                Err(e) => return Err(mgmt::failed("return_cycles", e)),
            }
        }
        FleetStep::Stop => rt.stop_canister(id).await.map_err(|e| mgmt::failed("stop", e))?,
        FleetStep::Upgrade => return upgrade(rt, id, job).await,
        FleetStep::Start => rt.start_canister(id).await.map_err(|e| mgmt::failed("start", e))?,
        FleetStep::Reload => {
            match call(rt, id, &llm_calls::LOAD_MODEL, (InputRecord::new(["--model", MODEL_PATH]),)).await? {
                OutputRecordResult::Ok(_) => {}
                OutputRecordResult::Err(r) => {
                    return Err(retry(format!("load_model: {} (status {})", r.error, r.status_code)));
                }
            }
        }
        FleetStep::Configure => {
            let n = read_state(|s| {
                s.job_of_llm(&id).map(|j| j.plan.max_tokens_update).unwrap_or(s.config().settings.max_tokens_update)
            });
            let limits = MaxTokensRecord { max_tokens_update: n, max_tokens_query: n };
            if let StatusCodeRecordResult::Err(e) = call(rt, id, &llm_calls::SET_MAX_TOKENS, (limits,)).await? {
                return Err(retry(format!("set_max_tokens: {e}")));
            }
        }
        FleetStep::Check => match job.kind {
            FleetKind::UpgradeControllers => {
                let report = call(rt, id, &controller_calls::HEALTH, ()).await?;
                if !report.timers_armed {
                    return Err(retry("the upgraded controller has no timers armed"));
                }
            }
            _ => {
                if let StatusCodeRecordResult::Err(e) = call(rt, id, &llm_calls::READY, ()).await? {
                    return Err(retry(format!("the LLM is not ready: {e}")));
                }
            }
        },
        FleetStep::Delete => rt.delete_canister(id).await.map_err(|e| mgmt::failed("delete", e))?,
        FleetStep::Done | FleetStep::Failed => {}
    }
    Ok(true)
}

/// Upgrades the target unless it already runs the wasm. The module hash is
/// asked first (the store keys artefacts by the same SHA-256), so a target
/// that runs it costs no read of the wasm. A large wasm goes through the
/// creator's own chunk store, uploaded once for all targets.
async fn upgrade<RT: Runtime>(rt: &RT, id: Principal, job: &FleetJob) -> Result<bool, StepError> {
    let want = hex::decode(&job.wasm_sha256).map_err(|_| fatal("the wasm's SHA-256 is not hex"))?;
    if mgmt::module_hash(rt, id).await?.as_deref() == Some(want.as_slice()) {
        return Ok(true);
    }
    let arg = match job.kind {
        FleetKind::UpgradeControllers => {
            // Reported first, so its submissions are accepted once it runs.
            crate::steps::report_module(rt, &job.wasm_sha256, Some(id)).await?;
            candid::encode_one(Some(ControllerArgs::Upgrade(ControllerUpgrade::default()))).expect("encodes")
        }
        _ => candid::encode_args(()).expect("encodes"),
    };
    mgmt::install_stored(rt, id, &job.wasm_sha256, arg, InstallMode::Upgrade).await
}

fn controller_of(llm: Principal) -> Result<Principal, StepError> {
    read_state(|s| s.job_of_llm(&llm).and_then(|j| j.controller.canister))
        .ok_or_else(|| fatal("no mAIner of this creator uses this LLM"))
}
