//! The creator's own `/metrics`: factory jobs by status and their failed
//! attempts, running fleet jobs, the artefact store's contents.

use std::io;

use canister_common::metrics::Encoder;
use mainer_types::PageRequest;

use crate::state::read_state;

pub fn encode(w: &mut Encoder) -> io::Result<()> {
    // A query, not a hot path: the finished jobs are counted by a scan.
    let (running, done, failed, attempts) = read_state(|s| {
        let (done, failed) = s.finished_counts();
        let attempts: u32 = s.running_jobs().map(|j| j.attempts).sum();
        (s.running_job_count(), done, failed, attempts)
    });
    w.gauge_vec("creator_jobs", "Factory jobs, by status.")?
        .value(&[("status", "running")], running as f64)?
        .value(&[("status", "done")], done as f64)?
        .value(&[("status", "failed")], failed as f64)?;
    w.encode_gauge(
        "creator_running_job_attempts",
        attempts as f64,
        "Failed attempts of the current steps of running jobs.",
    )?;
    w.encode_gauge(
        "creator_fleet_jobs_running",
        read_state(|s| s.running_fleet().len()) as f64,
        "Fleet jobs (upgrades, removals) running.",
    )?;
    let first = PageRequest { offset: 0, limit: 1 };
    let (artefacts, uploads) =
        read_state(|s| (s.store.list_artefacts(None, first).total, s.store.list_uploads(first).total));
    w.encode_gauge("creator_artefacts", artefacts as f64, "Artefacts stored (wasm modules and models).")?;
    w.encode_gauge("creator_uploads", uploads as f64, "Uploads not yet finished.")
}
