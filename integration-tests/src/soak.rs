//! The fault soak: the whole factory (an Own mAIner with two LLMs, a
//! ShareService with two LLMs and two ShareAgents, all made by the creator)
//! answers challenges while faults drawn from a seed hit it: LLM traps and
//! errors, LLMs, the game state and the ShareService stopped and started,
//! controllers and the creator upgraded with and without a stop, fleet
//! upgrades, the ShareService paused. Then the faults stop and the world runs
//! until it is idle, and the soak checks what users rely on:
//! - every challenge got at most one submission from each answering mAIner,
//!   and exactly one unless that mAIner's work item failed for good (an
//!   answer its LLM refused: the only failure that may spend attempts);
//! - no work is left queued or in flight anywhere;
//! - every canister the creator made is known to one of its jobs.
//!
//! Used by the `soak` integration test (one short seed) and by
//! `scripts/soak.sh` (many seeds, a line each).

use std::collections::BTreeMap;

use candid::{Encode, Principal};
use mainer_types::MainerRole;
use mainer_types::calls::{controller as controller_calls, creator as creator_calls};
use mainer_types::controller::{ControllerArgs, ControllerUpgrade, HealthReport, WorkItem, WorkState};
use mainer_types::creator::{ArtefactKind, CreatorArgs, FleetJobView, JobStatus, JobView, UpgradeControllersRequest};
use mainer_types::{Page, PageRequest};

use crate::deploy::{Faults, add_challenge, admin, owner, run_for};
use crate::factory::{
    controller_of, create_mainer, deploy_factory, mainer_request, run_until_job_done, submissions_by_mainer,
    upload_artefact,
};
use crate::{TestEnv, TestEnvExt, wasm};

/// A small deterministic generator (splitmix64): the same seed, the same soak.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

#[derive(Clone, Debug)]
pub struct SoakConfig {
    pub seed: u64,
    /// Rounds with a fault each (a round lasts 5 to 40 simulated seconds).
    pub fault_rounds: u32,
    /// Challenges added during the faulty part, one every few rounds.
    pub challenges: u32,
    /// Simulated seconds allowed to become idle after the faults.
    pub quiet_seconds: u64,
}

impl SoakConfig {
    pub fn short(seed: u64) -> SoakConfig {
        SoakConfig { seed, fault_rounds: 12, challenges: 3, quiet_seconds: 1_500 }
    }
}

#[derive(Debug, Default)]
pub struct SoakReport {
    pub seed: u64,
    /// How many times each kind of fault was injected.
    pub faults: BTreeMap<&'static str, u32>,
    pub challenges: u32,
    /// Submissions, over every answering mAIner.
    pub submitted: u32,
    /// (mAIner, challenge) pairs given up for good by the mAIner.
    pub failed_for_good: u32,
    pub simulated_seconds: u64,
    /// What broke a guarantee; empty when the soak passed.
    pub problems: Vec<String>,
}

impl SoakReport {
    /// One line, for `scripts/soak.sh`.
    pub fn line(&self) -> String {
        let faults: Vec<String> = self.faults.iter().map(|(k, n)| format!("{k}={n}")).collect();
        format!(
            "seed {:>5}: {} | {} challenges, {} submitted, {} failed for good, {} s simulated | faults {}",
            self.seed,
            if self.problems.is_empty() { "ok".to_string() } else { format!("FAILED: {}", self.problems.join("; ")) },
            self.challenges,
            self.submitted,
            self.failed_for_good,
            self.simulated_seconds,
            faults.join(" ")
        )
    }
}

/// The factory the soak runs.
struct World {
    game: Principal,
    creator: Principal,
    own: Principal,
    service: Principal,
    agents: Vec<Principal>,
    llms: Vec<Principal>,
    /// Canisters the soak stopped and has not started again.
    stopped: Vec<Principal>,
    service_paused: bool,
    /// Fleet jobs the soak started.
    fleet_jobs: Vec<u64>,
}

impl World {
    fn answering(&self) -> Vec<Principal> {
        std::iter::once(self.own).chain(self.agents.iter().copied()).collect()
    }

    fn controllers(&self) -> Vec<Principal> {
        std::iter::once(self.own).chain(std::iter::once(self.service)).chain(self.agents.iter().copied()).collect()
    }
}

/// Who may stop, start and upgrade a canister of the factory: the creator
/// controls the mAIners it made, the admin the creator and the game state.
fn controller_principal(w: &World, canister: Principal) -> Principal {
    if canister == w.game || canister == w.creator { admin() } else { w.creator }
}

