//! The whole mAIner factory, end to end, on the embedded IC simulator:
//! deploy the game state and the creator, upload the artefacts, order
//! mAIners of every role, add challenges, let time pass, and report.
//!
//! `scripts/demo.sh [options]`; `scripts/demo.sh --help` lists the options.

use std::collections::BTreeMap;
use std::path::PathBuf;

use candid::Principal;
use integration_tests::deploy::{add_challenge, run_for};
use integration_tests::factory::*;
use integration_tests::{SimEnv, TestEnv, wasm, wasm_dir};
use mainer_types::MainerRole;
use mainer_types::creator::{ArtefactKind, JobKind, JobStatus, JobView};
use mainer_types::game::Submission;

struct Options {
    own: u32,
    services: u32,
    agents: u32,
    llms: u32,
    challenges: u32,
    tokens: u64,
    tokens_per_call: u64,
    max_seconds: u64,
    llm_wasm: String,
    model: Option<PathBuf>,
}

// Also printed by `scripts/demo.sh --help` without building anything.
const HELP: &str = include_str!("demo_help.txt");

fn parse() -> Options {
    let mut o = Options {
        own: 1,
        services: 1,
        agents: 2,
        llms: 2,
        challenges: 3,
        tokens: 12,
        tokens_per_call: 8,
        max_seconds: 1800,
        llm_wasm: "llm".into(),
        model: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            print!("{HELP}");
            std::process::exit(0);
        }
        let value = it.next().unwrap_or_else(|| fail(&format!("{flag} needs a value")));
        let number = || value.parse::<u64>().unwrap_or_else(|_| fail(&format!("{flag} needs a number, got {value}")));
        match flag.as_str() {
            "--own" => o.own = number() as u32,
            "--services" => o.services = number() as u32,
            "--agents" => o.agents = number() as u32,
            "--llms" => o.llms = number().max(1) as u32,
            "--challenges" => o.challenges = number() as u32,
            "--tokens" => o.tokens = number().max(1),
            "--tokens-per-call" => o.tokens_per_call = number(),
            "--max-seconds" => o.max_seconds = number(),
            "--llm-wasm" => o.llm_wasm = value.clone(),
            "--model" => o.model = Some(PathBuf::from(value)),
            _ => fail(&format!("unknown option {flag}\n\n{HELP}")),
        }
    }
    if o.agents > 0 && o.services == 0 {
        fail("ShareAgents need at least one ShareService");
    }
    o
}

fn fail(msg: &str) -> ! {
    eprintln!("demo: {msg}");
    std::process::exit(2);
}

fn read(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", path.display())))
}

const QUESTIONS: [&str; 6] = [
    "Once upon a time, there was a little cat",
    "Joe loves writing stories",
    "The sun was shining and the birds",
    "Lily found a big red ball in the park",
    "One day, a small dog wanted to",
    "Tom and Sue went to the beach",
];

fn short(p: &Principal) -> String {
    let t = p.to_text();
    t.split('-').next().unwrap_or(&t).to_string()
}

fn main() {
    let o = parse();
    let env = SimEnv::new();
    let llm_wasm = match o.llm_wasm.as_str() {
        "llm" | "test_llm" => wasm(&o.llm_wasm),
        path => read(std::path::Path::new(path)),
    };
    let model = o.model.as_deref().map(read).unwrap_or_else(stories_model);

    println!("# mAIner factory on the embedded IC simulator\n");
    println!("wasm from {}; LLM wasm: {}; model: {} bytes\n", wasm_dir().display(), o.llm_wasm, model.len());

    print!("* deploying the game state and the creator ... ");
    let f = deploy_factory(&env, None);
    println!("game state {}, creator {}", f.game, f.creator);
    for (kind, name, bytes) in [
        (ArtefactKind::ControllerWasm, "mainer_controller.wasm", wasm("mainer_controller")),
        (ArtefactKind::LlmWasm, "llm wasm", llm_wasm),
        (ArtefactKind::Model, "model.gguf", model),
    ] {
        let info = upload_artefact(&env, f.creator, kind, name, &bytes);
        println!("* uploaded {:?} ({} bytes), SHA-256 computed on-chain: {}", kind, info.size, info.sha256);
    }

    // Order the mAIners: Own and ShareService first, ShareAgents once their service exists.
    let mut jobs: Vec<JobView> = Vec::new();
    let order = |role, llms, service| {
        create_mainer(&env, f.creator, mainer_request(role, llms, service, o.tokens_per_call))
            .unwrap_or_else(|e| fail(&e.to_string()))
    };
    for _ in 0..o.own {
        jobs.push(order(MainerRole::Own, o.llms, None));
    }
    let services: Vec<JobView> = (0..o.services).map(|_| order(MainerRole::ShareService, o.llms, None)).collect();
    println!("* ordered {} Own and {} ShareService mAIners; following their jobs", o.own, o.services);
    let services: Vec<JobView> = services.iter().map(|j| follow(&env, &f, j.id)).collect();
    for (i, _) in (0..o.agents).enumerate() {
        let service = controller_of(&services[i % services.len()]);
        jobs.push(order(MainerRole::ShareAgent, 0, Some(service)));
    }
    let mut done: Vec<JobView> = jobs.iter().map(|j| follow(&env, &f, j.id)).collect();
    done.extend(services);
    if let Some(failed) = done.iter().find(|j| j.status != JobStatus::Done) {
        fail(&format!("job {} did not finish: {:?}", failed.id, failed.status));
    }

    // Challenges, then time passes until every answering mAIner submitted to each.
    let challenges: Vec<_> = (0..o.challenges)
        .map(|i| add_challenge(&env, f.game, QUESTIONS[i as usize % QUESTIONS.len()], o.tokens))
        .collect();
    println!("* added {} challenges; running the mAIners", challenges.len());
    let miners: Vec<&JobView> =
        done.iter().filter(|j| j.kind != JobKind::CreateMainer(MainerRole::ShareService)).collect();
    let want = miners.len() * challenges.len();
    let start = env.time_ns();
    let mut last = usize::MAX;
    let mut seconds = 0;
    let submitted = loop {
        let n: usize = miners.iter().map(|j| submissions_by_mainer(&env, f.game, controller_of(j)).len()).sum();
        if n != last {
            println!("  t+{:>4}s  {n}/{want} answers submitted", (env.time_ns() - start) / 1_000_000_000);
            last = n;
        }
        if n == want || seconds >= o.max_seconds {
            break n;
        }
        run_for(&env, 5);
        seconds += 5;
    };

    report(&env, &f, &done, &challenges, submitted);
}

