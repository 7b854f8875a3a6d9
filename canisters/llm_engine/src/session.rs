//! One conversation's inference state: the tokens seen so far and their
//! keys and values (the KV cache, in f32 or f16: [`crate::kv_cache`]). Tokens can be fed in any split —
//! a prompt over several calls, then one token at a time — and the results
//! are bit-identical to feeding everything at once.

use crate::error::{Error, Result};
use crate::kernels::{MatmulScratch, dense, matmul_shared};
use crate::kv_cache::{CacheType, KvCache};
use crate::model::ops::RopeAngles;
use crate::model::{Layer, Model, ModelConfig};
use crate::sampling::Sampler;
use crate::snapshot;

/// The parts of a model's shape a session's cache depends on.
#[derive(Clone, Debug, PartialEq)]
struct CacheShape {
    layers: usize,
    kv_dim: usize,
    embedding: usize,
    vocab: usize,
}

impl CacheShape {
    fn of(c: &ModelConfig) -> Self {
        CacheShape { layers: c.block_count, kv_dim: c.kv_dim(), embedding: c.embedding_length, vocab: c.vocab_size }
    }
}

pub struct Session {
    shape: CacheShape,
    capacity: usize,
    tokens: Vec<u32>,
    /// Position-major: position `p`, layer `l` starts at `(p * layers + l) * kv_dim`,
    /// so the cache grows at the end as positions are added.
    cache: KvCache,
    /// Residual stream after the last block, for the last fed token.
    last_hidden: Option<Vec<f32>>,
    logits: Option<Vec<f32>>,
    scratch: MatmulScratch,
}

impl Session {
    /// A session holding at most `capacity` positions (at most the model's
    /// context length), with an f32 cache. Cache memory is taken as positions
    /// are used: `2 * layers * kv_dim * 4` bytes each.
    pub fn new(model: &Model, capacity: usize) -> Result<Self> {
        Self::with_cache_type(model, capacity, CacheType::F32)
    }

    /// Like `new`, with the cache in `cache_type` (f16: 2 bytes per value).
    pub fn with_cache_type(model: &Model, capacity: usize, cache_type: CacheType) -> Result<Self> {
        let context = model.config().context_length;
        if capacity == 0 || capacity > context {
            return Err(Error::InvalidArgument(format!(
                "session capacity {capacity} must be between 1 and the context length {context}"
            )));
        }
        Ok(Session {
            shape: CacheShape::of(model.config()),
            capacity,
            tokens: Vec::new(),
            cache: KvCache::new(cache_type),
            last_hidden: None,
            logits: None,
            scratch: MatmulScratch::default(),
        })
    }

    /// Positions held (tokens fed so far).
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn remaining(&self) -> usize {
        self.capacity - self.tokens.len()
    }

    /// Every token fed so far, in order.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Forgets every position from `len` on (for example to rewind a
    /// conversation). Logits are unavailable until the next feed.
    pub fn truncate(&mut self, len: usize) {
        if len >= self.tokens.len() {
            return;
        }
        self.tokens.truncate(len);
        let values = len * self.shape.layers * self.shape.kv_dim;
        self.cache.resize(values, values);
        self.last_hidden = None;
        self.logits = None;
    }

    pub fn clear(&mut self) {
        self.truncate(0);
    }

    /// Runs `tokens` through the model at the next positions, extending the
    /// cache. On error nothing changes.
    pub fn feed(&mut self, model: &Model, tokens: &[u32]) -> Result<()> {
        let c = model.config();
        if CacheShape::of(c) != self.shape {
            return Err(Error::SessionModelMismatch);
        }
        if tokens.len() > self.remaining() {
            return Err(Error::ContextFull { capacity: self.capacity, used: self.len(), requested: tokens.len() });
        }
        if let Some(&token) = tokens.iter().find(|&&t| t as usize >= c.vocab_size) {
            return Err(Error::InvalidToken { token, vocab_size: c.vocab_size });
        }
        if tokens.is_empty() {
            return Ok(());
        }

        let n = tokens.len();
        let emb = c.embedding_length;
        let mut x = vec![0f32; n * emb];
        let embeddings = &model.token_embd;
        for (row, &token) in x.chunks_exact_mut(emb).zip(tokens) {
            embeddings.dequantize_row(token as usize, row);
        }

        let first = self.tokens.len();
        self.grow_cache(first + n);
        let angles: Vec<RopeAngles> =
            (first..first + n).map(|p| RopeAngles::new(p, c.rope_dimensions, c.rope_freq_base)).collect();

        let mut buffers = Buffers::new(c, n, first + n);
        let layers = model.layers.len();
        for (index, layer) in model.layers.iter().enumerate() {
            // Only the last token's output is kept: in the last layer the
            // others need just their keys and values (as llama.cpp skips
            // unused outputs). Per token nothing else changes.
            let from = if index + 1 == layers { n - 1 } else { 0 };
            self.attention_block(model, index, layer, first, from, &angles, &mut x, &mut buffers);
            self.feed_forward_block(model, layer, from, &mut x, &mut buffers);
        }

        self.tokens.extend_from_slice(tokens);
        self.last_hidden = Some(x[(n - 1) * emb..].to_vec());
        self.logits = None;
        Ok(())
    }