fn build(env: &dyn TestEnv) -> World {
    let f = deploy_factory(env, None);
    upload_artefact(env, f.creator, ArtefactKind::ControllerWasm, "mainer_controller.wasm", &wasm("mainer_controller"));
    upload_artefact(env, f.creator, ArtefactKind::LlmWasm, "test_llm.wasm", &wasm("test_llm"));
    upload_artefact(env, f.creator, ArtefactKind::Model, "model.gguf", b"a stand-in model for the test LLM");
    let made = |req| {
        let j: JobView = create_mainer(env, f.creator, req).expect("the creator takes the order");
        let j = run_until_job_done(env, f.creator, j.id, 900);
        assert_eq!(j.status, JobStatus::Done, "{j:?}");
        j
    };
    let own = made(mainer_request(MainerRole::Own, 2, None, 4));
    let service = made(mainer_request(MainerRole::ShareService, 2, None, 4));
    let service_id = controller_of(&service);
    let agents: Vec<JobView> =
        (0..2).map(|_| made(mainer_request(MainerRole::ShareAgent, 0, Some(service_id), 4))).collect();
    let llms = [&own, &service].iter().flat_map(|j| j.slots[1..].iter().filter_map(|s| s.canister)).collect();
    World {
        game: f.game,
        creator: f.creator,
        own: controller_of(&own),
        service: service_id,
        agents: agents.iter().map(controller_of).collect(),
        llms,
        stopped: Vec::new(),
        service_paused: false,
        fleet_jobs: Vec::new(),
    }
}

/// What the soak injects, one per round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    LlmTrap,
    LlmErr,
    StopLlm,
    StopGameState,
    StopService,
    /// A controller upgraded, with or without a stop around it.
    UpgradeController {
        stopped: bool,
    },
    /// The creator upgraded, with or without a stop around it.
    UpgradeCreator {
        stopped: bool,
    },
    FleetUpgradeControllers,
    FleetUpgradeLlms,
    PauseService,
}

/// Every fault, in the order the seed draws from.
const FAULTS: [Fault; 12] = [
    Fault::LlmTrap,
    Fault::LlmErr,
    Fault::StopLlm,
    Fault::StopGameState,
    Fault::StopService,
    Fault::UpgradeController { stopped: false },
    Fault::UpgradeController { stopped: true },
    Fault::UpgradeCreator { stopped: false },
    Fault::UpgradeCreator { stopped: true },
    Fault::FleetUpgradeControllers,
    Fault::FleetUpgradeLlms,
    Fault::PauseService,
];

impl Fault {
    /// Its name in reports.
    fn name(self) -> &'static str {
        match self {
            Fault::LlmTrap => "llm_trap",
            Fault::LlmErr => "llm_err",
            Fault::StopLlm => "stop_llm",
            Fault::StopGameState => "stop_game_state",
            Fault::StopService => "stop_service",
            Fault::UpgradeController { stopped: false } => "upgrade_controller",
            Fault::UpgradeController { stopped: true } => "upgrade_controller_stopped",
            Fault::UpgradeCreator { stopped: false } => "upgrade_creator",
            Fault::UpgradeCreator { stopped: true } => "upgrade_creator_stopped",
            Fault::FleetUpgradeControllers => "fleet_upgrade_controllers",
            Fault::FleetUpgradeLlms => "fleet_upgrade_llms",
            Fault::PauseService => "pause_service",
        }
    }
}

fn controller_upgrade_arg() -> Vec<u8> {
    Encode!(&ControllerArgs::Upgrade(ControllerUpgrade { settings: None })).unwrap()
}

