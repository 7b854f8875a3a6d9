//! The creator's state: the configuration, the factory and fleet jobs with
//! their indexes, and the artefact store, all in stable memory (an upgrade
//! keeps everything and copies nothing). [`State`] keeps the indexes
//! consistent with the jobs; [`read_state`] / [`mutate_state`] are the only
//! door to the canister's instance.
//!
//! Indexes, so that the cost of the hot paths does not grow with history:
//! - running jobs -> when due: a timer round, `create_mainer`'s committed
//!   cycles and artefact checks decode running jobs only;
//! - LLM -> job, job -> controller: lookups and fleet requests decode no job;
//! - running fleet jobs.

use std::cell::RefCell;
use std::collections::BTreeMap;

use candid::Principal;
use ic_stable_structures::{StableBTreeMap, StableBTreeSet, StableCell};
use mainer_types::MainerRole;
use mainer_types::creator::{CreatorError, JobStatus, JobView, MainerView, Step};
use mainer_types::economy::{Books, EconomySettings};
use mainer_types::game::MainerCyclesReport;
use mainer_types::{Page, PageRequest};

use crate::config::Config;
use crate::economy::EconomyState;
use crate::fleet::FleetJob;
use crate::ic::ChunkedModule;
use crate::job::Job;
use crate::memory::{self, Memory, Stored};
use crate::store::Store;

/// Version of the index layout; data of an older version is indexed once.
/// 2: the controller -> job index.
const SCHEMA_VERSION: u64 = 2;

pub struct State {
    config: StableCell<Stored<Option<Config>>, Memory>,
    jobs: StableBTreeMap<u64, Stored<Job>, Memory>,
    running: StableBTreeMap<u64, u64, Memory>,
    llm_jobs: StableBTreeMap<Principal, u64, Memory>,
    mainer_jobs: StableBTreeMap<u64, Principal, Memory>,
    fleet: StableBTreeMap<u64, Stored<FleetJob>, Memory>,
    running_fleet: StableBTreeSet<u64, Memory>,
    schema: StableCell<u64, Memory>,
    /// Cycles running jobs will still spend on canisters not yet created.
    committed: StableCell<Stored<u128>, Memory>,
    economy: StableCell<Stored<EconomyState>, Memory>,
    /// (payer, created_at_time) -> job: the orders placed.
    order_keys: StableBTreeMap<(Principal, u64), u64, Memory>,
    /// (owner, job id) of every order.
    user_orders: StableBTreeMap<(Principal, u64), (), Memory>,
    /// Jobs with a refund due or under way.
    refunds_due: StableBTreeSet<u64, Memory>,
    /// Finished ShareService controllers -> ShareAgents made for them.
    share_services: StableBTreeMap<Principal, u32, Memory>,
    /// Controller canister -> its job.
    controller_jobs: StableBTreeMap<Principal, u64, Memory>,
    /// Controller canister -> its latest cycles report.
    mainer_cycles: StableBTreeMap<Principal, Stored<MainerCyclesReport>, Memory>,
    pub store: Store<Memory>,
    /// Wasm modules (by SHA-256) whose chunks are in the creator's own chunk
    /// store. Heap only: after an upgrade they are uploaded again (upload is
    /// idempotent).
    pub own_chunks: BTreeMap<String, ChunkedModule>,
}

/// What the indexes hold about one job.
#[derive(PartialEq, Eq)]
struct Indexed {
    due: Option<u64>,
    llms: Vec<Principal>,
    controller: Option<Principal>,
    /// Cycles still to spend (running jobs only).
    committed: u128,
    refund_due: bool,
    /// A finished ShareService's controller.
    share_service: Option<Principal>,
}

impl Indexed {
    fn of(job: &Job) -> Indexed {
        let running = job.status == JobStatus::Running;
        let committed = if running { committed_cycles(job) } else { 0 };
        Indexed {
            due: running.then_some(job.next_attempt_ns),
            llms: job.llms.iter().filter_map(|s| s.canister).collect(),
            controller: job.controller.canister,
            committed,
            refund_due: job.funds.as_ref().is_some_and(|f| f.refund_open()),
            share_service: (job.plan.role == MainerRole::ShareService && job.status == JobStatus::Done)
                .then_some(job.controller.canister)
                .flatten(),
        }
    }
}

