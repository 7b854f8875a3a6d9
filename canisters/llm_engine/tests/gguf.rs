mod common;

use std::cell::Cell;

use llm_engine::gguf::{Array, GgufFile, GgufWriter, TensorType, Value};
use llm_engine::{ByteSource, Error};

#[test]
fn parses_stories_metadata() {
    let bytes = common::stories_bytes();
    let file = GgufFile::parse(bytes.as_slice()).unwrap();
    assert_eq!(file.version, 3);
    assert_eq!(file.alignment, 32);
    assert_eq!(file.data_offset % 32, 0);
    assert_eq!(file.require_str("general.architecture").unwrap(), "llama");
    assert_eq!(file.require_str("tokenizer.ggml.model").unwrap(), "llama");
    assert_eq!(file.get_u64("llama.context_length").unwrap(), Some(128));
    assert_eq!(file.get_u64("llama.embedding_length").unwrap(), Some(64));
    assert_eq!(file.get_u64("llama.feed_forward_length").unwrap(), Some(172));
    assert_eq!(file.get_u64("llama.block_count").unwrap(), Some(5));
    assert_eq!(file.get_u64("llama.attention.head_count").unwrap(), Some(8));
    assert_eq!(file.get_u64("llama.attention.head_count_kv").unwrap(), Some(4));
    assert_eq!(file.get_f32("llama.attention.layer_norm_rms_epsilon").unwrap(), Some(1e-5));
    assert_eq!(file.get_f32("llama.rope.freq_base").unwrap(), None);
    assert_eq!(file.get_u64("tokenizer.ggml.bos_token_id").unwrap(), Some(1));
    assert_eq!(file.get_u64("tokenizer.ggml.eos_token_id").unwrap(), Some(2));
    // A present key of the wrong type is an error, not "absent".
    assert!(matches!(
        file.get_u64("general.architecture"),
        Err(Error::WrongMetadataType { expected: "unsigned integer", found: "string", .. })
    ));

    let Some(Array::String(tokens)) = file.get_array("tokenizer.ggml.tokens").unwrap() else {
        panic!("tokens are not a string array");
    };
    assert_eq!(tokens.len(), 512);
    assert_eq!(&tokens[..4], ["<unk>", "<s>", "</s>", "<0x00>"]);
    let Some(Array::F32(scores)) = file.get_array("tokenizer.ggml.scores").unwrap() else {
        panic!("scores are not an f32 array");
    };
    assert_eq!(scores.len(), 512);
    let Some(Array::I32(types)) = file.get_array("tokenizer.ggml.token_type").unwrap() else {
        panic!("token types are not an i32 array");
    };
    assert_eq!(&types[..4], [2, 3, 3, 6]);
}

#[test]
fn parses_stories_tensor_directory() {
    let bytes = common::stories_bytes();
    let file = GgufFile::parse(bytes.as_slice()).unwrap();
    assert_eq!(file.tensors().len(), 48);
    assert!(file.tensors().iter().all(|t| t.ty == TensorType::F32));
    // 2 * 64*512 (embedding, output) + 64 (output norm) + 5 blocks of
    // (64*64*2 + 64*32*2 + 3*64*172 + 2*64); the tensor bytes fill the file exactly.
    assert_eq!(file.parameter_count(), 292_800);
    assert_eq!(file.data_offset + file.parameter_count() * 4, bytes.len() as u64);

    let embd = file.tensor("token_embd.weight").unwrap();
    assert_eq!(embd.dims, [64, 512]);
    assert_eq!(embd.offset, 0);
    assert_eq!(embd.size, 64 * 512 * 4);
    assert_eq!(file.tensor("blk.4.ffn_down.weight").unwrap().dims, [172, 64]);
    assert_eq!(file.tensor("blk.0.attn_k.weight").unwrap().dims, [64, 32]);
    assert!(file.tensor("blk.5.ffn_down.weight").is_none());

    let norm = file.tensor("output_norm.weight").unwrap();
    let data = file.read_tensor_data(bytes.as_slice(), norm).unwrap();
    let start = (file.data_offset + norm.offset) as usize;
    assert_eq!(data, &bytes[start..start + 256]);
}