/// Injects one fault drawn from `rng`; returns its name.
fn inject(env: &dyn TestEnv, w: &mut World, rng: &mut Rng) -> &'static str {
    let fault = *rng.pick(&FAULTS);
    match fault {
        Fault::LlmTrap | Fault::LlmErr => {
            let llm = *rng.pick(&w.llms);
            let n = 1 + rng.below(2) as u32;
            let faults = if fault == Fault::LlmTrap {
                Faults { trap_next_calls: n, ..Faults::default() }
            } else {
                Faults { err_next_calls: n, ..Faults::default() }
            };
            let _ = env.update_one::<_, ()>(w.creator, llm, "fixture_set_faults", faults);
        }
        Fault::StopLlm | Fault::StopGameState | Fault::StopService => {
            let target = match fault {
                Fault::StopLlm => *rng.pick(&w.llms),
                Fault::StopGameState => w.game,
                _ => w.service,
            };
            if !w.stopped.contains(&target) && env.stop(controller_principal(w, target), target).is_ok() {
                w.stopped.push(target);
            }
        }
        Fault::UpgradeController { stopped } => {
            let target = *rng.pick(&w.controllers());
            let by = w.creator;
            let stop = stopped && !w.stopped.contains(&target);
            if stop {
                let _ = env.stop(by, target);
            }
            let _ = env.upgrade(by, target, &wasm("mainer_controller"), controller_upgrade_arg());
            if stop {
                let _ = env.start(by, target);
            }
        }
        Fault::UpgradeCreator { stopped: stop } => {
            if stop {
                let _ = env.stop(admin(), w.creator);
            }
            let _ = env.upgrade(admin(), w.creator, &wasm("mainer_creator"), Encode!(&None::<CreatorArgs>).unwrap());
            if stop {
                let _ = env.start(admin(), w.creator);
            }
        }
        Fault::FleetUpgradeControllers | Fault::FleetUpgradeLlms => {
            let method = if fault == Fault::FleetUpgradeLlms {
                &creator_calls::UPGRADE_LLMS
            } else {
                &creator_calls::UPGRADE_CONTROLLERS
            };
            let req = UpgradeControllersRequest { wasm_sha256: None, targets: None, batch_size: 2 };
            let started: Result<mainer_types::creator::CreatorResult<FleetJobView>, _> =
                env.call(admin(), w.creator, method, (req,));
            if let Ok(Ok(job)) = started {
                w.fleet_jobs.push(job.id);
            }
        }
        Fault::PauseService => {
            let _ = env.call(owner(), w.service, &controller_calls::PAUSE, ());
            w.service_paused = true;
        }
    }
    fault.name()
}

/// Starts whatever the soak stopped, resumes the ShareService, clears LLM faults.
fn heal(env: &dyn TestEnv, w: &mut World) {
    for c in std::mem::take(&mut w.stopped) {
        let _ = env.start(controller_principal(w, c), c);
    }
    try_resume(env, w);
    for llm in &w.llms {
        let _ = env.update_one::<_, ()>(w.creator, *llm, "fixture_set_faults", Faults::default());
    }
}

/// Resumes the ShareService if the soak paused it; it stays marked paused
/// when the call fails (the service stopped meanwhile, by the soak or by a
/// fleet upgrade), to be tried again.
fn try_resume(env: &dyn TestEnv, w: &mut World) {
    if w.service_paused && matches!(env.call(owner(), w.service, &controller_calls::RESUME, ()), Ok(Ok(()))) {
        w.service_paused = false;
    }
}

fn health(env: &dyn TestEnv, c: Principal) -> Result<HealthReport, String> {
    env.call(admin(), c, &controller_calls::HEALTH, ()).map_err(|e| format!("controller {c}: {}", e.message))
}

fn recent_work(env: &dyn TestEnv, c: Principal) -> Vec<WorkItem> {
    match env.call(owner(), c, &controller_calls::RECENT_WORK, (PageRequest::first(500),)) {
        Ok(Ok(page)) => page.items,
        _ => Vec::new(),
    }
}

fn queue(env: &dyn TestEnv, c: Principal) -> Vec<WorkItem> {
    match env.call(owner(), c, &controller_calls::QUEUE, (PageRequest::first(500),)) {
        Ok(Ok(page)) => page.items,
        _ => Vec::new(),
    }
}

fn fleet_running(env: &dyn TestEnv, creator: Principal, id: u64) -> bool {
    let j: Result<mainer_types::creator::CreatorResult<FleetJobView>, _> =
        env.call(admin(), creator, &creator_calls::FLEET_JOB, (id,));
    matches!(j, Ok(Ok(j)) if j.status == JobStatus::Running)
}

fn all_jobs(env: &dyn TestEnv, creator: Principal) -> Vec<JobView> {
    let page: Page<JobView> =
        env.call(admin(), creator, &creator_calls::LIST_JOBS, (PageRequest::first(500),)).unwrap().unwrap();
    page.items
}

