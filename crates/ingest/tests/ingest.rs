//! End-to-end tests of detection, extraction and chunking on generated documents and the
//! real embedding tokenizer.

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.

mod fixtures;

use std::path::PathBuf;

use ragd_core::ErrorKind;
use ragd_ingest::{
    ChunkPiece, Chunker, ChunkerConfig, DocumentKind, Error, ExtractLimits, Extracted, OcrMode,
    OcrSettings, detect, extract, extract_with,
};

/// The `tokenizer.json` of the bundled embedding model.
fn tokenizer_path() -> PathBuf {
    ragd_test_utils::assets_dir().join("all-minilm-l6-v2/tokenizer.json")
}

/// Limits that read PDFs with the PDFium of the asset directory and OCR in `mode`.
fn with_pdfium(mode: OcrMode) -> ExtractLimits {
    let library = fixtures::pdfium_library();
    let ocr = OcrSettings { mode, ..OcrSettings::default() };
    ExtractLimits { pdfium: Some(library), ocr, ..ExtractLimits::default() }
}

/// The text of page `index` (from 0).
fn page_text(extracted: &Extracted, index: usize) -> String {
    let span = extracted.pages[index];
    extracted.text.chars().skip(span.char_start).take(span.char_end - span.char_start).collect()
}

/// How many of the words of `expected` are in `text`, and how many there are.
fn words_found(expected: &str, text: &str) -> (usize, usize) {
    let read = words(text);
    let expected = words(expected);
    (expected.iter().filter(|word| read.contains(word)).count(), expected.len())
}

/// A chunker with the real tokenizer.
fn chunker(max_tokens: usize, overlap_tokens: usize) -> Chunker {
    Chunker::from_file(ChunkerConfig { max_tokens, overlap_tokens }, &tokenizer_path())
        .expect("run `cargo xtask assets` to download the tokenizer")
}

/// Checks the invariants every chunking must keep, and returns the pieces.
#[track_caller]
fn check_chunks(chunker: &Chunker, kind: DocumentKind, extracted: &Extracted) -> Vec<ChunkPiece> {
    let pieces = chunker.chunk(kind, extracted).unwrap();
    let max = chunker.config().max_tokens;
    assert!(!pieces.is_empty() || extracted.text.trim().is_empty());
    let mut previous_start = 0;
    for (index, piece) in pieces.iter().enumerate() {
        assert_eq!(piece.ordinal as usize, index);
        assert!(piece.char_start < piece.char_end, "empty piece {piece:?}");
        assert!(piece.char_start >= previous_start, "pieces out of order: {piece:?}");
        previous_start = piece.char_start;
        let slice: String = extracted
            .text
            .chars()
            .skip(piece.char_start)
            .take(piece.char_end - piece.char_start)
            .collect();
        let header_bytes =
            piece.text.char_indices().nth(piece.table_header).map_or(piece.text.len(), |(i, _)| i);
        let (header, body) = piece.text.split_at(header_bytes);
        assert_eq!(slice, body, "offsets do not map back for piece {index}");
        if !header.is_empty() {
            // A repeated table header: two lines found earlier in the text.
            assert_eq!(header.matches('\n').count(), 2, "{piece:?}");
            assert!(header.starts_with('|') && header.contains("---"), "{piece:?}");
            let before: String = extracted.text.chars().take(piece.char_start).collect();
            assert!(before.contains(header), "header not found before piece {index}");
        }
        assert!(piece.token_count <= max, "{} tokens > {max}: {piece:?}", piece.token_count);
        assert!(piece.token_count > 0);
        assert_eq!(piece.page, extracted.page_at(piece.char_start));
        assert_eq!(piece.heading.as_deref(), extracted.heading_at(piece.char_start));
    }
    pieces
}

/// Detects, extracts and chunks a document, checking the chunk invariants.
#[track_caller]
fn ingest(bytes: &[u8], filename: &str, expected: DocumentKind) -> (Extracted, Vec<ChunkPiece>) {
    assert_eq!(detect(bytes, filename).unwrap(), expected);
    let extracted = extract(expected, bytes).unwrap();
    let pieces = check_chunks(&chunker(16, 4), expected, &extracted);
    (extracted, pieces)
}

