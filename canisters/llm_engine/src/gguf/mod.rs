//! GGUF (versions 2 and 3): the header, metadata and tensor directory of a
//! model file. Tensor bytes are not read here; `GgufFile` says where they are
//! and `read_tensor_data` fetches them from any `ByteSource`.
//!
//! Layout: magic "GGUF", u32 version, u64 tensor count, u64 metadata count,
//! the metadata key/values, the tensor infos (name, dims, type, offset), then
//! padding to the alignment, then the tensor data section. Tensor offsets are
//! relative to the start of the data section and multiples of the alignment.

mod reader;
mod tensor_type;
mod value;
mod writer;

pub use tensor_type::TensorType;
pub use value::{Array, Value, ValueType};
pub use writer::GgufWriter;

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::source::ByteSource;
use reader::Reader;

pub const MAGIC: [u8; 4] = *b"GGUF";
pub const DEFAULT_ALIGNMENT: u64 = 32;
pub const ALIGNMENT_KEY: &str = "general.alignment";
pub const MAX_DIMS: u32 = 4;
/// Arrays of arrays deeper than this are rejected rather than recursed into.
const MAX_ARRAY_NESTING: u32 = 8;

#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// ggml order: `dims[0]` is the contiguous (row) dimension.
    pub dims: Vec<u64>,
    pub ty: TensorType,
    /// Offset from the start of the data section.
    pub offset: u64,
    /// Size of the data in bytes.
    pub size: u64,
}

impl TensorInfo {
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }
}

#[derive(Clone, Debug)]
pub struct GgufFile {
    pub version: u32,
    pub alignment: u64,
    /// Absolute file offset of the data section.
    pub data_offset: u64,
    pub file_len: u64,
    metadata: Vec<(String, Value)>,
    metadata_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
}

impl GgufFile {
    pub fn parse<S: ByteSource + ?Sized>(source: &S) -> Result<Self> {
        let mut r = Reader::new(source);
        let magic: [u8; 4] = r.bytes(4)?.try_into().expect("4 bytes");
        if magic != MAGIC {
            return Err(Error::BadMagic(magic));
        }
        let version = r.u32()?;
        if version != 2 && version != 3 {
            return Err(Error::UnsupportedVersion(version));
        }
        let tensor_count = r.u64()?;
        let metadata_count = r.u64()?;

        // Each key/value takes at least 8 (key length) + 4 (type) + 1 bytes.
        r.ensure_available(metadata_count.saturating_mul(13))?;
        let mut metadata = Vec::with_capacity(metadata_count as usize);
        let mut metadata_index = HashMap::with_capacity(metadata_count as usize);
        for _ in 0..metadata_count {
            let key = r.string()?;
            let type_id = r.u32()?;
            let value = read_value(&mut r, &key, type_id)?;
            if metadata_index.insert(key.clone(), metadata.len()).is_some() {
                return Err(Error::DuplicateKey(key));
            }
            metadata.push((key, value));
        }

        let alignment = match metadata_index.get(ALIGNMENT_KEY) {
            None => DEFAULT_ALIGNMENT,
            Some(&i) => {
                let value = &metadata[i].1;
                let a = value.as_u64().ok_or_else(|| Error::WrongMetadataType {
                    key: ALIGNMENT_KEY.into(),
                    expected: "unsigned integer",
                    found: value.value_type().name(),
                })?;
                if a == 0 || !a.is_power_of_two() {
                    return Err(Error::BadAlignment(a));
                }
                a
            }
        };

        // Each tensor info takes at least 8 + 4 + 4 + 8 bytes.
        r.ensure_available(tensor_count.saturating_mul(24))?;
        let mut tensors = Vec::with_capacity(tensor_count as usize);
        let mut tensor_index = HashMap::with_capacity(tensor_count as usize);
        for _ in 0..tensor_count {
            let info = read_tensor_info(&mut r, alignment)?;
            if tensor_index.insert(info.name.clone(), tensors.len()).is_some() {
                return Err(Error::DuplicateTensor(info.name));
            }
            tensors.push(info);
        }

        let file_len = source.len();
        let data_offset = align_up(r.position(), alignment);
        let data_len = file_len.saturating_sub(data_offset);
        for t in &tensors {
            let end = t.offset + t.size;
            if end > data_len {
                return Err(Error::TensorOutOfBounds { tensor: t.name.clone(), end, data_len });
            }
        }

        Ok(GgufFile { version, alignment, data_offset, file_len, metadata, metadata_index, tensors, tensor_index })
    }

