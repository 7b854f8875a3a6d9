//! Hand-outs respect a challenge's quota, and listings are bounded by bytes
//! as well as by count so every reply fits the IC's 2 MiB limit.

use candid::{Encode, Principal};
use integration_tests::deploy::*;
use integration_tests::{TestEnv, TestEnvExt, new_env, user, wasm};
use mainer_types::MainerRole;
use mainer_types::controller::{ControllerResult, Counters};
use mainer_types::game::{
    Challenge, ClaimedEvidence, GameError, GameResult, GameStateArgs, GameStateUpgrade, GenerationSettings, MainerInfo,
    NewChallenge, RegisterMainerRequest, Submission, SubmitRequest,
};
use mainer_types::{Page, PageRequest};

fn add_with_quota(env: &dyn TestEnv, game: Principal, question: &str, quota: u64) -> Challenge {
    let new = NewChallenge {
        question: question.into(),
        settings: GenerationSettings { max_tokens: 4, ..Default::default() },
        max_submissions: Some(quota),
        deadline_ns: None,
    };
    env.update_one::<_, GameResult<Challenge>>(admin(), game, "add_challenge", new).unwrap().unwrap()
}

fn register(env: &dyn TestEnv, game: Principal, mainer: Principal) {
    let reg = RegisterMainerRequest { mainer, role: MainerRole::Own, owner: owner() };
    env.update_one::<_, GameResult<MainerInfo>>(admin(), game, "register_mainer", reg).unwrap().unwrap();
}

fn take(env: &dyn TestEnv, game: Principal, mainer: Principal) -> GameResult<u64> {
    env.update_one::<_, GameResult<Challenge>>(mainer, game, "get_challenge", ()).unwrap().map(|c| c.id)
}

#[test]
fn a_challenge_is_handed_to_no_more_mainers_than_it_takes() {
    let env = new_env();
    let game = deploy_game_state(&*env);
    let one = add_with_quota(&*env, game, "takes one answer", 1);
    let mainers: Vec<Principal> = (0..3).map(|n| user(40 + n)).collect();
    for m in &mainers {
        register(&*env, game, *m);
    }
    let given: Vec<_> = mainers.iter().map(|m| take(&*env, game, *m)).collect();
    assert_eq!(given, vec![Ok(one.id), Err(GameError::NoOpenChallenge), Err(GameError::NoOpenChallenge)]);
    // Giving it back frees the place for the next who asks.
    env.update_one::<_, GameResult<()>>(mainers[0], game, "release_challenge", one.id).unwrap().unwrap();
    assert_eq!(take(&*env, game, mainers[1]), Ok(one.id));
    assert_eq!(take(&*env, game, mainers[0]), Err(GameError::NoOpenChallenge), "not again for who gave it back");
}

#[test]
fn own_mainers_generate_only_the_answers_a_challenge_takes() {
    let env = new_env();
    let game = deploy_game_state(&*env);
    let controllers: Vec<Principal> = (0..3)
        .map(|_| {
            let c = deploy_controller(&*env, MainerRole::Own, game, None);
            add_llm(&*env, c, deploy_test_llm(&*env, 4));
            c
        })
        .collect();
    let c = add_with_quota(&*env, game, "Only one of you, please", 1);
    run_for(&*env, 60);
    let generated: u64 = controllers
        .iter()
        .map(|id| {
            env.query_one::<_, ControllerResult<Counters>>(admin(), *id, "counters", ())
                .unwrap()
                .unwrap()
                .answers_generated
        })
        .sum();
    assert_eq!(generated, 1, "one answer generated, none wasted");
    let page: GameResult<Page<Submission>> = env
        .query_candid(admin(), game, "submissions_by_challenge", (c.id, PageRequest::first(10)))
        .map(|(p,)| p)
        .unwrap();
    assert_eq!(page.unwrap().items.len(), 1);
}

#[test]
fn a_page_of_long_answers_fits_in_a_reply_and_the_listing_walks_to_its_end() {
    let env = new_env();
    let game = deploy_game_state(&*env);
    let up = GameStateArgs::Upgrade(GameStateUpgrade { max_answer_bytes: Some(200_000), ..Default::default() });
    env.upgrade(admin(), game, &wasm("game_state"), Encode!(&up).unwrap()).unwrap();
    let c = add_challenge(&*env, game, "Write a long one", 4);
    let mainers: Vec<Principal> = (0..20).map(|n| user(60 + n)).collect();
    for (n, m) in mainers.iter().enumerate() {
        register(&*env, game, *m);
        let req = SubmitRequest {
            challenge_id: c.id,
            answer: char::from(b'a' + n as u8).to_string().repeat(150_000),
            evidence: ClaimedEvidence {
                prompt_sha256: "0".repeat(64),
                llm_canister: user(99),
                model_sha256: None,
                llm_calls: 1,
                prompt_tokens: None,
                generated_tokens: None,
                cycles_spent: None,
            },
        };
        env.update_one::<_, GameResult<Submission>>(*m, game, "submit", req).unwrap().unwrap();
    }
    // 20 answers of 150 kB are 3 MB: more than one reply can carry.
    let mut seen = Vec::new();
    let mut req = PageRequest::first(PageRequest::MAX_LIMIT);
    let mut pages = 0;
    loop {
        let reply = env
            .query(admin(), game, "submissions_by_challenge", Encode!(&c.id, &req).unwrap())
            .expect("the page fits in a reply");
        assert!(reply.len() <= 2 * 1024 * 1024, "{} bytes", reply.len());
        let page: GameResult<Page<Submission>> = candid::decode_one(&reply).unwrap();
        let page = page.unwrap();
        assert_eq!(page.total, 20);
        pages += 1;
        seen.extend(page.items.into_iter().map(|s| s.mainer));
        match page.next_offset {
            Some(next) => req.offset = next,
            None => break,
        }
    }
    assert!(pages >= 2, "{pages} pages");
    seen.sort();
    let mut expected = mainers.clone();
    expected.sort();
    assert_eq!(seen, expected, "every submission once");
}