/// Runs until job `id` is over, printing its steps as they change.
fn follow(env: &SimEnv, f: &Factory, id: u64) -> JobView {
    let mut last = String::new();
    for _ in 0..3_600 {
        let j = job(env, f.creator, id);
        let line = j.slots.iter().map(|s| format!("{} {}", s.label, s.step)).collect::<Vec<_>>().join(", ");
        if line != last {
            println!("  job {id}: {line}");
            last = line;
        }
        if j.status != JobStatus::Running {
            return j;
        }
        run_for(env, 1);
    }
    fail(&format!("job {id} did not finish within an hour of simulated time"));
}

fn report(env: &SimEnv, f: &Factory, jobs: &[JobView], challenges: &[mainer_types::game::Challenge], submitted: usize) {
    println!("\n## mAIners\n");
    println!("| controller | role | LLMs | job |");
    println!("|---|---|---|---|");
    for j in jobs {
        let llms: Vec<String> = j.slots[1..].iter().filter_map(|s| s.canister).map(|c| c.to_text()).collect();
        println!(
            "| {} | {} | {} | {} |",
            controller_of(j),
            match j.kind {
                JobKind::CreateMainer(role) => format!("{role:?}"),
                other => other.to_string(),
            },
            llms.join("<br>"),
            j.id
        );
    }

    println!("\n## Jobs\n");
    println!("| job | status | slots |");
    println!("|---|---|---|");
    for j in jobs {
        let slots: Vec<String> = j
            .slots
            .iter()
            .map(|s| {
                if s.bytes_total > 0 {
                    format!("{}: {} ({} B copied)", s.label, s.step, s.bytes_copied)
                } else {
                    format!("{}: {}", s.label, s.step)
                }
            })
            .collect();
        println!("| {} | {:?} | {} |", j.id, j.status, slots.join("; "));
    }

    println!("\n## Challenges and answers\n");
    let mut by_challenge: BTreeMap<u64, Vec<Submission>> = BTreeMap::new();
    for j in jobs {
        for s in submissions_by_mainer(env, f.game, controller_of(j)) {
            by_challenge.entry(s.challenge_id).or_default().push(s);
        }
    }
    for c in challenges {
        println!("### Challenge {}: \"{}\" (max {} tokens)\n", c.id, c.question, c.settings.max_tokens);
        for s in by_challenge.get(&c.id).into_iter().flatten() {
            println!("- **{:?} {}**: \"{}\"", s.role, short(&s.mainer), s.answer.replace('\n', " "));
            println!(
                "  - prompt SHA-256 `{}`, answer SHA-256 `{}`, LLM {}, model SHA-256 `{}`, {} LLM calls, {} tokens",
                s.evidence.prompt_sha256,
                s.evidence.answer_sha256,
                short(&s.evidence.llm_canister),
                s.evidence.model_sha256.as_deref().unwrap_or("-"),
                s.evidence.llm_calls,
                s.evidence.generated_tokens.map_or("?".to_string(), |t| t.to_string()),
            );
        }
        println!();
    }

    let sim = env.simulator().unwrap();
    let (mut c_instr, mut c_cycles, mut l_instr, mut l_cycles) = (0u64, 0u128, 0u64, 0u128);
    for j in jobs {
        let (i, c) = sim.execution_totals(controller_of(j));
        c_instr += i;
        c_cycles += c;
        for llm in j.slots[1..].iter().filter_map(|s| s.canister) {
            let (i, c) = sim.execution_totals(llm);
            l_instr += i;
            l_cycles += c;
        }
    }
    let per = |x: u128| if submitted == 0 { 0 } else { x / submitted as u128 };
    println!("## Cost per submitted answer ({submitted} answers)\n");
    println!("| | instructions | execution cycles |");
    println!("|---|---:|---:|");
    println!("| mAIner controllers (all roles) | {} | {} |", per(c_instr as u128), per(c_cycles));
    println!("| LLM canisters | {} | {} |", per(l_instr as u128), per(l_cycles));
    println!("\nAll figures come from this run; instructions are counted as the simulator does (see README).");
}
