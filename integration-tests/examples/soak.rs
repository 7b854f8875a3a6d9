//! Runs the fault soak (`integration_tests::soak`) for each seed given on
//! the command line and prints a line per seed; exits 1 if any failed.
//! `scripts/soak.sh` builds and runs it.

use integration_tests::new_env;
use integration_tests::soak::{self, SoakConfig};

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut rounds = 30;
    if let Some(i) = args.iter().position(|a| a == "--rounds") {
        rounds = args.get(i + 1).and_then(|n| n.parse().ok()).expect("--rounds N");
        args.drain(i..=i + 1);
    }
    let seeds: Vec<u64> = if args.is_empty() {
        (1..=10).collect()
    } else {
        args.iter().map(|s| s.parse().unwrap_or_else(|_| panic!("not a seed: {s}"))).collect()
    };
    let mut failed = 0;
    for seed in &seeds {
        let env = new_env();
        let cfg = SoakConfig { fault_rounds: rounds, challenges: (rounds / 4).max(1), ..SoakConfig::short(*seed) };
        let report = soak::run(&*env, &cfg);
        println!("{}", report.line());
        failed += usize::from(!report.problems.is_empty());
    }
    println!("{} of {} seeds passed ({rounds} fault rounds each)", seeds.len() - failed, seeds.len());
    std::process::exit(i32::from(failed > 0));
}
