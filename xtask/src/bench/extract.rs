//! `cargo xtask bench extract`: text extraction and OCR against the programs people use
//! for them, on the same files in the same run.
//!
//! - **PDF engines**: every PDF of the regression corpus (`fixtures/ingest-corpus`, real
//!   manuals from Debian packages, made by pdfTeX, Texinfo, groff, Ghostscript, FOP...) read
//!   by `pdftotext` (Poppler, Debian's, in its default configuration) and by ragd with each
//!   of its engines, PDFium and `pdf-extract`. For each: how many files it read, how many
//!   hold at least 95 % of the lines `pdftotext` finds (the corpus test's measure,
//!   `ragd_core::extraction_check`), and the time (one process per file for every
//!   contender, the fastest of `--rounds`, contenders interleaved).
//! - **Formats**: ragd's extraction throughput per format, timed inside the process
//!   (`extract_file` reports it): the corpus's HTML, text, Markdown and PDFs, its Markdown
//!   files converted by pandoc to DOCX, ODT, EPUB and PPTX, and the spreadsheet, CSV and
//!   e-mail fixtures (small: their MB/s is mostly fixed cost).
//! - **OCR**: the first `--ocr-pages` pages of a corpus manual rendered at 300 dpi by
//!   `pdftoppm`. As images (PNG): ragd against `tesseract IMAGE stdout` run directly. As a
//!   scanned PDF (the pages as JPEGs, no text layer, made by
//!   `fixtures/docs/make-scanned-pdf.py`): ragd (PDFium renders each page, Tesseract reads
//!   it) against `pdftoppm -r 300` piped page by page into `tesseract`. Every Tesseract run,
//!   ragd's and the peers', has `OMP_THREAD_LIMIT=1`, ragd's setting (one page per core).
//!
//! The ragd contender is `crates/ingest/examples/extract_file.rs`, built with the `release`
//! profile for `ragd-ingest` alone (`cargo build --release -p ragd-ingest --example
//! extract_file`): opt-level 3 without the serving build's cross-crate LTO, so it builds in
//! minutes without the whole workspace.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use ragd_core::extraction_check::{line_coverage, word_coverage};

use crate::Result;

const USAGE: &str = "usage: cargo xtask bench extract [--rounds R] [--ocr-pages N]";

/// The share of `pdftotext`'s lines a PDF's text must hold to count as read well.
const GOOD_COVERAGE: f64 = 0.95;

/// Lines sampled per PDF, as in the corpus test.
const SAMPLED_LINES: usize = 200;

/// The corpus manual whose pages are OCRed.
const OCR_SOURCE: &str = "r-intro.pdf";

/// The benchmark's options.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Options {
    rounds: usize,
    ocr_pages: usize,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut options = Options { rounds: 3, ocr_pages: 6 };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number = value
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{flag} needs a positive number, got {value:?}\n{USAGE}"))?;
        match flag.as_str() {
            "--rounds" => options.rounds = number,
            "--ocr-pages" => options.ocr_pages = number,
            _ => return Err(format!("unknown option {flag:?}\n{USAGE}")),
        }
    }
    Ok(options)
}

/// What one run of a contender on one file gave.
#[derive(Debug, Clone)]
struct Output {
    ok: bool,
    text: String,
    /// Wall time of the process(es), seconds.
    seconds: f64,
    /// Extraction time ragd reported, seconds (ragd only).
    inside: Option<f64>,
}

/// Runs `cmd` and times it; its stdout is the text.
fn timed(mut cmd: Command) -> Result<Output> {
    crate::clean_cargo_env(&mut cmd);
    let started = Instant::now();
    let output =
        cmd.stdin(Stdio::null()).output().map_err(|err| format!("cannot run {cmd:?}: {err}"))?;
    let seconds = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let inside = stderr
        .rsplit_once("extracted in ")
        .and_then(|(_, rest)| rest.split_whitespace().next()?.parse::<f64>().ok())
        .map(|ms| ms / 1000.0);
    Ok(Output {
        ok: output.status.success(),
        text: String::from_utf8_lossy(&output.stdout).into_owned(),
        seconds,
        inside,
    })
}