/// Runs one soak and reports; never panics on a broken guarantee (the
/// problems are in the report), only on a broken test set-up.
pub fn run(env: &dyn TestEnv, cfg: &SoakConfig) -> SoakReport {
    let mut rng = Rng::new(cfg.seed);
    let mut w = build(env);
    let mut report = SoakReport { seed: cfg.seed, ..SoakReport::default() };
    let start_ns = env.time_ns();
    let mut challenges = Vec::new();
    let every = (cfg.fault_rounds / cfg.challenges.max(1)).max(1);
    for round in 0..cfg.fault_rounds {
        // Due every few rounds; while the game state is stopped, at the next round.
        let due = (challenges.len() as u32) < cfg.challenges.min(round / every + 1);
        if due && !w.stopped.contains(&w.game) {
            challenges.push(add_challenge(env, w.game, &format!("Soak question {round}"), 4).id);
        }
        let fault = inject(env, &mut w, &mut rng);
        *report.faults.entry(fault).or_default() += 1;
        run_for(env, 5 + rng.below(36));
        // Stopped canisters come back after a while, one at a time.
        if !w.stopped.is_empty() && rng.below(2) == 0 {
            let c = w.stopped.remove(0);
            let _ = env.start(controller_principal(&w, c), c);
        }
        if rng.below(3) == 0 {
            try_resume(env, &mut w);
        }
    }
    while (challenges.len() as u32) < cfg.challenges {
        challenges.push(add_challenge(env, w.game, "Soak question after the faults", 4).id);
    }
    heal(env, &mut w);
    report.challenges = challenges.len() as u32;

    // Quiet: until every answering mAIner has settled every challenge.
    let settled = |env: &dyn TestEnv, w: &World| {
        w.answering().iter().all(|m| {
            let done = submissions_by_mainer(env, w.game, *m).len() + failed(env, *m).len();
            done >= challenges.len()
        }) && w.controllers().iter().all(|c| health(env, *c).is_ok_and(|h| h.queued == 0 && h.in_flight == 0))
            && w.fleet_jobs.iter().all(|id| !fleet_running(env, w.creator, *id))
    };
    let mut waited = 0;
    while !settled(env, &w) && waited < cfg.quiet_seconds {
        run_for(env, 10);
        waited += 10;
        try_resume(env, &mut w);
    }
    report.simulated_seconds = (env.time_ns() - start_ns) / 1_000_000_000;

    for m in w.answering() {
        let subs = submissions_by_mainer(env, w.game, m);
        let given_up = failed(env, m);
        report.submitted += subs.len() as u32;
        report.failed_for_good += given_up.len() as u32;
        for c in &challenges {
            let n = subs.iter().filter(|s| s.challenge_id == *c).count();
            let gave_up = given_up.contains(c);
            if n > 1 {
                report.problems.push(format!("mAIner {m} submitted {n} answers to challenge {c}"));
            }
            if n == 0 && !gave_up {
                report.problems.push(format!("mAIner {m} never answered challenge {c}"));
            }
        }
    }
    for c in w.controllers() {
        match health(env, c) {
            Ok(h) if h.queued != 0 || h.in_flight != 0 => {
                let left: Vec<String> = queue(env, c)
                    .iter()
                    .map(|i| format!("item {} (challenge {}): {:?}, {:?}", i.id, i.challenge.id, i.state, i.last_error))
                    .collect();
                let llms: Vec<String> = match env.call(admin(), c, &controller_calls::LIST_LLMS, ()) {
                    Ok(Ok(llms)) => llms
                        .iter()
                        .map(|l| {
                            format!("{} draining={} healthy={} {:?}", l.canister, l.draining, l.healthy, l.last_error)
                        })
                        .collect(),
                    other => vec![format!("{other:?}")],
                };
                report.problems.push(format!(
                    "controller {c}: {} queued, {} in flight after the quiet (paused {}, problems {:?}, llms {:?}): {}",
                    h.queued,
                    h.in_flight,
                    h.paused,
                    h.problems,
                    llms,
                    left.join(", ")
                ))
            }
            Ok(_) => {}
            Err(e) => report.problems.push(e),
        }
    }
    for &fleet in &w.fleet_jobs {
        if fleet_running(env, w.creator, fleet) {
            report.problems.push(format!("fleet job {fleet} still running after the quiet"));
        }
    }
    let known: Vec<Principal> =
        all_jobs(env, w.creator).iter().flat_map(|j| j.slots.iter().filter_map(|s| s.canister)).collect();
    if let Some(sim) = env.simulator() {
        for c in sim.canister_ids() {
            if sim.controllers(c).contains(&w.creator) && !known.contains(&c) {
                report.problems.push(format!("canister {c} was made by the creator but no job knows it"));
            }
        }
    }
    report
}

/// Challenges `mainer` gave up for good (its work items that failed).
fn failed(env: &dyn TestEnv, mainer: Principal) -> Vec<u64> {
    recent_work(env, mainer)
        .into_iter()
        .filter(|i| matches!(i.state, WorkState::Failed { .. }))
        .map(|i| i.challenge.id)
        .collect()
}