#[test]
fn pdf_keeps_both_pages_and_page_numbers() {
    let (extracted, pieces) = ingest(&fixtures::pdf(), "report.pdf", DocumentKind::Pdf);
    assert!(extracted.text.contains(fixtures::PDF_PAGE_ONE), "{:?}", extracted.text);
    assert!(extracted.text.contains(fixtures::PDF_PAGE_TWO), "{:?}", extracted.text);
    let pages: Vec<u32> = extracted.pages.iter().map(|page| page.page).collect();
    assert_eq!(pages, [1, 2]);
    let page_text = |index: usize| -> String {
        let span = extracted.pages[index];
        extracted.text.chars().skip(span.char_start).take(span.char_end - span.char_start).collect()
    };
    assert!(page_text(0).contains("apples") && !page_text(0).contains("rivers"));
    assert!(page_text(1).contains("rivers") && !page_text(1).contains("apples"));
    assert!(pieces.len() >= 2);
    for piece in &pieces {
        let expected = if piece.text.contains("apples") { 1 } else { 2 };
        if piece.text.contains("apples") || piece.text.contains("rivers") {
            assert_eq!(piece.page, Some(expected), "{piece:?}");
        }
    }
    assert_eq!(pieces.first().unwrap().page, Some(1));
    assert_eq!(pieces.last().unwrap().page, Some(2));
}

#[test]
fn docx_gives_paragraphs_headings_and_tables() {
    let (extracted, pieces) = ingest(&fixtures::docx(), "report.docx", DocumentKind::Docx);
    let text = &extracted.text;
    assert!(text.contains("Revenue grew steadily across every region this quarter."), "{text}");
    assert!(text.contains("| Fruit | Colour |\n| --- | --- |\n| Banana | Yellow |"), "{text}");
    let paths: Vec<&str> = extracted.headings.iter().map(|h| h.path.as_str()).collect();
    assert_eq!(paths, ["Quarterly Report", "Quarterly Report > Details"]);
    let table = pieces.iter().find(|piece| piece.text.contains("Banana")).unwrap();
    assert_eq!(table.heading.as_deref(), Some("Quarterly Report > Details"));
    assert_eq!(pieces[0].heading.as_deref(), Some("Quarterly Report"));
    // The same archive is recognised from its entry names alone.
    assert_eq!(detect(&fixtures::docx(), "upload.bin").unwrap(), DocumentKind::Docx);
}

#[test]
fn a_long_table_is_chunked_by_whole_rows_each_chunk_under_its_header() {
    let header = "| Item | Price | Notes |\n| --- | --- | --- |\n";
    let rows: Vec<String> = (0..60)
        .map(|i| format!("| item number {i} | {i}.50 euros | stocked on shelf {} |", i % 7))
        .collect();
    for kind in [DocumentKind::Markdown, DocumentKind::Text] {
        let text = format!(
            "# Prices\n\nThe list below.\n\n{header}{}\n\nAfter the table.",
            rows.join("\n")
        );
        let extracted = extract(kind, text.as_bytes()).unwrap();
        let pieces = check_chunks(&chunker(64, 8), kind, &extracted);
        let with_rows: Vec<&ChunkPiece> =
            pieces.iter().filter(|piece| piece.text.contains("| item number")).collect();
        assert!(with_rows.len() >= 4, "{kind:?}: 60 rows in {} chunks", with_rows.len());
        let mut seen = Vec::new();
        for piece in &with_rows {
            assert!(
                piece.text.starts_with(header),
                "{kind:?}: a chunk without the header: {piece:?}"
            );
            for line in piece.text.lines().skip(2) {
                assert!(
                    line.starts_with("| item number") && line.ends_with('|'),
                    "cut row {line:?}"
                );
                seen.push(line.to_owned());
            }
        }
        // Every row exactly once, in order: no overlap between table chunks, nothing lost.
        assert_eq!(seen, rows, "{kind:?}");
        // Only the first table chunk holds the header itself; the others repeat it.
        assert_eq!(with_rows[0].table_header, 0);
        assert!(with_rows[1..].iter().all(|piece| piece.table_header == header.chars().count()));
        // The prose around the table is chunked as before.
        assert!(pieces.iter().any(|piece| piece.text.contains("After the table.")));
        assert!(
            !pieces.iter().any(|p| p.text.contains("The list below.") && p.text.contains("| item"))
        );
    }
}

#[test]
fn a_table_row_longer_than_a_chunk_is_split_after_the_header() {
    let long_cell = (0..120).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ");
    let text = format!(
        "| a | b |\n| --- | --- |\n| short | row |\n| long | {long_cell} |\n| last | row |"
    );
    let extracted = extract(DocumentKind::Markdown, text.as_bytes()).unwrap();
    let pieces = check_chunks(&chunker(48, 8), DocumentKind::Markdown, &extracted);
    assert!(pieces.len() >= 4, "{pieces:?}");
    assert!(
        pieces.iter().all(|piece| piece.text.starts_with("| a | b |\n| --- | --- |\n")),
        "{pieces:?}"
    );
    let all: String = pieces.iter().map(|piece| piece.text.as_str()).collect();
    assert!(all.contains("w0 ") && all.contains("w119"), "{all}");
}

/// The lower-case words (runs of letters and digits) of a text.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// A fixture of `fixtures/docs/` made by a real tool.
fn made_elsewhere(name: &str) -> Vec<u8> {
    std::fs::read(PathBuf::from("../../fixtures/docs").join(name)).unwrap()
}

