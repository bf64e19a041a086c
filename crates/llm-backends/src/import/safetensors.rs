//! Reading the tensors of `*.safetensors` shards one at a time.
//!
//! The format (huggingface/safetensors): an 8-byte little-endian header length, a JSON
//! header mapping each tensor name to its dtype, shape and byte range in the data section,
//! then the data. The `safetensors` crate wants the whole file in memory or an `unsafe`
//! memory map; a 5 GB shard needs neither, so the header is parsed here (and checked: every
//! range inside the file, every size equal to its shape times its dtype) and each tensor
//! is read with one seek when the converter asks for it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use half::{bf16, f16};

/// The largest header accepted (the format's own limit is 100 MB).
const MAX_HEADER: u64 = 100 << 20;

/// An element type of a stored tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dtype {
    F32,
    F16,
    Bf16,
}

impl Dtype {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "F32" => Some(Self::F32),
            "F16" => Some(Self::F16),
            "BF16" => Some(Self::Bf16),
            _ => None,
        }
    }

    const fn size(self) -> u64 {
        match self {
            Self::F32 => 4,
            Self::F16 | Self::Bf16 => 2,
        }
    }
}

/// Where one tensor is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredTensor {
    /// The shard holding it.
    pub shard: PathBuf,
    /// Its element type.
    pub dtype: Dtype,
    /// Its row-major shape.
    pub shape: Vec<u64>,
    /// Its absolute byte offset in the shard.
    pub offset: u64,
    /// Its size in bytes.
    pub len: u64,
}

impl StoredTensor {
    /// Its elements as `f32` (exact for every stored type).
    pub(crate) fn read_f32(&self) -> Result<Vec<f32>, String> {
        let mut file = File::open(&self.shard)
            .map_err(|e| format!("cannot open {}: {e}", self.shard.display()))?;
        file.seek(SeekFrom::Start(self.offset))
            .map_err(|e| format!("cannot read {}: {e}", self.shard.display()))?;
        let len = usize::try_from(self.len).map_err(|_| "a tensor larger than memory")?;
        let mut bytes = vec![0u8; len];
        file.read_exact(&mut bytes)
            .map_err(|e| format!("cannot read {}: {e}", self.shard.display()))?;
        Ok(match self.dtype {
            Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F16 => {
                bytes.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
            }
            Dtype::Bf16 => {
                bytes.chunks_exact(2).map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
            }
        })
    }
}

#[derive(serde::Deserialize)]
struct HeaderEntry {
    dtype: String,
    shape: Vec<u64>,
    data_offsets: (u64, u64),
}

/// Adds the tensors of `shard` to `tensors`.
///
/// # Errors
/// A message naming the shard: unreadable, a malformed header, a range outside the file, a
/// size that does not match the shape, a dtype the importer cannot read, or a tensor name
/// another shard has too.
pub(crate) fn read_header(
    shard: &Path,
    tensors: &mut BTreeMap<String, StoredTensor>,
) -> Result<(), String> {
    let name = shard.display();
    let mut file = File::open(shard).map_err(|e| format!("cannot open {name}: {e}"))?;
    let file_len = file.metadata().map_err(|e| format!("cannot read {name}: {e}"))?.len();
    let mut len = [0u8; 8];
    file.read_exact(&mut len).map_err(|_| format!("{name} is not a safetensors file"))?;
    let header_len = u64::from_le_bytes(len);
    if header_len > MAX_HEADER || 8 + header_len > file_len {
        return Err(format!("{name} is not a safetensors file (header of {header_len} bytes)"));
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header).map_err(|e| format!("cannot read {name}: {e}"))?;
    let entries: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&header)
        .map_err(|e| format!("{name} has a malformed safetensors header: {e}"))?;
    let data_start = 8 + header_len;
    for (tensor, entry) in entries {
        if tensor == "__metadata__" {
            continue;
        }
        let entry: HeaderEntry = serde_json::from_value(entry)
            .map_err(|e| format!("{name}: tensor {tensor} has a malformed entry: {e}"))?;
        let dtype = Dtype::parse(&entry.dtype).ok_or_else(|| {
            format!(
                "{name}: tensor {tensor} is {}; ragd imports F32, F16 and BF16 weights \
                 (pre-quantised checkpoints are not supported)",
                entry.dtype
            )
        })?;
        let (start, end) = entry.data_offsets;
        let elements = entry.shape.iter().try_fold(1u64, |n, d| n.checked_mul(*d));
        let expected = elements.and_then(|n| n.checked_mul(dtype.size()));
        if end < start || data_start + end > file_len || expected != Some(end - start) {
            return Err(format!(
                "{name}: tensor {tensor} has a byte range [{start}, {end}) that does not match \
                 its shape {:?} or the file; the shard is damaged or truncated",
                entry.shape
            ));
        }
        let stored = StoredTensor {
            shard: shard.to_path_buf(),
            dtype,
            shape: entry.shape,
            offset: data_start + start,
            len: end - start,
        };
        if tensors.insert(tensor.clone(), stored).is_some() {
            return Err(format!("tensor {tensor} is in more than one shard"));
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Writes a safetensors file of F32 tensors (name, shape, values).
    pub(crate) fn write(path: &Path, tensors: &[(&str, Vec<u64>, Vec<f32>)]) {
        let mut header = serde_json::Map::new();
        let mut data = Vec::new();
        for (name, shape, values) in tensors {
            let start = data.len();
            for v in values {
                data.extend_from_slice(&v.to_le_bytes());
            }
            header.insert(
                (*name).to_owned(),
                serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [start, data.len()]}),
            );
        }
        let header = serde_json::to_vec(&header).unwrap();
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(&header);
        bytes.extend_from_slice(&data);
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn tensors_are_found_and_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        write(&path, &[("a", vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]), ("b", vec![1], vec![5.0])]);
        let mut tensors = BTreeMap::new();
        read_header(&path, &mut tensors).unwrap();
        assert_eq!(tensors["a"].shape, vec![2, 2]);
        assert_eq!(tensors["a"].read_f32().unwrap(), vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(tensors["b"].read_f32().unwrap(), vec![5.0]);
        assert!(read_header(&path, &mut tensors).unwrap_err().contains("more than one shard"));
    }

    #[test]
    fn truncated_and_foreign_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        write(&path, &[("a", vec![4], vec![1.0, 2.0, 3.0, 4.0])]);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 4]).unwrap();
        let err = read_header(&path, &mut BTreeMap::new()).unwrap_err();
        assert!(err.contains("damaged or truncated"), "{err}");
        std::fs::write(&path, b"PK\x03\x04 this is a zip").unwrap();
        let err = read_header(&path, &mut BTreeMap::new()).unwrap_err();
        assert!(err.contains("not a safetensors file"), "{err}");
    }

    #[test]
    fn half_precision_is_widened_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        let values = [1.5f32, -2.0, 0.25];
        let mut data = Vec::new();
        for v in values {
            data.extend_from_slice(&bf16::from_f32(v).to_le_bytes());
        }
        let header = serde_json::to_vec(
            &serde_json::json!({"w": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 6]}}),
        )
        .unwrap();
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(&header);
        bytes.extend_from_slice(&data);
        std::fs::write(&path, bytes).unwrap();
        let mut tensors = BTreeMap::new();
        read_header(&path, &mut tensors).unwrap();
        assert_eq!(tensors["w"].read_f32().unwrap(), values.to_vec());
    }
}
