use candid::Encode;
use ic_sim::Simulator;
use integration_tests::{user, wasm};
use mainer_types::creator::*;
fn main() {
    let mut sim = Simulator::new();
    let creator = sim.create_canister(user(0));
    let init = CreatorInit { admins: vec![user(1)], game_state: user(9), allowed_creators: vec![], settings: None };
    sim.install_canister(user(0), creator, &wasm("mainer_creator"), Encode!(&CreatorArgs::Init(init)).unwrap())
        .unwrap();
    let start = StartUploadRequest {
        kind: ArtefactKind::Model,
        name: "synthetic.gguf".into(),
        total_size: 100,
        expected_sha256: Some("a".repeat(64)),
    };
    sim.update_call(user(1), creator, "start_upload", Encode!(&start).unwrap()).unwrap();
    let h = sim.query_call_traced(user(1), creator, "health", Encode!().unwrap()).instructions;
    let out = sim.query_call(user(1), creator, "dbg_costs", Encode!(&1u64).unwrap()).unwrap();
    let v: Vec<u64> = candid::decode_one(&out).unwrap();
    println!("health {h}; admin, status(decode), encode reply, decode reply: {v:?}");
}
