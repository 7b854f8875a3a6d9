//! Benchmark of the creator's model copy: messages and instructions to copy
//! a 100 MiB synthetic GGUF into an LLM canister, and the creator's heap
//! during the copy. Prints a Markdown report (`scripts/bench.sh`).

use integration_tests::SimEnv;
use integration_tests::TestEnv;
use integration_tests::deploy::run_for;
use integration_tests::factory::*;
use integration_tests::wasm;
use mainer_types::MainerRole;
use mainer_types::creator::{ArtefactKind, JobStatus};

const MODEL_BYTES: usize = 100 * 1024 * 1024;
const CHUNK: u64 = 2_000_000;

fn main() {
    let env = SimEnv::new();
    let f = deploy_factory(&env, None);
    upload_artefact(&env, f.creator, ArtefactKind::ControllerWasm, "controller", &wasm("mainer_controller"));
    upload_artefact(&env, f.creator, ArtefactKind::LlmWasm, "test_llm", &wasm("test_llm"));
    let model: Vec<u8> = (0..MODEL_BYTES as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    upload_artefact(&env, f.creator, ArtefactKind::Model, "synthetic-100MiB.gguf", &model);
    drop(model);
    let heap_before = env.simulator().unwrap().heap_bytes(f.creator);

    let job = create_mainer(&env, f.creator, mainer_request(MainerRole::Own, 1, None, 8)).unwrap();
    env.simulator().unwrap().clear_executions();
    let mut max_heap = 0u64;
    let mut seconds = 0u64;
    let view = loop {
        let view = integration_tests::factory::job(&env, f.creator, job.id);
        max_heap = max_heap.max(env.simulator().unwrap().heap_bytes(f.creator));
        if view.status != JobStatus::Running {
            break view;
        }
        run_for(&env, 1);
        seconds += 1;
    };
    assert_eq!(view.status, JobStatus::Done, "{view:?}");
    let llm = view.slots[1].canister.unwrap();
    let sim = env.simulator().unwrap();
    let uploads: Vec<_> =
        sim.executions().filter(|e| e.canister == llm && e.entry == "update file_upload_chunk").collect();
    let llm_instructions: u64 = uploads.iter().map(|e| e.instructions).sum();
    let creator_instructions: u64 = sim.executions().filter(|e| e.canister == f.creator).map(|e| e.instructions).sum();
    let expected = (MODEL_BYTES as u64).div_ceil(CHUNK);

    println!("## Creator: copying a 100 MiB model into an LLM canister\n");
    println!("| measure | value |");
    println!("|---|---:|");
    println!("| model size | {MODEL_BYTES} bytes |");
    println!("| `file_upload_chunk` messages | {} (⌈size / {CHUNK}⌉ = {expected}) |", uploads.len());
    println!("| chunk size | {CHUNK} bytes |");
    println!(
        "| creator instructions for the whole job (create, install, copy, load, configure, register) | {creator_instructions} |"
    );
    println!("| creator instructions per copied MiB | {} |", creator_instructions / 100);
    println!(
        "| LLM (test fixture) instructions per chunk received | {} |",
        llm_instructions / uploads.len().max(1) as u64
    );
    println!("| creator heap before the copy / largest during the copy | {heap_before} / {max_heap} bytes |");
    println!("| simulated seconds for the job (2 s job interval, 8 chunks per round) | {seconds} |");
}