/// The fastest of `rounds` runs (the text of the last).
fn fastest(rounds: usize, mut make: impl FnMut() -> Command) -> Result<Output> {
    let mut best: Option<Output> = None;
    for _ in 0..rounds {
        let run = timed(make())?;
        best = Some(match best {
            Some(best) if best.seconds <= run.seconds => Output { text: run.text, ..best },
            _ => run,
        });
    }
    best.ok_or_else(|| "no rounds".to_owned())
}

/// The paths the contenders need.
struct Tools {
    extract_file: PathBuf,
    pdfium: PathBuf,
    work: PathBuf,
}

impl Tools {
    fn ragd(&self, pdfium: bool, ocr: &str, file: &Path) -> Command {
        let mut cmd = Command::new(&self.extract_file);
        if pdfium {
            cmd.arg("--pdfium").arg(&self.pdfium);
        }
        cmd.args(["--ocr", ocr]).arg(file);
        cmd
    }
}

pub(super) fn run(args: &[String]) -> Result<()> {
    let options = parse(args)?;
    let assets = crate::setup()?;
    crate::sysdeps::ensure_documents()?;
    crate::sysdeps::ensure_ocr()?;
    let corpus = crate::fetch_corpus()?;
    let mut build = crate::cargo()?;
    build.args(["build", "--release", "-p", "ragd-ingest", "--example", "extract_file"]);
    crate::run(build)?;
    let tools = Tools {
        extract_file: crate::target_dir()?.join("release/examples/extract_file"),
        pdfium: assets.join(ragd_core::assets::PDFIUM.path),
        work: crate::target_dir()?.join("ragd-bench/extract"),
    };
    let _ = fs::remove_dir_all(&tools.work);
    fs::create_dir_all(&tools.work)
        .map_err(|err| format!("cannot create {}: {err}", tools.work.display()))?;

    let load_before = super::load_average();
    let pdfs = pdf_engines(&tools, &corpus, options.rounds)?;
    let formats = formats(&tools, &corpus, options.rounds)?;
    let ocr = ocr(&tools, &corpus, &options)?;
    let load_after = super::load_average();

    let command = format!("cargo xtask bench extract {}", args.join(" "));
    let mut out = super::header_for(
        "Extraction and OCR, ragd vs pdftotext and tesseract",
        command.trim(),
        "- build: `cargo build --release -p ragd-ingest --example extract_file` (cargo's \
         release defaults, not the serving build's cross-crate LTO; the ingest crate alone); \
         PDFium from the asset wheel (pypdfium2 5.15.2, PDFium build 8149); Poppler and \
         Tesseract from Debian",
    );
    // `pdftotext -v` prints its version on stderr.
    let poppler = Command::new("pdftotext")
        .arg("-v")
        .output()
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stderr).lines().next().map(str::to_owned))
        .unwrap_or_else(|| "pdftotext unknown".to_owned());
    let _ = writeln!(
        out,
        "- versions: {}; {}",
        poppler.replace("pdftotext version", "pdftotext (Poppler)"),
        super::first_line("tesseract", &["--version"])
    );
    let _ = writeln!(out, "- load average before / after: {load_before} / {load_after}");
    out.push_str(&pdfs);
    out.push_str(&formats);
    out.push_str(&ocr);
    eprint!("{out}");
    super::append(&out)
}

/// One PDF engine's figures over the corpus.
#[derive(Debug, Default)]
struct Engine {
    read: usize,
    good: usize,
    lowest: f64,
    seconds: f64,
}

