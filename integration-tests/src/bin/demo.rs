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
    /// Users order (and pay for) the Own mAIners and ShareAgents on the cycles ledger.
    pay_ledger: bool,
    /// The game: topics, a Challenger, two Judges, results, rewards and payouts.
    game: bool,
    /// The Judges' LLMs are the test fixture scripted to answer with a score.
    scripted_judges: bool,
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
        pay_ledger: false,
        game: false,
        scripted_judges: false,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            print!("{HELP}");
            std::process::exit(0);
        }
        if flag == "--game" || flag == "--scripted-judges" {
            o.game = true;
            o.scripted_judges |= flag == "--scripted-judges";
            continue;
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
            "--pay" if value == "ledger" => o.pay_ledger = true,
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

    let ledger = o.pay_ledger.then(|| paid::setup(&env, &f));
    // Order the mAIners: Own and ShareService first, ShareAgents once their service exists.
    let mut jobs: Vec<JobView> = Vec::new();
    let mut buyers = 0u8;
    let mut order = |role, llms, service| match (ledger, role) {
        (Some(ledger), MainerRole::Own | MainerRole::ShareAgent) => {
            buyers += 1;
            paid::order(&env, &f, ledger, buyers, role, llms, service)
        }
        _ => create_mainer(&env, f.creator, mainer_request(role, llms, service, o.tokens_per_call))
            .unwrap_or_else(|e| fail(&e.to_string())),
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

    let miners: Vec<&JobView> =
        done.iter().filter(|j| j.kind != JobKind::CreateMainer(MainerRole::ShareService)).collect();
    if o.game {
        let mainers: Vec<Principal> = miners.iter().map(|j| controller_of(j)).collect();
        game::play(&env, &f, &o, &mainers);
        return;
    }
    // Challenges, then time passes until every answering mAIner submitted to each.
    let challenges: Vec<_> = (0..o.challenges)
        .map(|i| add_challenge(&env, f.game, QUESTIONS[i as usize % QUESTIONS.len()], o.tokens))
        .collect();
    println!("* added {} challenges; running the mAIners", challenges.len());
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
    if let (Some(ledger), Some(first)) = (ledger, miners.first()) {
        paid::run_low_and_top_up(&env, &f, ledger, controller_of(first));
    }
}

/// The paying scenario (`--pay ledger`): DFINITY's cycles ledger, users who
/// order their mAIners and pay with ICRC-2, one that runs low and is topped up.
mod paid {
    use candid::Principal;
    use integration_tests::deploy::{admin, run_for, test_settings};
    use integration_tests::factory::{Factory, job};
    use integration_tests::ledger::{approve, balance, cycles_ledger_wasm, deploy_cycles_ledger};
    use integration_tests::{SimEnv, TestEnv, TestEnvExt, user};
    use mainer_types::MainerRole;
    use mainer_types::calls::{controller as controller_calls, creator as creator_calls};
    use mainer_types::creator::JobView;
    use mainer_types::cycles_ledger::FEE;
    use mainer_types::economy::{EconomySettings, KindPrice, OrderKind, OrderRequest, Payment, TopUpRequest};

    use super::{fail, short};

    const T: u128 = 1_000_000_000_000;

    fn buyer(n: u8) -> Principal {
        user(100 + n)
    }

    pub fn setup(env: &SimEnv, f: &Factory) -> Principal {
        let wasm = cycles_ledger_wasm().unwrap_or_else(|e| fail(&e));
        let balances: Vec<(Principal, u128)> = (1..=50).map(|n| (buyer(n), 100 * T)).collect();
        let ledger = deploy_cycles_ledger(env, &wasm, &balances);
        let settings = EconomySettings {
            cycles_ledger: Some(ledger),
            own: KindPrice { controller_cycles: 2 * T, llm_cycles: 5 * T, fee: 100_000_000_000 },
            share_agent: KindPrice { controller_cycles: T, llm_cycles: 0, fee: 100_000_000_000 },
            ..EconomySettings::default()
        };
        env.call(admin(), f.creator, &creator_calls::SET_ECONOMY, (settings,)).unwrap().unwrap();
        println!("* cycles ledger {ledger}: 50 users hold 100 T each; prices set by the admin");
        ledger
    }

    pub fn order(
        env: &SimEnv,
        f: &Factory,
        ledger: Principal,
        n: u8,
        role: MainerRole,
        llms: u32,
        service: Option<Principal>,
    ) -> JobView {
        let kind = match role {
            MainerRole::Own => OrderKind::Own { llm_count: llms },
            _ => OrderKind::ShareAgent { share_service: service },
        };
        let who = buyer(n);
        let q = env.call(who, f.creator, &creator_calls::PRICE_OF, (kind.clone(),)).unwrap().unwrap();
        approve(env, ledger, who, f.creator, q.approve).unwrap_or_else(|e| fail(&format!("approve: {e:?}")));
        let req = OrderRequest {
            kind,
            payment: Payment::CyclesLedger { created_at_time: None },
            controller_settings: Some(test_settings()),
            keep_funds_on_failure: None,
        };
        let o = env
            .call(who, f.creator, &creator_calls::ORDER_MAINER, (req,))
            .unwrap()
            .unwrap_or_else(|e| fail(&e.to_string()));
        println!(
            "* user {} ordered a {role:?} mAIner (order {}): paid {} cycles on the ledger, now holds {}",
            short(&who),
            o.job,
            q.ledger_amount + FEE,
            balance(env, ledger, who)
        );
        job(env, f.creator, o.job)
    }

    pub fn run_low_and_top_up(env: &SimEnv, f: &Factory, ledger: Principal, mainer: Principal) {
        let owner = job_owner(env, f, mainer);
        let floor = env.cycle_balance(mainer) + T;
        env.call(owner, mainer, &controller_calls::SET_CYCLES_FLOOR, (floor,)).unwrap().unwrap();
        run_for(env, 15);
        let h = env.call(owner, mainer, &controller_calls::HEALTH, ()).unwrap();
        println!(
            "\n* {} runs low (its owner set the floor above its balance): low_cycles {}, paused {}, {:?}",
            short(&mainer),
            h.low_cycles,
            h.paused,
            h.problems
        );
        approve(env, ledger, owner, f.creator, 2 * T + 2 * FEE).unwrap();
        let top = TopUpRequest { mainer, amount: 2 * T, payment: Payment::CyclesLedger { created_at_time: None } };
        let got = env
            .call(owner, f.creator, &creator_calls::TOP_UP, (top,))
            .unwrap()
            .unwrap_or_else(|e| fail(&e.to_string()));
        run_for(env, 15);
        let h = env.call(owner, mainer, &controller_calls::HEALTH, ()).unwrap();
        println!(
            "* topped up with {got} cycles through the creator: low_cycles {}, paused {}, cycles per answer {:?}",
            h.low_cycles, h.paused, h.cycles_per_answer
        );
        let b = env.call(admin(), f.creator, &creator_calls::BOOKS, ()).unwrap().unwrap();
        println!("\n## The creator's books\n");
        println!("| orders | received | spent on canisters | refunded | forwarded | fees | ledger fees | top-ups |");
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            b.orders, b.received, b.spent_on_canisters, b.refunded, b.forwarded, b.fees, b.ledger_fees, b.top_ups
        );
    }

    fn job_owner(env: &SimEnv, f: &Factory, mainer: Principal) -> Principal {
        let config = env.call(admin(), mainer, &controller_calls::CONFIG, ()).unwrap().unwrap();
        let _ = f;
        config.owner
    }
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

/// `--game`: the loop of the game. Admins set the rules, topics and the
/// reward pool; the creator makes a Challenger and two Judges; the
/// Challenger turns topics into challenges, the mAIners answer them, the
/// Judges score the answers, the game state ranks them, splits the reward
/// and pays it out.
mod game {
    use candid::{CandidType, Encode, Principal};
    use integration_tests::deploy::{add_llm, admin, deploy_test_llm, run_for, test_settings};
    use integration_tests::factory::*;
    use integration_tests::{SimEnv, TestEnv, TestEnvExt, user, wasm};
    use mainer_types::calls::game_state as g;
    use mainer_types::controller::{ControllerArgs, ControllerInit};
    use mainer_types::creator::JobStatus;
    use mainer_types::game::{GameStateArgs, GameStateUpgrade, GenerationSettings};
    use mainer_types::game_play::{GameAgentKind, GameSettings, NewTopic, PayoutState, ScoreOutcome};
    use mainer_types::{MainerRole, PageRequest};

    use super::{Options, fail, follow, short};

    const REWARD: u128 = 1_000_000_000_000;

    #[derive(CandidType)]
    struct ForwardArg {
        target: Principal,
        method: String,
        arg: Vec<u8>,
        cycles: u128,
        timeout_seconds: Option<u32>,
    }

    #[derive(CandidType)]
    struct FixtureConfigArg {
        answer_tokens: Option<u32>,
        word_prefix: Option<String>,
    }

    /// The operator's wallet: a canister that attaches cycles to a call (the
    /// simulator's probe fixture stands in for a cycles wallet).
    fn fund_pool(env: &SimEnv, game: Principal, cycles: u128) {
        let wallet = env.create_canister(admin());
        env.install(admin(), wallet, &wasm("sim_probe"), candid::encode_one(None::<()>).unwrap()).expect("wallet");
        env.add_cycles(wallet, cycles);
        let up = GameStateUpgrade { admins: Some(vec![admin(), wallet]), ..GameStateUpgrade::default() };
        env.upgrade(admin(), game, &wasm("game_state"), Encode!(&Some(GameStateArgs::Upgrade(up))).unwrap())
            .expect("the game state takes the wallet as an admin");
        let arg = ForwardArg {
            target: game,
            method: "fund_reward_pool".into(),
            arg: Encode!().unwrap(),
            cycles,
            timeout_seconds: None,
        };
        env.update(user(1), wallet, "forward", Encode!(&arg).unwrap()).expect("the wallet forwards");
    }

    /// A Judge whose LLM is the test fixture saying words that start with `prefix`.
    fn scripted_judge(env: &SimEnv, game: Principal, prefix: &str) -> Principal {
        let llm = deploy_test_llm(env, 4);
        let cfg = FixtureConfigArg { answer_tokens: Some(3), word_prefix: Some(prefix.into()) };
        env.update(admin(), llm, "fixture_configure", Encode!(&cfg).unwrap()).expect("configured");
        let id = env.create_canister(admin());
        let init = ControllerInit {
            role: MainerRole::Judge,
            game_state: game,
            creator: admin(),
            owner: admin(),
            share_service: None,
            settings: Some(test_settings()),
        };
        env.install(admin(), id, &wasm("mainer_controller"), Encode!(&ControllerArgs::Init(init)).unwrap())
            .expect("judge");
        add_llm(env, id, llm);
        env.call(admin(), game, &g::REGISTER_GAME_AGENT, (id, GameAgentKind::Judge)).unwrap().expect("registered");
        id
    }

    pub fn play(env: &SimEnv, f: &Factory, o: &Options, mainers: &[Principal]) {
        let rules = GameSettings {
            max_open_challenges: 2,
            scored_to_close: mainers.len() as u64,
            lease_seconds: 120,
            reward_per_challenge: REWARD,
            ..GameSettings::default()
        };
        env.call(admin(), f.game, &g::SET_GAME_SETTINGS, (rules.clone(),)).unwrap().expect("rules");
        fund_pool(env, f.game, 10 * REWARD);
        println!(
            "* rules: {} scored answers close a challenge, {} cycles reward, split {:?}",
            rules.scored_to_close, REWARD, rules.split
        );
        for (text, weight) in [("a little cat", 2), ("the sea", 1)] {
            let t = NewTopic {
                text: text.into(),
                weight,
                settings: GenerationSettings { max_tokens: o.tokens, ..GenerationSettings::default() },
                max_submissions: None,
                scored_to_close: None,
                // Closed by its deadline if its answers cannot all be scored.
                open_seconds: Some(300),
            };
            let t = env.call(admin(), f.game, &g::ADD_TOPIC, (t,)).unwrap().expect("topic");
            println!("* topic {} \"{}\", weight {}", t.id, t.text, t.weight);
        }
        let made = |role| {
            let j = create_mainer(env, f.creator, mainer_request(role, 1, None, o.tokens_per_call))
                .unwrap_or_else(|e| fail(&e.to_string()));
            let j = follow(env, f, j.id);
            if j.status != JobStatus::Done {
                fail(&format!("the {role:?} job did not finish: {:?}", j.status));
            }
            controller_of(&j)
        };
        let challenger = made(MainerRole::Challenger);
        let judges: Vec<Principal> = if o.scripted_judges {
            vec![scripted_judge(env, f.game, "4"), scripted_judge(env, f.game, "2")]
        } else {
            vec![made(MainerRole::Judge), made(MainerRole::Judge)]
        };
        println!(
            "* Challenger {challenger}; Judges {} and {}{}",
            judges[0],
            judges[1],
            if o.scripted_judges { " (their LLMs: the test fixture, scripted to say 4 and 2)" } else { "" }
        );
        let before: Vec<u128> = mainers.iter().map(|m| env.cycle_balance(*m)).collect();
        let start = env.time_ns();
        let mut seconds = 0;
        let _finalized = loop {
            let results: Vec<_> = (1..=o.challenges as u64)
                .filter_map(|id| env.call(admin(), f.game, &g::CHALLENGE_RESULT, (id,)).unwrap().ok())
                .collect();
            if results.len() as u32 >= o.challenges || seconds >= o.max_seconds {
                break results;
            }
            run_for(env, 5);
            seconds += 5;
            if seconds % 60 == 0 {
                let c = env.call(admin(), f.game, &g::COUNTS, ()).unwrap();
                println!(
                    "  t+{:>4}s  {} challenges, {} answers, {} finalized",
                    (env.time_ns() - start) / 1_000_000_000,
                    c.challenges,
                    c.submissions,
                    results.len()
                );
            }
        };
        // The challenger stops; what is open is answered, judged and paid.
        env.call(admin(), challenger, &mainer_types::calls::controller::PAUSE, ()).unwrap().expect("paused");
        run_for(env, 120);
        let last = env.call(admin(), f.game, &g::COUNTS, ()).unwrap().challenges;
        let finalized: Vec<_> =
            (1..=last).filter_map(|id| env.call(admin(), f.game, &g::CHALLENGE_RESULT, (id,)).unwrap().ok()).collect();
        report(env, f, mainers, &before, &finalized);
    }

    fn report(
        env: &SimEnv,
        f: &Factory,
        mainers: &[Principal],
        before: &[u128],
        finalized: &[mainer_types::game_play::ChallengeResult],
    ) {
        println!("\n## The game\n");
        let payouts = env.call(admin(), f.game, &g::LIST_PAYOUTS, (PageRequest::first(500),)).unwrap().unwrap().items;
        for r in finalized {
            let c = env.call(admin(), f.game, &g::CHALLENGE, (r.challenge_id,)).unwrap().unwrap();
            let origin = env.call(admin(), f.game, &g::CHALLENGE_ORIGIN, (r.challenge_id,)).unwrap().unwrap();
            println!("### Challenge {}: \"{}\"\n", c.id, c.question);
            if let Some(e) = &origin.evidence {
                println!(
                    "generated by {} from topic {:?}: prompt SHA-256 `{}`, LLM {}\n",
                    short(&origin.author),
                    origin.topic_id,
                    e.prompt_sha256,
                    short(&e.llm_canister)
                );
            }
            println!("| rank | mAIner | answer | judge | score | reward | payout |");
            println!("|---:|---|---|---|---:|---:|---|");
            let subs = env
                .call(admin(), f.game, &g::SUBMISSIONS_BY_CHALLENGE, (c.id, PageRequest::first(100)))
                .unwrap()
                .unwrap()
                .items;
            let judged = env
                .call(admin(), f.game, &g::JUDGEMENTS_BY_CHALLENGE, (c.id, PageRequest::first(100)))
                .unwrap()
                .unwrap()
                .items;
            let ranking = env
                .call(admin(), f.game, &g::CHALLENGE_RANKING, (c.id, PageRequest::first(100)))
                .unwrap()
                .unwrap()
                .items;
            for s in &subs {
                let j = judged.iter().find(|j| j.mainer == s.mainer);
                let (judge, score) = match j.map(|j| (&j.judge, &j.outcome)) {
                    Some((judge, ScoreOutcome::Scored { score })) => (short(judge), score.to_string()),
                    Some((judge, ScoreOutcome::Unscorable { raw_output })) => {
                        (short(judge), format!("unscorable: \"{}\"", raw_output.trim()))
                    }
                    None => ("-".into(), "-".into()),
                };
                let ranked = ranking.iter().find(|r| r.mainer == s.mainer);
                let payout = payouts.iter().find(|p| p.challenge_id == c.id && p.mainer == s.mainer);
                println!(
                    "| {} | {:?} {} | \"{}\" | {judge} | {score} | {} | {} |",
                    ranked.map_or("-".into(), |r| r.rank.to_string()),
                    s.role,
                    short(&s.mainer),
                    s.answer.replace('\n', " "),
                    ranked.map_or(0, |r| r.reward),
                    payout.map_or("-".into(), |p| match &p.state {
                        PayoutState::Paid { .. } => "paid (top-up)".to_string(),
                        other => format!("{other:?}"),
                    }),
                );
            }
            println!("\nreward {} cycles: {} scored, {} unscorable\n", r.reward, r.scored, r.unscorable);
        }
        let pool = env.call(admin(), f.game, &g::REWARD_POOL, ()).unwrap().unwrap();
        println!(
            "## Reward pool\n\nfunded {}, available {}, owed {}, paid {}\n",
            pool.funded, pool.available, pool.owed, pool.paid
        );
        println!("## mAIners: rewards received\n");
        println!("| mAIner | earned | paid to it | cycles now − before the game |");
        println!("|---|---:|---:|---:|");
        for (m, b) in mainers.iter().zip(before) {
            let earned = env.call(admin(), f.game, &g::MAINER_EARNINGS, (*m,)).unwrap().map_or(0, |e| e.earned);
            let paid: u128 = payouts
                .iter()
                .filter(|p| p.mainer == *m && matches!(p.state, PayoutState::Paid { .. }))
                .map(|p| p.amount)
                .sum();
            let now = env.cycle_balance(*m) as i128;
            println!("| {} | {earned} | {paid} | {} |", short(m), now - *b as i128);
        }
        println!("\n(a mAIner's balance also pays for its own work while the game runs)");
    }
}
