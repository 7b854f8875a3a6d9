//! Byte-level BPE (`tokenizer.ggml.model = "gpt2"`): text is split into words
//! by the pre-tokenizer, each word's bytes become one-byte tokens (spelled
//! with GPT-2's byte characters), and adjacent pairs are merged by the rank
//! of their merge rule in `tokenizer.ggml.merges` (lowest rank first,
//! leftmost on ties).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use super::byte_unicode::byte_to_char_table;
use super::pretokenize::PreTokenizer;
use super::vocab::Vocab;
use crate::error::{Error, Result};
use crate::gguf::{Array, GgufFile};

pub struct Bpe {
    pre: PreTokenizer,
    /// Llama 3 looks a whole word up before merging.
    ignore_merges: bool,
    byte_chars: [char; 256],
    byte_tokens: [Option<u32>; 256],
    /// (left id, right id) -> (rank, merged id).
    merges: HashMap<(u32, u32), (u32, u32)>,
}

#[derive(Clone, Copy)]
struct Symbol {
    id: u32,
    prev: Option<usize>,
    next: Option<usize>,
    merged_away: bool,
}

impl Bpe {
    pub fn from_gguf(file: &GgufFile, vocab: &Vocab) -> Result<Self> {
        let pre_name = file.get_str("tokenizer.ggml.pre")?.unwrap_or("default");
        let pre = PreTokenizer::from_name(pre_name)
            .ok_or_else(|| Error::UnsupportedTokenizer(format!("gpt2 with pre-tokenizer {pre_name:?}")))?;
        let merge_rules = match file.require_array("tokenizer.ggml.merges")? {
            Array::String(v) => v,
            _ => return Err(Error::InvalidTokenizer("tokenizer.ggml.merges is not a string array".into())),
        };
        let byte_chars = byte_to_char_table();
        let mut byte_tokens = [None; 256];
        for (slot, c) in byte_tokens.iter_mut().zip(byte_chars) {
            *slot = vocab.id(c.encode_utf8(&mut [0; 4]));
        }

        let mut merges = HashMap::with_capacity(merge_rules.len());
        for (rank, rule) in merge_rules.iter().enumerate() {
            // "left right"; the separator is the first space after the first char
            // (token texts never contain a raw space).
            let split = rule.char_indices().nth(1).and_then(|(i, _)| rule[i..].find(' ').map(|k| i + k));
            let Some(split) = split else {
                return Err(Error::InvalidTokenizer(format!("merge rule {rank} {rule:?} has no separator")));
            };
            let (left, right) = (&rule[..split], &rule[split + 1..]);
            // A rule whose parts or result are not tokens can never fire here.
            let merged = format!("{left}{right}");
            if let (Some(l), Some(r), Some(m)) = (vocab.id(left), vocab.id(right), vocab.id(&merged)) {
                merges.entry((l, r)).or_insert((rank as u32, m));
            }
        }
        Ok(Bpe { pre, ignore_merges: pre == PreTokenizer::Llama3, byte_chars, byte_tokens, merges })
    }

    pub fn encode(&self, vocab: &Vocab, text: &str, out: &mut Vec<u32>) {
        for word in self.pre.split(text) {
            self.encode_word(vocab, word.as_bytes(), out);
        }
    }

    fn encode_word(&self, vocab: &Vocab, word: &[u8], out: &mut Vec<u32>) {
        if self.ignore_merges {
            let spelled: String = word.iter().map(|&b| self.byte_chars[b as usize]).collect();
            if let Some(id) = vocab.id(&spelled) {
                out.push(id);
                return;
            }
        }
        // Every byte-level vocabulary has all 256 byte tokens; bytes without one are dropped.
        let mut symbols: Vec<Symbol> = Vec::with_capacity(word.len());
        for id in word.iter().filter_map(|&b| self.byte_tokens[b as usize]) {
            let i = symbols.len();
            symbols.push(Symbol { id, prev: i.checked_sub(1), next: None, merged_away: false });
            if i > 0 {
                symbols[i - 1].next = Some(i);
            }
        }
        if symbols.is_empty() {
            return;
        }

        // Min-heap on (rank, left index); entries remember the ids they were made for.
        let mut queue = BinaryHeap::new();
        let consider = |queue: &mut BinaryHeap<_>, symbols: &[Symbol], left: usize, right: usize| {
            if let Some(&(rank, merged)) = self.merges.get(&(symbols[left].id, symbols[right].id)) {
                queue.push(Reverse((rank, left, right, symbols[left].id, symbols[right].id, merged)));
            }
        };
        for i in 1..symbols.len() {
            consider(&mut queue, &symbols, i - 1, i);
        }
        while let Some(Reverse((_, left, right, left_id, right_id, merged))) = queue.pop() {
            let (l, r) = (symbols[left], symbols[right]);
            let current = !l.merged_away && !r.merged_away && l.next == Some(right);
            if !current || l.id != left_id || r.id != right_id {
                continue;
            }
            symbols[left].id = merged;
            symbols[left].next = r.next;
            symbols[right].merged_away = true;
            if let Some(n) = r.next {
                symbols[n].prev = Some(left);
            }
            if let Some(p) = l.prev {
                consider(&mut queue, &symbols, p, left);
            }
            if let Some(n) = r.next {
                consider(&mut queue, &symbols, left, n);
            }
        }
        let mut i = Some(0);
        while let Some(index) = i {
            out.push(symbols[index].id);
            i = symbols[index].next;
        }
    }
}
