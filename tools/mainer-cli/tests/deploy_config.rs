//! dfx.json and scripts/deploy.sh against the canisters' interfaces: every
//! canister is declared with its committed .did and built wasm, and every
//! install argument the deployment uses (dfx.json's `init_arg`, the script's
//! Candid text) decodes into the canister's Rust init type.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use candid::types::Type;
use candid::{CandidType, Principal, TypeEnv};
use candid_parser::utils::{CandidSource, instantiate_candid, service_compatible};
use mainer_types::creator::{CreatorArgs, CreatorUpgrade};
use mainer_types::game::{GameStateArgs, GameStateUpgrade};
use serde::de::DeserializeOwned;
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn dfx_json() -> Value {
    serde_json::from_str(&std::fs::read_to_string(root().join("dfx.json")).unwrap()).unwrap()
}

/// The init argument types of a .did's service.
fn init_types(did: &Path) -> (TypeEnv, Vec<Type>) {
    let (args, (env, _)) = instantiate_candid(CandidSource::File(did)).unwrap_or_else(|e| panic!("{did:?}: {e}"));
    (env, args)
}

/// Candid text → typed by the .did → decoded as `T`.
fn decode<T: CandidType + DeserializeOwned>(text: &str, env: &TypeEnv, types: &[Type]) -> T {
    let args = candid_parser::parse_idl_args(text).unwrap_or_else(|e| panic!("`{text}` does not parse: {e}"));
    let bytes = args.to_bytes_with_types(env, types).unwrap_or_else(|e| panic!("`{text}` does not fit the .did: {e}"));
    candid::decode_one(&bytes).unwrap_or_else(|e| panic!("`{text}` does not decode into the Rust type: {e}"))
}

/// icp.yaml (for icp-cli) deploys what dfx.json deploys: the game state and
/// the creator, from the same target/wasm modules built by scripts/build.sh,
/// the game state with the same static init argument; its local network is
/// dfx's local address.
#[test]
fn icp_yaml_matches_dfx_json() {
    let icp = std::fs::read_to_string(root().join("icp.yaml")).unwrap();
    let dfx = dfx_json();
    let names: Vec<&str> =
        icp.lines().filter_map(|l| l.trim().strip_prefix("- name: ")).filter(|n| *n != "local").collect();
    assert_eq!(names, ["game_state", "mainer_creator"]);
    for name in names {
        let section = icp.split(&format!("- name: {name}\n")).nth(1).unwrap().split("\n  - name: ").next().unwrap();
        assert!(section.contains("- scripts/build.sh"), "{name} is built by scripts/build.sh");
        assert!(
            section.contains(&format!(
                "cp {} \"$ICP_WASM_OUTPUT_PATH\"",
                dfx["canisters"][name]["wasm"].as_str().unwrap()
            )),
            "{name}: {section}"
        );
        match dfx["canisters"][name].get("init_arg") {
            Some(arg) => assert!(section.contains(&format!("init_args: \"{}\"", arg.as_str().unwrap())), "{name}"),
            None => assert!(!section.contains("init_args"), "{name}"),
        }
    }
    let bind = dfx["networks"]["local"]["bind"].as_str().unwrap();
    assert!(icp.contains(&format!("url: http://{bind}\n")), "the local network is dfx's");
}

#[test]
fn dfx_json_declares_every_canister_with_its_did_and_wasm() {
    let dfx = dfx_json();
    let canisters = dfx["canisters"].as_object().unwrap();
    let names: BTreeSet<&str> = canisters.keys().map(String::as_str).collect();
    assert_eq!(names, BTreeSet::from(["game_state", "llm", "mainer_controller", "mainer_creator", "test_llm"]));
    let build_sh = std::fs::read_to_string(root().join("scripts/build.sh")).unwrap();
    for (name, c) in canisters {
        assert_eq!(c["type"], "custom", "{name}");
        assert_eq!(c["build"], "scripts/build.sh", "{name}");
        assert_eq!(c["wasm"], format!("target/wasm/{name}.wasm"), "{name}");
        assert!(build_sh.contains(&format!("\n  {name}\n")), "scripts/build.sh does not build {name}");
        let did = root().join(c["candid"].as_str().unwrap());
        let (env, types) = init_types(&did);
        if let Some(arg) = c.get("init_arg") {
            let text = arg.as_str().unwrap();
            match name.as_str() {
                "game_state" => {
                    let GameStateArgs::Init(init) = decode(text, &env, &types) else { panic!("{name}: not Init") };
                    assert!(init.admins.is_empty() && init.registrars.is_empty());
                }
                _ => {
                    assert!(types.is_empty(), "{name} takes install arguments");
                    assert_eq!(candid_parser::parse_idl_args(text).unwrap().args.len(), 0, "{name}");
                }
            }
        }
    }
    assert_eq!(dfx["networks"]["local"]["bind"], "127.0.0.1:4943");
}