#[test]
fn slides_are_pages_with_their_notes_and_titles_as_headings() {
    let (extracted, pieces) =
        ingest(&made_elsewhere("slides.pptx"), "slides.pptx", DocumentKind::Pptx);
    let pages: Vec<u32> = extracted.pages.iter().map(|page| page.page).collect();
    assert_eq!(pages, [1, 2, 3]);
    let notes = pieces.iter().find(|piece| piece.text.contains("late frost")).unwrap();
    assert_eq!(notes.page, Some(2));
    assert_eq!(notes.heading.as_deref(), Some("Harvest figures"));
    let table = pieces.iter().find(|piece| piece.text.contains("| North | 120 | 14 |")).unwrap();
    assert_eq!((table.page, table.heading.as_deref()), (Some(3), Some("Orchard table")));
    // The whole deck fits in one chunk of 512 tokens, yet each slide is a chunk of its own.
    let whole = check_chunks(&chunker(512, 64), DocumentKind::Pptx, &extracted);
    // (The table on slide 3 is chunked apart from the prose around it, as everywhere.)
    let mut pages: Vec<Option<u32>> = whole.iter().map(|piece| piece.page).collect();
    pages.dedup();
    assert_eq!(pages, [Some(1), Some(2), Some(3)], "{whole:?}");
    for piece in &whole {
        let page = extracted.pages[piece.page.unwrap() as usize - 1];
        assert!(piece.char_end <= page.char_end, "{piece:?} runs past its slide {page:?}");
    }
    assert!(whole[1].text.starts_with("Harvest figures"), "{whole:?}");
    assert!(whole[1].text.ends_with("late frost in April."), "{whole:?}");
}

#[test]
fn odt_epub_and_eml_keep_their_structure() {
    let (odt, _) = ingest(&made_elsewhere("tables.odt"), "upload", DocumentKind::Odt);
    let paths: Vec<&str> = odt.headings.iter().map(|h| h.path.as_str()).collect();
    assert_eq!(
        paths,
        ["Harbour timetable", "Harbour timetable > Crossings", "Harbour timetable > Fares"]
    );
    assert!(odt.text.contains("| 09:30 | 10:05 | Tern | Bicycles free |"), "{}", odt.text);

    let (book, pieces) = ingest(&made_elsewhere("book.epub"), "upload", DocumentKind::Epub);
    let paths: Vec<&str> = book.headings.iter().map(|h| h.path.as_str()).collect();
    assert_eq!(
        paths,
        ["The Lighthouse Keeper", "The Tower", "The Tower > The Lamp Room", "The Logbook"]
    );
    let lens = pieces.iter().find(|piece| piece.text.contains("polishes the lens")).unwrap();
    assert_eq!(lens.heading.as_deref(), Some("The Tower > The Lamp Room"));

    let (mail, _) = ingest(&made_elsewhere("letter.eml"), "letter.eml", DocumentKind::Eml);
    assert!(
        mail.text.starts_with("From: Ada Quill <ada@example.org>\nTo: Ben Ferro"),
        "{}",
        mail.text
    );
    assert!(mail.text.contains("closes at 17:00"), "{}", mail.text);
    assert!(mail.text.ends_with("Attachments:\n- hours.csv (text/csv, 36 bytes)"), "{}", mail.text);
    assert!(!mail.text.contains("day,opens"), "an attachment was extracted: {}", mail.text);
    let paths: Vec<&str> = mail.headings.iter().map(|h| h.path.as_str()).collect();
    assert_eq!(paths, ["Café opening hours — winter"]);
}

#[test]
fn a_scanned_page_is_read_by_ocr_on_page_one() {
    let image = made_elsewhere("notice.png");
    let (extracted, pieces) = ingest(&image, "scan.png", DocumentKind::Png);
    let source = String::from_utf8(made_elsewhere("notice.md")).unwrap();
    let read = words(&extracted.text);
    let expected = words(&source);
    let found = expected.iter().filter(|word| read.contains(word)).count();
    assert!(
        found * 100 >= expected.len() * 95,
        "{found} of {} words: {}",
        expected.len(),
        extracted.text
    );
    assert_eq!(extracted.pages.len(), 1);
    assert!(pieces.iter().all(|piece| piece.page == Some(1)), "{pieces:?}");
}

#[test]
fn pdfium_reads_text_pdfs_page_by_page() {
    let extracted =
        extract_with(DocumentKind::Pdf, &fixtures::pdf(), &with_pdfium(OcrMode::Auto)).unwrap();
    let pages: Vec<u32> = extracted.pages.iter().map(|page| page.page).collect();
    assert_eq!(pages, [1, 2]);
    assert!(page_text(&extracted, 0).contains(fixtures::PDF_PAGE_ONE), "{extracted:?}");
    assert!(page_text(&extracted, 1).contains(fixtures::PDF_PAGE_TWO), "{extracted:?}");
}