/// Cycles a job will still spend on canisters not yet created.
fn committed_cycles(j: &Job) -> u128 {
    let controller = if j.controller.canister.is_none() { j.plan.controller_cycles } else { 0 };
    let llms = j.llms.iter().filter(|s| s.canister.is_none()).count() as u128;
    controller.saturating_add(llms.saturating_mul(j.plan.llm_cycles))
}

impl State {
    fn init() -> State {
        let m = memory::get;
        State {
            config: StableCell::init(m(memory::CONFIG), Stored(None)),
            jobs: StableBTreeMap::init(m(memory::JOBS)),
            running: StableBTreeMap::init(m(memory::RUNNING_JOBS)),
            llm_jobs: StableBTreeMap::init(m(memory::LLM_JOBS)),
            mainer_jobs: StableBTreeMap::init(m(memory::MAINER_JOBS)),
            fleet: StableBTreeMap::init(m(memory::FLEET_JOBS)),
            running_fleet: StableBTreeSet::init(m(memory::RUNNING_FLEET)),
            schema: StableCell::init(m(memory::SCHEMA), 0),
            own_chunks: BTreeMap::new(),
            committed: StableCell::init(m(memory::COMMITTED_CYCLES), Stored(0)),
            economy: StableCell::init(m(memory::ECONOMY), Stored(EconomyState::default())),
            order_keys: StableBTreeMap::init(m(memory::ORDER_KEYS)),
            user_orders: StableBTreeMap::init(m(memory::USER_ORDERS)),
            refunds_due: StableBTreeSet::init(m(memory::REFUNDS_DUE)),
            share_services: StableBTreeMap::init(m(memory::SHARE_SERVICES)),
            controller_jobs: StableBTreeMap::init(m(memory::CONTROLLER_JOBS)),
            mainer_cycles: StableBTreeMap::init(m(memory::MAINER_CYCLES)),
            store: Store::init(m(memory::UPLOADS), m(memory::ARTEFACTS), m(memory::BLOBS), m(memory::FREE_REGIONS)),
        }
    }

    // ------------------------------------------------------------------
    // Configuration
    // ------------------------------------------------------------------

    pub fn config(&self) -> Config {
        self.config.get().0.clone().expect("the creator is initialized at install")
    }

    pub fn set_config(&mut self, config: Config) {
        self.config.set(Stored(Some(config)));
    }

    pub fn update_config(&mut self, f: impl FnOnce(&mut Config)) {
        let mut c = self.config();
        f(&mut c);
        self.set_config(c);
    }

    // ------------------------------------------------------------------
    // Factory jobs
    // ------------------------------------------------------------------

    pub fn job(&self, id: u64) -> Option<Job> {
        self.jobs.get(&id).map(|s| s.0)
    }

    pub fn next_job_id(&self) -> u64 {
        self.jobs.last_key_value().map_or(0, |(k, _)| k + 1)
    }

    /// Stores a new job.
    pub fn insert_job(&mut self, job: Job) {
        let new = Indexed::of(&job);
        let id = job.id;
        if let (MainerRole::ShareAgent, Some(service)) = (job.plan.role, job.plan.share_service)
            && let Some(n) = self.share_services.get(&service)
        {
            self.share_services.insert(service, n.saturating_add(1));
        }
        self.jobs.insert(id, Stored(job));
        self.reindex(id, None, new);
    }

    /// Updates job `id` in place, and its index entries.
    pub fn update_job(&mut self, id: u64, f: impl FnOnce(&mut Job)) -> Option<Job> {
        let mut job = self.job(id)?;
        let old = Indexed::of(&job);
        f(&mut job);
        let new = Indexed::of(&job);
        self.jobs.insert(id, Stored(job.clone()));
        if new != old {
            self.reindex(id, Some(old), new);
        }
        Some(job)
    }

