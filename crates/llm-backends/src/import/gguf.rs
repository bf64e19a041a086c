//! A GGUF file writer: the metadata, tensor table and aligned tensor data of llama.cpp's
//! model format (version 3), written in one pass.
//!
//! The layout (`ggml/include/gguf.h` in llama.cpp): the magic `GGUF`, the version, the
//! tensor and key counts, the key–value pairs, one entry per tensor (name, dimensions with
//! the fastest-varying first, type, offset into the data section), padding to the
//! alignment, then each tensor's bytes, each padded to the alignment. Every number is
//! little-endian. Tensor sizes are declared before any data is written, so the data can
//! be streamed tensor by tensor without holding the model in memory.

use std::io::{self, Write};

/// The alignment of the data section and of each tensor in it (GGUF's default).
pub(crate) const ALIGNMENT: u64 = 32;

/// The element types the importer writes (`ggml_type` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TensorType {
    /// 32-bit float.
    F32,
    /// 16-bit IEEE float.
    F16,
}

impl TensorType {
    const fn ggml_type(self) -> u32 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
        }
    }

    /// Bytes per element.
    pub(crate) const fn size(self) -> u64 {
        match self {
            Self::F32 => 4,
            Self::F16 => 2,
        }
    }
}

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    U32(u32),
    F32(f32),
    Bool(bool),
    Str(String),
    StrArray(Vec<String>),
    I32Array(Vec<i32>),
    F32Array(Vec<f32>),
}

// `gguf_type` values.
const GGUF_U32: u32 = 4;
const GGUF_I32: u32 = 5; // Used for array elements.
const GGUF_F32: u32 = 6;
const GGUF_BOOL: u32 = 7;
const GGUF_STRING: u32 = 8;
const GGUF_ARRAY: u32 = 9;

/// One tensor's entry in the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TensorInfo {
    /// The GGUF name (`blk.0.attn_q.weight`).
    pub name: String,
    /// The dimensions, fastest-varying first (the reverse of a row-major shape).
    pub dims: Vec<u64>,
    /// The element type.
    pub ty: TensorType,
}

impl TensorInfo {
    /// The tensor's size in bytes.
    pub(crate) fn bytes(&self) -> u64 {
        self.dims.iter().product::<u64>() * self.ty.size()
    }
}

/// Padding after `len` bytes to reach the alignment.
const fn padding(len: u64) -> u64 {
    (ALIGNMENT - len % ALIGNMENT) % ALIGNMENT
}

/// A GGUF file being written: [`GgufWriter::new`] writes the header and tables, then
/// [`GgufWriter::write_tensor`] is called once per tensor, in table order.
pub(crate) struct GgufWriter<W: Write> {
    out: W,
    tensors: Vec<TensorInfo>,
    next: usize,
}

impl<W: Write> GgufWriter<W> {
    /// Writes the header, `metadata` and the table of `tensors`.
    pub(crate) fn new(
        mut out: W,
        metadata: &[(String, Value)],
        tensors: Vec<TensorInfo>,
    ) -> io::Result<Self> {
        let mut header = Vec::new();
        header.extend_from_slice(b"GGUF");
        header.extend_from_slice(&3u32.to_le_bytes());
        header.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
        header.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
        for (key, value) in metadata {
            put_str(&mut header, key);
            put_value(&mut header, value);
        }
        let mut offset = 0u64;
        for tensor in &tensors {
            put_str(&mut header, &tensor.name);
            header.extend_from_slice(&(tensor.dims.len() as u32).to_le_bytes());
            for dim in &tensor.dims {
                header.extend_from_slice(&dim.to_le_bytes());
            }
            header.extend_from_slice(&tensor.ty.ggml_type().to_le_bytes());
            header.extend_from_slice(&offset.to_le_bytes());
            offset += tensor.bytes() + padding(tensor.bytes());
        }
        header.resize(header.len() + padding(header.len() as u64) as usize, 0);
        out.write_all(&header)?;
        Ok(Self { out, tensors, next: 0 })
    }