#[test]
fn a_scanned_pdf_page_is_read_by_ocr_and_the_text_page_kept() {
    let bytes = made_elsewhere("scanned.pdf");
    assert_eq!(detect(&bytes, "scanned.pdf").unwrap(), DocumentKind::Pdf);
    let read = extract_with(DocumentKind::Pdf, &bytes, &with_pdfium(OcrMode::Auto)).unwrap();
    let unread = extract_with(DocumentKind::Pdf, &bytes, &with_pdfium(OcrMode::Never)).unwrap();
    let pages: Vec<u32> = read.pages.iter().map(|page| page.page).collect();
    assert_eq!(pages, [1, 2]);
    // The text page is the text layer, unchanged by OCR.
    let first = page_text(&read, 0);
    assert_eq!(first, page_text(&unread, 0));
    assert_eq!(
        first,
        "Harbour office report\nTide tables are posted at the harbour office each morning.\n\
         The second page of this file is a scanned notice without a text layer."
    );
    // The scan: nothing without OCR, the notice's words with it.
    assert_eq!(page_text(&unread, 1), "");
    let notice = String::from_utf8(made_elsewhere("notice.md")).unwrap();
    let (found, expected) = words_found(&notice, &page_text(&read, 1));
    assert!(found * 100 >= expected * 95, "{found} of {expected} words: {}", read.text);
    let pieces = check_chunks(&chunker(32, 4), DocumentKind::Pdf, &read);
    let dredged = pieces.iter().find(|piece| piece.text.contains("dredged")).unwrap();
    assert_eq!(dredged.page, Some(2), "{pieces:?}");
    let tides = pieces.iter().find(|piece| piece.text.contains("Tide tables")).unwrap();
    assert_eq!(tides.page, Some(1), "{pieces:?}");
    // `always` reads the text page by OCR too: the same words, from the image.
    let always = extract_with(DocumentKind::Pdf, &bytes, &with_pdfium(OcrMode::Always)).unwrap();
    let (found, expected) = words_found(&first, &page_text(&always, 0));
    assert!(found * 100 >= expected * 95, "{found} of {expected} words: {}", always.text);
}

#[test]
fn a_scanned_page_ocr_cannot_read_is_a_warning_and_progress_reaches_the_end() {
    let bytes = made_elsewhere("scanned.pdf");
    let mut limits = with_pdfium(OcrMode::Auto);
    // A language name Tesseract has no data for: it fails on the scanned page.
    limits.ocr.languages = "qqq".to_owned();
    let extracted = extract_with(DocumentKind::Pdf, &bytes, &limits).unwrap();
    assert!(page_text(&extracted, 0).starts_with("Harbour office report"), "{extracted:?}");
    assert_eq!(page_text(&extracted, 1), "");
    assert_eq!(extracted.warnings.len(), 1, "{extracted:?}");
    assert!(
        extracted.warnings[0].starts_with("page 2 was left empty: OCR failed (tesseract failed"),
        "{:?}",
        extracted.warnings
    );
    assert_eq!(limits.progress.load(std::sync::atomic::Ordering::Relaxed), 100);
    // Read well, nothing is left out.
    let read = extract_with(DocumentKind::Pdf, &bytes, &with_pdfium(OcrMode::Auto)).unwrap();
    assert_eq!(read.warnings, Vec::<String>::new());
}

#[test]
fn html_drops_scripts_and_styles() {
    let (extracted, pieces) = ingest(fixtures::HTML.as_bytes(), "guide.html", DocumentKind::Html);
    let text = &extracted.text;
    assert!(text.contains("Lisbon is a hilly city on the Atlantic coast."), "{text}");
    assert!(text.contains("Custard tarts are sold in every bakery."), "{text}");
    for hidden in ["secretScript", "secret-style", "color: red", "Ignored title"] {
        assert!(!text.contains(hidden), "{hidden} leaked into {text}");
    }
    let paths: Vec<&str> = extracted.headings.iter().map(|h| h.path.as_str()).collect();
    assert_eq!(paths, ["Travel Guide", "Travel Guide > Food"]);
    let food = pieces.iter().find(|piece| piece.text.contains("Custard")).unwrap();
    assert_eq!(food.heading.as_deref(), Some("Travel Guide > Food"));
}