    /// Metadata in file order.
    pub fn metadata(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.metadata.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata_index.get(key).map(|&i| &self.metadata[i].1)
    }

    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    /// Total number of tensor elements.
    pub fn parameter_count(&self) -> u64 {
        self.tensors.iter().map(TensorInfo::n_elements).sum()
    }

    /// Bytes from the start of the data section to the end of the file.
    pub fn data_len(&self) -> u64 {
        self.file_len.saturating_sub(self.data_offset)
    }

    /// Absolute file offset of a tensor's first byte.
    pub fn tensor_file_offset(&self, tensor: &TensorInfo) -> u64 {
        self.data_offset + tensor.offset
    }

    pub fn read_tensor_data<S: ByteSource + ?Sized>(&self, source: &S, tensor: &TensorInfo) -> Result<Vec<u8>> {
        let mut data = vec![0u8; tensor.size as usize];
        source.read_at(self.tensor_file_offset(tensor), &mut data)?;
        Ok(data)
    }

    // Typed metadata access. `None` means absent; a present value of the
    // wrong type is an error, since it means the file is not what we think.

    pub fn get_u64(&self, key: &str) -> Result<Option<u64>> {
        self.typed(key, "unsigned integer", Value::as_u64)
    }

    pub fn get_f32(&self, key: &str) -> Result<Option<f32>> {
        self.typed(key, "float", Value::as_f32)
    }

    pub fn get_bool(&self, key: &str) -> Result<Option<bool>> {
        self.typed(key, "bool", Value::as_bool)
    }

    pub fn get_str(&self, key: &str) -> Result<Option<&str>> {
        self.typed(key, "string", Value::as_str)
    }

    pub fn get_array(&self, key: &str) -> Result<Option<&Array>> {
        self.typed(key, "array", Value::as_array)
    }

    pub fn require_u64(&self, key: &str) -> Result<u64> {
        self.get_u64(key)?.ok_or_else(|| Error::MissingMetadata(key.into()))
    }

    pub fn require_str(&self, key: &str) -> Result<&str> {
        self.get_str(key)?.ok_or_else(|| Error::MissingMetadata(key.into()))
    }

    pub fn require_array(&self, key: &str) -> Result<&Array> {
        self.get_array(key)?.ok_or_else(|| Error::MissingMetadata(key.into()))
    }

    fn typed<'a, T>(
        &'a self,
        key: &str,
        expected: &'static str,
        convert: impl FnOnce(&'a Value) -> Option<T>,
    ) -> Result<Option<T>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => convert(v).map(Some).ok_or_else(|| Error::WrongMetadataType {
                key: key.into(),
                expected,
                found: v.value_type().name(),
            }),
        }
    }
}

pub fn align_up(offset: u64, alignment: u64) -> u64 {
    offset.div_ceil(alignment) * alignment
}

fn read_value<S: ByteSource + ?Sized>(r: &mut Reader<S>, key: &str, type_id: u32) -> Result<Value> {
    let ty = ValueType::from_id(type_id).ok_or_else(|| Error::InvalidValueType { key: key.into(), type_id })?;
    Ok(match ty {
        ValueType::U8 => Value::U8(r.u8()?),
        ValueType::I8 => Value::I8(r.i8()?),
        ValueType::U16 => Value::U16(r.u16()?),
        ValueType::I16 => Value::I16(r.i16()?),
        ValueType::U32 => Value::U32(r.u32()?),
        ValueType::I32 => Value::I32(r.i32()?),
        ValueType::F32 => Value::F32(r.f32()?),
        ValueType::Bool => Value::Bool(read_bool(r, key)?),
        ValueType::String => Value::String(r.string()?),
        ValueType::Array => Value::Array(read_array(r, key, 0)?),
        ValueType::U64 => Value::U64(r.u64()?),
        ValueType::I64 => Value::I64(r.i64()?),
        ValueType::F64 => Value::F64(r.f64()?),
    })
}

