//! Hyper-parameters of a llama-family model, read from GGUF metadata.

use crate::error::{Error, Result};
use crate::gguf::GgufFile;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Architecture {
    Llama,
    Qwen2,
}

impl Architecture {
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "llama" => Ok(Architecture::Llama),
            "qwen2" => Ok(Architecture::Qwen2),
            other => Err(Error::UnsupportedArchitecture(other.into())),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Architecture::Llama => "llama",
            Architecture::Qwen2 => "qwen2",
        }
    }

    /// Which elements RoPE rotates together (llama.cpp's choice per architecture).
    pub fn rope_style(self) -> RopeStyle {
        match self {
            Architecture::Llama => RopeStyle::AdjacentPairs,
            Architecture::Qwen2 => RopeStyle::SplitHalves,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeStyle {
    /// Pairs (2i, 2i+1): GGML_ROPE_TYPE_NORM.
    AdjacentPairs,
    /// Pairs (i, i + rotated_dims/2): GGML_ROPE_TYPE_NEOX.
    SplitHalves,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    pub architecture: Architecture,
    pub vocab_size: usize,
    pub embedding_length: usize,
    pub block_count: usize,
    pub head_count: usize,
    pub head_count_kv: usize,
    pub head_dim: usize,
    pub feed_forward_length: usize,
    pub context_length: usize,
    pub rms_epsilon: f32,
    pub rope_freq_base: f32,
    /// Leading dimensions of each head that RoPE rotates (the rest pass through).
    pub rope_dimensions: usize,
}

const DEFAULT_ROPE_FREQ_BASE: f32 = 10_000.0;

impl ModelConfig {
    /// Reads `{arch}.*` keys. `vocab_size` comes from the token embedding,
    /// which must exist in the file.
    pub fn from_gguf(file: &GgufFile) -> Result<Self> {
        let architecture = Architecture::from_name(file.require_str("general.architecture")?)?;
        let arch = architecture.name();
        let key = |suffix: &str| format!("{arch}.{suffix}");
        let count = |suffix: &str| -> Result<usize> {
            let k = key(suffix);
            let v = file.require_u64(&k)?;
            usize::try_from(v)
                .ok()
                .filter(|&v| v > 0 && v <= 1 << 30)
                .ok_or_else(|| invalid(&k, format!("{v} is not a usable size")))
        };

        let embedding_length = count("embedding_length")?;
        let head_count = count("attention.head_count")?;
        let head_count_kv = match file.get_u64(&key("attention.head_count_kv"))? {
            Some(_) => count("attention.head_count_kv")?,
            None => head_count,
        };
        let head_dim = match file.get_u64(&key("attention.key_length"))? {
            Some(_) => count("attention.key_length")?,
            None => embedding_length / head_count,
        };
        if let Some(v) = file.get_u64(&key("attention.value_length"))?
            && v != head_dim as u64
        {
            return Err(invalid(&key("attention.value_length"), "must equal the key length".into()));
        }
        let rope_dimensions = match file.get_u64(&key("rope.dimension_count"))? {
            Some(_) => count("rope.dimension_count")?,
            None => head_dim,
        };
        let token_embd =
            file.tensor("token_embd.weight").ok_or_else(|| Error::MissingTensor("token_embd.weight".into()))?;
        let vocab_size = match token_embd.dims.as_slice() {
            &[_, v] => v as usize,
            other => {
                return Err(Error::InvalidShape { tensor: token_embd.name.clone(), dims: other.to_vec() });
            }
        };

        let config = ModelConfig {
            architecture,
            vocab_size,
            embedding_length,
            block_count: count("block_count")?,
            head_count,
            head_count_kv,
            head_dim,
            feed_forward_length: count("feed_forward_length")?,
            context_length: count("context_length")?,
            rms_epsilon: file.get_f32(&key("attention.layer_norm_rms_epsilon"))?.unwrap_or(1e-5),
            rope_freq_base: file.get_f32(&key("rope.freq_base"))?.unwrap_or(DEFAULT_ROPE_FREQ_BASE),
            rope_dimensions,
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<()> {
        let arch = self.architecture.name();
        if !self.head_count.is_multiple_of(self.head_count_kv) {
            return Err(invalid(
                &format!("{arch}.attention.head_count_kv"),
                format!("{} heads cannot share {} kv heads", self.head_count, self.head_count_kv),
            ));
        }
        if self.head_dim == 0 || !self.head_dim.is_multiple_of(2) {
            return Err(invalid(
                &format!("{arch}.attention.head_count"),
                format!("head size {} is not even", self.head_dim),
            ));
        }
        if self.rope_dimensions > self.head_dim || !self.rope_dimensions.is_multiple_of(2) {
            return Err(invalid(
                &format!("{arch}.rope.dimension_count"),
                format!("{} does not fit a head of {}", self.rope_dimensions, self.head_dim),
            ));
        }
        if !(self.rope_freq_base > 0.0 && self.rope_freq_base.is_finite()) {
            return Err(invalid(&format!("{arch}.rope.freq_base"), format!("{}", self.rope_freq_base)));
        }
        if !(self.rms_epsilon >= 0.0 && self.rms_epsilon.is_finite()) {
            return Err(invalid(&format!("{arch}.attention.layer_norm_rms_epsilon"), format!("{}", self.rms_epsilon)));
        }
        if self.vocab_size == 0 {
            return Err(invalid("token_embd.weight", "empty vocabulary".into()));
        }
        Ok(())
    }

    pub fn q_dim(&self) -> usize {
        self.head_count * self.head_dim
    }

    /// Width of one position's keys (or values) in one layer.
    pub fn kv_dim(&self) -> usize {
        self.head_count_kv * self.head_dim
    }
}

fn invalid(key: &str, reason: String) -> Error {
    Error::InvalidMetadata { key: key.into(), reason }
}
