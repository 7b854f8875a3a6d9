//! Choosing the next token from logits: greedy, or llama.cpp's sampler
//! chain (repetition / frequency / presence penalties over the last n
//! tokens, top-k, top-p, min-p, temperature, draw) driven by a seeded
//! generator, so a seed always gives the same text.

/// SplitMix64: tiny, fast, and its whole state is one u64 (easy to persist
/// between canister calls).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    pub fn state(&self) -> u64 {
        self.state
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct SamplerConfig {
    /// 0 (or less) means greedy: always the most likely token (after the penalties).
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens; 0 keeps all.
    pub top_k: usize,
    /// Keep the fewest most likely tokens whose probabilities reach `top_p`; 1 keeps all.
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` times the most likely one; 0 keeps all.
    pub min_p: f32,
    /// Divides positive logits (multiplies negative ones) of tokens seen in
    /// the last `repeat_last_n` positions; 1 is off.
    pub repeat_penalty: f32,
    /// The penalty window; 0 is off, `None` the whole context (llama.cpp's -1).
    pub repeat_last_n: Option<usize>,
    /// Subtracted per occurrence in the window (llama.cpp `--frequency-penalty`).
    pub frequency_penalty: f32,
    /// Subtracted once for any occurrence in the window (`--presence-penalty`).
    pub presence_penalty: f32,
    pub seed: u64,
}

impl SamplerConfig {
    pub fn greedy() -> Self {
        SamplerConfig { temperature: 0.0, top_k: 0, top_p: 1.0, min_p: 0.0, ..Self::default() }
    }

    fn penalizes(&self) -> bool {
        self.repeat_last_n != Some(0)
            && (self.repeat_penalty != 1.0 || self.frequency_penalty != 0.0 || self.presence_penalty != 0.0)
    }
}

impl Default for SamplerConfig {
    /// llama.cpp's defaults: temperature 0.8, top-k 40, top-p 0.95, min-p
    /// 0.05, no penalties (window 64), seed 4294967295.
    fn default() -> Self {
        SamplerConfig {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            repeat_last_n: Some(64),
            frequency_penalty: 0.0,
            presence_penalty: 0.0,
            seed: 4_294_967_295,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Sampler {
    config: SamplerConfig,
    rng: SplitMix64,
}

impl Sampler {
    pub fn new(config: SamplerConfig) -> Self {
        let rng = SplitMix64::new(config.seed);
        Sampler { config, rng }
    }

    pub fn greedy() -> Self {
        Self::new(SamplerConfig::greedy())
    }

    pub fn config(&self) -> &SamplerConfig {
        &self.config
    }

    /// The generator state, to resume sampling later with `with_rng_state`.
    pub fn rng_state(&self) -> u64 {
        self.rng.state()
    }

    pub fn with_rng_state(mut self, state: u64) -> Self {
        self.rng = SplitMix64::new(state);
        self
    }

    /// Picks a token id with no history (no penalties). Logits that are NaN
    /// are never picked (unless all are).
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        self.sample_after(logits, &[])
    }

    /// Picks a token id after `history` (the conversation's tokens so far,
    /// oldest first), in llama.cpp's sampler order: penalties over the last
    /// `repeat_last_n` tokens, top-k, top-p, min-p, temperature, then a draw.
    pub fn sample_after(&mut self, logits: &[f32], history: &[u32]) -> u32 {
        let c = &self.config;
        let penalize = c.penalizes() && !history.is_empty();
        if (c.temperature <= 0.0 || c.top_k == 1 || logits.len() <= 1) && !penalize {
            return argmax(logits);
        }
        let mut candidates: Vec<(u32, f32)> =
            logits.iter().enumerate().filter(|(_, l)| !l.is_nan()).map(|(i, &l)| (i as u32, l)).collect();
        if candidates.is_empty() {
            return 0;
        }
        if penalize {
            let window = &history[history.len().saturating_sub(c.repeat_last_n.unwrap_or(usize::MAX))..];
            apply_penalties(&mut candidates, window, c);
        }
        // Most likely first; equal logits by lower id, so the order is total.
        let order = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if c.temperature <= 0.0 || c.top_k == 1 {
            return candidates.iter().copied().min_by(order).map_or(0, |(id, _)| id);
        }
        if c.top_k > 0 && c.top_k < candidates.len() {
            candidates.select_nth_unstable_by(c.top_k - 1, order);
            candidates.truncate(c.top_k);
        }
        candidates.sort_unstable_by(order);

        let max = candidates[0].1 as f64;
        if c.top_p < 1.0 {
            let weights: Vec<f64> = candidates.iter().map(|&(_, l)| (l as f64 - max).exp()).collect();
            let threshold = c.top_p.max(0.0) as f64 * weights.iter().sum::<f64>();
            let mut cumulative = 0.0;
            let kept = weights.iter().position(|w| {
                cumulative += w;
                cumulative >= threshold
            });
            candidates.truncate(kept.map_or(candidates.len(), |i| i + 1));
        }
        if c.min_p > 0.0 {
            // In logit space, as llama.cpp does: p >= min_p * p_max.
            let floor = max + (c.min_p as f64).ln();
            let kept = candidates.iter().take_while(|&&(_, l)| l as f64 >= floor).count().max(1);
            candidates.truncate(kept);
        }
        let inverse_temperature = 1.0 / c.temperature as f64;
        let weights: Vec<f64> =
            candidates.iter().map(|&(_, l)| ((l as f64 - max) * inverse_temperature).exp()).collect();
        let total: f64 = weights.iter().sum();
        let mut target = self.rng.next_f64() * total;
        for (i, w) in weights.iter().enumerate() {
            if target < *w {
                return candidates[i].0;
            }
            target -= w;
        }
        candidates[candidates.len() - 1].0
    }
}

/// llama.cpp's penalties: a token seen `n > 0` times in the window has its
/// logit divided by `repeat_penalty` if positive (multiplied if not), then
/// lowered by `n * frequency_penalty + presence_penalty`.
fn apply_penalties(candidates: &mut [(u32, f32)], window: &[u32], c: &SamplerConfig) {
    let mut counts: Vec<(u32, usize)> = Vec::new();
    let mut sorted = window.to_vec();
    sorted.sort_unstable();
    for chunk in sorted.chunk_by(|a, b| a == b) {
        counts.push((chunk[0], chunk.len()));
    }
    for (id, logit) in candidates.iter_mut() {
        if let Ok(i) = counts.binary_search_by_key(id, |&(t, _)| t) {
            let n = counts[i].1 as f32;
            *logit = if *logit <= 0.0 { *logit * c.repeat_penalty } else { *logit / c.repeat_penalty };
            *logit -= n * c.frequency_penalty + c.presence_penalty;
        }
    }
}

/// Index of the largest logit (the first one on ties; NaNs ignored).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    let mut best_value = f32::NEG_INFINITY;
    for (i, &l) in logits.iter().enumerate() {
        if l > best_value {
            best = i;
            best_value = l;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(temperature: f32, top_k: usize, top_p: f32, seed: u64) -> SamplerConfig {
        SamplerConfig { temperature, top_k, top_p, min_p: 0.0, seed, ..SamplerConfig::default() }
    }

    #[test]
    fn min_p_drops_tokens_far_below_the_best() {
        // Probabilities relative to the best: 1, e^-1, e^-3, e^-6.
        let logits = [6.0, 5.0, 3.0, 0.0];
        let mut s = Sampler::new(SamplerConfig { min_p: 0.1, ..config(1.0, 0, 1.0, 3) });
        let picks: Vec<u32> = (0..2000).map(|_| s.sample(&logits)).collect();
        assert!(picks.contains(&0) && picks.contains(&1) && !picks.contains(&2) && !picks.contains(&3));
    }

    #[test]
    fn penalties_follow_llama_cpp() {
        let c = SamplerConfig {
            repeat_penalty: 2.0,
            frequency_penalty: 0.5,
            presence_penalty: 0.25,
            ..config(0.0, 0, 1.0, 0)
        };
        let mut candidates = vec![(0, 4.0), (1, -1.0), (2, 3.0), (3, 1.0)];
        apply_penalties(&mut candidates, &[1, 0, 1, 1], &c);
        // 0: seen once, 4 / 2 - 0.5 - 0.25; 1: seen three times, -1 * 2 - 1.5 - 0.25; 2, 3: unseen.
        assert_eq!(candidates, [(0, 1.25), (1, -3.75), (2, 3.0), (3, 1.0)]);
        // Greedy with a penalty: the repeated best token loses to the next one.
        let mut greedy = Sampler::new(SamplerConfig { repeat_penalty: 2.0, ..SamplerConfig::greedy() });
        assert_eq!(greedy.sample_after(&[4.0, 3.0, 1.0], &[0]), 1);
        assert_eq!(greedy.sample_after(&[4.0, 3.0, 1.0], &[2]), 0);
        // Only the last `repeat_last_n` tokens count.
        let mut windowed =
            Sampler::new(SamplerConfig { repeat_penalty: 2.0, repeat_last_n: Some(1), ..SamplerConfig::greedy() });
        assert_eq!(windowed.sample_after(&[4.0, 3.0, 1.0], &[0, 2]), 0);
        // Without penalties greedy ignores the history.
        assert_eq!(Sampler::greedy().sample_after(&[4.0, 3.0, 1.0], &[0, 0, 0]), 0);
    }

    #[test]
    fn top_p_and_min_p_see_the_logits_before_the_temperature() {
        // At temperature 1 token 0 has ~0.665; top-p 0.6 keeps it alone even
        // at a high temperature, because top-p comes first (llama.cpp's order).
        let logits = [5.0, 4.0, 3.0, 0.0, -1.0];
        let mut s = Sampler::new(config(50.0, 0, 0.6, 9));
        assert!((0..500).all(|_| s.sample(&logits) == 0));
    }

    #[test]
    fn greedy_takes_the_first_maximum() {
        assert_eq!(argmax(&[1.0, 3.0, f32::NAN, 3.0]), 1);
        assert_eq!(Sampler::greedy().sample(&[0.0, -1.0, 2.0]), 2);
    }

    #[test]
    fn same_seed_same_choices() {
        let logits: Vec<f32> = (0..50).map(|i| ((i * 37) % 11) as f32 * 0.3).collect();
        let draw = |seed| {
            let mut s = Sampler::new(config(0.8, 0, 1.0, seed));
            (0..100).map(|_| s.sample(&logits)).collect::<Vec<_>>()
        };
        assert_eq!(draw(42), draw(42));
        assert_ne!(draw(42), draw(43));
    }

    #[test]
    fn top_k_and_top_p_restrict_the_choices() {
        let logits = [5.0, 4.0, 3.0, 0.0, -1.0];
        let mut top2 = Sampler::new(config(10.0, 2, 1.0, 1));
        assert!((0..500).all(|_| top2.sample(&logits) < 2));
        // Token 0 alone has probability ~0.665 at temperature 1.
        let mut nucleus = Sampler::new(config(1.0, 0, 0.6, 1));
        assert!((0..500).all(|_| nucleus.sample(&logits) == 0));
        let mut wide = Sampler::new(config(1.0, 0, 0.95, 1));
        let picks: Vec<u32> = (0..2000).map(|_| wide.sample(&logits)).collect();
        assert!(picks.contains(&1) && picks.contains(&2) && !picks.contains(&4));
    }

    #[test]
    fn rng_state_resumes_the_sequence() {
        let logits: Vec<f32> = (0..20).map(|i| i as f32 * 0.1).collect();
        let mut a = Sampler::new(config(1.0, 0, 1.0, 7));
        a.sample(&logits);
        let b = Sampler::new(config(1.0, 0, 1.0, 0)).with_rng_state(a.rng_state());
        let mut a2 = a.clone();
        let mut b2 = b;
        assert_eq!(
            (0..20).map(|_| a2.sample(&logits)).collect::<Vec<_>>(),
            (0..20).map(|_| b2.sample(&logits)).collect::<Vec<_>>()
        );
    }
}
