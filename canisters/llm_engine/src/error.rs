//! The one error type of the engine. Every failure on bad input (a corrupt
//! file, a model we cannot run, a full context) is a value of this enum; the
//! engine never panics on data it was given.

use std::fmt;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// A read of `needed` bytes at `offset` goes past the end (`len`).
    Truncated {
        offset: u64,
        needed: u64,
        len: u64,
    },
    /// The storage behind a `ByteSource` failed.
    Source(String),
    BadMagic([u8; 4]),
    UnsupportedVersion(u32),
    InvalidValueType {
        key: String,
        type_id: u32,
    },
    InvalidUtf8 {
        offset: u64,
    },
    InvalidBool {
        key: String,
        byte: u8,
    },
    DuplicateKey(String),
    DuplicateTensor(String),
    /// `general.alignment` must be a non-zero power of two.
    BadAlignment(u64),
    TooManyDimensions {
        tensor: String,
        n_dims: u32,
    },
    InvalidShape {
        tensor: String,
        dims: Vec<u64>,
    },
    UnknownTensorType {
        tensor: String,
        type_id: u32,
    },
    /// The type is known but this engine has no kernel for it.
    UnsupportedTensorType {
        tensor: String,
        type_name: &'static str,
    },
    MisalignedTensor {
        tensor: String,
        offset: u64,
        alignment: u64,
    },
    TensorOutOfBounds {
        tensor: String,
        end: u64,
        data_len: u64,
    },

    MissingMetadata(String),
    WrongMetadataType {
        key: String,
        expected: &'static str,
        found: &'static str,
    },
    InvalidMetadata {
        key: String,
        reason: String,
    },
    UnsupportedArchitecture(String),
    MissingTensor(String),
    WrongTensorShape {
        tensor: String,
        expected: Vec<u64>,
        found: Vec<u64>,
    },

    UnsupportedTokenizer(String),
    InvalidTokenizer(String),
    InvalidToken {
        token: u32,
        vocab_size: usize,
    },

    /// The session holds `capacity` positions and cannot take `requested` more.
    ContextFull {
        capacity: usize,
        used: usize,
        requested: usize,
    },
    /// A session was used with a model of a different shape than it was made for.
    SessionModelMismatch,
    /// Logits were asked for before any token was fed.
    NothingFed,
    InvalidArgument(String),
    /// Saved session bytes that cannot be restored (corrupt, or for another model).
    BadSnapshot(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Error::*;
        match self {
            Truncated { offset, needed, len } => {
                write!(f, "file truncated: need {needed} bytes at offset {offset} but it has {len} bytes")
            }
            Source(msg) => write!(f, "byte source failed: {msg}"),
            BadMagic(m) => write!(f, "not a GGUF file (magic {m:02x?})"),
            UnsupportedVersion(v) => write!(f, "unsupported GGUF version {v} (need 2 or 3)"),
            InvalidValueType { key, type_id } => {
                write!(f, "metadata key {key:?} has unknown value type {type_id}")
            }
            InvalidUtf8 { offset } => write!(f, "string at offset {offset} is not valid UTF-8"),
            InvalidBool { key, byte } => write!(f, "metadata key {key:?}: bool byte {byte}"),
            DuplicateKey(k) => write!(f, "metadata key {k:?} appears twice"),
            DuplicateTensor(t) => write!(f, "tensor {t:?} appears twice"),
            BadAlignment(a) => write!(f, "general.alignment {a} is not a power of two"),
            TooManyDimensions { tensor, n_dims } => {
                write!(f, "tensor {tensor:?} has {n_dims} dimensions (max 4)")
            }
            InvalidShape { tensor, dims } => write!(f, "tensor {tensor:?} has invalid shape {dims:?}"),
            UnknownTensorType { tensor, type_id } => {
                write!(f, "tensor {tensor:?} has unknown type id {type_id}")
            }
            UnsupportedTensorType { tensor, type_name } => {
                write!(f, "tensor {tensor:?} has type {type_name}, which this engine cannot compute with")
            }
            MisalignedTensor { tensor, offset, alignment } => {
                write!(f, "tensor {tensor:?} data offset {offset} is not a multiple of the alignment {alignment}")
            }
            TensorOutOfBounds { tensor, end, data_len } => {
                write!(f, "tensor {tensor:?} ends at data offset {end} but the data section has {data_len} bytes")
            }
            MissingMetadata(k) => write!(f, "missing metadata key {k:?}"),
            WrongMetadataType { key, expected, found } => {
                write!(f, "metadata key {key:?} is {found}, expected {expected}")
            }
            InvalidMetadata { key, reason } => write!(f, "metadata key {key:?}: {reason}"),
            UnsupportedArchitecture(a) => write!(f, "unsupported architecture {a:?}"),
            MissingTensor(t) => write!(f, "missing tensor {t:?}"),
            WrongTensorShape { tensor, expected, found } => {
                write!(f, "tensor {tensor:?} has shape {found:?}, expected {expected:?}")
            }
            UnsupportedTokenizer(t) => write!(f, "unsupported tokenizer {t}"),
            InvalidTokenizer(msg) => write!(f, "invalid tokenizer data: {msg}"),
            InvalidToken { token, vocab_size } => {
                write!(f, "token id {token} is outside the vocabulary of {vocab_size}")
            }
            ContextFull { capacity, used, requested } => {
                write!(f, "context full: {used} of {capacity} positions used, {requested} more requested")
            }
            SessionModelMismatch => write!(f, "session was created for a different model"),
            NothingFed => write!(f, "no token has been fed yet"),
            InvalidArgument(msg) => write!(f, "invalid argument: {msg}"),
            BadSnapshot(msg) => write!(f, "cannot restore the saved session: {msg}"),
        }
    }
}

impl std::error::Error for Error {}