#[test]
fn markdown_gives_nested_heading_paths() {
    let (extracted, pieces) =
        ingest(fixtures::MARKDOWN.as_bytes(), "handbook.md", DocumentKind::Markdown);
    let paths: Vec<&str> = extracted.headings.iter().map(|h| h.path.as_str()).collect();
    assert_eq!(
        paths,
        ["Handbook", "Handbook > Setup", "Handbook > Setup > Laptop", "Handbook > Holidays"]
    );
    let laptop = pieces.iter().find(|piece| piece.text.contains("service desk")).unwrap();
    assert_eq!(laptop.heading.as_deref(), Some("Handbook > Setup > Laptop"));
    let leave = pieces.iter().find(|piece| piece.text.contains("twenty-five")).unwrap();
    assert_eq!(leave.heading.as_deref(), Some("Handbook > Holidays"));
}

#[test]
fn text_in_every_encoding_decodes_the_same() {
    let expected = fixtures::TEXT.replace("\r\n", "\n");
    let utf8_bom = [&[0xEF, 0xBB, 0xBF][..], fixtures::TEXT.as_bytes()].concat();
    for (name, bytes) in [
        ("utf8", fixtures::TEXT.as_bytes().to_vec()),
        ("utf8-bom", utf8_bom),
        ("utf16le", fixtures::utf16le()),
        ("latin1", fixtures::latin1()),
    ] {
        let (extracted, pieces) = ingest(&bytes, &format!("{name}.txt"), DocumentKind::Text);
        assert_eq!(extracted.text, expected, "{name}");
        assert!(extracted.headings.is_empty() && extracted.pages.is_empty());
        assert!(pieces.iter().all(|piece| piece.page.is_none() && piece.heading.is_none()));
    }
}

#[test]
fn long_multibyte_text_maps_offsets_exactly() {
    let sentences = [
        "Le café était fermé à Noël, déjà.",
        "日本の東京で会議があります。",
        "Ünïcödé wörds mix with emoji 🚀 and plain ASCII words.",
        "Crème brûlée, naïveté, façade — résumé.",
    ];
    let mut text = String::new();
    for i in 0..120 {
        text.push_str(sentences[i % sentences.len()]);
        text.push(if i % 7 == 6 { '\n' } else { ' ' });
        if i % 13 == 12 {
            text.push('\n');
        }
    }
    let extracted = extract(DocumentKind::Text, text.as_bytes()).unwrap();
    for (max, overlap) in [(16, 0), (32, 8), (64, 16)] {
        let pieces = check_chunks(&chunker(max, overlap), DocumentKind::Text, &extracted);
        assert!(pieces.len() > 3, "max {max}: {} pieces", pieces.len());
        assert!(pieces.iter().any(|piece| piece.text.contains("日本")));
    }
    let markdown = format!("# Überblick\n\n{text}\n## 日本\n\n{text}");
    let extracted = extract(DocumentKind::Markdown, markdown.as_bytes()).unwrap();
    let pieces = check_chunks(&chunker(48, 8), DocumentKind::Markdown, &extracted);
    assert_eq!(pieces.last().unwrap().heading.as_deref(), Some("Überblick > 日本"));
}

#[test]
fn overlap_repeats_text_between_neighbours() {
    let text = (0..200).map(|i| format!("word{i}")).collect::<Vec<_>>().join(" ");
    let extracted = extract(DocumentKind::Text, text.as_bytes()).unwrap();
    let pieces = check_chunks(&chunker(32, 8), DocumentKind::Text, &extracted);
    assert!(pieces.windows(2).all(|pair| pair[1].char_start < pair[0].char_end));
    let without = check_chunks(&chunker(32, 0), DocumentKind::Text, &extracted);
    assert!(without.windows(2).all(|pair| pair[1].char_start >= pair[0].char_end));
}