/// A source that records how many reads parsing takes.
struct CountingSource {
    bytes: Vec<u8>,
    reads: Cell<usize>,
}

impl ByteSource for CountingSource {
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> llm_engine::Result<()> {
        self.reads.set(self.reads.get() + 1);
        self.bytes.read_at(offset, buf)
    }
}

#[test]
fn parses_through_a_custom_byte_source_with_few_reads() {
    let source = CountingSource { bytes: common::stories_bytes(), reads: Cell::new(0) };
    let file = GgufFile::parse(&source).unwrap();
    assert_eq!(file.tensors().len(), 48);
    assert!(source.reads.get() <= 2, "{} reads", source.reads.get());
}

fn every_value_type() -> Vec<(&'static str, Value)> {
    vec![
        ("t.u8", Value::U8(200)),
        ("t.i8", Value::I8(-5)),
        ("t.u16", Value::U16(65000)),
        ("t.i16", Value::I16(-30000)),
        ("t.u32", Value::U32(4_000_000_000)),
        ("t.i32", Value::I32(-2_000_000_000)),
        ("t.f32", Value::F32(1.5e-5)),
        ("t.bool", Value::Bool(true)),
        ("t.string", Value::String("héllo ▁world".into())),
        ("t.u64", Value::U64(u64::MAX)),
        ("t.i64", Value::I64(i64::MIN)),
        ("t.f64", Value::F64(-2.25)),
        ("a.u8", Value::Array(Array::U8(vec![1, 2, 3]))),
        ("a.i8", Value::Array(Array::I8(vec![-1, 2]))),
        ("a.u16", Value::Array(Array::U16(vec![1, 65535]))),
        ("a.i16", Value::Array(Array::I16(vec![-1, 7]))),
        ("a.u32", Value::Array(Array::U32(vec![9]))),
        ("a.i32", Value::Array(Array::I32(vec![1, -1, 3]))),
        ("a.f32", Value::Array(Array::F32(vec![0.5, -0.25]))),
        ("a.bool", Value::Array(Array::Bool(vec![true, false]))),
        ("a.string", Value::Array(Array::String(vec!["a".into(), "".into(), "<0x0A>".into()]))),
        ("a.u64", Value::Array(Array::U64(vec![1 << 40]))),
        ("a.i64", Value::Array(Array::I64(vec![-(1 << 40)]))),
        ("a.f64", Value::Array(Array::F64(vec![1e300]))),
        ("a.empty", Value::Array(Array::F32(vec![]))),
        ("a.nested", Value::Array(Array::Array(vec![Array::U8(vec![1]), Array::String(vec!["x".into()])]))),
    ]
}

fn small_file(version: u32, alignment: Option<u32>) -> (GgufWriter, Vec<u8>) {
    let mut w = GgufWriter::new().version(version);
    for (k, v) in every_value_type() {
        w.metadata(k, v);
    }
    if let Some(a) = alignment {
        w.metadata("general.alignment", Value::U32(a));
    }
    w.f32_tensor("a", &[4, 2], &[1., 2., 3., 4., 5., 6., 7., 8.]).unwrap();
    w.tensor("b", &[3], TensorType::F16, vec![0, 0x3c, 0, 0x40, 0, 0xc0]).unwrap();
    w.tensor("c", &[32], TensorType::Q8_0, vec![7; 34]).unwrap();
    let bytes = w.to_bytes();
    (w, bytes)
}

