//! Runs the fault soak (`integration_tests::soak`) for each seed given on
//! the command line and prints a line per seed; exits 1 if any failed.
//! `scripts/soak.sh` builds and runs it; `--markdown` prints the report
//! committed as `benchmarks/soak.md` (the lines and the totals).

use std::collections::BTreeMap;

use integration_tests::new_env;
use integration_tests::soak::{self, SoakConfig};

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut rounds = 30;
    if let Some(i) = args.iter().position(|a| a == "--rounds") {
        rounds = args.get(i + 1).and_then(|n| n.parse().ok()).expect("--rounds N");
        args.drain(i..=i + 1);
    }
    let markdown = args.iter().any(|a| a == "--markdown");
    args.retain(|a| a != "--markdown");
    let seeds: Vec<u64> = if args.is_empty() {
        (1..=10).collect()
    } else {
        args.iter().map(|s| s.parse().unwrap_or_else(|_| panic!("not a seed: {s}"))).collect()
    };
    if markdown {
        println!("# Fault soak\n");
        println!(
            "`scripts/soak.sh --markdown --rounds {rounds} SEEDS…` (the example `soak`; what it injects and checks:"
        );
        println!("`integration-tests/src/soak.rs`). The whole factory made by the creator (an Own mAIner with 2 LLMs,");
        println!(
            "a ShareService with 2 LLMs, 2 ShareAgents; the test LLM fixture) answers challenges while one fault per"
        );
        println!("round (5 to 40 simulated seconds) hits it, then runs quiet until idle. A seed passes when every");
        println!("challenge got exactly one submission from each answering mAIner (or a recorded give-up), no work is");
        println!("left queued or in flight, every fleet job finished and every canister the creator made is known to");
        println!("a job. The simulator is deterministic: the same seed gives the same line.\n");
        println!("```");
    }
    let mut failed = 0;
    let mut faults: BTreeMap<&str, u32> = BTreeMap::new();
    let (mut challenges, mut submitted, mut given_up, mut seconds) = (0, 0, 0, 0);
    for seed in &seeds {
        let env = new_env();
        let cfg = SoakConfig { fault_rounds: rounds, challenges: (rounds / 4).max(1), ..SoakConfig::short(*seed) };
        let report = soak::run(&*env, &cfg);
        println!("{}", report.line());
        failed += usize::from(!report.problems.is_empty());
        for (k, n) in &report.faults {
            *faults.entry(k).or_default() += n;
        }
        challenges += report.challenges;
        submitted += report.submitted;
        given_up += report.failed_for_good;
        seconds += report.simulated_seconds;
    }
    if markdown {
        println!("```\n");
        println!(
            "| seeds | passed | fault rounds each | challenges | submissions | given up for good | simulated time |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|");
        println!(
            "| {} | {} | {rounds} | {challenges} | {submitted} | {given_up} | {:.1} h |\n",
            seeds.len(),
            seeds.len() - failed,
            seconds as f64 / 3600.0
        );
        println!("| fault | injected |\n|---|---:|");
        for (k, n) in &faults {
            println!("| {k} | {n} |");
        }
    } else {
        println!("{} of {} seeds passed ({rounds} fault rounds each)", seeds.len() - failed, seeds.len());
    }
    std::process::exit(i32::from(failed > 0));
}
