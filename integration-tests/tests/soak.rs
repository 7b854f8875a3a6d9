//! The fault soak on one short seed (see `integration_tests::soak` for what it
//! injects and checks); `scripts/soak.sh SEEDS...` runs many.

use integration_tests::new_env;
use integration_tests::soak::{self, SoakConfig};

#[test]
fn the_factory_loses_and_duplicates_nothing_under_random_faults() {
    let env = new_env();
    let report = soak::run(&*env, &SoakConfig::short(1));
    println!("{}", report.line());
    assert!(report.problems.is_empty(), "{}", report.line());
    assert!(report.faults.values().sum::<u32>() >= 12, "every round injected a fault");
    assert!(report.submitted > 0, "{}", report.line());
}

#[test]
fn the_same_seed_draws_the_same_faults() {
    let draw = |seed| {
        let mut rng = soak::Rng::new(seed);
        (0..20).map(|_| rng.below(1000)).collect::<Vec<_>>()
    };
    assert_eq!(draw(7), draw(7));
    assert_ne!(draw(7), draw(8));
}