#[test]
fn writer_round_trips_every_value_type() {
    for version in [2, 3] {
        for alignment in [None, Some(64), Some(1)] {
            let (_, bytes) = small_file(version, alignment);
            let file = GgufFile::parse(bytes.as_slice()).unwrap();
            assert_eq!(file.version, version);
            let expected_alignment = alignment.map_or(32, u64::from);
            assert_eq!(file.alignment, expected_alignment);
            for (key, value) in every_value_type() {
                assert_eq!(file.get(key), Some(&value), "{key}");
            }
            let names: Vec<_> = file.tensors().iter().map(|t| t.name.as_str()).collect();
            assert_eq!(names, ["a", "b", "c"]);
            for t in file.tensors() {
                assert_eq!(t.offset % expected_alignment, 0);
                assert_eq!((file.data_offset + t.offset) % expected_alignment, 0);
            }
            let a = file.tensor("a").unwrap();
            assert_eq!(a.dims, [4, 2]);
            let data = file.read_tensor_data(bytes.as_slice(), a).unwrap();
            assert_eq!(&data[4..8], 2f32.to_le_bytes());
            let c = file.tensor("c").unwrap();
            assert_eq!((c.ty, c.size), (TensorType::Q8_0, 34));
            assert_eq!(file.read_tensor_data(bytes.as_slice(), c).unwrap(), vec![7; 34]);

            // Writing what was parsed gives the same bytes.
            let mut again = GgufWriter::new().version(version);
            for (k, v) in file.metadata() {
                again.metadata(k, v.clone());
            }
            for t in file.tensors() {
                again.tensor(&t.name, &t.dims, t.ty, file.read_tensor_data(bytes.as_slice(), t).unwrap()).unwrap();
            }
            assert_eq!(again.to_bytes(), bytes);
        }
    }
}

#[test]
fn writer_rejects_data_of_the_wrong_size() {
    let mut w = GgufWriter::new();
    assert!(matches!(w.tensor("x", &[32], TensorType::Q8_0, vec![0; 33]), Err(Error::InvalidShape { .. })));
    assert!(matches!(w.tensor("x", &[16], TensorType::Q8_0, vec![0; 17]), Err(Error::InvalidShape { .. })));
}

#[test]
fn every_truncation_is_a_typed_error() {
    let (_, bytes) = small_file(3, None);
    // The writer pads the end; only the bytes up to the last tensor's end matter.
    let file = GgufFile::parse(bytes.as_slice()).unwrap();
    let last = file.tensors().last().unwrap();
    let needed = (file.data_offset + last.offset + last.size) as usize;
    assert!(GgufFile::parse(&bytes[..needed]).is_ok());
    for len in 0..needed {
        let err = GgufFile::parse(&bytes[..len]).expect_err("a truncated file parsed");
        assert!(matches!(err, Error::Truncated { .. } | Error::TensorOutOfBounds { .. }), "length {len}: {err:?}");
    }
}

#[test]
fn truncated_stories_file_is_rejected() {
    let bytes = common::stories_bytes();
    let header = GgufFile::parse(&bytes[..1000]).unwrap_err();
    assert!(matches!(header, Error::Truncated { len: 1000, .. }), "{header:?}");
    let data = GgufFile::parse(&bytes[..bytes.len() - 100]).unwrap_err();
    assert!(matches!(&data, Error::TensorOutOfBounds { tensor, .. } if tensor == "blk.4.ffn_norm.weight"), "{data:?}");
}

/// Builds a file from raw parts to produce corruptions the writer cannot.
struct Raw(Vec<u8>);