    /// Next-token logits after the last fed token (computed once, then kept
    /// until the next feed).
    pub fn logits(&mut self, model: &Model) -> Result<&[f32]> {
        if CacheShape::of(model.config()) != self.shape {
            return Err(Error::SessionModelMismatch);
        }
        if self.logits.is_none() {
            let hidden = self.last_hidden.as_ref().ok_or(Error::NothingFed)?;
            let c = model.config();
            let mut normed = vec![0f32; c.embedding_length];
            dense::rms_norm(hidden, &model.output_norm, c.rms_epsilon, &mut normed);
            let mut logits = vec![0f32; c.vocab_size];
            model.output().matmul(&normed, &mut logits, &mut self.scratch);
            self.logits = Some(logits);
        }
        Ok(self.logits.as_deref().expect("just computed"))
    }

    /// Samples the next token from the current logits. The token is not fed:
    /// call `feed` with it to continue.
    /// Penalties (if the sampler has any) look at the conversation's tokens.
    pub fn sample_next(&mut self, model: &Model, sampler: &mut Sampler) -> Result<u32> {
        self.logits(model)?;
        let logits = self.logits.as_deref().expect("just computed");
        Ok(sampler.sample_after(logits, &self.tokens))
    }

    /// Makes room for `positions` positions. Capacity grows by doubling (so
    /// one-token feeds do not copy the cache each time) but never past the
    /// session's capacity.
    fn grow_cache(&mut self, positions: usize) {
        let stride = self.shape.layers * self.shape.kv_dim;
        self.cache.resize(positions * stride, self.capacity * stride);
    }

    /// The session as bytes (tokens, keys and values, the last hidden
    /// state), tagged with `model_id` (for example the model file's SHA-256):
    /// what a prompt cache stores. See [`crate::snapshot`].
    pub fn snapshot(&self, model_id: &[u8; 32]) -> Vec<u8> {
        let mut kv = Vec::with_capacity(self.cache.bytes());
        self.cache.to_bytes(&mut kv);
        let shape = [self.shape.layers, self.shape.kv_dim, self.shape.embedding, self.shape.vocab];
        snapshot::encode(model_id, shape, self.cache.cache_type(), &self.tokens, self.last_hidden.as_deref(), &kv)
    }

    /// A session of `capacity` positions holding what `snapshot` saved, for
    /// `model` (whose id must be the one saved). Feeding and sampling then
    /// give exactly what they give in the saved session.
    pub fn restore(model: &Model, model_id: &[u8; 32], capacity: usize, bytes: &[u8]) -> Result<Self> {
        let saved = snapshot::decode(bytes)?;
        let shape = CacheShape::of(model.config());
        if saved.model_id != *model_id || saved.shape != [shape.layers, shape.kv_dim, shape.embedding, shape.vocab] {
            return Err(Error::BadSnapshot("it was saved for another model".into()));
        }
        if let Some(&token) = saved.tokens.iter().find(|&&t| t as usize >= shape.vocab) {
            return Err(Error::InvalidToken { token, vocab_size: shape.vocab });
        }
        let mut session = Self::with_cache_type(model, capacity, saved.cache_type)?;
        if saved.tokens.len() > capacity {
            return Err(Error::ContextFull { capacity, used: 0, requested: saved.tokens.len() });
        }
        let values = saved.tokens.len() * shape.layers * shape.kv_dim;
        session.cache.set_bytes(values, saved.kv).ok_or_else(|| Error::BadSnapshot("wrong cache size".into()))?;
        session.tokens = saved.tokens;
        session.last_hidden = saved.last_hidden;
        Ok(session)
    }

    pub fn cache_type(&self) -> CacheType {
        self.cache.cache_type()
    }

    /// Bytes the KV cache holds.
    pub fn cache_bytes(&self) -> usize {
        self.cache.bytes()
    }

