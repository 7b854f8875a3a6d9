mod common;

use common::random_f32s;
use llm_engine::TensorType;
use llm_engine::kernels::{MatmulScratch, MatrixRef, Q8Activations, dense, encode, half, q8_0};

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

#[test]
fn q8_0_dot_matches_dequantized_reference() {
    for blocks in [1, 2, 5, 28] {
        let n = blocks * 32;
        let w = random_f32s(11 + n as u64, n);
        let x = random_f32s(13 + n as u64, n);
        let row = q8_0::quantize(&w);
        let mut acts = Q8Activations::default();
        acts.quantize_from(&x);
        let got = q8_0::dot_row(&row, &acts);

        // Exact reference: the same quantized values, summed in f64.
        let mut wq = vec![0f32; n];
        q8_0::dequantize_row(&row, &mut wq);
        let xq: Vec<f32> = acts.values.iter().enumerate().map(|(i, &v)| v as f32 * acts.scales[i / 32]).collect();
        let exact = dot_f64(&wq, &xq);
        assert!((got as f64 - exact).abs() <= 1e-5 * norm_product(&wq, &xq), "{got} vs {exact}");

        // Against the unquantized f32 dot: quantization error only.
        let want = dot_f64(&w, &x);
        assert!((got as f64 - want).abs() <= 2e-2 * norm_product(&w, &x), "{got} vs {want}");
    }
}

#[test]
#[allow(clippy::needless_range_loop)]
fn batched_matmul_equals_one_vector_at_a_time() {
    let (rows, cols, n) = (24, 64, 5);
    let w = random_f32s(21, rows * cols);
    let xs = random_f32s(22, n * cols);
    for ty in [TensorType::F32, TensorType::F16, TensorType::Q8_0] {
        let data = encode(ty, &w).unwrap();
        let m = MatrixRef::new("w", ty, rows, cols, &data).unwrap();
        let mut scratch = MatmulScratch::default();
        let mut batched = vec![0f32; n * rows];
        m.matmul(&xs, &mut batched, &mut scratch);
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
                let tolerance = if ty == TensorType::Q8_0 { 2e-2 } else { 1e-5 };
                assert!((single[r] as f64 - want).abs() <= tolerance * norm_product(&row, &x));
            }
        }
    }
}

#[test]
fn matrix_shape_is_checked() {
    let data = vec![0u8; 34 * 3];
    assert!(MatrixRef::new("w", TensorType::Q8_0, 3, 32, &data).is_ok());
    assert!(MatrixRef::new("w", TensorType::Q8_0, 2, 32, &data).is_err());
    assert!(MatrixRef::new("w", TensorType::Q8_0, 3, 16, &data).is_err());
    assert!(MatrixRef::new("w", TensorType::Q4_1, 3, 32, &data).is_err());
}

#[test]
fn axpy_adds_scaled_vector() {
    let mut y = vec![1.0f32; 7];
    let x: Vec<f32> = (0..7).map(|i| i as f32).collect();
    dense::axpy(&mut y, 0.5, &x);
    assert_eq!(y, [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]);
}
