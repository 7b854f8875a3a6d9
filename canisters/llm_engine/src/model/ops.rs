//! Rotary position embedding (RoPE). The other element-wise operations of
//! the forward pass live in `kernels::dense`.

use super::RopeStyle;
use crate::kernels::lanes::F32x4;

/// Cosines and sines of the rotation angles for one position, one pair per
/// rotated pair of head elements. Angle `i` is `position * base^(-2i/dims)`,
/// computed like ggml as repeated multiplication by the scale.
pub struct RopeAngles {
    pub cos: Vec<f32>,
    pub sin: Vec<f32>,
}

impl RopeAngles {
    pub fn new(position: usize, rotated_dims: usize, freq_base: f32) -> Self {
        let scale = freq_base.powf(-2.0 / rotated_dims as f32);
        let pairs = rotated_dims / 2;
        let (mut cos, mut sin) = (Vec::with_capacity(pairs), Vec::with_capacity(pairs));
        let mut theta = position as f32;
        for _ in 0..pairs {
            cos.push(theta.cos());
            sin.push(theta.sin());
            theta *= scale;
        }
        RopeAngles { cos, sin }
    }

    /// Rotates every head (of `head_dim` elements) in `heads`.
    pub fn apply(&self, heads: &mut [f32], head_dim: usize, style: RopeStyle) {
        let pairs = self.cos.len();
        for head in heads.chunks_exact_mut(head_dim) {
            let mut first = 0;
            if style == RopeStyle::SplitHalves {
                // The two halves are contiguous: rotate four pairs at a time.
                let (low, high) = head[..2 * pairs].split_at_mut(pairs);
                while first + 4 <= pairs {
                    let (x0, x1) = (F32x4::load(&low[first..]), F32x4::load(&high[first..]));
                    let (c, s) = (F32x4::load(&self.cos[first..]), F32x4::load(&self.sin[first..]));
                    x0.mul(c).sub(x1.mul(s)).store(&mut low[first..]);
                    x0.mul(s).add(x1.mul(c)).store(&mut high[first..]);
                    first += 4;
                }
            }
            for i in first..pairs {
                let (a, b) = match style {
                    RopeStyle::AdjacentPairs => (2 * i, 2 * i + 1),
                    RopeStyle::SplitHalves => (i, i + pairs),
                };
                let (x0, x1) = (head[a], head[b]);
                let (c, s) = (self.cos[i], self.sin[i]);
                head[a] = x0 * c - x1 * s;
                head[b] = x0 * s + x1 * c;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rope_rotates_the_right_pairs() {
        let angles = RopeAngles::new(1, 4, 10_000.0);
        // Pair 0 rotates by 1 radian, pair 1 by 1/100.
        let mut adjacent = [1.0, 0.0, 1.0, 0.0];
        angles.apply(&mut adjacent, 4, RopeStyle::AdjacentPairs);
        assert!((adjacent[0] - 1f32.cos()).abs() < 1e-6 && (adjacent[1] - 1f32.sin()).abs() < 1e-6);
        assert!((adjacent[2] - 0.01f32.cos()).abs() < 1e-6 && (adjacent[3] - 0.01f32.sin()).abs() < 1e-6);
        let mut halves = [1.0, 1.0, 0.0, 0.0];
        angles.apply(&mut halves, 4, RopeStyle::SplitHalves);
        assert!((halves[0] - 1f32.cos()).abs() < 1e-6 && (halves[2] - 1f32.sin()).abs() < 1e-6);
        assert!((halves[1] - 0.01f32.cos()).abs() < 1e-6 && (halves[3] - 0.01f32.sin()).abs() < 1e-6);
        // Eight pairs take the vector path; it must match the scalar formula.
        let wide = RopeAngles::new(3, 16, 10_000.0);
        let mut v: Vec<f32> = (0..16).map(|i| i as f32 * 0.25 - 1.0).collect();
        let orig = v.clone();
        wide.apply(&mut v, 16, RopeStyle::SplitHalves);
        for i in 0..8 {
            let (c, s) = (wide.cos[i], wide.sin[i]);
            assert_eq!(v[i], orig[i] * c - orig[i + 8] * s);
            assert_eq!(v[i + 8], orig[i] * s + orig[i + 8] * c);
        }
        // Position 0 is the identity.
        let mut v = [0.3, -0.7, 2.0, 5.0];
        RopeAngles::new(0, 4, 10_000.0).apply(&mut v, 4, RopeStyle::AdjacentPairs);
        assert_eq!(v, [0.3, -0.7, 2.0, 5.0]);
    }
}
