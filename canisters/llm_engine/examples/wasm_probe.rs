//! The engine behind a minimal C ABI, compiled to wasm32-unknown-unknown so
//! a host (scripts/wasm_instructions.py) can count the instructions each
//! step takes, with and without simd128. Errors come back as negative codes.

use std::cell::RefCell;

use llm_engine::synthetic::{Layout, SyntheticSpec, build};
use llm_engine::{Architecture, GgufFile, Model, Sampler, Session, TensorType, Tokenizer};

struct State {
    model: Model,
    tokenizer: Tokenizer,
    session: Session,
    sampler: Sampler,
    last_logits_checksum: f64,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

/// Host writes a file here before `load_gguf`.
#[unsafe(no_mangle)]
pub extern "C" fn alloc(len: u32) -> *mut u8 {
    Box::leak(vec![0u8; len as usize].into_boxed_slice()).as_mut_ptr()
}

fn install(bytes: Vec<u8>, capacity: u32) -> i32 {
    let result = (|| -> llm_engine::Result<State> {
        let file = GgufFile::parse(bytes.as_slice())?;
        let tokenizer = Tokenizer::from_gguf(&file)?;
        let model = Model::from_file_bytes(&file, bytes)?;
        let capacity = (capacity as usize).min(model.config().context_length);
        let session = Session::new(&model, capacity)?;
        Ok(State { model, tokenizer, session, sampler: Sampler::greedy(), last_logits_checksum: 0.0 })
    })();
    match result {
        Ok(state) => {
            STATE.with(|s| *s.borrow_mut() = Some(state));
            0
        }
        Err(_) => -1,
    }
}

/// Takes ownership of `len` bytes at `ptr` (from `alloc`) holding a GGUF file.
///
/// # Safety
/// `ptr` must come from `alloc(len)` and not be used again by the caller.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn load_gguf(ptr: *mut u8, len: u32, capacity: u32) -> i32 {
    // SAFETY: ptr/len come from `alloc`, whose allocation is handed back here.
    let bytes = unsafe { Vec::from_raw_parts(ptr, len as usize, len as usize) };
    install(bytes, capacity)
}

/// Builds a synthetic model in place: preset 0 = tiny llama, 1 = tiny qwen2,
/// 2 = Qwen2.5-0.5B shape; weight type 0 = F32, 1 = F16, 8 = Q8_0, 12 =
/// llama.cpp's Q4_K_M mix (Q4_K, Q6_K, Q5_0, Q8_0 as its rules give them).
/// `blocks` overrides the block count when non-zero.
#[unsafe(no_mangle)]
pub extern "C" fn build_synthetic(preset: u32, weight_type: u32, blocks: u32, capacity: u32) -> i32 {
    let Some(ty) = TensorType::from_id(weight_type) else { return -2 };
    let mut spec = match preset {
        0 => SyntheticSpec::tiny(Architecture::Llama),
        1 => SyntheticSpec::tiny(Architecture::Qwen2),
        2 => SyntheticSpec::qwen2_5_0_5b_shape(ty, 4096),
        _ => return -2,
    };
    spec.weight_type = ty;
    if ty == TensorType::Q4_K {
        spec.layout = Layout::Q4KM;
    }
    if blocks > 0 {
        spec.block_count = blocks as usize;
    }
    match build(&spec) {
        Ok(writer) => install(writer.to_bytes(), capacity),
        Err(_) => -1,
    }
}

fn with_state(f: impl FnOnce(&mut State) -> llm_engine::Result<i32>) -> i32 {
    STATE.with(|s| match s.borrow_mut().as_mut() {
        None => -3,
        Some(state) => f(state).unwrap_or(-1),
    })
}

/// Tokenizes `len` bytes of UTF-8 at `ptr` (with BOS if the model wants it)
/// and feeds them; returns the token count.
///
/// # Safety
/// `ptr` must point at `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn feed_text(ptr: *const u8, len: u32) -> i32 {
    // SAFETY: the host wrote len bytes at ptr.
    let bytes = unsafe { std::slice::from_raw_parts(ptr, len as usize) };
    let Ok(text) = std::str::from_utf8(bytes) else { return -4 };
    with_state(|s| {
        let tokens = s.tokenizer.encode(text, true, false);
        s.session.feed(&s.model, &tokens)?;
        Ok(tokens.len() as i32)
    })
}

/// Feeds `n` arbitrary tokens in one batch (for measuring prompt cost).
#[unsafe(no_mangle)]
pub extern "C" fn feed_dummy(n: u32) -> i32 {
    with_state(|s| {
        let vocab = s.model.config().vocab_size as u32;
        let tokens: Vec<u32> = (0..n).map(|i| (i * 7919 + 13) % vocab).collect();
        s.session.feed(&s.model, &tokens)?;
        Ok(s.session.len() as i32)
    })
}

/// Computes the logits of the last position (cached by the session).
#[unsafe(no_mangle)]
pub extern "C" fn logits() -> i32 {
    with_state(|s| {
        let logits = s.session.logits(&s.model)?;
        s.last_logits_checksum = logits.iter().enumerate().map(|(i, &l)| l as f64 * (1 + i % 7) as f64).sum();
        Ok(0)
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn logits_checksum() -> f64 {
    STATE.with(|s| s.borrow().as_ref().map_or(f64::NAN, |s| s.last_logits_checksum))
}

/// Samples greedily from the current logits and feeds the token; returns it.
#[unsafe(no_mangle)]
pub extern "C" fn step() -> i32 {
    with_state(|s| {
        let token = s.session.sample_next(&s.model, &mut s.sampler)?;
        s.session.feed(&s.model, &[token])?;
        Ok(token as i32)
    })
}

/// Checks the kernels as compiled here (simd128 or not) against the scalar
/// reference arithmetic, bit for bit: every quantized type, a padded stripe,
/// a batch of eight vectors and one alone. Returns the number of differing
/// outputs (0 when all agree).
#[unsafe(no_mangle)]
pub extern "C" fn check_kernels() -> i32 {
    use llm_engine::kernels::{MatmulScratch, PackedActivations, Weights, encode, packed};
    let (rows, cols, n) = (37, 512, 9);
    let mut state = 7u64;
    let mut random = |len: usize| -> Vec<f32> {
        (0..len)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    };
    let mut differences = 0;
    for id in [2, 3, 6, 7, 8, 12, 13, 14] {
        let ty = TensorType::from_id(id).expect("a ggml type id");
        let (w, xs) = (random(rows * cols), random(n * cols));
        let Ok(m) = Weights::new("w", ty, rows, cols, &encode(ty, &w).expect("whole blocks")) else { return -1 };
        let Weights::Packed { matrix, .. } = &m else { return -1 };
        let acts: Vec<PackedActivations> = xs
            .chunks_exact(cols)
            .map(|x| {
                let mut a = PackedActivations::default();
                a.quantize_from(x, matrix.block());
                a
            })
            .collect();
        let (mut got, mut want) = (vec![0f32; n * rows], vec![0f32; n * rows]);
        m.matmul(&xs, &mut got, &mut MatmulScratch::default());
        packed::reference_matmul(matrix, &acts, &mut want);
        differences += got.iter().zip(&want).filter(|(a, b)| a.to_bits() != b.to_bits()).count() as i32;
    }
    differences
}
