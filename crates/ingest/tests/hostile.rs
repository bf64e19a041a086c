//! Hostile inputs against the extractors: zip bombs, PDFs that recurse or loop, deep HTML,
//! PDF compression bombs, invalid UTF-8 and NUL bytes, and random bytes for every format.
//! Each must end in `Ok` or a clean [`Error`], on the default 2 MiB test-thread stack, in
//! bounded time. Worker processes are tested with shell scripts standing in for a parser
//! that hangs or crashes (the real worker, `ragd extract-worker`, is tested by the server).

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.

mod fixtures;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use fixtures::hostile;
use proptest::prelude::*;
use ragd_core::ErrorKind;
use ragd_ingest::isolate::extract_in_worker;
use ragd_ingest::{
    DocumentKind, Error, ExtractLimits, OcrMode, OcrSettings, WorkerCommand, detect, extract,
    extract_with,
};

/// A committed hostile fixture.
fn committed(name: &str) -> Vec<u8> {
    std::fs::read(PathBuf::from("../../fixtures/docs/hostile").join(name)).unwrap()
}

/// Limits with `max` extracted bytes.
fn limits(max: u64) -> ExtractLimits {
    ExtractLimits { max_extracted_bytes: max, ..ExtractLimits::default() }
}

/// [`limits`] reading PDFs with the PDFium of the asset directory, OCR off.
fn pdfium_limits(max: u64) -> ExtractLimits {
    let library = fixtures::pdfium_library();
    let ocr = OcrSettings { mode: OcrMode::Never, ..OcrSettings::default() };
    ExtractLimits { pdfium: Some(library), ocr, ..limits(max) }
}