/// The PDF engines' section.
fn pdf_engines(tools: &Tools, corpus: &Path, rounds: usize) -> Result<String> {
    let mut files = corpus_files(corpus, "pdf")?;
    files.sort();
    let names = ["pdftotext (Poppler)", "ragd, PDFium", "ragd, pdf-extract"];
    let mut engines: Vec<Engine> =
        names.iter().map(|_| Engine { lowest: 1.0, ..Engine::default() }).collect();
    let mut rows = String::new();
    let mut bytes = 0_u64;
    for file in &files {
        bytes += size(file);
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        eprintln!("xtask: bench extract: {name}");
        let reference = fastest(rounds, || {
            let mut cmd = Command::new("pdftotext");
            cmd.arg(file).arg("-");
            cmd
        })?;
        if !reference.ok {
            return Err(format!("pdftotext failed on {}", file.display()));
        }
        let runs = [
            reference.clone(),
            fastest(rounds, || tools.ragd(true, "never", file))?,
            fastest(rounds, || tools.ragd(false, "never", file))?,
        ];
        let mut cells = Vec::new();
        for (engine, run) in engines.iter_mut().zip(&runs) {
            let share = if run.ok {
                line_coverage(&reference.text, &run.text, SAMPLED_LINES).share()
            } else {
                0.0
            };
            engine.read += usize::from(run.ok && !run.text.trim().is_empty());
            engine.good += usize::from(share >= GOOD_COVERAGE);
            engine.lowest = engine.lowest.min(share);
            engine.seconds += run.seconds;
            cells.push(if run.ok {
                format!("{:.1} % in {:.0} ms", share * 100.0, run.seconds * 1000.0)
            } else {
                format!("failed ({:.0} ms)", run.seconds * 1000.0)
            });
        }
        let _ = writeln!(rows, "| {name} | {} KB | {} |", size(file) / 1024, cells.join(" | "));
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n### PDF engines on the {} PDFs of the corpus ({:.1} MB)\n",
        files.len(),
        bytes as f64 / 1e6
    );
    let _ = writeln!(
        out,
        "Share of `pdftotext`'s lines found (sampled, at most {SAMPLED_LINES} a file) and wall time of one process per file, fastest of the rounds.\n"
    );
    let _ = writeln!(
        out,
        "| engine | files read | files with ≥ 95 % | lowest share | total s | MB/s | time vs pdftotext |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    let base = engines[0].seconds;
    for (name, engine) in names.iter().zip(&engines) {
        let _ = writeln!(
            out,
            "| {name} | {} / {} | {} | {:.1} % | {:.2} | {:.1} | {:.2}x |",
            engine.read,
            files.len(),
            engine.good,
            engine.lowest * 100.0,
            engine.seconds,
            bytes as f64 / 1e6 / engine.seconds,
            engine.seconds / base
        );
    }
    let _ = writeln!(out, "\n| file | size | {} |", names.join(" | "));
    let _ = writeln!(out, "|---|---|---|---|---|");
    out.push_str(&rows);
    Ok(out)
}

/// The size of `file` in bytes (0 when it cannot be read).
fn size(file: &Path) -> u64 {
    fs::metadata(file).map_or(0, |meta| meta.len())
}

/// The files of `dir` whose name ends in `.ext`.
fn corpus_files(dir: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    let entries =
        fs::read_dir(dir).map_err(|err| format!("cannot list {}: {err}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|found| found == ext))
        .collect();
    files.sort();
    Ok(files)
}

/// The per-format section.
fn formats(tools: &Tools, corpus: &Path, rounds: usize) -> Result<String> {
    let fixtures = crate::workspace_root().join("fixtures/docs");
    let converted = tools.work.join("converted");
    fs::create_dir_all(&converted).map_err(|err| format!("{}: {err}", converted.display()))?;
    let markdown = corpus_files(corpus, "md")?;
    let mut groups: Vec<(&str, Vec<PathBuf>)> = vec![
        ("PDF (PDFium)", corpus_files(corpus, "pdf")?),
        ("HTML", corpus_files(corpus, "html")?),
        ("text", corpus_files(corpus, "txt")?),
        ("Markdown", markdown.clone()),
    ];
    for (format, ext) in [("DOCX", "docx"), ("ODT", "odt"), ("EPUB", "epub"), ("PPTX", "pptx")] {
        let mut made = Vec::new();
        for file in &markdown {
            let stem =
                file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let out = converted.join(format!("{stem}.{ext}"));
            let mut pandoc = Command::new("pandoc");
            pandoc.args(["--from", "markdown", "--to", ext, "--output"]).arg(&out).arg(file);
            let status = pandoc.status().map_err(|err| format!("cannot run pandoc: {err}"))?;
            if status.success() {
                made.push(out);
            }
        }
        groups.push((format, made));
    }
    for (format, names) in [
        ("XLSX", &["workbook.xlsx"][..]),
        ("ODS", &["workbook.ods"][..]),
        ("CSV", &["prices.csv"][..]),
        ("EML", &["letter.eml"][..]),
    ] {
        groups.push((format, names.iter().map(|name| fixtures.join(name)).collect()));
    }
    let mut out = String::new();
    let _ = writeln!(out, "\n### ragd's extraction per format\n");
    let _ = writeln!(
        out,
        "Time inside the process (`extract_file` reports it; process start and PDFium's loading left out), fastest of the rounds per file. The XLSX, ODS, CSV and EML rows are one small fixture each.\n"
    );
    let _ = writeln!(out, "| format | files | MB | extraction s | MB/s |");
    let _ = writeln!(out, "|---|---|---|---|---|");
    for (format, files) in groups {
        let mut bytes = 0_u64;
        let mut seconds = 0.0;
        for file in &files {
            let pdf = file.extension().is_some_and(|ext| ext == "pdf");
            let run = fastest(rounds, || tools.ragd(pdf, "never", file))?;
            if !run.ok {
                return Err(format!("ragd failed on {}", file.display()));
            }
            bytes += size(file);
            seconds += run.inside.unwrap_or(run.seconds);
        }
        let _ = writeln!(
            out,
            "| {format} | {} | {:.2} | {seconds:.3} | {:.1} |",
            files.len(),
            bytes as f64 / 1e6,
            bytes as f64 / 1e6 / seconds
        );
    }
    Ok(out)
}

/// A command with Tesseract limited to one thread, like ragd runs it.
fn one_thread(mut cmd: Command) -> Command {
    cmd.env("OMP_THREAD_LIMIT", "1");
    cmd
}

/// The OCR section.
fn ocr(tools: &Tools, corpus: &Path, options: &Options) -> Result<String> {
    let source = corpus.join(OCR_SOURCE);
    let pages = options.ocr_pages;
    let dir = tools.work.join("ocr");
    fs::create_dir_all(&dir).map_err(|err| format!("{}: {err}", dir.display()))?;
    let last = pages.to_string();
    for format in ["-png", "-jpeg"] {
        let mut render = Command::new("pdftoppm");
        render
            .args(["-r", "300", "-gray", format, "-f", "1", "-l", &last])
            .arg(&source)
            .arg(dir.join("page"));
        crate::run(render)?;
    }
    let images = corpus_files(&dir, "png")?;
    let jpegs = corpus_files(&dir, "jpg")?;
    if images.len() != pages || jpegs.len() != pages {
        return Err(format!(
            "pdftoppm made {} PNG and {} JPEG pages, not {pages}",
            images.len(),
            jpegs.len()
        ));
    }
    let scanned = dir.join("scanned.pdf");
    let mut make = Command::new("python3");
    make.arg(crate::workspace_root().join("fixtures/docs/make-scanned-pdf.py"))
        .arg("--no-text-page")
        .arg(&scanned)
        .args(&jpegs);
    crate::run(make)?;

    // Images: ragd against tesseract, interleaved page by page.
    let (mut ragd_s, mut peer_s, mut agreed, mut words) = (0.0, 0.0, 0, 0);
    for image in &images {
        let ragd = fastest(options.rounds, || one_thread(tools.ragd(false, "auto", image)))?;
        let peer = fastest(options.rounds, || {
            let mut cmd = Command::new("tesseract");
            cmd.arg(image).arg("stdout");
            one_thread(cmd)
        })?;
        if !ragd.ok || !peer.ok {
            return Err(format!("OCR failed on {}", image.display()));
        }
        ragd_s += ragd.seconds;
        peer_s += peer.seconds;
        let (found, total) = word_coverage(&peer.text, &ragd.text);
        agreed += found;
        words += total;
    }
    // The scanned PDF: ragd (PDFium + Tesseract) against pdftoppm | tesseract per page.
    let ragd_pdf = fastest(options.rounds, || one_thread(tools.ragd(true, "auto", &scanned)))?;
    let mut peer_best = f64::INFINITY;
    let mut peer_text = String::new();
    for _ in 0..options.rounds {
        let started = Instant::now();
        let mut text = String::new();
        for page in 1..=pages {
            let number = page.to_string();
            let mut pipeline = Command::new("sh");
            pipeline
                .arg("-c")
                .arg("pdftoppm -r 300 -gray -f \"$1\" -l \"$1\" \"$2\" | tesseract stdin stdout")
                .args(["sh", &number])
                .arg(&scanned);
            let run = timed(one_thread(pipeline))?;
            if !run.ok {
                return Err(format!("pdftoppm | tesseract failed on page {page}"));
            }
            text.push_str(&run.text);
        }
        peer_best = peer_best.min(started.elapsed().as_secs_f64());
        peer_text = text;
    }
    if !ragd_pdf.ok {
        return Err("ragd failed on the scanned PDF".to_owned());
    }
    let (pdf_agreed, pdf_words) = word_coverage(&peer_text, &ragd_pdf.text);

    let pages_f = pages as f64;
    let mut out = String::new();
    let _ = writeln!(out, "\n### OCR: {pages} pages of {OCR_SOURCE} at 300 dpi\n");
    let _ = writeln!(
        out,
        "Wall time, fastest of {} rounds; every Tesseract run with `OMP_THREAD_LIMIT=1`. Word agreement: the share of the peer's words (with repetition) in ragd's text.\n",
        options.rounds
    );
    let _ = writeln!(out, "| input | contender | s | pages/s | vs peer | word agreement |");
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    let _ = writeln!(
        out,
        "| PNG images | tesseract IMAGE stdout | {peer_s:.2} | {:.2} | 1.00x | |",
        pages_f / peer_s
    );
    let _ = writeln!(
        out,
        "| PNG images | ragd | {ragd_s:.2} | {:.2} | {:.2}x | {:.1} % |",
        pages_f / ragd_s,
        ragd_s / peer_s,
        100.0 * agreed as f64 / words.max(1) as f64
    );
    let _ = writeln!(
        out,
        "| scanned PDF | pdftoppm -r 300 \\| tesseract, per page | {peer_best:.2} | {:.2} | 1.00x | |",
        pages_f / peer_best
    );
    let _ = writeln!(
        out,
        "| scanned PDF | ragd (PDFium renders, Tesseract reads) | {:.2} | {:.2} | {:.2}x | {:.1} % |",
        ragd_pdf.seconds,
        pages_f / ragd_pdf.seconds,
        ragd_pdf.seconds / peer_best,
        100.0 * pdf_agreed as f64 / pdf_words.max(1) as f64
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::tests::args;

    #[test]
    fn options_parse() {
        assert_eq!(parse(&[]).unwrap(), Options { rounds: 3, ocr_pages: 6 });
        assert_eq!(
            parse(&args(&["--rounds", "1", "--ocr-pages", "2"])).unwrap(),
            Options { rounds: 1, ocr_pages: 2 }
        );
        assert!(parse(&args(&["--rounds", "0"])).is_err());
        assert!(parse(&args(&["--pages", "2"])).is_err());
    }
}