    /// One attention block for the tokens at `first..first + angles.len()`:
    /// every token's keys and values go into the cache; queries, attention
    /// and the output projection only for the tokens from `from` on.
    #[allow(clippy::too_many_arguments)]
    fn attention_block(
        &mut self,
        model: &Model,
        layer_index: usize,
        layer: &Layer,
        first: usize,
        from: usize,
        angles: &[RopeAngles],
        x: &mut [f32],
        b: &mut Buffers,
    ) {
        let c = model.config();
        let (emb, hd, q_dim, kv_dim) = (c.embedding_length, c.head_dim, c.q_dim(), c.kv_dim());
        let n = angles.len();
        for (xt, out) in x.chunks_exact(emb).zip(b.normed.chunks_exact_mut(emb)) {
            dense::rms_norm(xt, &layer.attn_norm, c.rms_epsilon, out);
        }
        if from == 0 {
            let products = &mut [(&layer.wq, &mut b.q[..]), (&layer.wk, &mut b.k[..]), (&layer.wv, &mut b.v[..])];
            matmul_shared(&b.normed, products, &mut self.scratch);
        } else {
            matmul_shared(&b.normed, &mut [(&layer.wk, &mut b.k[..]), (&layer.wv, &mut b.v[..])], &mut self.scratch);
            layer.wq.matmul(&b.normed[from * emb..], &mut b.q[from * q_dim..], &mut self.scratch);
        }
        add_bias(&mut b.q[from * q_dim..], layer.bq.as_deref());
        add_bias(&mut b.k, layer.bk.as_deref());
        add_bias(&mut b.v, layer.bv.as_deref());

        let style = c.architecture.rope_style();
        let stride = self.shape.layers * kv_dim;
        for (t, angles) in angles.iter().enumerate() {
            if t >= from {
                angles.apply(&mut b.q[t * q_dim..(t + 1) * q_dim], hd, style);
            }
            angles.apply(&mut b.k[t * kv_dim..(t + 1) * kv_dim], hd, style);
            let at = (first + t) * stride + layer_index * kv_dim;
            self.cache.write(at, &b.k[t * kv_dim..(t + 1) * kv_dim], &b.v[t * kv_dim..(t + 1) * kv_dim]);
        }

        // Causal attention: position first + t sees positions 0..=first + t.
        let scale = 1.0 / (hd as f32).sqrt();
        let group = c.head_count / c.head_count_kv;
        b.attended.fill(0.0);
        for t in from..n {
            let visible = first + t + 1;
            for h in 0..c.head_count {
                self.cache.prepare_query(&b.q[t * q_dim + h * hd..][..hd], &mut b.query);
                let kv_offset = layer_index * kv_dim + (h / group) * hd;
                let scores = &mut b.scores[..visible];
                self.cache.scores(&b.query, kv_offset, stride, scores);
                dense::scale_in_place(scores, scale);
                dense::softmax(scores);
                let out = &mut b.attended[t * q_dim + h * hd..][..hd];
                self.cache.weighted_values(scores, kv_offset, stride, out);
            }
        }
        layer.wo.matmul(&b.attended[from * q_dim..], &mut b.projected[from * emb..], &mut self.scratch);
        dense::add_in_place(&mut x[from * emb..], &b.projected[from * emb..]);
    }

    /// One feed-forward block for the tokens from `from` on.
    fn feed_forward_block(&mut self, model: &Model, layer: &Layer, from: usize, x: &mut [f32], b: &mut Buffers) {
        let c = model.config();
        let (emb, ff) = (c.embedding_length, c.feed_forward_length);
        let x = &mut x[from * emb..];
        let normed = &mut b.normed[from * emb..];
        for (xt, out) in x.chunks_exact(emb).zip(normed.chunks_exact_mut(emb)) {
            dense::rms_norm(xt, &layer.ffn_norm, c.rms_epsilon, out);
        }
        let (gate, up) = (&mut b.gate[from * ff..], &mut b.up[from * ff..]);
        matmul_shared(normed, &mut [(&layer.w_gate, &mut gate[..]), (&layer.w_up, &mut up[..])], &mut self.scratch);
        dense::swiglu_in_place(gate, up);
        layer.w_down.matmul(gate, &mut b.projected[from * emb..], &mut self.scratch);
        dense::add_in_place(x, &b.projected[from * emb..]);
    }
}

fn add_bias(x: &mut [f32], bias: Option<&[f32]>) {
    if let Some(bias) = bias {
        for row in x.chunks_exact_mut(bias.len()) {
            dense::add_in_place(row, bias);
        }
    }
}

/// Activations for a batch of `n` tokens.
struct Buffers {
    normed: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    attended: Vec<f32>,
    projected: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
    scores: Vec<f32>,
    /// One head's query as the cache's dot products take it.
    query: Vec<f32>,
}

impl Buffers {
    fn new(c: &ModelConfig, n: usize, max_visible: usize) -> Self {
        let zeros = |len: usize| vec![0f32; n * len];
        Buffers {
            normed: zeros(c.embedding_length),
            q: zeros(c.q_dim()),
            k: zeros(c.kv_dim()),
            v: zeros(c.kv_dim()),
            attended: zeros(c.q_dim()),
            projected: zeros(c.embedding_length),
            gate: zeros(c.feed_forward_length),
            up: zeros(c.feed_forward_length),
            scores: vec![0f32; max_visible],
            query: Vec::with_capacity(c.head_dim),
        }
    }
}
