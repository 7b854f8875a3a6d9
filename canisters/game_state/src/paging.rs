//! Pages over keys: the items skipped to reach `offset` are walked as keys
//! only, so a page costs its own items' loading, not the skipped ones'.
//! Pages are bounded by count and by bytes (`Page::from_offset`).

use mainer_types::{Page, PageRequest};

/// What `Page::collect` returns, with `load` applied to the page's keys only.
pub fn page_of<K, T: candid::CandidType>(
    keys: impl Iterator<Item = K>,
    total: u64,
    req: PageRequest,
    load: impl FnMut(K) -> T,
) -> Page<T> {
    let offset = usize::try_from(req.offset).unwrap_or(usize::MAX);
    Page::from_offset(keys.skip(offset).map(load), total, req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_page_is_loaded() {
        let mut loaded = vec![];
        let page = page_of(0..10u32, 10, PageRequest { offset: 6, limit: 3 }, |k| {
            loaded.push(k);
            k * 10
        });
        assert_eq!((page.items, page.total, page.next_offset), (vec![60, 70, 80], 10, Some(9)));
        assert_eq!(loaded, vec![6, 7, 8]);
        let page = page_of(0..10u32, 10, PageRequest { offset: 9, limit: 3 }, |k| k);
        assert_eq!((page.items, page.next_offset), (vec![9], None));
        let page = page_of(0..10u32, 10, PageRequest { offset: 20, limit: 0 }, |k| k);
        assert_eq!((page.items.len(), page.next_offset), (0, None));
        assert_eq!(page_of(0..1000u32, 1000, PageRequest::first(10_000), |k| k).items.len(), 500);
    }
}
