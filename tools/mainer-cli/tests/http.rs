//! The `mainer` binary over real HTTP: ic-agent against sim-server, a local
//! IC network on 127.0.0.1 (in this process, on a free port), in wall-clock
//! time. The operator's path of `factory.rs`: upload the artefacts (the model
//! upload killed halfway and resumed), order a mAIner and follow its job,
//! list the fleet, add a challenge and read the answer, upgrade the fleet.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use candid::{Decode, Encode, Nat, Principal};
use common::{Run, TempFile, temp_file};
use ic_agent::Agent;
use ic_agent::identity::BasicIdentity;
use integration_tests::wasm_dir;
use mainer_types::creator::{CreatorArgs, CreatorInit, CreatorResult, CreatorSettings, UploadStatus};
use mainer_types::game::{GameStateArgs, GameStateInit};
use mainer_types::{Page, PageRequest};

// A throw-away key made for this test with openssl.
const ADMIN_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEINBW2WJtkGuZFOV1L9VTky4nSFLWGRCxCIP4DrXZNqlt
-----END PRIVATE KEY-----
";

struct Local {
    url: String,
    pem: TempFile,
    agent: Agent,
    rt: tokio::runtime::Runtime,
    game: Principal,
    creator: Principal,
}

impl Local {
    fn update(&self, canister: Principal, method: &str, arg: Vec<u8>) -> Vec<u8> {
        let effective = if canister == Principal::management_canister() {
            sim_server::network::canister_range().0
        } else {
            canister
        };
        let call = self.agent.update(&canister, method).with_effective_canister_id(effective).with_arg(arg);
        self.rt.block_on(call.call_and_wait()).unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    fn install(&self, canister: Principal, wasm: &[u8], arg: Vec<u8>) {
        let mgmt = Principal::management_canister();
        let call = |method: &str, arg: Vec<u8>| {
            let c = self.agent.update(&mgmt, method).with_effective_canister_id(canister).with_arg(arg);
            self.rt.block_on(c.call_and_wait()).unwrap_or_else(|e| panic!("{method}: {e}"))
        };
        // Through the chunk store, as dfx and icp-cli do for large modules.
        let mut hashes = Vec::new();
        for chunk in wasm.chunks(1 << 20) {
            let args = ic_management_canister_types::UploadChunkArgs { canister_id: canister, chunk: chunk.to_vec() };
            hashes.push(
                Decode!(&call("upload_chunk", Encode!(&args).unwrap()), ic_management_canister_types::ChunkHash)
                    .unwrap(),
            );
        }
        let args = ic_management_canister_types::InstallChunkedCodeArgs {
            mode: ic_management_canister_types::CanisterInstallMode::Install,
            target_canister: canister,
            store_canister: None,
            chunk_hashes_list: hashes,
            wasm_module_hash: <sha2::Sha256 as sha2::Digest>::digest(wasm).to_vec(),
            arg,
            sender_canister_version: None,
        };
        call("install_chunked_code", Encode!(&args).unwrap());
    }

    /// Runs the `mainer` binary against the network with the admin's key.
    fn mainer(&self, args: &[&str]) -> Run {
        let output = self.command(args).output().expect("mainer runs");
        let run = Run {
            code: output.status.code().unwrap_or(-1),
            out: String::from_utf8(output.stdout).unwrap(),
            err: String::from_utf8(output.stderr).unwrap(),
        };
        if std::env::var_os("MAINER_CLI_SHOW").is_some() {
            println!("$ mainer {}\n{}{}[exit {}]\n", args.join(" "), run.err, run.out, run.code);
        }
        run
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mainer"));
        c.args(["--network", &self.url, "--pem", self.pem.to_str().unwrap(), "--project", "/nonexistent"]);
        c.args(["--creator", &self.creator.to_text(), "--game-state", &self.game.to_text()]);
        c.args(args);
        c
    }

    fn uploads(&self) -> Vec<UploadStatus> {
        let arg = Encode!(&PageRequest { offset: 0, limit: 10 }).unwrap();
        let q = self.agent.query(&self.creator, "list_uploads").with_arg(arg);
        let bytes = self.rt.block_on(q.call()).unwrap();
        Decode!(&bytes, CreatorResult<Page<UploadStatus>>).unwrap().unwrap().items
    }
}

fn ok(run: Run) -> Run {
    assert_eq!(run.code, 0, "{run:?}");
    run
}

/// Starts a network and deploys the game state and the creator with ic-agent.
fn deploy() -> Local {
    let config = sim_server::Config { bind: "127.0.0.1:0".into(), ..Default::default() };
    let running = sim_server::start(config).expect("sim-server starts");
    let identity = BasicIdentity::from_pem(ADMIN_PEM.as_bytes()).unwrap();
    let agent = Agent::builder().with_url(&running.url).with_identity(identity).build().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(agent.fetch_root_key()).expect("the root key");
    let admin = agent.get_principal().unwrap();
    let mut local = Local {
        url: running.url.clone(),
        pem: temp_file("admin.pem", ADMIN_PEM.as_bytes()),
        agent,
        rt,
        game: Principal::anonymous(),
        creator: Principal::anonymous(),
    };
    let create = |cycles: u128| {
        let args = ic_management_canister_types::ProvisionalCreateCanisterWithCyclesArgs {
            amount: Some(Nat::from(cycles)),
            settings: None,
            specified_id: None,
            sender_canister_version: None,
        };
        let reply = local.update(
            Principal::management_canister(),
            "provisional_create_canister_with_cycles",
            Encode!(&args).unwrap(),
        );
        Decode!(&reply, ic_management_canister_types::CanisterIdRecord).unwrap().canister_id
    };
    let (game, creator) = (create(10_000_000_000_000), create(100_000_000_000_000));
    local.game = game;
    local.creator = creator;
    let g =
        GameStateArgs::Init(GameStateInit { admins: vec![admin], registrars: vec![creator], max_answer_bytes: None });
    local.install(game, &std::fs::read(wasm_dir().join("game_state.wasm")).unwrap(), Encode!(&g).unwrap());
    let settings = CreatorSettings { job_interval_seconds: 1, ..CreatorSettings::default() };
    let init =
        CreatorInit { admins: vec![admin], game_state: game, allowed_creators: vec![], settings: Some(settings) };
    let c = CreatorArgs::Init(init);
    local.install(creator, &std::fs::read(wasm_dir().join("mainer_creator.wasm")).unwrap(), Encode!(&c).unwrap());
    std::mem::forget(running); // the network lives as long as the test process
    local
}

fn model() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/models/stories260Ktok512.gguf").to_string()
}

