//! Choosing the next token from logits: greedy, or temperature / top-k /
//! top-p sampling driven by a seeded generator, so a seed always gives the
//! same text.

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
    /// 0 (or less) means greedy: always the most likely token.
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens; 0 keeps all.
    pub top_k: usize,
    /// Keep the fewest most likely tokens whose probabilities reach `top_p`; 1 keeps all.
    pub top_p: f32,
    pub seed: u64,
}

impl SamplerConfig {
    pub fn greedy() -> Self {
        SamplerConfig { temperature: 0.0, top_k: 0, top_p: 1.0, seed: 0 }
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

    /// Picks a token id. Logits that are NaN are never picked (unless all are).
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        let c = &self.config;
        if c.temperature <= 0.0 || c.top_k == 1 || logits.len() <= 1 {
            return argmax(logits);
        }
        let mut candidates: Vec<(u32, f32)> =
            logits.iter().enumerate().filter(|(_, l)| !l.is_nan()).map(|(i, &l)| (i as u32, l)).collect();
        if candidates.is_empty() {
            return 0;
        }
        // Most likely first; equal logits by lower id, so the order is total.
        let order = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if c.top_k > 0 && c.top_k < candidates.len() {
            candidates.select_nth_unstable_by(c.top_k - 1, order);
            candidates.truncate(c.top_k);
        }
        candidates.sort_unstable_by(order);

        let max = candidates[0].1;
        let inverse_temperature = 1.0 / c.temperature as f64;
        let weights: Vec<f64> =
            candidates.iter().map(|&(_, l)| ((l as f64 - max as f64) * inverse_temperature).exp()).collect();
        let total: f64 = weights.iter().sum();

        let mut kept = weights.len();
        if c.top_p < 1.0 {
            let threshold = c.top_p.max(0.0) as f64 * total;
            let mut cumulative = 0.0;
            for (i, w) in weights.iter().enumerate() {
                cumulative += w;
                if cumulative >= threshold {
                    kept = i + 1;
                    break;
                }
            }
        }
        let kept_total: f64 = weights[..kept].iter().sum();
        let mut target = self.rng.next_f64() * kept_total;
        for (i, w) in weights[..kept].iter().enumerate() {
            if target < *w {
                return candidates[i].0;
            }
            target -= w;
        }
        candidates[kept - 1].0
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
        SamplerConfig { temperature, top_k, top_p, seed }
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
