//! The creator's own `/metrics`: factory jobs by status and their failed
//! attempts, running fleet jobs, the artefact store's contents.

use std::io;

use canister_common::metrics::Encoder;
use mainer_types::PageRequest;
use mainer_types::creator::JobStatus;

use crate::{fleet, jobs, store};

pub fn encode(w: &mut Encoder) -> io::Result<()> {
    let all = jobs::newest_first();
    let count = |f: fn(&JobStatus) -> bool| all.iter().filter(|j| f(&j.status)).count() as f64;
    w.gauge_vec("creator_jobs", "Factory jobs, by status.")?
        .value(&[("status", "running")], count(|s| *s == JobStatus::Running))?
        .value(&[("status", "done")], count(|s| *s == JobStatus::Done))?
        .value(&[("status", "failed")], count(|s| matches!(s, JobStatus::Failed { .. })))?;
    let attempts: u32 = all.iter().filter(|j| j.status == JobStatus::Running).map(|j| j.attempts).sum();
    w.encode_gauge(
        "creator_running_job_attempts",
        attempts as f64,
        "Failed attempts of the current steps of running jobs.",
    )?;
    w.encode_gauge(
        "creator_fleet_jobs_running",
        fleet::running().len() as f64,
        "Fleet jobs (upgrades, removals) running.",
    )?;
    let first = PageRequest { offset: 0, limit: 1 };
    let (artefacts, uploads) = store::with(|s| (s.list_artefacts(None, first).total, s.list_uploads(first).total));
    w.encode_gauge("creator_artefacts", artefacts as f64, "Artefacts stored (wasm modules and models).")?;
    w.encode_gauge("creator_uploads", uploads as f64, "Uploads not yet finished.")
}
