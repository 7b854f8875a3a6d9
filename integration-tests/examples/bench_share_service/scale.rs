//! The scale run: one ShareService with `llms` of our `llm` canisters (the
//! stories260K model), `agents` ShareAgents installed at the same moment
//! (as after a fleet upgrade or a mass order), `challenges` open challenges
//! (no quota: every agent may answer each once), pull every 60 s, process
//! every 5 s, for `minutes` simulated minutes; then every challenge closes
//! and the agents idle for `idle_minutes`, which measures what an idle agent
//! costs.

use std::time::Duration;

use candid::Principal;
use integration_tests::deploy::*;
use integration_tests::{SimEnv, TestEnv, TestEnvExt, wasm};
use mainer_types::MainerRole;
use mainer_types::calls::{controller as controller_calls, game_state as game_calls};
use mainer_types::controller::{ControllerArgs, ControllerInit, ControllerSettings, Counters, LlmStatus};
use mainer_types::game::RegisterMainerRequest;

pub struct Scale {
    pub agents: u64,
    pub llms: u64,
    pub minutes: u64,
    pub challenges: u64,
    pub idle_minutes: u64,
    /// The ShareService's `max_queue`.
    pub service_queue: u32,
}

impl Default for Scale {
    fn default() -> Self {
        // The scenario is 600 agents for an hour; on a 2-core machine
        // shared with builds that takes over half an hour, so the report runs
        // a third of the agents for half the time (see benchmarks/share_service.md).
        Scale { agents: 200, llms: 13, minutes: 30, challenges: 5, idle_minutes: 30, service_queue: 16 }
    }
}

pub struct Outcome {
    scale: Scale,
    answers: u64,
    agents_served: u64,
    agents_all_done: u64,
    minutes_to_all: Option<u64>,
    utilisation: f64,
    llm_calls: u64,
    per_llm_min: u64,
    per_llm_max: u64,
    served_by_minute: Vec<(u64, u64)>,
    cycles_per_answer: u128,
    agent_cycles_per_answer: u128,
    idle_agent_hour_cycles: u128,
    idle_game_hour_cycles: u128,
    pulls_per_agent_hour: f64,
    pull_cycles_hour: u128,
    wall_seconds: u64,
}

fn settings(queue: u32) -> ControllerSettings {
    ControllerSettings {
        pull_interval_seconds: 60,
        process_interval_seconds: 5,
        max_queue: queue,
        prompt_format: mainer_types::controller::PromptFormat::Plain,
        ..ControllerSettings::default()
    }
}

fn install_controller(
    env: &SimEnv,
    role: MainerRole,
    game: Principal,
    service: Option<Principal>,
    queue: u32,
) -> Principal {
    let id = env.create_canister_with(vec![admin()], 100_000_000_000_000);
    let init = ControllerInit {
        role,
        game_state: game,
        creator: admin(),
        owner: owner(),
        share_service: service,
        settings: Some(settings(queue)),
    };
    env.install(admin(), id, &wasm("mainer_controller"), candid::encode_one(ControllerArgs::Init(init)).unwrap())
        .expect("mainer_controller installs");
    let reg = RegisterMainerRequest { mainer: id, role, owner: owner() };
    env.call(admin(), game, &game_calls::REGISTER_MAINER, (reg,)).unwrap().expect("registered");
    if let Some(service) = service {
        env.call(admin(), service, &controller_calls::ADD_SHARE_AGENT, (id,)).unwrap().expect("agent added");
    }
    id
}

/// Agents that submitted at least one answer.
fn agents_served(env: &SimEnv, agents: &[Principal]) -> u64 {
    let served = |a: &Principal| {
        let c: Counters = env.call(admin(), *a, &controller_calls::COUNTERS, ()).unwrap().unwrap();
        c.submissions > 0
    };
    agents.iter().filter(|a| served(a)).count() as u64
}

fn cycles(env: &SimEnv, ids: &[Principal]) -> u128 {
    let sim = env.simulator().unwrap();
    ids.iter().map(|id| sim.execution_totals(*id).1).sum()
}

