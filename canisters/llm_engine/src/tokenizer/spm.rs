//! SentencePiece-style BPE (`tokenizer.ggml.model = "llama"`): start from
//! single characters and repeatedly merge the adjacent pair whose
//! concatenation is the highest-scoring vocabulary token (leftmost on ties).
//! Characters that end up in no token are spelled as byte tokens `<0xXX>`.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::vocab::Vocab;

/// The space marker SentencePiece uses in token texts.
pub const SPACE_MARKER: &str = "\u{2581}";

pub struct Spm {
    byte_tokens: [Option<u32>; 256],
    unknown: Option<u32>,
}

struct Symbol {
    start: usize,
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

struct Candidate {
    score: f32,
    left: usize,
    right: usize,
    len: usize,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    /// Max-heap order: higher score first, then the leftmost pair.
    fn cmp(&self, other: &Self) -> Ordering {
        self.score.total_cmp(&other.score).then(other.left.cmp(&self.left))
    }
}

impl Spm {
    pub fn new(vocab: &Vocab, unknown: Option<u32>) -> Self {
        let mut byte_tokens = [None; 256];
        for (byte, slot) in byte_tokens.iter_mut().enumerate() {
            *slot = vocab.id(&format!("<0x{byte:02X}>"));
        }
        Spm { byte_tokens, unknown }
    }

    /// Tokenizes `text`, which the caller has already given its space
    /// prefix and whose spaces it has replaced by the marker.
    pub fn encode(&self, vocab: &Vocab, text: &str, out: &mut Vec<u32>) {
        let mut symbols: Vec<Symbol> = Vec::with_capacity(text.len());
        for (i, (start, c)) in text.char_indices().enumerate() {
            symbols.push(Symbol { start, len: c.len_utf8(), prev: i.checked_sub(1), next: None });
            if i > 0 {
                symbols[i - 1].next = Some(i);
            }
        }
        if symbols.is_empty() {
            return;
        }

        let mut queue = BinaryHeap::new();
        let consider = |queue: &mut BinaryHeap<Candidate>, symbols: &[Symbol], left: usize, right: usize| {
            let (l, r) = (&symbols[left], &symbols[right]);
            let len = l.len + r.len;
            if let Some(id) = vocab.id(&text[l.start..l.start + len]) {
                queue.push(Candidate { score: vocab.score(id), left, right, len });
            }
        };
        for i in 1..symbols.len() {
            consider(&mut queue, &symbols, i - 1, i);
        }
        while let Some(c) = queue.pop() {
            let (l, r) = (&symbols[c.left], &symbols[c.right]);
            // Stale: one side has been merged since (lengths only grow or drop to 0).
            if l.len == 0 || r.len == 0 || l.len + r.len != c.len {
                continue;
            }
            let right_next = r.next;
            symbols[c.left].len = c.len;
            symbols[c.left].next = right_next;
            symbols[c.right].len = 0;
            if let Some(n) = right_next {
                symbols[n].prev = Some(c.left);
            }
            if let Some(p) = symbols[c.left].prev {
                consider(&mut queue, &symbols, p, c.left);
            }
            if let Some(n) = right_next {
                consider(&mut queue, &symbols, c.left, n);
            }
        }

        let mut i = Some(0);
        while let Some(index) = i {
            let s = &symbols[index];
            let piece = &text[s.start..s.start + s.len];
            match vocab.id(piece) {
                Some(id) => out.push(id),
                None => {
                    for &byte in piece.as_bytes() {
                        if let Some(id) = self.byte_tokens[byte as usize].or(self.unknown) {
                            out.push(id);
                        }
                    }
                }
            }
            i = s.next;
        }
    }
}