#[track_caller]
fn assert_extraction_error(result: ragd_ingest::Result<ragd_ingest::Extracted>, needle: &str) {
    let err = result.unwrap_err();
    assert!(matches!(err, Error::Extraction { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains(needle), "{err}");
}

#[test]
fn committed_fixtures_are_what_the_generator_writes() {
    assert_eq!(committed("bomb.docx"), hostile::zip_bomb_docx(32 << 20));
    assert_eq!(committed("self-drawing-form.pdf"), hostile::self_drawing_form_pdf());
    assert_eq!(committed("parent-cycle.pdf"), hostile::parent_cycle_pdf());
    assert_eq!(committed("exponential-forms.pdf"), hostile::exponential_forms_pdf(40));
    assert_eq!(committed("nested-divs.html"), hostile::nested_divs(20_000).into_bytes());
    assert_eq!(committed("invalid-utf8.txt"), hostile::invalid_utf8());
    assert_eq!(committed("late-nul.txt"), hostile::late_nul_bytes());
}

#[test]
fn a_zip_bomb_spreadsheet_fails_after_reading_only_the_budget() {
    // Small enough to read whole: a real one-cell workbook.
    let small = hostile::zip_bomb_xlsx(10_000);
    assert_eq!(detect(&small, "upload").unwrap(), DocumentKind::Xlsx);
    let text = extract(DocumentKind::Xlsx, &small).unwrap().text;
    assert!(text.starts_with("Data\n\n| aaaa") && text.len() > 9_000, "{}", text.len());
    // 2 GiB of one cell, refused after 16 MiB of inflation.
    let giant = hostile::zip_bomb_xlsx(2 << 30);
    assert!(giant.len() < 14 << 20, "{}", giant.len());
    assert_extraction_error(
        extract_with(DocumentKind::Xlsx, &giant, &limits(16 << 20)),
        "more than 16777216 bytes",
    );
}

#[test]
fn a_million_empty_spreadsheet_rows_cost_nothing_in_the_text() {
    let sheet = hostile::sparse_rows_xlsx(1_000_000);
    let extracted = extract(DocumentKind::Xlsx, &sheet).unwrap();
    assert_eq!(extracted.text, "Data\n\n| Name | Value |\n| --- | --- |\n| last | row |");
    // Under a budget smaller than its range, it fails cleanly instead.
    assert_extraction_error(
        extract_with(DocumentKind::Xlsx, &sheet, &limits(1 << 20)),
        "more than 1048576 bytes",
    );
}

#[test]
fn an_image_claiming_a_huge_size_is_refused_from_its_header() {
    // A PNG header of 100 000 x 100 000 pixels and nothing else: refused before decoding.
    let mut png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR".to_vec();
    png.extend_from_slice(&100_000_u32.to_be_bytes());
    png.extend_from_slice(&100_000_u32.to_be_bytes());
    png.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(detect(&png, "huge.png").unwrap(), DocumentKind::Png);
    // The reason names the header's size: no decoder ran (the file has no pixels to decode).
    assert_extraction_error(extract(DocumentKind::Png, &png), "100000 x 100000 pixels");
}

#[test]
fn images_fail_with_the_reason_when_ocr_is_off() {
    let image = std::fs::read("../../fixtures/docs/notice.png").unwrap();
    let off = ExtractLimits {
        ocr: ragd_ingest::OcrSettings { mode: ragd_ingest::OcrMode::Never, ..Default::default() },
        ..ExtractLimits::default()
    };
    assert_extraction_error(extract_with(DocumentKind::Png, &image, &off), "OCR is turned off");
}

#[test]
fn xml_entities_are_never_expanded() {
    let bomb = hostile::billion_laughs_docx();
    let text = extract(DocumentKind::Docx, &bomb).unwrap().text;
    // The declared entities are not expanded (or the text would be 3 GB of `lol`).
    assert!(text.starts_with("before") && text.ends_with("after") && text.len() < 100, "{text}");
}

#[test]
fn deeply_nested_tables_cost_no_recursion() {
    let deep = hostile::nested_tables_docx(200_000);
    let text = extract(DocumentKind::Docx, &deep).unwrap().text;
    assert_eq!(text, "core");
}

#[test]
fn the_deflate_generator_inflates_to_what_it_says() {
    // A bomb small enough to read whole, through the real reader, must parse as a DOCX.
    let small = hostile::zip_bomb_docx(10_000);
    let text = extract(DocumentKind::Docx, &small).unwrap().text;
    assert!(text.len() >= 10_000 - 258 && text.bytes().all(|b| b == b'a'), "{}", text.len());
}

#[test]
fn a_zip_bomb_docx_fails_after_reading_only_the_budget() {
    let bomb = committed("bomb.docx");
    assert!(bomb.len() < 300_000, "{}", bomb.len());
    assert_eq!(detect(&bomb, "bomb.docx").unwrap(), DocumentKind::Docx);
    assert_extraction_error(
        extract_with(DocumentKind::Docx, &bomb, &limits(4 << 20)),
        "ingest.max_extracted_bytes",
    );

    // Gigabytes: 2 GiB of `a` from 13 MB, refused after 16 MiB of inflation.
    let giant = hostile::zip_bomb_docx(2 << 30);
    assert!(giant.len() < 14 << 20, "{}", giant.len());
    let started = Instant::now();
    assert_extraction_error(
        extract_with(DocumentKind::Docx, &giant, &limits(16 << 20)),
        "more than 16777216 bytes",
    );
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
}

#[test]
fn a_pdf_form_that_draws_itself_is_refused_not_a_stack_overflow() {
    assert_extraction_error(
        extract(DocumentKind::Pdf, &committed("self-drawing-form.pdf")),
        "invokes itself",
    );
}

#[test]
fn a_pdf_page_that_is_its_own_parent_is_refused_not_a_stack_overflow() {
    assert_extraction_error(extract(DocumentKind::Pdf, &committed("parent-cycle.pdf")), "cycle");
}

#[test]
fn pdfium_reads_hostile_pdfs_only_after_the_guards() {
    let pdf = |bytes: &[u8], max: u64| extract_with(DocumentKind::Pdf, bytes, &pdfium_limits(max));
    assert_extraction_error(pdf(&committed("self-drawing-form.pdf"), 1 << 20), "invokes itself");
    assert_extraction_error(pdf(&committed("parent-cycle.pdf"), 1 << 20), "cycle");
    let started = Instant::now();
    assert_extraction_error(pdf(&hostile::flate_bomb_pdf(2 << 30), 16 << 20), "compression bomb");
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    let text = pdf(&hostile::flate_bomb_pdf(10_000), 1 << 20).unwrap().text;
    assert!(text.len() >= 9_000 && text.bytes().all(|b| b == b'a'), "{}", text.len());
    assert_extraction_error(pdf(b"%PDF-1.4\ntruncated", 1 << 20), "cannot read past");
    // The fuzzer's find: multiplying forms in a file whose cross-reference table is gone.
    // lopdf cannot parse it, so the guards cannot count its forms, and PDFium, which
    // rebuilds the table, would expand 2^40 forms; in process it is refused.
    let forms = hostile::exponential_forms_pdf(40);
    let xref = forms.windows(4).rposition(|w| w == b"xref").unwrap();
    let started = Instant::now();
    assert_extraction_error(pdf(&forms[..xref], 1 << 20), "cannot read past");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    // PDFium cannot be stopped inside a page: 2^40 nested form draws are refused up front,
    // 2^12 are read.
    assert_extraction_error(pdf(&committed("exponential-forms.pdf"), 1 << 20), "1000000 form");
    assert!(pdf(&hostile::exponential_forms_pdf(12), 1 << 20).is_ok());
}

#[test]
fn a_pdf_that_renders_forever_stops_when_cancelled() {
    let bytes = committed("exponential-forms.pdf");
    let limits = ExtractLimits::default();
    let cancel = Arc::clone(&limits.cancel);
    let worker = std::thread::spawn(move || extract_with(DocumentKind::Pdf, &bytes, &limits));
    std::thread::sleep(Duration::from_millis(500));
    assert!(!worker.is_finished(), "2^40 words take longer than half a second");
    let cancelled = Instant::now();
    cancel.store(true, Ordering::Relaxed);
    let result = worker.join().unwrap();
    assert!(cancelled.elapsed() < Duration::from_secs(10), "{:?}", cancelled.elapsed());
    assert_extraction_error(result, "cancelled");
}

#[test]
fn a_pdf_that_prints_too_much_text_stops_at_the_budget() {
    let bytes = committed("exponential-forms.pdf");
    assert_extraction_error(
        extract_with(DocumentKind::Pdf, &bytes, &limits(64 * 1024)),
        "ingest.max_extracted_bytes",
    );
}

#[test]
fn a_pdf_compression_bomb_is_refused_after_inflating_only_the_budget() {
    // 2 GiB of content stream from 13 MB; the budget is 4 x 16 MiB of decoded streams.
    let bomb = hostile::flate_bomb_pdf(2 << 30);
    assert!(bomb.len() < 14 << 20, "{}", bomb.len());
    assert_eq!(detect(&bomb, "bomb.pdf").unwrap(), DocumentKind::Pdf);
    let started = Instant::now();
    assert_extraction_error(
        extract_with(DocumentKind::Pdf, &bomb, &limits(16 << 20)),
        "compression bomb",
    );
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());

    // The same construction, small: within the budget it is an ordinary page of `a`s.
    let small = hostile::flate_bomb_pdf(10_000);
    let text = extract_with(DocumentKind::Pdf, &small, &limits(1 << 20)).unwrap().text;
    assert!(text.len() >= 9_000 && text.bytes().all(|b| b == b'a'), "{}", text.len());
}

/// A worker command running `script` under `/bin/sh`.
fn shell_worker(script: &str) -> WorkerCommand {
    WorkerCommand {
        program: "/bin/sh".into(),
        args: vec!["-c".to_owned(), script.to_owned()],
        max_memory_bytes: 1 << 30,
    }
}

#[tokio::test]
async fn a_worker_past_its_deadline_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    // A "parser" that never answers: it records its pid and sleeps.
    let worker = shell_worker(&format!("echo $$ > {}; exec sleep 600", pid_file.display()));
    let limits = ExtractLimits { timeout: Duration::from_secs(1), ..ExtractLimits::default() };
    let started = Instant::now();
    let result = extract_in_worker(&worker, DocumentKind::Pdf, b"%PDF-1.4".to_vec(), &limits).await;
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert_extraction_error(result, "its worker process was killed");
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    // Killed and reaped: no process of that id is left, not even a zombie.
    assert!(!PathBuf::from(format!("/proc/{}", pid.trim())).exists(), "pid {pid} still exists");
}

