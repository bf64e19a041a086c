//! llama.cpp's quantizer (`llama_model_quantize`), the one call the safe `llama-cpp-2`
//! wrapper does not expose.
//!
//! The second file of the workspace allowed `unsafe` (the first is the ingest crate's
//! PDFium binding); it holds two FFI calls on plain values and C strings.
#![allow(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

use std::ffi::CString;
use std::path::Path;

use super::Quantization;

/// Quantizes the GGUF file `input` into `output` with `threads` threads (`None`: to F16,
/// dequantizing a quantized input). llama.cpp falls back to another type for tensors whose
/// rows the asked one cannot divide (as its `llama-quantize` tool does).
///
/// # Errors
/// A message when a path is not valid UTF-8 without NUL bytes or llama.cpp fails.
pub(super) fn quantize(
    input: &Path,
    output: &Path,
    quantization: Quantization,
    threads: usize,
) -> Result<(), String> {
    let ftype = match quantization {
        Quantization::None => llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_F16,
        Quantization::Q8_0 => llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q8_0,
        Quantization::Q4KM => llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q4_K_M,
    };
    let c_path = |path: &Path| {
        path.to_str()
            .and_then(|s| CString::new(s).ok())
            .ok_or_else(|| format!("{} is not a path llama.cpp can open", path.display()))
    };
    let (input, output) = (c_path(input)?, c_path(output)?);
    // The backend must be initialised before ggml runs (llama.cpp's tool does the same).
    crate::local::backend().map_err(|e| e.to_string())?;
    // SAFETY: `llama_model_quantize_default_params` takes nothing and returns a plain
    // struct whose pointer fields are null.
    let mut params = unsafe { llama_cpp_sys_2::llama_model_quantize_default_params() };
    params.ftype = ftype;
    params.nthread = i32::try_from(threads.max(1)).unwrap_or(i32::MAX);
    // Asked for explicitly, so an already quantized input is converted too.
    params.allow_requantize = true;
    // SAFETY: both paths are NUL-terminated C strings that outlive the call, and `params`
    // is a valid struct from llama.cpp's defaults with only plain fields changed; the
    // function reads them and touches nothing else of ours.
    let status =
        unsafe { llama_cpp_sys_2::llama_model_quantize(input.as_ptr(), output.as_ptr(), &params) };
    if status == 0 { Ok(()) } else { Err(format!("llama_model_quantize returned {status}")) }
}
