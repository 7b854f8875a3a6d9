//! The token list shared by both tokenizer models: texts, scores, types.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::gguf::{Array, GgufFile};

/// `tokenizer.ggml.token_type` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenType {
    Normal,
    Unknown,
    Control,
    UserDefined,
    Unused,
    Byte,
}

impl TokenType {
    fn from_id(id: i32) -> Self {
        match id {
            2 => TokenType::Unknown,
            3 => TokenType::Control,
            4 => TokenType::UserDefined,
            5 => TokenType::Unused,
            6 => TokenType::Byte,
            // 1 is normal; 0 ("undefined") and anything else act as normal.
            _ => TokenType::Normal,
        }
    }
}

pub struct Vocab {
    texts: Vec<String>,
    scores: Vec<f32>,
    types: Vec<TokenType>,
    ids: HashMap<String, u32>,
}

impl Vocab {
    pub fn from_gguf(file: &GgufFile) -> Result<Self> {
        let texts = match file.require_array("tokenizer.ggml.tokens")? {
            Array::String(v) if !v.is_empty() => v.clone(),
            _ => return Err(Error::InvalidTokenizer("tokenizer.ggml.tokens is not a non-empty string array".into())),
        };
        let n = texts.len();
        if n > u32::MAX as usize {
            return Err(Error::InvalidTokenizer(format!("{n} tokens")));
        }
        let scores = match file.get_array("tokenizer.ggml.scores")? {
            None => vec![0.0; n],
            Some(Array::F32(v)) if v.len() == n => v.clone(),
            Some(_) => return Err(Error::InvalidTokenizer(format!("tokenizer.ggml.scores is not {n} f32s"))),
        };
        let types = match file.get_array("tokenizer.ggml.token_type")? {
            None => vec![TokenType::Normal; n],
            Some(Array::I32(v)) if v.len() == n => v.iter().map(|&t| TokenType::from_id(t)).collect(),
            Some(_) => return Err(Error::InvalidTokenizer(format!("tokenizer.ggml.token_type is not {n} i32s"))),
        };
        let mut ids = HashMap::with_capacity(n);
        for (id, text) in texts.iter().enumerate() {
            // On duplicate texts the first id wins.
            ids.entry(text.clone()).or_insert(id as u32);
        }
        Ok(Vocab { texts, scores, types, ids })
    }

    pub fn len(&self) -> usize {
        self.texts.len()
    }

    pub fn id(&self, text: &str) -> Option<u32> {
        self.ids.get(text).copied()
    }

    pub fn text(&self, id: u32) -> Option<&str> {
        self.texts.get(id as usize).map(String::as_str)
    }

    pub fn score(&self, id: u32) -> f32 {
        self.scores.get(id as usize).copied().unwrap_or(0.0)
    }

    pub fn token_type(&self, id: u32) -> Option<TokenType> {
        self.types.get(id as usize).copied()
    }

    /// Ids of all tokens of the given types.
    pub fn ids_of_type(&self, wanted: &[TokenType]) -> impl Iterator<Item = u32> + '_ {
        let wanted = wanted.to_vec();
        self.types.iter().enumerate().filter(move |(_, t)| wanted.contains(t)).map(|(i, _)| i as u32)
    }
}