    /// Writes the next tensor's bytes (little-endian elements of its type).
    ///
    /// # Errors
    /// `InvalidInput` when `data` is not the size the table declared, or every tensor was
    /// written already.
    pub(crate) fn write_tensor(&mut self, data: &[u8]) -> io::Result<()> {
        let Some(tensor) = self.tensors.get(self.next) else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "more tensors than declared"));
        };
        if data.len() as u64 != tensor.bytes() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} has {} bytes, {} declared", tensor.name, data.len(), tensor.bytes()),
            ));
        }
        self.out.write_all(data)?;
        self.out.write_all(&vec![0; padding(tensor.bytes()) as usize])?;
        self.next += 1;
        Ok(())
    }

    /// Flushes and returns the output, once every tensor is written.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        if self.next != self.tensors.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} of {} tensors written", self.next, self.tensors.len()),
            ));
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u64).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
}

fn put_value(buf: &mut Vec<u8>, value: &Value) {
    let array_header = |buf: &mut Vec<u8>, ty: u32, len: usize| {
        buf.extend_from_slice(&GGUF_ARRAY.to_le_bytes());
        buf.extend_from_slice(&ty.to_le_bytes());
        buf.extend_from_slice(&(len as u64).to_le_bytes());
    };
    match value {
        Value::U32(v) => {
            buf.extend_from_slice(&GGUF_U32.to_le_bytes());
            buf.extend_from_slice(&v.to_le_bytes());
        }
        Value::F32(v) => {
            buf.extend_from_slice(&GGUF_F32.to_le_bytes());
            buf.extend_from_slice(&v.to_le_bytes());
        }
        Value::Bool(v) => {
            buf.extend_from_slice(&GGUF_BOOL.to_le_bytes());
            buf.push(u8::from(*v));
        }
        Value::Str(s) => {
            buf.extend_from_slice(&GGUF_STRING.to_le_bytes());
            put_str(buf, s);
        }
        Value::StrArray(items) => {
            array_header(buf, GGUF_STRING, items.len());
            for item in items {
                put_str(buf, item);
            }
        }
        Value::I32Array(items) => {
            array_header(buf, GGUF_I32, items.len());
            for item in items {
                buf.extend_from_slice(&item.to_le_bytes());
            }
        }
        Value::F32Array(items) => {
            array_header(buf, GGUF_F32, items.len());
            for item in items {
                buf.extend_from_slice(&item.to_le_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_file_has_aligned_tables_and_data() {
        let metadata = vec![
            ("general.architecture".to_owned(), Value::Str("llama".to_owned())),
            ("llama.block_count".to_owned(), Value::U32(2)),
            ("tokenizer.ggml.tokens".to_owned(), Value::StrArray(vec!["a".into(), "b".into()])),
        ];
        let tensors = vec![
            TensorInfo { name: "x".into(), dims: vec![3], ty: TensorType::F32 },
            TensorInfo { name: "y".into(), dims: vec![2, 2], ty: TensorType::F16 },
        ];
        let mut writer = GgufWriter::new(Vec::new(), &metadata, tensors).unwrap();
        writer.write_tensor(&[1; 12]).unwrap();
        assert!(writer.write_tensor(&[2; 7]).is_err(), "a tensor of the wrong size is refused");
        writer.write_tensor(&[2; 8]).unwrap();
        let bytes = writer.finish().unwrap();
        assert_eq!(&bytes[..4], b"GGUF");
        assert_eq!(u32::from_le_bytes(bytes[4..8].try_into().unwrap()), 3);
        assert_eq!(u64::from_le_bytes(bytes[8..16].try_into().unwrap()), 2);
        assert_eq!(u64::from_le_bytes(bytes[16..24].try_into().unwrap()), 3);
        // Data: 12 bytes of x padded to 32, then 8 of y padded to 32.
        assert_eq!(bytes.len() % 32, 0);
        let data = bytes.len() - 64;
        assert_eq!(&bytes[data..data + 12], &[1; 12]);
        assert_eq!(&bytes[data + 12..data + 32], &[0; 20]);
        assert_eq!(&bytes[data + 32..data + 40], &[2; 8]);
    }

    #[test]
    fn finishing_early_is_an_error() {
        let tensors = vec![TensorInfo { name: "x".into(), dims: vec![1], ty: TensorType::F32 }];
        let writer = GgufWriter::new(Vec::new(), &[], tensors).unwrap();
        assert!(writer.finish().is_err());
    }
}