impl Raw {
    fn header(version: u32, tensors: u64, kvs: u64) -> Self {
        let mut r = Raw(b"GGUF".to_vec());
        r.u32(version).u64(tensors).u64(kvs);
        r
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn str(&mut self, s: &[u8]) -> &mut Self {
        self.u64(s.len() as u64);
        self.0.extend_from_slice(s);
        self
    }
    fn pad(&mut self, n: usize) -> &mut Self {
        self.0.resize(self.0.len() + n, 0);
        self
    }
    fn parse(&self) -> Error {
        GgufFile::parse(self.0.as_slice()).expect_err("corrupt file parsed")
    }
}

#[test]
fn corrupt_headers_give_typed_errors() {
    assert!(matches!(GgufFile::parse(b"GGML\x03\0\0\0".as_slice()), Err(Error::BadMagic(m)) if &m == b"GGML"));
    assert_eq!(Raw::header(1, 0, 0).parse(), Error::UnsupportedVersion(1));
    assert_eq!(Raw::header(0x0300_0000, 0, 0).parse(), Error::UnsupportedVersion(0x0300_0000));
    // Counts no file of this size could hold fail before any allocation.
    assert!(matches!(Raw::header(3, 0, u64::MAX).parse(), Error::Truncated { .. }));
    assert!(matches!(Raw::header(3, u64::MAX, 0).parse(), Error::Truncated { .. }));

    let mut bad_type = Raw::header(3, 0, 1);
    bad_type.str(b"k").u32(13).u32(0);
    assert_eq!(bad_type.parse(), Error::InvalidValueType { key: "k".into(), type_id: 13 });

    let mut bad_utf8 = Raw::header(3, 0, 1);
    bad_utf8.str(b"k").u32(8).str(b"\xff\xfe");
    assert_eq!(bad_utf8.parse(), Error::InvalidUtf8 { offset: 24 + 9 + 4 + 8 });

    let mut bad_bool = Raw::header(3, 0, 1);
    bad_bool.str(b"k").u32(7).0.push(2);
    assert_eq!(bad_bool.parse(), Error::InvalidBool { key: "k".into(), byte: 2 });

    let mut huge_array = Raw::header(3, 0, 1);
    huge_array.str(b"k").u32(9).u32(8).u64(1 << 60).pad(64);
    assert!(matches!(huge_array.parse(), Error::Truncated { .. }));

    let mut deep = Raw::header(3, 0, 1);
    deep.str(b"k").u32(9);
    for _ in 0..100 {
        deep.u32(9).u64(1);
    }
    assert!(matches!(deep.parse(), Error::InvalidMetadata { .. }));

    let mut duplicate = Raw::header(3, 0, 2);
    duplicate.str(b"k").u32(0).pad(1).str(b"k").u32(0).pad(1);
    assert_eq!(duplicate.parse(), Error::DuplicateKey("k".into()));

    let mut bad_alignment = Raw::header(3, 0, 1);
    bad_alignment.str(b"general.alignment").u32(4).u32(48);
    assert_eq!(bad_alignment.parse(), Error::BadAlignment(48));

    let mut alignment_string = Raw::header(3, 0, 1);
    alignment_string.str(b"general.alignment").u32(8).str(b"32");
    assert!(matches!(alignment_string.parse(), Error::WrongMetadataType { .. }));
}

fn tensor_file(dims: &[u64], type_id: u32, offset: u64, data_bytes: usize) -> Raw {
    let mut r = Raw::header(3, 1, 0);
    r.str(b"t").u32(dims.len() as u32);
    for &d in dims {
        r.u64(d);
    }
    r.u32(type_id).u64(offset);
    let header_len = r.0.len();
    r.pad(header_len.next_multiple_of(32) - header_len + data_bytes);
    r
}

#[test]
fn corrupt_tensor_infos_give_typed_errors() {
    // Sanity: the well-formed variant parses.
    let ok = tensor_file(&[4, 2], 0, 0, 32);
    assert_eq!(GgufFile::parse(ok.0.as_slice()).unwrap().tensor("t").unwrap().size, 32);

    assert!(matches!(tensor_file(&[4, 2], 0, 0, 31).parse(), Error::TensorOutOfBounds { end: 32, data_len: 31, .. }));
    assert!(matches!(tensor_file(&[4, 2], 0, 8, 64).parse(), Error::MisalignedTensor { offset: 8, .. }));
    assert!(matches!(tensor_file(&[4, 2], 99, 0, 64).parse(), Error::UnknownTensorType { type_id: 99, .. }));
    assert!(matches!(tensor_file(&[1, 1, 1, 1, 1], 0, 0, 64).parse(), Error::TooManyDimensions { n_dims: 5, .. }));
    // A Q8_0 row must be whole blocks of 32.
    assert!(matches!(tensor_file(&[16, 2], 8, 0, 64).parse(), Error::InvalidShape { .. }));
    // Element counts that overflow.
    assert!(matches!(tensor_file(&[1 << 32, 1 << 32, 1 << 32], 0, 0, 64).parse(), Error::InvalidShape { .. }));
    assert!(matches!(tensor_file(&[4], 0, u64::MAX - 31, 64).parse(), Error::TensorOutOfBounds { .. }));

    let mut duplicate = Raw::header(3, 2, 0);
    for _ in 0..2 {
        duplicate.str(b"t").u32(1).u64(8).u32(0).u64(0);
    }
    duplicate.pad(64);
    assert_eq!(duplicate.parse(), Error::DuplicateTensor("t".into()));
}