#[tokio::test]
async fn a_workers_progress_reaches_the_parent_and_stays_out_of_its_last_words() {
    // Progress lines, then a crash: the parent saw the progress, and the reason is the
    // worker's real last line, not a progress report.
    let worker = shell_worker(&format!(
        "cat > /dev/null; echo '{0}20' >&2; echo 'page 2 is odd' >&2; echo '{0}60' >&2; \
         kill -ABRT $$",
        ragd_ingest::isolate::PROGRESS_PREFIX
    ));
    let limits = ExtractLimits::default();
    let result = extract_in_worker(&worker, DocumentKind::Pdf, b"%PDF".to_vec(), &limits).await;
    assert_extraction_error(result, "signal 6 (SIGABRT): page 2 is odd");
    assert_eq!(limits.progress.load(Ordering::Relaxed), 60);
}

#[tokio::test]
async fn a_crashing_worker_fails_the_document_with_its_signal_and_last_words() {
    // 200 KiB of chatter first: stderr is drained whole, and only its end is kept.
    let worker = shell_worker(
        "cat > /dev/null; head -c 204800 /dev/zero | tr '\\0' x >&2; echo >&2; \
         echo 'memory allocation of 1073741824 bytes failed' >&2; kill -ABRT $$",
    );
    let result = extract_in_worker(
        &worker,
        DocumentKind::Pdf,
        vec![b'x'; 1 << 20],
        &ExtractLimits::default(),
    )
    .await;
    assert_extraction_error(result, "signal 6 (SIGABRT): memory allocation of 1073741824 bytes");
    let result =
        extract_in_worker(&worker, DocumentKind::Pdf, b"x".to_vec(), &ExtractLimits::default())
            .await;
    assert_extraction_error(result, "ingest.extract_memory_bytes");

    // A program that is not a worker: it answers, but not the protocol.
    let impostor = shell_worker("cat > /dev/null; echo hello");
    let result =
        extract_in_worker(&impostor, DocumentKind::Text, b"x".to_vec(), &ExtractLimits::default())
            .await;
    assert_extraction_error(result, "exited with exit status: 0 without an answer");

    // A program that cannot start is a task error, not a document error.
    let missing = WorkerCommand { program: "/nonexistent/ragd".into(), ..shell_worker("") };
    let result =
        extract_in_worker(&missing, DocumentKind::Text, b"x".to_vec(), &ExtractLimits::default())
            .await;
    let Err(Error::Spawn { what, source }) = &result else { panic!("{result:?}") };
    assert!(what.contains("/nonexistent/ragd"), "{what}");
    assert_eq!(source.kind(), std::io::ErrorKind::NotFound, "the io error is kept as the source");
}

