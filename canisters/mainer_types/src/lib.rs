//! Types shared by the mAIner canisters, the admin tools and the tests.
//!
//! This crate does not depend on ic-cdk (CI checks it with `cargo tree`), so
//! the CLI and the tests use the very types the canisters speak.

pub mod calls;
pub mod controller;
pub mod creator;
pub mod game;
pub mod http;
pub mod llama_args;
pub mod llama_cpp;
pub mod llm_client;
#[cfg(feature = "stable")]
pub mod stable;

pub use candid::Principal;

/// The three roles of a mAIner controller.
#[derive(
    candid::CandidType, serde::Deserialize, serde::Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
pub enum MainerRole {
    /// Pulls challenges and answers them with its own LLM canisters.
    Own,
    /// Owns a pool of LLM canisters and answers the challenges of its ShareAgents.
    ShareService,
    /// Has no LLM: forwards its challenges to a ShareService and submits the answers.
    ShareAgent,
}

impl MainerRole {
    /// Whether this role has LLM canisters of its own.
    pub fn has_llms(self) -> bool {
        matches!(self, MainerRole::Own | MainerRole::ShareService)
    }
}

/// A page of a listing: `offset` is where it starts, `limit` how many at most.
#[derive(candid::CandidType, serde::Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest {
    pub offset: u64,
    pub limit: u64,
}

impl PageRequest {
    /// The largest page any listing returns.
    pub const MAX_LIMIT: u64 = 500;

    pub fn first(limit: u64) -> Self {
        PageRequest { offset: 0, limit }
    }

    /// `limit` clamped to 1..=MAX_LIMIT.
    pub fn clamped_limit(&self) -> usize {
        self.limit.clamp(1, Self::MAX_LIMIT) as usize
    }
}

/// One page of items, with the total so a client knows when to stop.
#[derive(candid::CandidType, serde::Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub next_offset: Option<u64>,
}

impl<T> Page<T> {
    /// Builds a page from an iterator over all items, skipping to `req.offset`.
    pub fn collect(all: impl Iterator<Item = T>, total: u64, req: PageRequest) -> Self {
        let limit = req.clamped_limit();
        let items: Vec<T> = all.skip(req.offset as usize).take(limit).collect();
        let end = req.offset + items.len() as u64;
        Page { next_offset: (end < total).then_some(end), items, total }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_walk_a_listing_to_its_end() {
        let req = PageRequest { offset: 0, limit: 4 };
        let p = Page::collect(0..10u32, 10, req);
        assert_eq!((p.items, p.next_offset), (vec![0, 1, 2, 3], Some(4)));
        let p = Page::collect(0..10u32, 10, PageRequest { offset: 8, limit: 4 });
        assert_eq!((p.items, p.next_offset), (vec![8, 9], None));
        assert_eq!(PageRequest { offset: 0, limit: 0 }.clamped_limit(), 1);
        assert_eq!(PageRequest { offset: 0, limit: 10_000 }.clamped_limit(), 500);
    }
}
