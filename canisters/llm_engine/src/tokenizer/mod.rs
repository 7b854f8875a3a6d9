//! Text <-> token ids, from the tokenizer stored in GGUF metadata, following
//! llama.cpp's behaviour: SentencePiece-style BPE (`llama`) or byte-level BPE
//! (`gpt2`, with the GPT-2 / Llama 3 / Qwen2 word splitting).

mod bpe;
mod byte_unicode;
mod letters;
pub mod pretokenize;
mod spm;
mod vocab;

pub use vocab::TokenType;

use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use bpe::Bpe;
use spm::{SPACE_MARKER, Spm};
use vocab::Vocab;

enum Model {
    Spm(Box<Spm>),
    Bpe(Box<Bpe>),
}

/// Texts of control tokens that end a turn in common chat formats.
const END_OF_TURN_TEXTS: [&str; 6] =
    ["<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|eom_id|>", "<|end|>", "<end_of_turn>"];

pub struct Tokenizer {
    vocab: Vocab,
    model: Model,
    bos: Option<u32>,
    eos: Option<u32>,
    add_bos: bool,
    add_eos: bool,
    add_space_prefix: bool,
    /// Tokens recognised in text when special tokens are parsed, longest first.
    specials: Vec<u32>,
    end_of_generation: Vec<u32>,
}

impl Tokenizer {
    pub fn from_gguf(file: &GgufFile) -> Result<Self> {
        let vocab = Vocab::from_gguf(file)?;
        let token_id = |key: &str| -> Result<Option<u32>> {
            match file.get_u64(key)? {
                None => Ok(None),
                // Some converters write -1 (as u32::MAX) for "none".
                Some(id) if id == u32::MAX as u64 => Ok(None),
                Some(id) if id < vocab.len() as u64 => Ok(Some(id as u32)),
                Some(id) => {
                    Err(Error::InvalidTokenizer(format!("{key} = {id} is outside the vocabulary of {}", vocab.len())))
                }
            }
        };
        let bos = token_id("tokenizer.ggml.bos_token_id")?;
        let eos = token_id("tokenizer.ggml.eos_token_id")?;
        let eot = token_id("tokenizer.ggml.eot_token_id")?;
        let eom = token_id("tokenizer.ggml.eom_token_id")?;
        let unknown = token_id("tokenizer.ggml.unknown_token_id")?;

        let kind = file.require_str("tokenizer.ggml.model")?;
        let (model, default_add_bos, default_space_prefix) = match kind {
            "llama" => (Model::Spm(Box::new(Spm::new(&vocab, unknown))), true, true),
            "gpt2" => (Model::Bpe(Box::new(Bpe::from_gguf(file, &vocab)?)), false, false),
            other => return Err(Error::UnsupportedTokenizer(format!("tokenizer.ggml.model {other:?}"))),
        };
        let add_bos = file.get_bool("tokenizer.ggml.add_bos_token")?.unwrap_or(default_add_bos);
        let add_eos = file.get_bool("tokenizer.ggml.add_eos_token")?.unwrap_or(false);
        let add_space_prefix = file.get_bool("tokenizer.ggml.add_space_prefix")?.unwrap_or(default_space_prefix);

        let mut specials: Vec<u32> = vocab
            .ids_of_type(&[TokenType::Control, TokenType::UserDefined, TokenType::Unknown])
            .filter(|&id| vocab.text(id).is_some_and(|t| !t.is_empty()))
            .collect();
        specials.sort_by_key(|&id| (std::cmp::Reverse(vocab.text(id).map_or(0, str::len)), id));

        let mut end_of_generation: Vec<u32> = [eos, eot, eom].into_iter().flatten().collect();
        end_of_generation.extend(
            vocab
                .ids_of_type(&[TokenType::Control])
                .filter(|&id| vocab.text(id).is_some_and(|t| END_OF_TURN_TEXTS.contains(&t))),
        );
        end_of_generation.sort_unstable();
        end_of_generation.dedup();

        Ok(Tokenizer { vocab, model, bos, eos, add_bos, add_eos, add_space_prefix, specials, end_of_generation })
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    pub fn eos(&self) -> Option<u32> {
        self.eos
    }

    /// Whether generation should stop at this token (EOS, end-of-turn tokens).
    pub fn is_end_of_generation(&self, token: u32) -> bool {
        self.end_of_generation.binary_search(&token).is_ok()
    }

    pub fn token_text(&self, token: u32) -> Option<&str> {
        self.vocab.text(token)
    }

    pub fn token_type(&self, token: u32) -> Option<TokenType> {
        self.vocab.token_type(token)
    }

    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.vocab.id(text)
    }

    /// Tokenizes `text` as llama.cpp's `llama_tokenize` does.
    /// `add_special`: add BOS (and EOS) if the model asks for them.
    /// `parse_special`: turn special-token texts like `<|im_start|>` into
    /// their tokens instead of tokenizing them as plain text.
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<u32> {
        let mut out = Vec::new();
        if add_special && self.add_bos {
            out.extend(self.bos);
        }
        let fragments = match (parse_special, text.is_empty()) {
            (_, true) => Vec::new(),
            (true, false) => self.split_specials(text),
            (false, false) => vec![Fragment::Text(text)],
        };
        // SentencePiece adds its space prefix to text at the start and after special tokens.
        let mut after_special = true;
        for fragment in fragments {
            match fragment {
                Fragment::Special(id) => {
                    out.push(id);
                    after_special = true;
                }
                Fragment::Text(t) => {
                    match &self.model {
                        Model::Spm(spm) => {
                            let prefix = if self.add_space_prefix && after_special { " " } else { "" };
                            let escaped = format!("{prefix}{t}").replace(' ', SPACE_MARKER);
                            spm.encode(&self.vocab, &escaped, &mut out);
                        }
                        Model::Bpe(bpe) => bpe.encode(&self.vocab, t, &mut out),
                    }
                    after_special = false;
                }
            }
        }
        if add_special && self.add_eos {
            out.extend(self.eos);
        }
        out
    }

