//! The creator's configuration (admins, game state, settings) in stable memory.

use std::cell::RefCell;

use candid::{CandidType, Principal};
use ic_stable_structures::StableCell;
use mainer_types::creator::CreatorSettings;
use serde::Deserialize;

use crate::memory::{self, Memory, Stored};

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub admins: Vec<Principal>,
    pub game_state: Principal,
    pub allowed_creators: Vec<Principal>,
    pub settings: CreatorSettings,
}

thread_local! {
    static CONFIG: RefCell<StableCell<Stored<Option<Config>>, Memory>> =
        RefCell::new(StableCell::init(memory::get(memory::CONFIG), Stored(None)));
}

pub fn get() -> Config {
    CONFIG.with(|c| c.borrow().get().0.clone()).expect("the creator is initialized at install")
}

pub fn set(config: Config) {
    CONFIG.with(|c| c.borrow_mut().set(Stored(Some(config))));
}

pub fn update(f: impl FnOnce(&mut Config)) {
    let mut c = get();
    f(&mut c);
    set(c);
}