#[test]
fn the_cli_runs_the_factory_over_http() {
    let local = deploy();
    let run = ok(local.mainer(&["whoami"]));
    assert!(run.out.contains(&local.agent.get_principal().unwrap().to_text()), "{}", run.out);
    let controller = wasm_dir().join("mainer_controller.wasm");
    let run = ok(local.mainer(&["upload", "--kind", "controller-wasm", controller.to_str().unwrap()]));
    assert!(run.err.contains("verified on-chain") || run.out.contains("verified on-chain"), "{run:?}");
    ok(local.mainer(&["upload", "--kind", "llm-wasm", wasm_dir().join("llm.wasm").to_str().unwrap()]));

    // The model upload is killed once part of it has arrived, then resumed.
    let mut child = local
        .command(&["upload", "--kind", "model", &model(), "--chunk-size", "20000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let received = loop {
        if let Some(u) = local.uploads().first().filter(|u| u.received > 0) {
            break u.received;
        }
        assert!(Instant::now() < deadline, "the upload never started");
        std::thread::sleep(Duration::from_millis(5));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let total = std::fs::metadata(model()).unwrap().len();
    assert!(received < total, "killed halfway: {received} of {total} bytes");
    let run = ok(local.mainer(&["upload", "--kind", "model", &model(), "--chunk-size", "200000"]));
    assert!(run.err.contains("resuming upload") || run.out.contains("resuming upload"), "{run:?}");
    assert!(local.uploads().is_empty(), "no unfinished upload remains");
    let run = ok(local.mainer(&["artefacts"]));
    assert_eq!(run.out.lines().count(), 4, "{}", run.out);

    // A mAIner, its job followed to the end.
    let owner = local.agent.get_principal().unwrap().to_text();
    let run = ok(local.mainer(&[
        "create-mainer",
        "--role",
        "own",
        "--llms",
        "1",
        "--owner",
        &owner,
        "--prompt",
        "plain",
        "--pull-interval",
        "1",
        "--process-interval",
        "1",
        "--max-tokens-update",
        "8",
        "--follow",
    ]));
    let done = run.out.lines().find(|l| l.contains(" done: mAIner ")).unwrap_or_else(|| panic!("{run:?}"));
    let mainer = done.split("mAIner ").nth(1).unwrap().split(',').next().unwrap().to_string();
    let run = ok(local.mainer(&["mainers"]));
    assert!(run.out.contains(&mainer) && run.out.contains("ready"), "{}", run.out);
    let run = ok(local.mainer(&["llms"]));
    assert!(run.out.contains("healthy"), "{}", run.out);

    // A challenge, answered by the model.
    ok(local.mainer(&["challenge", "add", "--question", "Once upon a time", "--max-tokens", "8"]));
    let deadline = Instant::now() + Duration::from_secs(120);
    let run = loop {
        let run = ok(local.mainer(&["--json", "submissions", "--challenge", "1"]));
        let json: serde_json::Value = serde_json::from_str(&run.out).unwrap();
        if json.as_array().is_some_and(|a| !a.is_empty()) {
            break json;
        }
        assert!(Instant::now() < deadline, "no answer within two minutes");
        std::thread::sleep(Duration::from_secs(1));
    };
    assert_eq!(run[0]["mainer"], mainer.as_str());
    assert!(!run[0]["answer"].as_str().unwrap().is_empty(), "{run}");

    // A new controller wasm for the fleet.
    let mut wasm = std::fs::read(&controller).unwrap();
    wasm.extend_from_slice(&[0, 3, 2, b'v', b'2']); // a custom section: another version
    let v2 = temp_file("mainer_controller_v2.wasm", &wasm);
    ok(local.mainer(&["upload", "--kind", "controller-wasm", v2.to_str().unwrap()]));
    let sha = mainer_cli::commands::upload::sha256_hex(&wasm);
    let run = ok(local.mainer(&["fleet-upgrade", "--wasm", &sha]));
    assert!(run.out.trim_end().ends_with("done: 1 canister"), "{}", run.out);
    let hash = local.rt.block_on(local.agent.read_state_canister_module_hash(Principal::from_text(&mainer).unwrap()));
    assert_eq!(hex::encode(hash.unwrap()), sha, "the certified module hash is the new wasm's");
}