    fn reindex(&mut self, id: u64, old: Option<Indexed>, new: Indexed) {
        let before = old.as_ref().map_or(0, |o| o.committed);
        if before != new.committed {
            let total = self.committed.get().0.saturating_sub(before).saturating_add(new.committed);
            self.committed.set(Stored(total));
        }
        match new.due {
            Some(due) => {
                self.running.insert(id, due);
            }
            None => {
                self.running.remove(&id);
            }
        }
        if let Some(old) = &old {
            for llm in old.llms.iter().filter(|l| !new.llms.contains(l)) {
                if self.llm_jobs.get(llm) == Some(id) {
                    self.llm_jobs.remove(llm);
                }
            }
        }
        for llm in &new.llms {
            self.llm_jobs.insert(*llm, id);
        }
        // The economy's indexes change rarely: touched only when they do.
        if old.as_ref().map_or(new.refund_due, |o| o.refund_due != new.refund_due) {
            if new.refund_due {
                self.refunds_due.insert(id);
            } else {
                self.refunds_due.remove(&id);
            }
        }
        if let Some(service) = new.share_service
            && old.as_ref().and_then(|o| o.share_service) != Some(service)
            && !self.share_services.contains_key(&service)
        {
            self.share_services.insert(service, 0);
        }
        if let Some(old) = old.as_ref().and_then(|o| o.controller).filter(|c| Some(*c) != new.controller) {
            self.controller_jobs.remove(&old);
        }
        match new.controller {
            Some(c) => {
                self.mainer_jobs.insert(id, c);
                self.controller_jobs.insert(c, id);
            }
            None => {
                self.mainer_jobs.remove(&id);
            }
        }
    }

    /// Resumes a failed job from the step where it stopped, with its
    /// canisters; a model copy that failed (its SHA-256 did not match, say)
    /// starts over.
    pub fn retry_job(&mut self, id: u64) -> Result<Job, CreatorError> {
        let job = self.job(id).ok_or_else(|| CreatorError::NotFound(format!("job {id}")))?;
        if !matches!(job.status, JobStatus::Failed { .. }) {
            return Err(CreatorError::InvalidInput(format!("job {id} has not failed")));
        }
        if job.funds.as_ref().is_some_and(|f| f.refund.is_some()) {
            return Err(CreatorError::InvalidInput(format!("job {id} was paid for and its payer refunded")));
        }
        Ok(self
            .update_job(id, |j| {
                j.status = JobStatus::Running;
                j.attempts = 0;
                j.next_attempt_ns = 0;
                for slot in j.llms.iter_mut().filter(|l| l.step == Step::UploadModel) {
                    slot.bytes_copied = 0;
                }
            })
            .expect("the job exists"))
    }

    /// Refunds what a failed job kept for a retry (once: after this it
    /// cannot be retried).
    pub fn refund_kept(&mut self, id: u64) -> Result<Job, CreatorError> {
        let job = self.job(id).ok_or_else(|| CreatorError::NotFound(format!("job {id}")))?;
        let Some(funds) = &job.funds else {
            return Err(CreatorError::InvalidInput(format!("job {id} was not paid for")));
        };
        if !matches!(job.status, JobStatus::Failed { .. }) {
            return Err(CreatorError::InvalidInput(format!("job {id} has not failed")));
        }
        if funds.refund.is_some() {
            return Err(CreatorError::InvalidInput(format!("job {id} is refunded already")));
        }
        Ok(self.update_job(id, |j| j.funds.as_mut().expect("paid").refund_unspent()).expect("the job exists"))
    }

    /// An admin settles a refund whose outcome was unknown (see
    /// `economy::settle`); the books count it once.
    pub fn settle_refund(&mut self, id: u64, arrived: bool, now_ns: u64) -> Result<Job, CreatorError> {
        let job = self.job(id).ok_or_else(|| CreatorError::NotFound(format!("job {id}")))?;
        let mut refund = job
            .funds
            .and_then(|f| f.refund)
            .ok_or_else(|| CreatorError::InvalidInput(format!("job {id} has no refund")))?;
        crate::economy::settle(&mut refund, arrived, now_ns).map_err(CreatorError::InvalidInput)?;
        let amount = refund.amount;
        let job = self
            .update_job(id, |j| {
                if let Some(f) = j.funds.as_mut() {
                    f.refund = Some(refund);
                }
            })
            .expect("the job exists");
        self.book(|b| {
            b.refunds_unknown = b.refunds_unknown.saturating_sub(1);
            if arrived {
                b.refunded = b.refunded.saturating_add(amount);
            }
        });
        Ok(job)
    }