    /// Splits text at occurrences of special-token texts, longest tokens first.
    fn split_specials<'t>(&self, text: &'t str) -> Vec<Fragment<'t>> {
        let mut fragments = vec![Fragment::Text(text)];
        for &id in &self.specials {
            let special = self.vocab.text(id).unwrap_or_default();
            if !text.contains(special) {
                continue;
            }
            let mut next = Vec::with_capacity(fragments.len());
            for fragment in fragments {
                let Fragment::Text(mut rest) = fragment else {
                    next.push(fragment);
                    continue;
                };
                while let Some(at) = rest.find(special) {
                    if at > 0 {
                        next.push(Fragment::Text(&rest[..at]));
                    }
                    next.push(Fragment::Special(id));
                    rest = &rest[at + special.len()..];
                }
                if !rest.is_empty() {
                    next.push(Fragment::Text(rest));
                }
            }
            fragments = next;
        }
        fragments
    }

    /// The bytes a token stands for in generated text (empty for control
    /// tokens). A multi-byte character may be split over several tokens.
    pub fn token_bytes(&self, token: u32) -> Vec<u8> {
        let (Some(text), Some(ty)) = (self.vocab.text(token), self.vocab.token_type(token)) else {
            return Vec::new();
        };
        match (ty, &self.model) {
            (TokenType::Control | TokenType::Unused, _) => Vec::new(),
            (TokenType::UserDefined, _) => text.as_bytes().to_vec(),
            (TokenType::Byte, _) => parse_byte_token(text).map_or_else(|| text.as_bytes().to_vec(), |b| vec![b]),
            // llama.cpp shows the unknown token as U+2585.
            (TokenType::Unknown, Model::Spm(_)) => "\u{2585}".as_bytes().to_vec(),
            (_, Model::Spm(_)) => text.replace(SPACE_MARKER, " ").into_bytes(),
            (_, Model::Bpe(_)) => {
                let mut bytes = Vec::with_capacity(text.len());
                for c in text.chars() {
                    match byte_unicode::char_to_byte(c) {
                        Some(b) => bytes.push(b),
                        None => bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                    }
                }
                bytes
            }
        }
    }

    /// A token's text as llama.cpp's `llama_token_to_piece` (b4531) renders
    /// it: control and unknown tokens as their text only when `special`
    /// (llama.cpp's `-sp`), nothing otherwise; user-defined tokens as their
    /// text; unused tokens as nothing; the others as [`Tokenizer::token_bytes`].
    pub fn token_piece(&self, token: u32, special: bool) -> Vec<u8> {
        match self.vocab.token_type(token) {
            Some(TokenType::Control | TokenType::Unknown) if special => {
                self.vocab.text(token).unwrap_or_default().as_bytes().to_vec()
            }
            Some(TokenType::Control | TokenType::Unknown | TokenType::Unused) | None => Vec::new(),
            Some(_) => self.token_bytes(token),
        }
    }

    /// Concatenated token bytes as text (invalid UTF-8 replaced).
    pub fn decode(&self, tokens: &[u32]) -> String {
        let bytes: Vec<u8> = tokens.iter().flat_map(|&t| self.token_bytes(t)).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// The 256 characters byte-level BPE vocabularies spell bytes with, indexed by byte.
pub fn byte_level_alphabet() -> [char; 256] {
    byte_unicode::byte_to_char_table()
}

enum Fragment<'t> {
    Text(&'t str),
    Special(u32),
}

/// `<0xAB>` -> 0xAB
fn parse_byte_token(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

/// Turns token bytes into text as they arrive, holding back an incomplete
/// UTF-8 sequence until the tokens that finish it come (for streaming).
#[derive(Clone, Debug, Default)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes and returns the text that is now complete.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut text = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    text.push_str(s);
                    self.pending.clear();
                    return text;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    text.push_str(std::str::from_utf8(&self.pending[..valid]).expect("checked valid"));
                    match e.error_len() {
                        // Incomplete sequence at the end: wait for more bytes.
                        None => {
                            self.pending.drain(..valid);
                            return text;
                        }
                        Some(bad) => {
                            text.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    /// Bytes held back so far (to persist a stream between calls).
    pub fn pending(&self) -> &[u8] {
        &self.pending
    }

    /// Ends the stream: any incomplete sequence becomes U+FFFD.
    pub fn finish(&mut self) -> String {
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_tokens_parse() {
        assert_eq!(parse_byte_token("<0x0A>"), Some(10));
        assert_eq!(parse_byte_token("<0xff>"), Some(255));
        assert_eq!(parse_byte_token("<0x0A"), None);
        assert_eq!(parse_byte_token("<0x100>"), None);
    }

    #[test]
    fn utf8_stream_holds_back_partial_characters() {
        let mut s = Utf8Stream::new();
        let euro = "€".as_bytes();
        assert_eq!(s.push(b"a"), "a");
        assert_eq!(s.push(&euro[..1]), "");
        assert_eq!(s.push(&euro[1..2]), "");
        assert_eq!(s.pending().len(), 2);
        assert_eq!(s.push(&[euro[2], b'b']), "€b");
        assert_eq!(s.push(&[0xff, b'c']), "\u{fffd}c");
        assert_eq!(s.push(&euro[..2]), "");
        assert_eq!(s.finish(), "\u{fffd}");
    }
}