#[test]
fn the_deploy_script_arguments_decode_into_the_init_types() {
    let (admin, game, creator) = (
        Principal::self_authenticating([1; 32]),
        Principal::from_text("bkyz2-fmaaa-aaaaa-qaaaq-cai").unwrap(),
        Principal::from_text("bd3sg-teaaa-aaaaa-qaaba-cai").unwrap(),
    );
    let out = Command::new("bash")
        .arg(root().join("scripts/deploy.sh"))
        .args(["--print-init-args", &admin.to_text(), &game.to_text(), &creator.to_text()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");

    let (g_env, g_types) = init_types(&root().join("canisters/game_state/game_state.did"));
    let (c_env, c_types) = init_types(&root().join("canisters/mainer_creator/mainer_creator.did"));

    let GameStateArgs::Init(g) = decode(lines[0], &g_env, &g_types) else { panic!("game state: not Init") };
    assert_eq!((g.admins, g.registrars, g.max_answer_bytes), (vec![admin], vec![creator], None));
    let CreatorArgs::Init(c) = decode(lines[1], &c_env, &c_types) else { panic!("creator: not Init") };
    assert_eq!((c.admins, c.game_state, c.allowed_creators, c.settings), (vec![admin], game, vec![], None));
    // Typed as dfx types them (the .did's install argument), read as the canisters' post_upgrade does.
    let g_up: Option<GameStateArgs> = decode(lines[2], &g_env, &g_types);
    assert_eq!(g_up, Some(GameStateArgs::Upgrade(GameStateUpgrade::default())));
    let c_up: Option<CreatorArgs> = decode(lines[3], &c_env, &c_types);
    assert_eq!(c_up, Some(CreatorArgs::Upgrade(CreatorUpgrade::default())));

    // The canisters take them: upgrade a deployed factory with the script's bytes.
    use integration_tests::{TestEnv, factory::deploy_factory, wasm};
    let env = integration_tests::SimEnv::new();
    let f = deploy_factory(&env, None);
    let bytes = |text: &str, env: &TypeEnv, types: &[Type]| {
        candid_parser::parse_idl_args(text).unwrap().to_bytes_with_types(env, types).unwrap()
    };
    env.upgrade(integration_tests::deploy::admin(), f.game, &wasm("game_state"), bytes(lines[2], &g_env, &g_types))
        .expect("game state upgrades");
    env.upgrade(
        integration_tests::deploy::admin(),
        f.creator,
        &wasm("mainer_creator"),
        bytes(lines[3], &c_env, &c_types),
    )
    .expect("creator upgrades");
}

#[test]
fn our_llm_canisters_are_drop_ins_for_the_llama_cpp_interface() {
    let llama_cpp = root().join("files/llama_cpp.did");
    for did in ["canisters/llm/llm.did", "integration-tests/fixtures/test_llm/test_llm.did"] {
        service_compatible(CandidSource::File(&root().join(did)), CandidSource::File(&llama_cpp))
            .unwrap_or_else(|e| panic!("{did} cannot stand in for files/llama_cpp.did: {e}"));
    }
}

/// Runs `scripts/deploy.sh` with `args` and a stand-in `dfx` that logs its
/// calls; returns (its stdout, the calls). Panics if the script fails.
fn deploy_with_fake_dfx(tag: &str, args: &[&str]) -> (String, String) {
    let dir = std::env::temp_dir().join(format!("mainer-cli-fake-dfx-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("calls.log");
    let fake = r#"#!/usr/bin/env bash
echo "$*" >> "$FAKE_DFX_LOG"
args=" $* "
case "$args" in
  *" identity whoami "*) echo default ;;
  *" identity get-principal "*) echo 2vxsx-fae ;;
  *" canister id game_state "*) echo bkyz2-fmaaa-aaaaa-qaaaq-cai ;;
  *" canister id mainer_creator "*) echo bd3sg-teaaa-aaaaa-qaaba-cai ;;
esac
exit 0
"#;
    let dfx = dir.join("dfx");
    std::fs::write(&dfx, fake).unwrap();
    Command::new("chmod").arg("+x").arg(&dfx).status().unwrap();
    let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("bash")
        .arg(root().join("scripts/deploy.sh"))
        .args(args)
        .env("PATH", path)
        .env("FAKE_DFX_LOG", &log)
        .env("MAINER_CLI", env!("CARGO_BIN_EXE_mainer"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let calls = std::fs::read_to_string(&log).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    (stdout, calls)
}

/// The script's order: both canisters are created before either is
/// installed with the other's id.
#[test]
fn the_deploy_script_creates_both_canisters_then_installs_them_with_each_others_ids() {
    let (stdout, calls) =
        deploy_with_fake_dfx("install", &["--network", "local", "--mode", "install", "--skip-upload"]);
    let at = |needle: &str| calls.find(needle).unwrap_or_else(|| panic!("no `{needle}` in\n{calls}"));
    let installs = at("canister install game_state");
    assert!(at("canister create game_state") < installs && at("canister create mainer_creator") < installs);
    assert!(calls.contains(r#"registrars = vec { principal "bd3sg-teaaa-aaaaa-qaaba-cai" }"#), "{calls}");
    assert!(calls.contains(r#"game_state = principal "bkyz2-fmaaa-aaaaa-qaaaq-cai""#), "{calls}");
    assert!(calls.contains("ledger fabricate-cycles --canister mainer_creator"), "{calls}");
    assert!(stdout.contains("create-mainer --role own --owner 2vxsx-fae"), "{stdout}");
}

/// `--mode upgrade` stops the creator (dfx waits for its calls in flight),
/// upgrades it and starts it again.
#[test]
fn the_deploy_script_stops_the_creator_around_its_upgrade() {
    let (_, calls) = deploy_with_fake_dfx("upgrade", &["--network", "local", "--mode", "upgrade", "--skip-upload"]);
    let at = |needle: &str| calls.find(needle).unwrap_or_else(|| panic!("no `{needle}` in\n{calls}"));
    let upgrade = at("canister install mainer_creator --network local --mode upgrade");
    assert!(at("canister stop mainer_creator") < upgrade, "{calls}");
    assert!(upgrade < at("canister start mainer_creator"), "{calls}");
}

/// The content of a shell double-quoted string starting at `s[0] == '"'`, with
/// `\"` unescaped and `$(...)` / `$NAME` replaced by a principal.
fn double_quoted(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    assert_eq!(chars[0], '"');
    let (mut out, mut i) = (String::new(), 1);
    while i < chars.len() {
        match chars[i] {
            '\\' if i + 1 < chars.len() && matches!(chars[i + 1], '"' | '$' | '\\') => {
                out.push(chars[i + 1]);
                i += 2;
            }
            '"' => return out,
            '$' if chars.get(i + 1) == Some(&'(') => {
                let mut depth = 0;
                while i < chars.len() {
                    match chars[i] {
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                out.push_str("aaaaa-aa");
                i += 1;
            }
            '$' => {
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                out.push_str("aaaaa-aa");
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    panic!("unterminated string: {s}");
}

fn did_of(canister: &str) -> PathBuf {
    root().join(match canister {
        "game_state" => "canisters/game_state/game_state.did",
        "mainer_creator" => "canisters/mainer_creator/mainer_creator.did",
        // A mAIner's controller, by id.
        "$MAINER" => "canisters/mainer_controller/mainer_controller.did",
        // DFINITY's cycles ledger, next to the project (see ../shared/peers/README.md).
        "$LEDGER" => "../shared/peers/cycles_ledger.did",
        other => panic!("no .did known for {other}"),
    })
}

/// Every `dfx canister call` and `dfx deploy … --argument` of the README's
/// "Operating the factory" section is well-typed for its canister.
#[test]
fn the_readme_candid_examples_fit_the_interfaces() {
    use mainer_types::PageRequest;
    use mainer_types::creator::CreateMainerRequest;
    use mainer_types::game::NewChallenge;

    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme.find("## Operating the factory").expect("the README has the section");
    let section = &readme[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
    let mut checked = 0;
    for (at, _) in section.match_indices("dfx canister call ").chain(section.match_indices("dfx deploy ")) {
        let line = &section[at..];
        let words: Vec<&str> = line.split_whitespace().take(5).collect();
        let (canister, method, quote) = if words[1] == "canister" {
            (words[3], Some(words[4]), line.find('"'))
        } else {
            (words[2], None, line.find("--argument \"").map(|i| i + "--argument ".len()))
        };
        let Some(quote) = quote.filter(|q| !line[..*q].contains('\n')) else { continue };
        let text = double_quoted(&line[quote..]);
        if !did_of(canister).exists() {
            println!("SKIPPED: {canister}: no {}", did_of(canister).display());
            continue;
        }
        let (env, service_args) = init_types(&did_of(canister));
        let (_, (_, service)) = instantiate_candid(CandidSource::File(&did_of(canister))).unwrap();
        let types = match method {
            Some(m) => env.get_method(&service, m).unwrap_or_else(|e| panic!("{canister}.{m}: {e}")).args.clone(),
            None => service_args,
        };
        let args = candid_parser::parse_idl_args(&text).unwrap_or_else(|e| panic!("`{text}`: {e}"));
        let bytes = args.to_bytes_with_types(&env, &types).unwrap_or_else(|e| panic!("`{text}` for {canister}: {e}"));
        match (canister, method) {
            ("mainer_creator", Some("create_mainer")) => {
                let req: CreateMainerRequest = candid::decode_one(&bytes).unwrap();
                assert_eq!(req.llm_count == 0, req.share_service.is_some(), "{text}");
            }
            ("mainer_creator", Some("job" | "retry_job")) => {
                candid::decode_one::<u64>(&bytes).unwrap();
            }
            ("mainer_creator", Some("list_jobs" | "list_mainers")) => {
                candid::decode_one::<PageRequest>(&bytes).unwrap();
            }
            ("game_state", Some("add_challenge")) => {
                candid::decode_one::<NewChallenge>(&bytes).unwrap();
            }
            ("game_state", Some("submissions_by_challenge")) => {
                candid::decode_args::<(u64, PageRequest)>(&bytes).unwrap();
            }
            ("game_state", None) => {
                let _: GameStateArgs = candid::decode_one(&bytes).unwrap();
            }
            ("mainer_creator", None) => {
                let _: CreatorArgs = candid::decode_one(&bytes).unwrap();
            }
            ("mainer_creator", Some("price_of")) => {
                candid::decode_one::<mainer_types::economy::OrderKind>(&bytes).unwrap();
            }
            ("mainer_creator", Some("order_mainer")) => {
                candid::decode_one::<mainer_types::economy::OrderRequest>(&bytes).unwrap();
            }
            ("mainer_creator", Some("top_up")) => {
                candid::decode_one::<mainer_types::economy::TopUpRequest>(&bytes).unwrap();
            }
            ("mainer_creator", Some("set_economy")) => {
                let e: mainer_types::economy::EconomySettings = candid::decode_one(&bytes).unwrap();
                assert!(e.cycles_ledger.is_some(), "{text}");
            }
            ("$LEDGER", Some("icrc2_approve")) => {
                candid::decode_one::<mainer_types::cycles_ledger::ApproveArgs>(&bytes).unwrap();
            }
            ("$MAINER", Some("set_burn_rate")) => {
                candid::decode_one::<mainer_types::controller::BurnRate>(&bytes).unwrap();
            }
            ("$MAINER", Some("set_cycles_floor")) => {
                candid::decode_one::<u128>(&bytes).unwrap();
            }
            ("game_state", Some("set_game_settings")) => {
                let g: mainer_types::game_play::GameSettings = candid::decode_one(&bytes).unwrap();
                assert_eq!(g.split, mainer_types::game_play::RewardSplit::default(), "{text}");
            }
            ("game_state", Some("add_topic")) => {
                candid::decode_one::<mainer_types::game_play::NewTopic>(&bytes).unwrap();
            }
            ("game_state", Some("list_topics" | "list_payouts")) => {
                candid::decode_one::<PageRequest>(&bytes).unwrap();
            }
            ("game_state", Some("register_game_agent")) => {
                candid::decode_args::<(candid::Principal, mainer_types::game_play::GameAgentKind)>(&bytes).unwrap();
            }
            ("game_state", Some("challenge_ranking")) => {
                candid::decode_args::<(u64, PageRequest)>(&bytes).unwrap();
            }
            ("game_state", Some("leaderboard")) => {
                candid::decode_one::<mainer_types::game_play::LeaderboardRequest>(&bytes).unwrap();
            }
            ("game_state", Some("resolve_payout")) => {
                candid::decode_args::<(u64, bool)>(&bytes).unwrap();
            }
            ("game_state", Some("set_payout_to")) => {
                candid::decode_args::<(candid::Principal, mainer_types::game_play::PayoutTo)>(&bytes).unwrap();
            }
            other => panic!("add a Rust type check for {other:?}"),
        }
        checked += 1;
    }
    assert!(checked >= 19, "only {checked} Candid examples found");
}