#[test]
fn deeply_nested_html_extracts_on_a_small_stack_in_bounded_time() {
    for html in [hostile::nested_divs(100_000), hostile::nested_tables(20_000)] {
        let started = Instant::now();
        let extracted = extract(DocumentKind::Html, html.as_bytes()).unwrap();
        assert!(extracted.text.contains("Deep inside") || extracted.text.contains("Inside the"));
        assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    }
    let committed = committed("nested-divs.html");
    assert_eq!(detect(&committed, "nested.html").unwrap(), DocumentKind::Html);
    let extracted = extract(DocumentKind::Html, &committed).unwrap();
    assert_eq!(extracted.text, "Deep inside the nesting.");
}

#[test]
fn invalid_utf8_and_nul_bytes_give_clean_text() {
    let invalid = committed("invalid-utf8.txt");
    assert_eq!(detect(&invalid, "invalid.txt").unwrap(), DocumentKind::Text);
    let text = extract(DocumentKind::Text, &invalid).unwrap().text;
    assert!(text.contains("valid words"), "{text}");

    let late = committed("late-nul.txt");
    assert_eq!(detect(&late, "late.txt").unwrap(), DocumentKind::Text);
    let text = extract(DocumentKind::Text, &late).unwrap().text;
    assert!(!text.contains('\0') && text.contains("zerobytesinsidethe text."), "{text:?}");

    let early = b"NUL\0at the start";
    assert_eq!(detect(early, "early.txt").unwrap_err().kind(), ErrorKind::UnsupportedMediaType);
}

#[test]
fn text_past_the_byte_budget_is_refused() {
    let text = "word ".repeat(1000);
    for kind in [DocumentKind::Text, DocumentKind::Markdown, DocumentKind::Html, DocumentKind::Csv]
    {
        assert_extraction_error(
            extract_with(kind, text.as_bytes(), &limits(1000)),
            "ingest.max_extracted_bytes",
        );
        assert!(extract_with(kind, text.as_bytes(), &limits(10_000)).is_ok(), "{kind:?}");
    }
}

