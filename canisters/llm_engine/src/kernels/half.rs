//! IEEE half precision <-> f32 conversion, written out because stable Rust has
//! no f16 type.

const MAGNITUDE_MASK: u32 = 0x7fff;
const HALF_INF_OR_NAN: u32 = 0x7c00;
/// 2^112: rescales a half's exponent (bias 15) placed in an f32's exponent
/// field (bias 127). Exact, and it also turns half subnormals into the right
/// f32 normals.
const EXPONENT_RESCALE: f32 = f32::from_bits((127 + 112) << 23);

/// Exact conversion of half bits to f32. The simd128 kernels use the same
/// arithmetic lane by lane, so both paths see identical weights.
#[inline(always)]
pub fn f16_to_f32(bits: u16) -> f32 {
    let h = bits as u32;
    let sign = (h & 0x8000) << 16;
    let magnitude = h & MAGNITUDE_MASK;
    let shifted = magnitude << 13;
    let value_bits = if magnitude >= HALF_INF_OR_NAN {
        shifted | 0x7f80_0000
    } else {
        (f32::from_bits(shifted) * EXPONENT_RESCALE).to_bits()
    };
    f32::from_bits(value_bits | sign)
}

/// All 65536 half values as f32, indexed by their bits: one load instead of
/// the bit manipulation, for the per-block scales of quantized weights.
pub fn f16_table() -> &'static [f32; 65536] {
    static TABLE: std::sync::OnceLock<Box<[f32; 65536]>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = Box::new([0f32; 65536]);
        for (bits, value) in table.iter_mut().enumerate() {
            *value = f16_to_f32(bits as u16);
        }
        table
    })
}

/// Four halves (the first 8 bytes) as f32 lanes, with the same arithmetic
/// as `f16_to_f32`.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
pub fn simd_halves_to_f32(bytes: &[u8]) -> super::lanes::F32x4 {
    use core::arch::wasm32::*;
    assert!(bytes.len() >= 8);
    // SAFETY: 8 bytes are readable.
    let h = u32x4_extend_low_u16x8(unsafe { v128_load64_zero(bytes.as_ptr().cast()) });
    let sign = i32x4_shl(v128_and(h, u32x4_splat(0x8000)), 16);
    let magnitude = v128_and(h, u32x4_splat(MAGNITUDE_MASK));
    let shifted = i32x4_shl(magnitude, 13);
    let finite = f32x4_mul(shifted, f32x4_splat(EXPONENT_RESCALE));
    let special = v128_or(shifted, u32x4_splat(0x7f80_0000));
    let is_special = u32x4_ge(magnitude, u32x4_splat(HALF_INF_OR_NAN));
    super::lanes::F32x4::from_v128(v128_or(v128_bitselect(special, finite, is_special), sign))
}

/// Rounds an f32 to the nearest half (ties to even), saturating to infinity.
pub fn f32_to_f16(value: f32) -> u16 {
    let bits = value.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let abs = bits & 0x7fff_ffff;
    if abs >= 0x7f80_0000 {
        let quiet_nan = if abs > 0x7f80_0000 { 0x0200 } else { 0 };
        return sign | 0x7c00 | quiet_nan;
    }
    let exponent = (abs >> 23) as i32 - 127;
    if exponent >= 16 {
        return sign | 0x7c00;
    }
    let (mantissa, shift, biased_exponent) = if exponent >= -14 {
        // Normal half: drop 13 mantissa bits.
        (abs & 0x7f_ffff, 13, ((exponent + 15) as u32) << 10)
    } else if exponent >= -25 {
        // Subnormal half: the implicit bit becomes explicit, shifted further.
        ((abs & 0x7f_ffff) | 0x80_0000, (-1 - exponent) as u32, 0)
    } else {
        return sign;
    };
    let truncated = biased_exponent + (mantissa >> shift);
    let remainder = mantissa & ((1 << shift) - 1);
    let halfway = 1 << (shift - 1);
    // A carry out of the mantissa correctly bumps the exponent (up to infinity).
    let rounded =
        if remainder > halfway || (remainder == halfway && truncated & 1 == 1) { truncated + 1 } else { truncated };
    sign | rounded as u16
}

/// The value an f32 has after a round trip through half precision.
pub fn round_to_f16(value: f32) -> f32 {
    f16_to_f32(f32_to_f16(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_half_round_trips() {
        for bits in 0..=u16::MAX {
            let f = f16_to_f32(bits);
            if f.is_nan() {
                assert!(f16_to_f32(f32_to_f16(f)).is_nan());
            } else {
                assert_eq!(f32_to_f16(f), bits, "half {bits:#06x} -> {f}");
            }
        }
    }

    #[test]
    fn known_values() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert_eq!(f32_to_f16(65520.0), 0x7c00);
        assert_eq!(f32_to_f16(65519.0), 0x7bff);
        assert_eq!(f32_to_f16(1e-9), 0);
    }

    #[test]
    fn rounds_to_nearest_even() {
        // Halfway between 1.0 (0x3c00) and the next half (0x3c01).
        let halfway = 1.0 + 2f32.powi(-11);
        assert_eq!(f32_to_f16(halfway), 0x3c00);
        assert_eq!(f32_to_f16(f32::from_bits(halfway.to_bits() + 1)), 0x3c01);
        // Halfway between 0x3c01 and 0x3c02 rounds up to the even one.
        assert_eq!(f32_to_f16(1.0 + 3.0 * 2f32.powi(-11)), 0x3c02);
        // Subnormal halfway cases.
        assert_eq!(f32_to_f16(2f32.powi(-25)), 0);
        assert_eq!(f32_to_f16(3.0 * 2f32.powi(-25)), 2);
    }
}
