//! Benchmark of the creator's artefact store on the simulator:
//! - instructions per uploaded MiB (chunks of 2,000,000 bytes) against a
//!   baseline that receives the same chunks and writes them to raw stable
//!   memory, nothing else (the probe fixture's `stable_write_raw`);
//! - instructions per MiB of `finish_upload` (the on-chain SHA-256);
//! - the creator's heap after a 100 MiB upload: the file is not in it.
//!
//! Run with `scripts/bench.sh` (or `cargo run -p integration-tests --example
//! bench_creator_store`); prints a Markdown report to stdout.

use candid::Encode;
use ic_sim::Simulator;
use integration_tests::{user, wasm};
use mainer_types::creator::{
    ArtefactInfo, ArtefactKind, CreatorArgs, CreatorError, CreatorInit, MAX_ARTEFACT_CHUNK_BYTES, StartUploadRequest,
    UploadChunkRequest, UploadStatus,
};
use sha2::{Digest, Sha256};

const FILE_BYTES: usize = 100 * 1024 * 1024;
const CHUNK: usize = MAX_ARTEFACT_CHUNK_BYTES as usize;
const MIB: f64 = 1024.0 * 1024.0;

/// Random-looking bytes (xorshift), so nothing about the data is special.
fn synthetic(len: usize) -> Vec<u8> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn decode<T: candid::CandidType + serde::de::DeserializeOwned>(bytes: &[u8]) -> T {
    candid::decode_one(bytes).expect("the reply decodes")
}