    /// Running jobs due at `now_ns` for which `free` holds, at most `max`,
    /// oldest first. Looks at the running index only.
    pub fn due_jobs(&self, now_ns: u64, max: usize, free: impl Fn(u64) -> bool) -> Vec<u64> {
        self.running
            .iter()
            .map(|e| e.into_pair())
            .filter(|&(id, due)| due <= now_ns && free(id))
            .map(|(id, _)| id)
            .take(max)
            .collect()
    }

    /// The running factory jobs, decoded.
    pub fn running_jobs(&self) -> impl Iterator<Item = Job> + '_ {
        self.running.keys().filter_map(|id| self.job(id))
    }

    /// Cycles running jobs will still spend (kept up to date, no scan).
    pub fn committed_cycles(&self) -> u128 {
        self.committed.get().0
    }

    /// (done, failed) jobs: a scan, for `/metrics` only.
    pub fn finished_counts(&self) -> (u64, u64) {
        self.jobs.values().fold((0, 0), |(d, f), j| match j.0.status {
            JobStatus::Done => (d + 1, f),
            JobStatus::Failed { .. } => (d, f + 1),
            JobStatus::Running => (d, f),
        })
    }

    pub fn running_job_count(&self) -> u64 {
        self.running.len()
    }

    /// Jobs newest first; decodes only the page.
    pub fn jobs_page(&self, page: PageRequest) -> Page<JobView> {
        let limit = page.clamped_limit();
        let items: Vec<JobView> =
            self.jobs.iter().rev().skip(page.offset as usize).take(limit).map(|e| e.value().0.view()).collect();
        page_of(items, self.jobs.len(), page)
    }

    /// mAIners (jobs with a controller), newest first; decodes only the page.
    pub fn mainers_page(&self, page: PageRequest) -> Page<MainerView> {
        let limit = page.clamped_limit();
        let items: Vec<MainerView> = self
            .mainer_jobs
            .keys()
            .rev()
            .skip(page.offset as usize)
            .take(limit)
            .filter_map(|id| self.job(id).and_then(|j| j.mainer_view()))
            .map(|mut m| {
                m.cycles = self.mainer_cycles.get(&m.controller).map(|r| r.0);
                m
            })
            .collect();
        page_of(items, self.mainer_jobs.len(), page)
    }

    /// The job that made controller canister `controller`.
    pub fn job_of_controller(&self, controller: &Principal) -> Option<u64> {
        self.controller_jobs.get(controller)
    }

    /// Keeps a controller's cycles report; refused for canisters this
    /// creator did not make.
    pub fn record_cycles(&mut self, controller: Principal, report: MainerCyclesReport) -> Result<(), CreatorError> {
        if self.job_of_controller(&controller).is_none() {
            return Err(CreatorError::Unauthorized(format!("{controller} is no mAIner of this creator")));
        }
        self.mainer_cycles.insert(controller, Stored(report));
        Ok(())
    }

    /// The job that made LLM `llm`.
    pub fn job_of_llm(&self, llm: &Principal) -> Option<Job> {
        self.llm_jobs.get(llm).and_then(|id| self.job(id))
    }

    /// Every LLM canister made by the creator, newest job first.
    pub fn all_llms(&self) -> Vec<Principal> {
        let mut by_job: Vec<(u64, Principal)> =
            self.llm_jobs.iter().map(|e| e.into_pair()).map(|(l, j)| (j, l)).collect();
        by_job.sort_by_key(|&(j, _)| std::cmp::Reverse(j));
        by_job.into_iter().map(|(_, l)| l).collect()
    }

    /// Every controller canister made by the creator, newest first.
    pub fn all_controllers(&self) -> Vec<Principal> {
        self.mainer_jobs.values().rev().collect()
    }

    /// Whether a canister is one this creator made (a controller or an LLM).
    pub fn made(&self, canister: &Principal) -> bool {
        self.llm_jobs.contains_key(canister) || self.mainer_jobs.values().any(|c| c == *canister)
    }

    /// The newest (largest) canister id this creator made.
    pub fn newest_canister(&self) -> Option<Principal> {
        self.llm_jobs.keys().chain(self.mainer_jobs.values()).max()
    }

    /// Whether an unfinished job uses the artefact `sha256`.
    pub fn artefact_in_use(&self, sha256: &str) -> bool {
        self.running_jobs().any(|j| j.uses_artefact(sha256))
            || self.running_fleet.iter().filter_map(|id| self.fleet_job(id)).any(|f| f.wasm_sha256 == sha256)
    }

    // ------------------------------------------------------------------
    // The economy
    // ------------------------------------------------------------------

    pub fn economy(&self) -> EconomySettings {
        self.economy.get().0.settings.clone()
    }

    pub fn set_economy(&mut self, settings: EconomySettings) {
        let mut e = self.economy.get().0.clone();
        e.settings = settings;
        self.economy.set(Stored(e));
    }

    pub fn books(&self) -> Books {
        self.economy.get().0.books.clone()
    }

    /// Records money moving in the books.
    pub fn book(&mut self, f: impl FnOnce(&mut Books)) {
        let mut e = self.economy.get().0.clone();
        f(&mut e.books);
        self.economy.set(Stored(e));
    }

    /// The job of the order `payer` placed at `created_at_time`, if placed.
    pub fn order_by_key(&self, payer: Principal, created_at_time: u64) -> Option<u64> {
        self.order_keys.get(&(payer, created_at_time))
    }

    /// Stores a paid job and its order keys.
    pub fn insert_order(&mut self, job: Job, key: Option<(Principal, u64)>) {
        if let Some(key) = key {
            self.order_keys.insert(key, job.id);
        }
        self.user_orders.insert((job.plan.owner, job.id), ());
        self.insert_job(job);
    }

    /// The jobs of `owner`'s orders, oldest first.
    /// Whether `owner` has placed an order (one B-tree lookup).
    pub fn has_orders(&self, owner: Principal) -> bool {
        self.user_orders.range((owner, 0u64)..).next().is_some_and(|e| e.key().0 == owner)
    }

    pub fn orders_of(&self, owner: Principal) -> Vec<Job> {
        let from = (owner, 0u64);
        self.user_orders
            .range(from..)
            .map(|e| *e.key())
            .take_while(|(o, _)| *o == owner)
            .filter_map(|(_, id)| self.job(id))
            .collect()
    }

    /// Jobs with a refund due or under way.
    pub fn refunds_due(&self) -> Vec<u64> {
        self.refunds_due.iter().collect()
    }

    /// The finished ShareService with the fewest ShareAgents, if it has room.
    pub fn share_service_with_room(&self, capacity: u32) -> Option<Principal> {
        self.share_services
            .iter()
            .map(|e| e.into_pair())
            .filter(|(_, n)| *n < capacity)
            .min_by_key(|(_, n)| *n)
            .map(|(s, _)| s)
    }

    /// ShareAgents made for `service`, if it is a finished ShareService of this creator.
    pub fn share_service_agents(&self, service: &Principal) -> Option<u32> {
        self.share_services.get(service)
    }

    /// Marks refunds whose call was under way when the creator was upgraded:
    /// their outcome is unknown, so they are never sent again. Reads the
    /// open-refunds index only.
    pub fn refunds_in_flight_unknown(&mut self) {
        use mainer_types::economy::RefundStatus;
        for id in self.refunds_due() {
            let in_flight = self.job(id).and_then(|j| j.funds).and_then(|f| f.refund).map(|r| r.status)
                == Some(RefundStatus::InFlight);
            if in_flight {
                self.update_job(id, |j| {
                    if let Some(r) = j.funds.as_mut().and_then(|f| f.refund.as_mut()) {
                        r.status = RefundStatus::Unknown;
                    }
                });
                self.book(|b| b.refunds_unknown += 1);
            }
        }
    }

    // ------------------------------------------------------------------
    // Fleet jobs
    // ------------------------------------------------------------------

    pub fn fleet_job(&self, id: u64) -> Option<FleetJob> {
        self.fleet.get(&id).map(|s| s.0)
    }

    pub fn next_fleet_id(&self) -> u64 {
        self.fleet.last_key_value().map_or(0, |(k, _)| k + 1)
    }

    pub fn put_fleet_job(&mut self, job: FleetJob) {
        if job.status == JobStatus::Running {
            self.running_fleet.insert(job.id);
        } else {
            self.running_fleet.remove(&job.id);
        }
        self.fleet.insert(job.id, Stored(job));
    }

    pub fn running_fleet(&self) -> Vec<u64> {
        self.running_fleet.iter().collect()
    }

    // ------------------------------------------------------------------
    // Upgrades
    // ------------------------------------------------------------------

    /// Indexes the jobs of a release that had no indexes (once).
    pub fn migrate(&mut self) {
        if *self.schema.get() >= SCHEMA_VERSION {
            return;
        }
        self.committed.set(Stored(0));
        let jobs: Vec<Job> = self.jobs.values().map(|s| s.0).collect();
        for job in jobs {
            let id = job.id;
            self.reindex(id, None, Indexed::of(&job));
        }
        let fleet: Vec<(u64, bool)> = self.fleet.values().map(|s| (s.0.id, s.0.status == JobStatus::Running)).collect();
        for (id, running) in fleet {
            if running {
                self.running_fleet.insert(id);
            }
        }
        self.schema.set(SCHEMA_VERSION);
    }

    /// Marks fresh memories as indexed (at install).
    pub fn mark_indexed(&mut self) {
        self.schema.set(SCHEMA_VERSION);
    }
}

