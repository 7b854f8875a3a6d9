//! Writes GGUF files: used by tests to build small or deliberately broken
//! files, and by tools that make synthetic models with random weights.

use std::io::{self, Write};

use super::{ALIGNMENT_KEY, Array, DEFAULT_ALIGNMENT, MAGIC, TensorType, Value, align_up};
use crate::error::{Error, Result};

struct PendingTensor {
    name: String,
    dims: Vec<u64>,
    ty: TensorType,
    data: Vec<u8>,
}

pub struct GgufWriter {
    version: u32,
    metadata: Vec<(String, Value)>,
    tensors: Vec<PendingTensor>,
}

impl Default for GgufWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl GgufWriter {
    /// A version-3 file with no metadata and no tensors.
    pub fn new() -> Self {
        GgufWriter { version: 3, metadata: Vec::new(), tensors: Vec::new() }
    }

    /// Writes a different version number (2 and 3 share the layout).
    pub fn version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    /// Adds a metadata entry; a `general.alignment` entry also sets the
    /// alignment the tensor data is written with.
    pub fn metadata(&mut self, key: impl Into<String>, value: Value) -> &mut Self {
        self.metadata.push((key.into(), value));
        self
    }

    /// Adds a tensor whose data is already encoded in `ty`.
    /// `dims` is in ggml order (row length first).
    pub fn tensor(
        &mut self,
        name: impl Into<String>,
        dims: &[u64],
        ty: TensorType,
        data: Vec<u8>,
    ) -> Result<&mut Self> {
        let name = name.into();
        let n: u64 = dims.iter().product();
        if dims.first().is_some_and(|&d| d % ty.block_len() != 0) || ty.bytes_for(n) != Some(data.len() as u64) {
            return Err(Error::InvalidShape { tensor: name, dims: dims.to_vec() });
        }
        self.tensors.push(PendingTensor { name, dims: dims.to_vec(), ty, data });
        Ok(self)
    }

    pub fn f32_tensor(&mut self, name: impl Into<String>, dims: &[u64], values: &[f32]) -> Result<&mut Self> {
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.tensor(name, dims, TensorType::F32, data)
    }

    fn alignment(&self) -> u64 {
        self.metadata
            .iter()
            .rev()
            .find(|(k, _)| k == ALIGNMENT_KEY)
            .and_then(|(_, v)| v.as_u64())
            .filter(|a| a.is_power_of_two())
            .unwrap_or(DEFAULT_ALIGNMENT)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out).expect("writing to a Vec cannot fail");
        out
    }

    pub fn write_to<W: Write>(&self, w: &mut W) -> io::Result<()> {
        let alignment = self.alignment();
        let mut header = Vec::new();
        header.extend_from_slice(&MAGIC);
        header.extend_from_slice(&self.version.to_le_bytes());
        header.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        header.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (key, value) in &self.metadata {
            write_string(&mut header, key);
            header.extend_from_slice(&value.value_type().id().to_le_bytes());
            write_value(&mut header, value);
        }
        let mut offset = 0u64;
        let mut offsets = Vec::with_capacity(self.tensors.len());
        for t in &self.tensors {
            offset = align_up(offset, alignment);
            offsets.push(offset);
            write_string(&mut header, &t.name);
            header.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                header.extend_from_slice(&d.to_le_bytes());
            }
            header.extend_from_slice(&t.ty.id().to_le_bytes());
            header.extend_from_slice(&offset.to_le_bytes());
            offset += t.data.len() as u64;
        }
        let data_start = align_up(header.len() as u64, alignment);
        header.resize(data_start as usize, 0);
        w.write_all(&header)?;

        let mut written = 0u64;
        for (t, &offset) in self.tensors.iter().zip(&offsets) {
            w.write_all(&vec![0u8; (offset - written) as usize])?;
            w.write_all(&t.data)?;
            written = offset + t.data.len() as u64;
        }
        // Pad the end too, as ggml does, so the data section is aligned in length.
        let end = align_up(written, alignment);
        w.write_all(&vec![0u8; (end - written) as usize])
    }
}

fn write_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::U8(v) => out.push(*v),
        Value::I8(v) => out.push(*v as u8),
        Value::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::F32(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::Bool(v) => out.push(*v as u8),
        Value::String(s) => write_string(out, s),
        Value::Array(a) => write_array(out, a),
        Value::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
    }
}

fn write_array(out: &mut Vec<u8>, array: &Array) {
    out.extend_from_slice(&array.element_type().id().to_le_bytes());
    out.extend_from_slice(&(array.len() as u64).to_le_bytes());
    fn each<T: Copy, const N: usize>(out: &mut Vec<u8>, v: &[T], enc: impl Fn(T) -> [u8; N]) {
        for &x in v {
            out.extend_from_slice(&enc(x));
        }
    }
    match array {
        Array::U8(v) => out.extend_from_slice(v),
        Array::I8(v) => each(out, v, |x| x.to_le_bytes()),
        Array::U16(v) => each(out, v, |x| x.to_le_bytes()),
        Array::I16(v) => each(out, v, |x| x.to_le_bytes()),
        Array::U32(v) => each(out, v, |x| x.to_le_bytes()),
        Array::I32(v) => each(out, v, |x| x.to_le_bytes()),
        Array::F32(v) => each(out, v, |x| x.to_le_bytes()),
        Array::Bool(v) => each(out, v, |x| [x as u8]),
        Array::String(v) => v.iter().for_each(|s| write_string(out, s)),
        Array::Array(v) => v.iter().for_each(|a| write_array(out, a)),
        Array::U64(v) => each(out, v, |x| x.to_le_bytes()),
        Array::I64(v) => each(out, v, |x| x.to_le_bytes()),
        Array::F64(v) => each(out, v, |x| x.to_le_bytes()),
    }
}