#[test]
fn broken_inputs_give_errors_not_panics() {
    let truncated = &fixtures::pdf()[..200];
    assert_eq!(detect(truncated, "cut.pdf").unwrap(), DocumentKind::Pdf);
    let err = extract(DocumentKind::Pdf, truncated).unwrap_err();
    assert!(matches!(err, Error::Extraction { format: "pdf", .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);

    let fake_docx = b"This is plain text pretending to be a Word document.";
    assert_eq!(detect(fake_docx, "fake.docx").unwrap(), DocumentKind::Docx);
    let err = extract(DocumentKind::Docx, fake_docx).unwrap_err();
    assert!(matches!(err, Error::Extraction { format: "docx", .. }), "{err:?}");
    assert!(err.to_string().contains("not a zip archive"), "{err}");

    let mut broken_zip = fixtures::docx();
    broken_zip.truncate(broken_zip.len() / 2);
    let err = extract(DocumentKind::Docx, &broken_zip).unwrap_err();
    assert!(matches!(err, Error::Extraction { format: "docx", .. }), "{err:?}");

    for kind in DocumentKind::ALL {
        assert!(matches!(extract(kind, b""), Err(Error::Empty)), "{kind:?}");
    }
    let err = detect(b"", "empty.txt").unwrap_err();
    assert!(matches!(err, Error::Empty));
    assert_eq!(err.kind(), ErrorKind::InvalidInput);

    let junk = fixtures::junk();
    let err = detect(&junk, "junk.bin").unwrap_err();
    assert!(matches!(err, Error::UnsupportedType { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::UnsupportedMediaType);
    assert_eq!(detect(&junk, "junk.txt").unwrap_err().kind(), ErrorKind::UnsupportedMediaType);
    for kind in [DocumentKind::Pdf, DocumentKind::Docx] {
        assert!(matches!(extract(kind, &junk), Err(Error::Extraction { .. })), "{kind:?}");
    }
    // Junk forced through the text path still decodes (as Latin-1) and chunks cleanly.
    let extracted = extract(DocumentKind::Text, &junk).unwrap();
    check_chunks(&chunker(32, 4), DocumentKind::Text, &extracted);
}

#[test]
fn invalid_configs_and_missing_tokenizers_are_refused() {
    for (max_tokens, overlap_tokens) in [(0, 0), (8, 8), (8, 9)] {
        let config = ChunkerConfig { max_tokens, overlap_tokens };
        let err = Chunker::from_file(config, &tokenizer_path()).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(_)), "{err:?}");
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }
    let err = Chunker::from_file(ChunkerConfig::default(), &PathBuf::from("/nonexistent/t.json"))
        .unwrap_err();
    assert!(matches!(err, Error::TokenizerLoad { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
}

#[test]
fn blank_text_gives_no_chunks() {
    let extracted = extract(DocumentKind::Text, b" \n\n \t ").unwrap();
    assert!(chunker(16, 4).chunk(DocumentKind::Text, &extracted).unwrap().is_empty());
}

/// Fixtures of `fixtures/docs/` that no test generates: hand-written sources and what
/// pandoc and LibreOffice make of them (`fixtures/docs/make-office-files.sh`).
const MADE_ELSEWHERE: [&str; 11] = [
    "tables.md",
    "tables.html",
    "prices.csv",
    "tables-pandoc.docx",
    "tables-libreoffice.docx",
    "tables.odt",
    "workbook.xlsx",
    "workbook.ods",
    "book.epub",
    "slides.pptx",
    "letter.eml",
];

/// Writes every fixture and its extracted text to `fixtures/docs/` at the workspace root.
///
/// Run by hand after changing a fixture:
/// `cargo test -p ragd-ingest --test ingest -- --ignored write_fixture_files`.
#[test]
#[ignore = "writes into the repository"]
fn write_fixture_files() {
    let dir = PathBuf::from("../../").join("fixtures/docs");
    std::fs::create_dir_all(&dir).unwrap();
    let files: [(&str, Vec<u8>); 8] = [
        ("two-pages.pdf", fixtures::pdf()),
        ("report.docx", fixtures::docx()),
        ("guide.html", fixtures::HTML.as_bytes().to_vec()),
        ("handbook.md", fixtures::MARKDOWN.as_bytes().to_vec()),
        ("menu-utf8.txt", fixtures::TEXT.as_bytes().to_vec()),
        ("menu-utf16le.txt", fixtures::utf16le()),
        ("menu-latin1.txt", fixtures::latin1()),
        ("truncated.pdf", fixtures::pdf()[..200].to_vec()),
    ];
    for (name, bytes) in files {
        std::fs::write(dir.join(name), &bytes).unwrap();
        if name == "truncated.pdf" {
            continue;
        }
        let extracted = extract(detect(&bytes, name).unwrap(), &bytes).unwrap();
        std::fs::write(dir.join(format!("{name}.expected.txt")), extracted.text).unwrap();
    }
    // Files made by real tools (`fixtures/docs/make-office-files.sh`) or written by hand:
    // only their expected text is written here.
    for name in MADE_ELSEWHERE {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let extracted = extract(detect(&bytes, name).unwrap(), &bytes).unwrap();
        std::fs::write(dir.join(format!("{name}.expected.txt")), extracted.text).unwrap();
    }
    std::fs::write(dir.join("junk.bin"), fixtures::junk()).unwrap();
    std::fs::write(dir.join("not-a-zip.docx"), "This is plain text, not a Word document.\n")
        .unwrap();

    // Hostile inputs (see `crates/ingest/tests/hostile.rs`), small enough to commit.
    let hostile_dir = dir.join("hostile");
    std::fs::create_dir_all(&hostile_dir).unwrap();
    let hostile: [(&str, Vec<u8>); 7] = [
        ("bomb.docx", fixtures::hostile::zip_bomb_docx(32 << 20)),
        ("self-drawing-form.pdf", fixtures::hostile::self_drawing_form_pdf()),
        ("parent-cycle.pdf", fixtures::hostile::parent_cycle_pdf()),
        ("exponential-forms.pdf", fixtures::hostile::exponential_forms_pdf(40)),
        ("nested-divs.html", fixtures::hostile::nested_divs(20_000).into_bytes()),
        ("invalid-utf8.txt", fixtures::hostile::invalid_utf8()),
        ("late-nul.txt", fixtures::hostile::late_nul_bytes()),
    ];
    for (name, bytes) in hostile {
        assert!(bytes.len() < 1 << 20, "{name} is too big to commit");
        std::fs::write(hostile_dir.join(name), bytes).unwrap();
    }
}

/// The files in `fixtures/docs/` still extract to their recorded text.
#[test]
fn fixture_files_match_their_expected_text() {
    let dir = PathBuf::from("../../").join("fixtures/docs");
    let entries = std::fs::read_dir(&dir).unwrap();
    let mut checked = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(document) = name.strip_suffix(".expected.txt") else {
            continue;
        };
        let bytes = std::fs::read(dir.join(document)).unwrap();
        let extracted = extract(detect(&bytes, document).unwrap(), &bytes).unwrap();
        let expected = std::fs::read_to_string(&path).unwrap();
        assert_eq!(extracted.text, expected, "{document}");
        check_chunks(&chunker(16, 4), detect(&bytes, document).unwrap(), &extracted);
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} fixtures with an expected text");
}

#[test]
fn a_chunker_on_an_embedder_counts_with_the_embedders_own_count() {
    use std::sync::Arc;

    // The fake embedder counts words (and adds no special tokens).
    let embedder = Arc::new(ragd_test_utils::FakeEmbedder::new(8));
    let config = ChunkerConfig { max_tokens: 5, overlap_tokens: 1 };
    let chunker = Chunker::with_embedder(config, embedder).unwrap();
    let text = (0..40).map(|i| format!("word{i}")).collect::<Vec<_>>().join(" ");
    let extracted =
        Extracted { text, pages: Vec::new(), headings: Vec::new(), warnings: Vec::new() };
    let pieces = check_chunks(&chunker, DocumentKind::Text, &extracted);
    assert!(pieces.len() >= 8, "40 words in chunks of at most 5: {}", pieces.len());
    for piece in &pieces {
        assert_eq!(piece.token_count, piece.text.split_whitespace().count(), "{piece:?}");
    }
}

#[test]
fn a_large_text_is_chunked_in_blocks_with_progress_and_can_be_stopped() {
    use std::ops::ControlFlow;

    let chunker = chunker(64, 8);
    let text: String = (0..20_000)
        .map(|i| {
            format!("Paragraph {i}: the café by the river sells bread and {i} jams. It opens at dawn.\n\n")
        })
        .collect();
    assert!(text.len() > 1_500_000, "{}", text.len());
    let extracted = Extracted {
        text: text.clone(),
        pages: Vec::new(),
        headings: Vec::new(),
        warnings: Vec::new(),
    };

    let mut reports = Vec::new();
    let pieces = chunker
        .chunk_with_progress(DocumentKind::Text, &extracted, |done, total| {
            reports.push((done, total));
            ControlFlow::Continue(())
        })
        .unwrap();
    assert!(reports.len() > 20, "one report per block: {}", reports.len());
    assert!(reports.windows(2).all(|w| w[0].0 < w[1].0), "progress only grows");
    assert_eq!(reports.last(), Some(&(text.len(), text.len())));

    // Offsets map back into the whole text (checked through a char index, not by walking the
    // text once per piece), pieces stay in order and within the token limit, and every
    // paragraph is in some piece.
    let mut bytes: Vec<usize> = text.char_indices().map(|(byte, _)| byte).collect();
    bytes.push(text.len());
    let mut previous = 0;
    for (index, piece) in pieces.iter().enumerate() {
        assert_eq!(piece.ordinal as usize, index);
        assert!(piece.char_start >= previous);
        previous = piece.char_start;
        assert_eq!(&text[bytes[piece.char_start]..bytes[piece.char_end]], piece.text);
        assert!(piece.token_count <= 64, "{piece:?}");
    }
    for i in [0, 7_777, 19_999] {
        let needle = format!("Paragraph {i}: the café");
        assert!(pieces.iter().any(|p| p.text.contains(&needle)), "{needle} lost");
    }

    // Told to stop, it stops at once with `Cancelled`.
    let mut calls = 0;
    let err = chunker
        .chunk_with_progress(DocumentKind::Text, &extracted, |_, _| {
            calls += 1;
            if calls == 2 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        })
        .unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err}");
    assert_eq!(calls, 2);
}

/// An embedder that counts with the real tokenizer (no special tokens) and gives token spans
/// only when told to, and then halved: each span it reports covers two tokens.
#[derive(Debug)]
struct TokenizerEmbedder {
    tokenizer: tokenizers::Tokenizer,
    spans: Spans,
}

/// What [`TokenizerEmbedder::token_spans`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spans {
    /// `Ok(None)`: the chunker tokenizes every candidate piece.
    None,
    /// Every second token merged into the one before: counts from them are about half.
    Halved,
}

impl TokenizerEmbedder {
    fn new(spans: Spans) -> std::sync::Arc<Self> {
        let mut tokenizer = tokenizers::Tokenizer::from_file(tokenizer_path()).unwrap();
        tokenizer.with_truncation(None).unwrap();
        tokenizer.with_padding(None);
        std::sync::Arc::new(Self { tokenizer, spans })
    }
}

#[async_trait::async_trait]
impl ragd_core::Embedder for TokenizerEmbedder {
    fn model_id(&self) -> &str {
        "tokenizer-only"
    }
    fn dimensions(&self) -> usize {
        1
    }
    fn max_tokens(&self) -> usize {
        512
    }
    fn count_tokens(&self, text: &str) -> ragd_core::Result<usize> {
        Ok(self.tokenizer.encode_fast(text, false).unwrap().len())
    }
    fn token_spans(&self, text: &str) -> ragd_core::Result<Option<Vec<std::ops::Range<usize>>>> {
        if self.spans == Spans::None {
            return Ok(None);
        }
        let encoding = self.tokenizer.encode(text, false).unwrap();
        let offsets = encoding.get_offsets();
        Ok(Some(offsets.chunks(2).map(|pair| pair[0].0..pair[pair.len() - 1].1).collect()))
    }
    async fn embed_documents(&self, _: Vec<String>) -> ragd_core::Result<Vec<Vec<f32>>> {
        unreachable!("only counts")
    }
    async fn embed_query(&self, _: String) -> ragd_core::Result<Vec<f32>> {
        unreachable!("only counts")
    }
}

/// Prose, Markdown and less tidy text (accents, CJK, punctuation runs, a long word).
fn varied_texts() -> Vec<(DocumentKind, String)> {
    let prose: String = (0..400)
        .map(|i| {
            format!(
                "Section {i} says the café opens at dawn, doesn't it? The river's bank (north) \
                 holds {i} boats; each carries bread, jam and tea.{}",
                if i % 7 == 0 { "\n\n" } else { " " }
            )
        })
        .collect();
    let markdown = std::fs::read_to_string("../../fixtures/docs/handbook.md").unwrap().repeat(20);
    let untidy: String = (0..300)
        .map(|i| {
            format!(
                "東京の図書館 {i} — naïve résumé!!! ...\"quoted\"... {} x{i}y{i}z ",
                "Pneumonoultramicroscopicsilicovolcanoconiosis".repeat(1 + i % 3)
            )
        })
        .collect();
    vec![
        (DocumentKind::Text, prose),
        (DocumentKind::Markdown, markdown),
        (DocumentKind::Text, untidy),
    ]
}

#[test]
fn chunks_sized_from_token_spans_equal_chunks_sized_by_tokenizing_each_piece() {
    let config = ChunkerConfig { max_tokens: 48, overlap_tokens: 8 };
    // `from_file` sizes candidates from the tokenizer's offsets; the embedder without spans
    // tokenizes every candidate. Same tokenizer, same chunks, on tidy and untidy text.
    let from_spans = Chunker::from_file(config, &tokenizer_path()).unwrap();
    let exact = Chunker::with_embedder(config, TokenizerEmbedder::new(Spans::None)).unwrap();
    for (kind, text) in varied_texts() {
        let extracted =
            Extracted { text, pages: Vec::new(), headings: Vec::new(), warnings: Vec::new() };
        let quick = check_chunks(&from_spans, kind, &extracted);
        let slow = check_chunks(&exact, kind, &extracted);
        assert!(quick.len() >= 20, "{kind:?}: {}", quick.len());
        assert_eq!(quick, slow, "{kind:?}");
    }
}

#[test]
fn pieces_that_spans_undercount_are_split_again_to_fit() {
    let config = ChunkerConfig { max_tokens: 32, overlap_tokens: 4 };
    let chunker = Chunker::with_embedder(config, TokenizerEmbedder::new(Spans::Halved)).unwrap();
    for (kind, text) in varied_texts() {
        let extracted =
            Extracted { text, pages: Vec::new(), headings: Vec::new(), warnings: Vec::new() };
        // `check_chunks` asserts every piece is within 32 tokens by the exact count, which
        // spans counting half would break without the second split.
        let pieces = check_chunks(&chunker, kind, &extracted);
        assert!(pieces.len() > 20, "{kind:?}: {}", pieces.len());
        let fullest = pieces.iter().map(|piece| piece.token_count).max();
        assert!(fullest > Some(16), "{kind:?}: pieces are not filled: {fullest:?}");
    }
}