fn page_of<T>(items: Vec<T>, total: u64, page: PageRequest) -> Page<T> {
    let end = page.offset.saturating_add(items.len() as u64);
    Page { next_offset: (end < total && !items.is_empty()).then_some(end), items, total }
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::init());
}

/// Reads the state.
pub fn read_state<R>(f: impl FnOnce(&State) -> R) -> R {
    STATE.with(|s| f(&s.borrow()))
}

/// Changes the state; nothing else may.
pub fn mutate_state<R>(f: impl FnOnce(&mut State) -> R) -> R {
    STATE.with(|s| f(&mut s.borrow_mut()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::tests::plan;
    use mainer_types::MainerRole;

    fn p(n: u8) -> Principal {
        Principal::from_slice(&[n; 10])
    }

    #[test]
    fn indexes_follow_the_jobs() {
        mutate_state(|s| {
            for id in 0..5 {
                s.insert_job(Job::new(id, plan(MainerRole::Own), 2, 0));
            }
            s.update_job(1, |j| {
                j.controller.canister = Some(p(1));
                j.llms[0].canister = Some(p(11));
                j.llms[1].canister = Some(p(12));
            });
            s.update_job(3, |j| {
                j.controller.canister = Some(p(3));
                j.status = JobStatus::Done;
            });
            s.update_job(4, |j| j.next_attempt_ns = 100);
            assert_eq!(s.running_job_count(), 4);
            // Job 1 made all its canisters; job 3 is done: 3 jobs × (controller + 2 LLMs) of 1 cycle each.
            assert_eq!(s.committed_cycles(), 9);
            assert_eq!(s.due_jobs(50, 10, |_| true), vec![0, 1, 2]);
            assert_eq!(s.due_jobs(100, 2, |id| id != 0), vec![1, 2]);
            assert_eq!(s.job_of_llm(&p(12)).map(|j| j.id), Some(1));
            assert_eq!(s.all_controllers(), vec![p(3), p(1)]);
            assert!(s.made(&p(11)) && s.made(&p(3)) && !s.made(&p(9)));
            // A forgotten LLM leaves the index.
            s.update_job(1, |j| j.llms.retain(|l| l.canister != Some(p(11))));
            assert!(s.job_of_llm(&p(11)).is_none());
            assert_eq!(s.all_llms(), vec![p(12)]);
            let mainers = s.mainers_page(PageRequest::first(1));
            assert_eq!((mainers.items[0].controller, mainers.total, mainers.next_offset), (p(3), 2, Some(1)));
            let jobs = s.jobs_page(PageRequest { offset: 1, limit: 2 });
            assert_eq!(jobs.items.iter().map(|j| j.id).collect::<Vec<_>>(), vec![3, 2]);
            assert_eq!((jobs.total, jobs.next_offset), (5, Some(3)));
        });
    }

    #[test]
    fn jobs_of_an_unindexed_release_are_indexed_once() {
        mutate_state(|s| {
            let mut job = Job::new(0, plan(MainerRole::Own), 1, 0);
            job.llms[0].canister = Some(p(7));
            // As an old release wrote it: the record alone.
            s.jobs.insert(0, Stored(job));
            assert!(s.job_of_llm(&p(7)).is_none());
            s.migrate();
            assert_eq!(s.job_of_llm(&p(7)).map(|j| j.id), Some(0));
            assert_eq!(s.due_jobs(0, 10, |_| true), vec![0]);
        });
    }
}
