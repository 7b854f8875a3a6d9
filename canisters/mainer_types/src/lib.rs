//! Types shared by the mAIner canisters, the admin tools and the tests.
//!
//! This crate does not depend on ic-cdk (CI checks it with `cargo tree`), so
//! the CLI and the tests use the very types the canisters speak.

pub mod calls;
pub mod controller;
pub mod creator;
pub mod cycles_ledger;
pub mod economy;
pub mod game;
pub mod game_play;
pub mod game_prompts;
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
    /// Turns the game state's topics into challenges with its LLMs (a game role, made by admins).
    Challenger,
    /// Scores the game state's submissions with its LLMs (a game role, made by admins).
    Judge,
}

impl MainerRole {
    /// Whether this role has LLM canisters of its own.
    pub fn has_llms(self) -> bool {
        !matches!(self, MainerRole::ShareAgent)
    }

    /// A role of the game (challenger, judge) rather than a mAIner that answers challenges.
    pub fn is_game_role(self) -> bool {
        matches!(self, MainerRole::Challenger | MainerRole::Judge)
    }
}

/// A page of a listing: `offset` is where it starts, `limit` how many at most.
#[derive(candid::CandidType, serde::Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest {
    pub offset: u64,
    pub limit: u64,
}

impl PageRequest {
    /// The most items any page holds.
    pub const MAX_LIMIT: u64 = 500;
    /// The most bytes of (Candid-encoded) items a page holds, so that a
    /// reply fits well within the IC's 2 MiB limit whatever the items' size.
    /// A page always holds at least one item, so a listing always advances.
    pub const MAX_BYTES: usize = 1_500_000;

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

impl<T: candid::CandidType> Page<T> {
    /// Builds a page from an iterator over all items, skipping to `req.offset`.
    pub fn collect(all: impl Iterator<Item = T>, total: u64, req: PageRequest) -> Self {
        let offset = usize::try_from(req.offset).unwrap_or(usize::MAX);
        Self::from_offset(all.skip(offset), total, req)
    }

    /// Builds a page from the items that start at `req.offset`: up to
    /// `req.limit` items and [`PageRequest::MAX_BYTES`]. Items past the page
    /// are never taken from the iterator (it may load them lazily).
    pub fn from_offset(from_offset: impl Iterator<Item = T>, total: u64, req: PageRequest) -> Self {
        let mut items = Vec::new();
        let mut bytes = 0usize;
        for item in from_offset.take(req.clamped_limit()) {
            // The size of the item on its own (with its own type table) is a
            // little more than it adds to the page's reply.
            let size = candid::encode_one(&item).map_or(usize::MAX, |b| b.len());
            if !items.is_empty() && bytes.saturating_add(size) > PageRequest::MAX_BYTES {
                break;
            }
            bytes = bytes.saturating_add(size);
            items.push(item);
        }
        let end = req.offset.saturating_add(items.len() as u64);
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

    #[test]
    fn pages_are_bounded_by_bytes_and_always_advance() {
        let big = |n: usize| "x".repeat(n);
        // 100 items of 100 kB: 500 would be 10 MB; a page takes what fits.
        let all: Vec<String> = (0..100).map(|_| big(100_000)).collect();
        let p = Page::collect(all.clone().into_iter(), 100, PageRequest::first(500));
        assert_eq!(p.items.len(), 14, "14 x 100 kB fit in 1.5 MB");
        assert_eq!(p.next_offset, Some(14));
        let reply = candid::encode_one(&p).unwrap();
        assert!(reply.len() < 2 * 1024 * 1024, "{} bytes", reply.len());
        // One item larger than the budget still makes a page of its own.
        let p = Page::collect(vec![big(1_800_000), big(10)].into_iter(), 2, PageRequest::first(10));
        assert_eq!((p.items.len(), p.next_offset), (1, Some(1)));
    }
}