/// Lets `seconds` pass (as `run_for`), counting the `get_challenge` calls
/// the game state `game` executes and the cycles they cost it.
fn run_counting_pulls(env: &SimEnv, seconds: u64, game: Principal) -> (u64, u128) {
    let (mut n, mut cycles) = (0, 0);
    for _ in 0..seconds {
        env.simulator().unwrap().clear_executions();
        run_for(env, 1);
        let sim = env.simulator().unwrap();
        for e in sim.executions().filter(|e| e.canister == game && e.entry.contains("get_challenge")) {
            n += 1;
            cycles += e.cycles_charged;
        }
    }
    (n, cycles)
}

pub fn run(scale: &Scale) -> Outcome {
    let started = std::time::Instant::now();
    let env = SimEnv::new();
    let game = deploy_game_state(&env);
    let service = install_controller(&env, MainerRole::ShareService, game, None, scale.service_queue);
    let model = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/models/stories260Ktok512.gguf"))
        .expect("../shared/models/stories260Ktok512.gguf");
    let mut llms = Vec::new();
    for _ in 0..scale.llms {
        let llm = deploy_llm_with_model(&env, &model, 16);
        let _: mainer_types::llama_cpp::AccessListResult =
            env.call(admin(), llm, &mainer_types::calls::llm::GRANT_ACCESS, (service,)).unwrap();
        add_llm(&env, service, llm);
        llms.push(llm);
    }
    let mut challenge_ids = Vec::new();
    for i in 0..scale.challenges {
        challenge_ids.push(add_challenge(&env, game, &format!("Once upon a time there was a cat number {i}"), 12).id);
    }
    let agents: Vec<Principal> =
        (0..scale.agents).map(|_| install_controller(&env, MainerRole::ShareAgent, game, Some(service), 16)).collect();
    let mut everyone = agents.clone();
    everyone.push(service);
    everyone.push(game);
    everyone.extend(&llms);
    let cycles_start = cycles(&env, &everyone);
    let agent_cycles_start = cycles(&env, &agents);

    let goal = scale.agents * scale.challenges;
    let mut minutes_to_all = None;
    let mut served_by_minute = Vec::new();
    for second in 0..scale.minutes * 60 {
        env.advance_time(Duration::from_secs(1));
        settle(&env);
        if second % 600 == 599 {
            served_by_minute.push(((second + 1) / 60, agents_served(&env, &agents)));
        }
        if second % 60 == 59 && minutes_to_all.is_none() {
            let counts: mainer_types::game::GameCounts = env.call(admin(), game, &game_calls::COUNTS, ()).unwrap();
            if counts.submissions >= goal {
                minutes_to_all = Some((second + 1) / 60);
            }
        }
    }
    let counters: Vec<Counters> =
        agents.iter().map(|a| env.call(admin(), *a, &controller_calls::COUNTERS, ()).unwrap().unwrap()).collect();
    let answers: u64 = counters.iter().map(|c| c.submissions).sum();
    let agents_served = counters.iter().filter(|c| c.submissions > 0).count() as u64;
    let agents_all_done = counters.iter().filter(|c| c.submissions >= scale.challenges).count() as u64;
    let pool: Vec<LlmStatus> = env.call(admin(), service, &controller_calls::LIST_LLMS, ()).unwrap().unwrap();
    let per_llm: Vec<u64> = pool.iter().map(|l| l.answers).collect();
    let service_counters: Counters = env.call(admin(), service, &controller_calls::COUNTERS, ()).unwrap().unwrap();
    let spent = cycles(&env, &everyone) - cycles_start;
    let agent_spent = cycles(&env, &agents) - agent_cycles_start;

    // Idle: nothing open any more.
    for id in &challenge_ids {
        env.call(admin(), game, &game_calls::CLOSE_CHALLENGE, (*id,)).unwrap().unwrap();
    }
    run_for(&env, 120); // the last answers in flight settle
    let idle_agents = cycles(&env, &agents);
    let idle_game = cycles(&env, &[game]);
    let (pulls, pull_cycles) = run_counting_pulls(&env, scale.idle_minutes * 60, game);
    let hours = scale.idle_minutes as f64 / 60.0;
    let per_agent_hour = ((cycles(&env, &agents) - idle_agents) as f64 / scale.agents as f64 / hours) as u128;
    let game_hour = ((cycles(&env, &[game]) - idle_game) as f64 / hours) as u128;
    let pulls_per_agent_hour = pulls as f64 / scale.agents as f64 / hours;
    let pull_cycles_hour = (pull_cycles as f64 / hours) as u128;

    Outcome {
        answers,
        agents_served,
        agents_all_done,
        minutes_to_all,
        // On the simulator a small LLM call takes a round of a few ms; on a
        // subnet each call takes at least one round, about a second.
        utilisation: service_counters.llm_calls as f64 / (scale.llms * scale.minutes * 60) as f64,
        llm_calls: service_counters.llm_calls,
        per_llm_min: per_llm.iter().copied().min().unwrap_or(0),
        per_llm_max: per_llm.iter().copied().max().unwrap_or(0),
        served_by_minute,
        cycles_per_answer: spent / answers.max(1) as u128,
        agent_cycles_per_answer: agent_spent / answers.max(1) as u128,
        idle_agent_hour_cycles: per_agent_hour,
        idle_game_hour_cycles: game_hour,
        pulls_per_agent_hour,
        pull_cycles_hour,
        wall_seconds: started.elapsed().as_secs(),
        scale: Scale { ..*scale },
    }
}

