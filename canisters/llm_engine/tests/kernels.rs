mod common;

use common::random_f32s;
use llm_engine::TensorType;
use llm_engine::kernels::{MatmulScratch, PackedActivations, Weights, dense, encode, half, packed, q8_0};

fn dot_f64(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

fn norm_product(a: &[f32], b: &[f32]) -> f64 {
    let n = |v: &[f32]| v.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
    n(a) * n(b)
}

#[test]
fn f32_dot_matches_f64_reference_for_all_lengths() {
    for n in [0, 1, 3, 4, 7, 15, 16, 17, 20, 35, 64, 172, 1000] {
        let a = random_f32s(n as u64, n);
        let b = random_f32s(1000 + n as u64, n);
        let bytes = encode(TensorType::F32, &a).unwrap();
        let got = dense::dot_f32_row(&bytes, &b);
        assert_eq!(got.to_bits(), dense::dot_f32(&a, &b).to_bits());
        let want = dot_f64(&a, &b);
        assert!((got as f64 - want).abs() <= 1e-6 * norm_product(&a, &b) + 1e-7, "n={n}: {got} vs {want}");
    }
}

#[test]
fn f16_rows_match_f32_reference() {
    for n in [1, 5, 16, 20, 36, 172, 896] {
        let w = random_f32s(7 + n as u64, n);
        let x = random_f32s(9 + n as u64, n);
        let row = encode(TensorType::F16, &w).unwrap();
        let mut dequantized = vec![0f32; n];
        dense::dequantize_f16_row(&row, &mut dequantized);
        for (d, &orig) in dequantized.iter().zip(&w) {
            assert_eq!(*d, half::round_to_f16(orig));
            assert!((d - orig).abs() <= orig.abs() * 1e-3 + 1e-7);
        }
        // Same summation order as the F32 kernel over the dequantized row: bit-identical.
        let got = dense::dot_f16_row(&row, &x);
        assert_eq!(got.to_bits(), dense::dot_f32(&dequantized, &x).to_bits(), "n={n}");
        let want = dot_f64(&w, &x);
        assert!((got as f64 - want).abs() <= 2e-3 * norm_product(&w, &x), "n={n}: {got} vs {want}");
    }
}

#[test]
fn q8_0_round_trip_error_is_within_half_a_step() {
    let w: Vec<f32> = random_f32s(3, 32 * 40).iter().enumerate().map(|(i, v)| v * (1 + i / 32) as f32).collect();
    let bytes = q8_0::quantize(&w);
    assert_eq!(bytes.len(), 40 * 34);
    let mut back = vec![0f32; w.len()];
    q8_0::dequantize_row(&bytes, &mut back);
    for (block, (orig, deq)) in w.chunks(32).zip(back.chunks(32)).enumerate() {
        let max = orig.iter().fold(0f32, |m, v| m.max(v.abs()));
        let step = max / 127.0;
        for (o, d) in orig.iter().zip(deq) {
            assert!((o - d).abs() <= step * 0.502 + max * 1e-3, "block {block}: {o} vs {d}");
        }
    }
    // All-zero blocks stay zero (no division by zero).
    let zeros = q8_0::quantize(&[0.0; 32]);
    q8_0::dequantize_row(&zeros, &mut back[..32]);
    assert!(back[..32].iter().all(|&v| v == 0.0));
}

/// Every quantized type the engine reads.
const QUANTIZED: [TensorType; 8] = [
    TensorType::Q4_0,
    TensorType::Q4_1,
    TensorType::Q5_0,
    TensorType::Q5_1,
    TensorType::Q8_0,
    TensorType::Q4_K,
    TensorType::Q5_K,
    TensorType::Q6_K,
];

/// `(type, bytes of whole blocks, f32 bits of their values)` from testdata/quant_reference.txt.
fn reference_records() -> Vec<(String, Vec<u8>, Vec<u32>)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/quant_reference.txt");
    let text = std::fs::read_to_string(path).expect("reference file");
    let hex = |s: &str| (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect();
    text.split("\n\n")
        .filter(|b| b.starts_with("type: "))
        .map(|block| {
            let field = |name: &str| {
                block.lines().find_map(|l| l.strip_prefix(name)).unwrap_or_else(|| panic!("{name} in {block}"))
            };
            let values = field("values: ").split(' ').map(|v| u32::from_str_radix(v, 16).unwrap()).collect();
            (field("type: ").to_string(), hex(field("block: ")), values)
        })
        .collect()
}

#[test]
fn dequantization_is_bit_identical_to_llama_cpp_formulas() {
    // testdata/quant_reference.py computes the values from the formats' definitions.
    let records = reference_records();
    for ty in QUANTIZED {
        let mine: Vec<_> = records.iter().filter(|r| r.0 == ty.name()).collect();
        assert_eq!(mine.len(), 3, "{ty} records");
        for (_, bytes, want) in mine {
            let cols = want.len();
            let m = Weights::new("w", ty, 1, cols, bytes).unwrap();
            let mut got = vec![0f32; cols];
            m.dequantize_row(0, &mut got);
            for (i, (g, w)) in got.iter().zip(want).enumerate() {
                assert_eq!(g.to_bits(), *w, "{ty} element {i}: {g} vs {}", f32::from_bits(*w));
            }
        }
    }
}

#[test]
fn encoders_round_trip_within_the_type_precision() {
    for ty in QUANTIZED {
        let n = 512;
        let w = random_f32s(5, n);
        let bytes = encode(ty, &w).unwrap();
        assert_eq!(bytes.len() as u64, ty.bytes_for(n as u64).unwrap(), "{ty}");
        let m = Weights::new("w", ty, 1, n, &bytes).unwrap();
        let mut back = vec![0f32; n];
        m.dequantize_row(0, &mut back);
        let max = w.iter().fold(0f32, |a, v| a.max(v.abs()));
        // Half a step of the coarsest grid, plus what the 6-bit sub-block scales of the K types lose.
        let bound = match ty {
            TensorType::Q8_0 => max / 127.0,
            TensorType::Q5_0 | TensorType::Q5_1 | TensorType::Q5_K | TensorType::Q6_K => max / 10.0,
            _ => max / 5.0,
        };
        for (i, (a, b)) in w.iter().zip(&back).enumerate() {
            assert!((a - b).abs() <= bound, "{ty} element {i}: {a} vs {b}");
        }
    }
}

#[test]
fn packed_dot_products_follow_the_reference_arithmetic() {
    // 37 rows: one whole stripe of 32 and a padded one; 9 vectors: a batch
    // of eight and one alone.
    let (rows, cols, n) = (37, 512, 9);
    for ty in QUANTIZED {
        let w = random_f32s(31, rows * cols);
        let xs = random_f32s(32, n * cols);
        let m = Weights::new("w", ty, rows, cols, &encode(ty, &w).unwrap()).unwrap();
        let Weights::Packed { matrix, .. } = &m else { panic!("{ty} is packed") };
        let acts: Vec<PackedActivations> = xs
            .chunks_exact(cols)
            .map(|x| {
                let mut a = PackedActivations::default();
                a.quantize_from(x, matrix.block());
                a
            })
            .collect();
        let mut out = vec![0f32; n * rows];
        m.matmul(&xs, &mut out, &mut MatmulScratch::default());
        let mut want = vec![0f32; n * rows];
        packed::reference_matmul(matrix, &acts, &mut want);
        assert_eq!(
            out.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            want.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            "{ty}"
        );
        let (acts, out, x) = (&acts[0], &out[..rows], &xs[..cols]);
        // The arithmetic is the dot of the dequantized row with the
        // dequantized activations, up to f32 rounding.
        let xq: Vec<f32> = (0..cols).map(|i| acts.value(i) as f32 * acts.scale(i / matrix.block())).collect();
        let mut row = vec![0f32; cols];
        for (r, &got) in out.iter().enumerate() {
            m.dequantize_row(r, &mut row);
            let exact = dot_f64(&row, &xq);
            let bound = 1e-5 * norm_product(&row, &xq);
            assert!((got as f64 - exact).abs() <= bound, "{ty} row {r}: {got} vs {exact}");
            let unquantized = dot_f64(&row, x);
            assert!((got as f64 - unquantized).abs() <= 2e-2 * norm_product(&row, x), "{ty} row {r}");
        }
    }
}

#[test]
#[allow(clippy::needless_range_loop)]
fn batched_matmul_equals_one_vector_at_a_time() {
    let (rows, cols, n) = (24, 64, 5);
    let w = random_f32s(21, rows * cols);
    let xs = random_f32s(22, n * cols);
    let (w256, xs256) = (random_f32s(23, rows * 256), random_f32s(24, n * 256));
    for ty in [TensorType::F32, TensorType::F16, TensorType::Q8_0, TensorType::Q4_K, TensorType::Q6_K] {
        let (cols, w, xs) = if ty.block_len() == 256 { (256, &w256, &xs256) } else { (cols, &w, &xs) };
        let data = encode(ty, w).unwrap();
        let m = Weights::new("w", ty, rows, cols, &data).unwrap();
        let mut scratch = MatmulScratch::default();
        let mut batched = vec![0f32; n * rows];
        m.matmul(xs, &mut batched, &mut scratch);
        let mut row = vec![0f32; cols];
        for t in 0..n {
            let mut single = vec![0f32; rows];
            m.matmul(&xs[t * cols..(t + 1) * cols], &mut single, &mut scratch);
            assert_eq!(single, batched[t * rows..(t + 1) * rows], "{ty}");
            // F16 rows multiply activations rounded to F16 (as ggml does).
            let x: Vec<f32> = xs[t * cols..(t + 1) * cols]
                .iter()
                .map(|&v| if ty == TensorType::F16 { half::round_to_f16(v) } else { v })
                .collect();
            for r in 0..rows {
                m.dequantize_row(r, &mut row);
                let want = dot_f64(&row, &x);
                let tolerance = if ty.block_len() > 1 { 2e-2 } else { 1e-5 };
                assert!((single[r] as f64 - want).abs() <= tolerance * norm_product(&row, &x));
            }
        }
    }
}

#[test]
fn matrix_shape_is_checked() {
    let data = vec![0u8; 34 * 3];
    assert!(Weights::new("w", TensorType::Q8_0, 3, 32, &data).is_ok());
    assert!(Weights::new("w", TensorType::Q8_0, 2, 32, &data).is_err());
    assert!(Weights::new("w", TensorType::Q8_0, 3, 16, &data).is_err());
    assert!(Weights::new("w", TensorType::Q4_1, 3, 32, &data).is_err());
    assert!(Weights::new("w", TensorType::Q2_K, 1, 256, &[0u8; 84]).is_err());
}

#[test]
fn axpy_adds_scaled_vector() {
    let mut y = vec![1.0f32; 7];
    let x: Vec<f32> = (0..7).map(|i| i as f32).collect();
    dense::axpy(&mut y, 0.5, &x);
    assert_eq!(y, [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]);
}