/// Bytes that start like `kind` so that the parser gets past its first check.
fn with_magic(kind: DocumentKind, mut bytes: Vec<u8>) -> Vec<u8> {
    let magic: &[u8] = match kind {
        DocumentKind::Pdf => b"%PDF-1.4\n",
        DocumentKind::Docx
        | DocumentKind::Xlsx
        | DocumentKind::Ods
        | DocumentKind::Odt
        | DocumentKind::Pptx
        | DocumentKind::Epub => b"PK\x03\x04",
        DocumentKind::Eml => b"Received: by x\r\nSubject: s\r\n\r\n",
        DocumentKind::Png => b"\x89PNG\r\n\x1a\n",
        DocumentKind::Jpeg => b"\xFF\xD8\xFF",
        DocumentKind::Tiff => b"II*\x00",
        DocumentKind::Webp => b"RIFF\x00\x00\x00\x00WEBP",
        DocumentKind::Csv => b"a,b\n",
        DocumentKind::Html => b"<!DOCTYPE html><div>",
        DocumentKind::Markdown => b"# ",
        DocumentKind::Text => b"",
    };
    bytes.splice(0..0, magic.iter().copied());
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Every extractor returns `Ok` or a clean error on random bytes, raw or behind the
    /// format's magic bytes; never a panic that escapes, never an over-budget text.
    #[test]
    fn extractors_survive_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 1..4096)) {
        for kind in DocumentKind::ALL {
            for input in [bytes.clone(), with_magic(kind, bytes.clone())] {
                match extract_with(kind, &input, &limits(1 << 20)) {
                    Ok(extracted) => prop_assert!(extracted.text.len() <= 1 << 20),
                    Err(err) => prop_assert!(
                        matches!(err, Error::Extraction { .. } | Error::Empty),
                        "{kind:?}: {err:?}"
                    ),
                }
            }
        }
    }

    /// Truncations and single-byte corruptions of valid documents of every format.
    #[test]
    fn extractors_survive_corrupted_documents(cut in 0.0..1.0_f64, flip in any::<(usize, u8)>()) {
        let documents = [
            (DocumentKind::Pdf, fixtures::pdf()),
            (DocumentKind::Docx, fixtures::docx()),
            (DocumentKind::Html, fixtures::HTML.as_bytes().to_vec()),
            (DocumentKind::Pdf, hostile::self_drawing_form_pdf()),
            (DocumentKind::Pdf, std::fs::read("../../fixtures/docs/scanned.pdf").unwrap()),
            (DocumentKind::Xlsx, hostile::zip_bomb_xlsx(2_000)),
            (DocumentKind::Docx, std::fs::read("../../fixtures/docs/tables-pandoc.docx").unwrap()),
            (DocumentKind::Ods, std::fs::read("../../fixtures/docs/workbook.ods").unwrap()),
            (DocumentKind::Odt, std::fs::read("../../fixtures/docs/tables.odt").unwrap()),
            (DocumentKind::Pptx, std::fs::read("../../fixtures/docs/slides.pptx").unwrap()),
            (DocumentKind::Epub, std::fs::read("../../fixtures/docs/book.epub").unwrap()),
            (DocumentKind::Eml, std::fs::read("../../fixtures/docs/letter.eml").unwrap()),
        ];
        for (kind, mut bytes) in documents {
            let index = flip.0 % bytes.len();
            bytes[index] ^= flip.1;
            // Precision loss is irrelevant for picking a cut point.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
            let len = ((bytes.len() as f64) * cut) as usize;
            bytes.truncate(len.max(1));
            if let Err(err) = extract_with(kind, &bytes, &limits(1 << 20)) {
                prop_assert!(matches!(err, Error::Extraction { .. } | Error::Empty), "{kind:?}: {err:?}");
            }
            if kind == DocumentKind::Pdf {
                match extract_with(kind, &bytes, &pdfium_limits(1 << 20)) {
                    Ok(extracted) => prop_assert!(extracted.text.len() <= 1 << 20),
                    Err(err) => prop_assert!(
                        matches!(err, Error::Extraction { .. } | Error::Empty),
                        "pdfium: {err:?}"
                    ),
                }
            }
        }
    }
}