impl Outcome {
    pub fn print(&self) {
        let s = &self.scale;
        println!("### Scale run\n");
        println!(
            "One ShareService with {} LLMs (our `llm`, stories260K, 12-token answers), {} ShareAgents installed \
             together, {} open challenges (no quota), pull every 60 s, process every 5 s, service queue {}, \
             {} simulated minutes; then every challenge closes and the agents idle for {} minutes.\n",
            s.llms, s.agents, s.challenges, s.service_queue, s.minutes, s.idle_minutes
        );
        println!("| measure | value |");
        println!("|---|---:|");
        println!("| answers submitted (goal: {} = agents × challenges) | {} |", s.agents * s.challenges, self.answers);
        println!("| agents that submitted at least one answer | {} of {} |", self.agents_served, s.agents);
        println!("| agents that answered every challenge | {} of {} |", self.agents_all_done, s.agents);
        match self.minutes_to_all {
            Some(m) => println!("| minutes until every agent answered every challenge | {m} |"),
            None => println!("| minutes until every agent answered every challenge | not within the run |"),
        }
        let served: Vec<String> = self.served_by_minute.iter().map(|(m, n)| format!("{n} at {m} min")).collect();
        println!("| agents served so far, every 10 minutes | {} |", served.join(", "));
        println!("| answers per LLM (fewest / most) | {} / {} |", self.per_llm_min, self.per_llm_max);
        println!("| LLM calls | {} |", self.llm_calls);
        println!(
            "| LLM utilisation on a subnet (LLM calls × ~1 s round each / (LLMs × seconds)) | {:.1} % |",
            self.utilisation * 100.0
        );
        println!("| execution cycles per answer (service, LLMs, agents, game state) | {} |", self.cycles_per_answer);
        println!("| …of which the agents' | {} |", self.agent_cycles_per_answer);
        println!("| execution cycles per idle agent-hour | {} |", self.idle_agent_hour_cycles);
        println!("| `get_challenge` calls per idle agent-hour | {:.1} |", self.pulls_per_agent_hour);
        println!(
            "| game-state execution cycles per idle hour for the agents' `get_challenge` (all agents) | {} |",
            self.pull_cycles_hour
        );
        println!(
            "| game-state execution cycles per idle hour, everything (its own timers too) | {} |",
            self.idle_game_hour_cycles
        );
        eprintln!("scale run: {} wall-clock seconds", self.wall_seconds);
        println!();
    }
}
