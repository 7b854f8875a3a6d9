//! Stable memory: 64 KiB wasm pages, allocated only when written (so a large,
//! sparse stable memory costs little), with an undo log so that a trapped
//! message rolls back in time proportional to what it wrote.

pub const WASM_PAGE: usize = 64 * 1024;
/// The IC's limit on stable memory (500 GiB), in wasm pages.
pub const MAX_STABLE_PAGES: u64 = 500 * 1024 * 1024 * 1024 / WASM_PAGE as u64;

type Page = Box<[u8; WASM_PAGE]>;

#[derive(Default)]
pub struct StableMemory {
    pages: Vec<Option<Page>>,
    /// Pages as they were before the current message first wrote them.
    undo: Vec<(usize, Option<Page>)>,
    touched: Vec<bool>,
    size_at_start: usize,
    in_transaction: bool,
}

impl StableMemory {
    pub fn size_pages(&self) -> u64 {
        self.pages.len() as u64
    }

    pub fn size_bytes(&self) -> u64 {
        self.size_pages() * WASM_PAGE as u64
    }

    /// Bytes actually held (pages written at least once).
    #[cfg(test)]
    pub fn resident_bytes(&self) -> u64 {
        self.pages.iter().filter(|p| p.is_some()).count() as u64 * WASM_PAGE as u64
    }

    /// Grows by `new_pages`; returns the old size, or None past `limit_pages`.
    pub fn grow(&mut self, new_pages: u64, limit_pages: u64) -> Option<u64> {
        let old = self.size_pages();
        let new = old.checked_add(new_pages)?;
        if new > limit_pages.min(MAX_STABLE_PAGES) {
            return None;
        }
        self.pages.resize_with(new as usize, || None);
        self.touched.resize(new as usize, false);
        Some(old)
    }

    pub fn in_bounds(&self, offset: u64, len: u64) -> bool {
        offset.checked_add(len).is_some_and(|end| end <= self.size_bytes())
    }

    /// Reads `dst.len()` bytes at `offset`; the caller checked the bounds.
    pub fn read(&self, offset: u64, dst: &mut [u8]) {
        let mut done = 0;
        while done < dst.len() {
            let pos = offset as usize + done;
            let (page, within) = (pos / WASM_PAGE, pos % WASM_PAGE);
            let n = (WASM_PAGE - within).min(dst.len() - done);
            match &self.pages[page] {
                Some(p) => dst[done..done + n].copy_from_slice(&p[within..within + n]),
                None => dst[done..done + n].fill(0),
            }
            done += n;
        }
    }

    /// Writes `src` at `offset`; the caller checked the bounds.
    pub fn write(&mut self, offset: u64, src: &[u8]) {
        let mut done = 0;
        while done < src.len() {
            let pos = offset as usize + done;
            let (page, within) = (pos / WASM_PAGE, pos % WASM_PAGE);
            let n = (WASM_PAGE - within).min(src.len() - done);
            self.remember(page);
            let p = self.pages[page].get_or_insert_with(|| Box::new([0u8; WASM_PAGE]));
            p[within..within + n].copy_from_slice(&src[done..done + n]);
            done += n;
        }
    }

    fn remember(&mut self, page: usize) {
        if self.in_transaction && page < self.size_at_start && !self.touched[page] {
            self.touched[page] = true;
            self.undo.push((page, self.pages[page].clone()));
        }
    }

    /// Starts recording what a message changes.
    pub fn begin(&mut self) {
        debug_assert!(!self.in_transaction);
        self.in_transaction = true;
        self.size_at_start = self.pages.len();
    }

    /// Keeps the message's changes.
    pub fn commit(&mut self) {
        for (page, _) in self.undo.drain(..) {
            self.touched[page] = false;
        }
        self.in_transaction = false;
    }

    /// Undoes every change since `begin`.
    pub fn rollback(&mut self) {
        for (page, old) in self.undo.drain(..).rev() {
            self.pages[page] = old;
            self.touched[page] = false;
        }
        self.pages.truncate(self.size_at_start);
        self.touched.truncate(self.size_at_start);
        self.in_transaction = false;
    }

    /// An independent copy of the contents (outside any transaction).
    pub fn clone_contents(&self) -> StableMemory {
        debug_assert!(!self.in_transaction);
        StableMemory {
            pages: self.pages.clone(),
            undo: Vec::new(),
            touched: vec![false; self.pages.len()],
            size_at_start: 0,
            in_transaction: false,
        }
    }

    /// A copy of the whole contents (for canister snapshots and tests).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = vec![0u8; self.size_bytes() as usize];
        self.read(0, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollback_restores_contents_and_size() {
        let mut s = StableMemory::default();
        s.grow(2, u64::MAX).unwrap();
        s.write(WASM_PAGE as u64 - 2, b"abcd");
        s.begin();
        s.write(0, b"xy");
        s.write(WASM_PAGE as u64 - 1, b"ZZ");
        s.grow(3, u64::MAX).unwrap();
        s.write(3 * WASM_PAGE as u64, b"new");
        s.rollback();
        assert_eq!(s.size_pages(), 2);
        let mut buf = [0u8; 4];
        s.read(WASM_PAGE as u64 - 2, &mut buf);
        assert_eq!(&buf, b"abcd");
        s.read(0, &mut buf[..2]);
        assert_eq!(&buf[..2], &[0, 0]);
    }

    #[test]
    fn commit_keeps_changes_and_a_later_rollback_only_undoes_its_own() {
        let mut s = StableMemory::default();
        s.grow(1, u64::MAX).unwrap();
        s.begin();
        s.write(10, b"one");
        s.commit();
        s.begin();
        s.write(10, b"two");
        s.rollback();
        let mut buf = [0u8; 3];
        s.read(10, &mut buf);
        assert_eq!(&buf, b"one");
    }

    #[test]
    fn grow_respects_limit_and_bounds_are_checked() {
        let mut s = StableMemory::default();
        assert_eq!(s.grow(4, 5), Some(0));
        assert_eq!(s.grow(2, 5), None);
        assert!(s.in_bounds(0, 4 * WASM_PAGE as u64));
        assert!(!s.in_bounds(1, 4 * WASM_PAGE as u64));
        assert!(!s.in_bounds(u64::MAX, 2));
        assert_eq!(s.resident_bytes(), 0);
    }
}