fn read_bool<S: ByteSource + ?Sized>(r: &mut Reader<S>, key: &str) -> Result<bool> {
    match r.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        byte => Err(Error::InvalidBool { key: key.into(), byte }),
    }
}

fn read_array<S: ByteSource + ?Sized>(r: &mut Reader<S>, key: &str, depth: u32) -> Result<Array> {
    let type_id = r.u32()?;
    let ty = ValueType::from_id(type_id).ok_or_else(|| Error::InvalidValueType { key: key.into(), type_id })?;
    let count = r.u64()?;
    // Refuse counts the rest of the file cannot hold before allocating.
    r.ensure_available(count.saturating_mul(ty.min_encoded_len()))?;
    let n = count as usize;

    fn collect<T>(n: usize, mut read: impl FnMut() -> Result<T>) -> Result<Vec<T>> {
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(read()?);
        }
        Ok(v)
    }

    Ok(match ty {
        ValueType::U8 => Array::U8(r.bytes(count)?.to_vec()),
        ValueType::I8 => Array::I8(r.bytes(count)?.iter().map(|&b| b as i8).collect()),
        ValueType::U16 => Array::U16(collect(n, || r.u16())?),
        ValueType::I16 => Array::I16(collect(n, || r.i16())?),
        ValueType::U32 => Array::U32(collect(n, || r.u32())?),
        ValueType::I32 => Array::I32(collect(n, || r.i32())?),
        ValueType::F32 => Array::F32(collect(n, || r.f32())?),
        ValueType::Bool => Array::Bool(collect(n, || read_bool(r, key))?),
        ValueType::String => Array::String(collect(n, || r.string())?),
        ValueType::U64 => Array::U64(collect(n, || r.u64())?),
        ValueType::I64 => Array::I64(collect(n, || r.i64())?),
        ValueType::F64 => Array::F64(collect(n, || r.f64())?),
        ValueType::Array => {
            if depth + 1 >= MAX_ARRAY_NESTING {
                return Err(Error::InvalidMetadata {
                    key: key.into(),
                    reason: format!("arrays nested more than {MAX_ARRAY_NESTING} deep"),
                });
            }
            Array::Array(collect(n, || read_array(r, key, depth + 1))?)
        }
    })
}

fn read_tensor_info<S: ByteSource + ?Sized>(r: &mut Reader<S>, alignment: u64) -> Result<TensorInfo> {
    let name = r.string()?;
    let n_dims = r.u32()?;
    if n_dims > MAX_DIMS {
        return Err(Error::TooManyDimensions { tensor: name, n_dims });
    }
    let mut dims = Vec::with_capacity(n_dims as usize);
    for _ in 0..n_dims {
        dims.push(r.u64()?);
    }
    let type_id = r.u32()?;
    let ty = TensorType::from_id(type_id).ok_or_else(|| Error::UnknownTensorType { tensor: name.clone(), type_id })?;
    let offset = r.u64()?;

    let n_elements = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
    let rows_whole_blocks = dims.first().is_none_or(|&d| d % ty.block_len() == 0);
    let size = match n_elements {
        Some(n) if rows_whole_blocks => ty.bytes_for(n),
        _ => None,
    };
    let Some(size) = size else {
        return Err(Error::InvalidShape { tensor: name, dims });
    };
    if offset % alignment != 0 {
        return Err(Error::MisalignedTensor { tensor: name, offset, alignment });
    }
    if offset.checked_add(size).is_none() {
        return Err(Error::TensorOutOfBounds { tensor: name, end: u64::MAX, data_len: 0 });
    }
    Ok(TensorInfo { name, dims, ty, offset, size })
}