fn main() {
    let data = synthetic(FILE_BYTES);
    let expected = hex::encode(Sha256::digest(&data));
    let mut sim = Simulator::new();
    let mib = FILE_BYTES as f64 / MIB;

    // Baseline: the probe receives each chunk and writes it to stable memory.
    // Its stable structures are never used here; the writes start past them.
    let probe = sim.create_canister(user(0));
    sim.install_canister(user(0), probe, &wasm("sim_probe"), Encode!(&None::<()>).unwrap()).unwrap();
    let base_offset = 16 * 1024 * 1024u64;
    let (mut base_msg, mut base_write) = (0u64, 0u64);
    for (i, c) in data.chunks(CHUNK).enumerate() {
        let offset = base_offset + (i * CHUNK) as u64;
        let arg = Encode!(&offset, &c.to_vec()).unwrap();
        let out = sim.update_call_traced(user(1), probe, "stable_write_raw", arg);
        base_write += decode::<u64>(&out.result.expect("stable_write_raw succeeds"));
        base_msg += out.instructions;
    }

    // The creator: start, upload every chunk, then finish.
    let creator = sim.create_canister(user(0));
    let init = CreatorInit { admins: vec![user(1)], game_state: user(9), allowed_creators: vec![], settings: None };
    sim.install_canister(user(0), creator, &wasm("mainer_creator"), Encode!(&CreatorArgs::Init(init)).unwrap())
        .unwrap();
    let heap_installed = sim.heap_bytes(creator);
    let start = StartUploadRequest {
        kind: ArtefactKind::Model,
        name: "synthetic.gguf".into(),
        total_size: FILE_BYTES as u64,
        expected_sha256: Some(expected.clone()),
    };
    let out = sim.update_call_traced(user(1), creator, "start_upload", Encode!(&start).unwrap());
    let start_instr = out.instructions;
    let status: Result<UploadStatus, CreatorError> = decode(&out.result.unwrap());
    let upload_id = status.unwrap().upload_id;
    let chunk_arg = |i: usize| {
        let offset = i * CHUNK;
        let bytes = data[offset..(offset + CHUNK).min(FILE_BYTES)].to_vec();
        Encode!(&UploadChunkRequest { upload_id, offset: offset as u64, bytes }).unwrap()
    };
    let chunks = FILE_BYTES.div_ceil(CHUNK);
    let mut upload_instr = 0u64;
    let mut heap_first_chunk = 0;
    for i in 0..chunks {
        let out = sim.update_call_traced(user(1), creator, "upload_chunk", chunk_arg(i));
        let status: Result<UploadStatus, CreatorError> = decode(&out.result.unwrap());
        status.expect("the chunk is stored");
        upload_instr += out.instructions;
        if i == 0 {
            heap_first_chunk = sim.heap_bytes(creator);
        }
    }
    let heap_uploaded = sim.heap_bytes(creator);
    // Fixed costs: a 1-byte chunk into a second upload, and the baseline with 1 byte.
    let small = StartUploadRequest { total_size: 10, expected_sha256: None, ..start.clone() };
    let out = sim.update_call_traced(user(1), creator, "start_upload", Encode!(&small).unwrap());
    let small_id = decode::<Result<UploadStatus, CreatorError>>(&out.result.unwrap()).unwrap().upload_id;
    let one = UploadChunkRequest { upload_id: small_id, offset: 0, bytes: vec![1] };
    let chunk_fixed = sim.update_call_traced(user(1), creator, "upload_chunk", Encode!(&one).unwrap()).instructions;
    let base_fixed = sim
        .update_call_traced(user(1), probe, "stable_write_raw", Encode!(&base_offset, &vec![1u8]).unwrap())
        .instructions;
    let status_query =
        sim.query_call_traced(user(1), creator, "upload_status", Encode!(&small_id).unwrap()).instructions;
    // A full chunk sent again (as after an ingress time-out): read back and compared.
    let out = sim.update_call_traced(user(1), creator, "upload_chunk", chunk_arg(0));
    let resend_instr = out.instructions;
    let heap_resent = sim.heap_bytes(creator);

    let (before, _) = sim.execution_totals(creator);
    sim.clear_executions();
    let out = sim.update_call_traced(user(1), creator, "finish_upload", Encode!(&upload_id).unwrap());
    let info: Result<ArtefactInfo, CreatorError> = decode(&out.result.unwrap());
    let info = info.expect("finish_upload succeeds");
    assert_eq!(info.sha256, expected, "the on-chain SHA-256 matches");
    let finish_instr = sim.execution_totals(creator).0 - before;
    let finish_messages = sim.executions().filter(|e| e.canister == creator).count();
    let heap_finished = sim.heap_bytes(creator);

    let per_mib = |i: u64| i as f64 / mib;
    let chunk_mib = CHUNK as f64 / MIB;
    println!("## Artefact store benchmark (mainer_creator)\n");
    println!(
        "A {mib:.0} MiB synthetic file uploaded in {chunks} chunks of {CHUNK} bytes, then finished \
         (SHA-256 computed on-chain and checked against the expected one).\n"
    );
    println!("| | instructions | per MiB |");
    println!("|---|---:|---:|");
    println!("| `upload_chunk`, all chunks | {upload_instr} | {:.0} |", per_mib(upload_instr));
    println!(
        "| baseline: probe `stable_write_raw` (receive the chunk, write it to stable memory) | {base_msg} | {:.0} |",
        per_mib(base_msg)
    );
    println!("| …of which the `stable_write` calls alone | {base_write} | {:.0} |", per_mib(base_write));
    println!(
        "| `upload_chunk` resending a stored chunk (read back, compare) | {resend_instr} | {:.0} |",
        resend_instr as f64 / chunk_mib
    );
    println!("| `start_upload` (reserves the region) | {start_instr} | |");
    println!("| `upload_chunk` of 1 byte (the fixed cost of a chunk) | {chunk_fixed} | |");
    println!("| baseline `stable_write_raw` of 1 byte | {base_fixed} | |");
    println!("| query `upload_status` | {status_query} | |");
    println!(
        "| `finish_upload` ({finish_messages} executions: hashing slices and their self-calls) | {finish_instr} | {:.0} |",
        per_mib(finish_instr)
    );
    println!();
    println!("| ratio | value |");
    println!("|---|---:|");
    println!("| upload ÷ baseline message (goal ≤ 1.10) | {:.3} |", upload_instr as f64 / base_msg as f64);
    println!("| upload ÷ bare `stable_write` | {:.3} |", upload_instr as f64 / base_write as f64);
    println!();
    println!("| creator heap | bytes |");
    println!("|---|---:|");
    println!("| after install | {heap_installed} |");
    println!("| after the first chunk | {heap_first_chunk} |");
    println!("| after uploading {mib:.0} MiB | {heap_uploaded} |");
    println!("| after resending a chunk (its bytes read back to compare) | {heap_resent} |");
    println!("| after `finish_upload` | {heap_finished} |");
}
