//! Token-aware chunking of extracted text.
//!
//! [`Chunker`] splits [`Extracted::text`] into pieces of at most
//! [`ChunkerConfig::max_tokens`] tokens, counted by the embedder itself
//! ([`Chunker::with_embedder`], through [`Embedder::count_tokens`]: one source for the count
//! the embedder will see) or by a tokenizer file ([`Chunker::from_file`]), with
//! [`ChunkerConfig::overlap_tokens`] tokens shared by neighbours. It uses `text-splitter`,
//! which cuts at the largest semantic boundary that fits (paragraphs, then lines, sentences
//! and words); Markdown is split with its Markdown-aware splitter.
//!
//! Token counts exclude special tokens (`[CLS]`, `[SEP]`): with an embedder, what it counts
//! for an empty text is taken off every count; callers whose model adds them should leave
//! room for them in the embedder's window. Truncation and padding configured in the
//! tokenizer file are switched off so counts reflect the whole text.
//!
//! Every [`ChunkPiece`] carries char offsets into the extracted text, and
//! `text.chars().skip(char_start).take(char_end - char_start)` is exactly the piece's text,
//! but for one case: a chunk that continues a table starts with the table's header.
//! Chunking is CPU-bound: async callers run it on a blocking thread.
//!
//! Markdown tables (the extractors write every table they find as one, and Markdown authors
//! write them; see [`crate::table`]) are chunked by rows: a chunk holds whole rows, and every
//! chunk of a table after its first begins with the table's header row and delimiter row
//! ([`ChunkPiece::table_header`] chars of repeated text before the rows its offsets
//! address), so no chunk holds rows without their column names. Table chunks do not
//! overlap; a row too long for one chunk is split like prose, each piece after the header.
//!
//! Long texts are split in blocks of about [`BLOCK_BYTES`], cut at a paragraph break where
//! there is one (else a line break, a sentence end, a space), and each block is chunked on
//! its own: the splitter's work per chunk grows with the text it is given, so a whole 50 MB
//! text took many minutes, blocks keep the total linear in the text's length. A chunk never
//! spans two blocks. Blocks are split on up to four threads at once;
//! [`Chunker::chunk_with_progress`] reports after each block how far it is and may be told to
//! stop. A slide deck's text is also cut where each slide starts, so each chunk belongs to
//! one slide and cites it.
//!
//! The splitter sizes many candidate pieces per chunk it keeps (a binary search over the
//! rest of the block, then the overlap), so counting each candidate with the tokenizer
//! tokenized every block some thirty times over. Where the counter can say where its tokens
//! lie ([`Embedder::token_spans`], or the tokenizer's offsets), each block is tokenized once
//! and a candidate's size is the number of tokens that overlap it, found by binary search.
//! That count can differ from tokenizing the piece alone only where a piece starts or ends
//! inside a word, so every piece kept is counted again exactly, and one that is then over
//! the limit is split again with exact counts.

use std::fmt;
use std::ops::{ControlFlow, Range};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use ragd_core::{Chunk, ChunkId, DocumentId, Embedder};
use text_splitter::{ChunkCharIndex, ChunkConfig, ChunkSizer, MarkdownSplitter, TextSplitter};
use tokenizers::Tokenizer;

use crate::detect::DocumentKind;
use crate::error::{Error, Result};
use crate::extract::Extracted;
use crate::table::find_tables;

/// About how much text (in bytes) one block holds; see the module documentation.
pub const BLOCK_BYTES: usize = 64 * 1024;

/// How big chunks are, in tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkerConfig {
    /// The most tokens one chunk may hold (special tokens excluded); at least 1.
    pub max_tokens: usize,
    /// Tokens repeated between neighbouring chunks; below `max_tokens`.
    pub overlap_tokens: usize,
}

impl Default for ChunkerConfig {
    fn default() -> Self {
        Self { max_tokens: 256, overlap_tokens: 32 }
    }
}

impl ChunkerConfig {
    /// Checks that the sizes can work together.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `max_tokens` is 0 or `overlap_tokens >= max_tokens`.
    pub fn validate(&self) -> Result<()> {
        if self.max_tokens == 0 {
            return Err(Error::InvalidConfig("max_tokens must be at least 1".to_owned()));
        }
        if self.overlap_tokens >= self.max_tokens {
            return Err(Error::InvalidConfig(format!(
                "overlap_tokens ({}) must be smaller than max_tokens ({})",
                self.overlap_tokens, self.max_tokens
            )));
        }
        Ok(())
    }
}

/// One chunk of a document, ready to be embedded and stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkPiece {
    /// Position within the document, from 0.
    pub ordinal: u32,
    /// The chunk's text: the extracted text between `char_start` and `char_end`, after the
    /// repeated header of its table when it continues one (see `table_header`).
    pub text: String,
    /// Chars at the start of `text` that repeat its table's header (header and delimiter
    /// rows) from before `char_start`; 0 for every chunk that does not continue a table.
    pub table_header: usize,
    /// Char offset of the chunk's first char in the extracted text.
    pub char_start: usize,
    /// Char offset just past the chunk's last char.
    pub char_end: usize,
    /// Tokens in `text` (special tokens excluded).
    pub token_count: usize,
    /// The page containing `char_start`, for paged formats.
    pub page: Option<u32>,
    /// The path of the last heading starting at or before `char_start`.
    pub heading: Option<String>,
}

impl ChunkPiece {
    /// The catalog's chunk of `document_id` this piece becomes, with a new id.
    pub fn into_chunk(self, document_id: DocumentId) -> Chunk {
        Chunk {
            id: ChunkId::new(),
            document_id,
            ordinal: self.ordinal,
            text: self.text,
            char_start: self.char_start as u64,
            char_end: self.char_end as u64,
            token_count: u32::try_from(self.token_count).unwrap_or(u32::MAX),
            page: self.page,
            heading: self.heading,
        }
    }
}

/// What counts a chunk's tokens (special tokens excluded).
#[derive(Clone)]
enum Sizer {
    /// A tokenizer of its own.
    Tokenizer(Arc<Tokenizer>),
    /// The embedder, less what it counts for an empty text.
    Embedder {
        /// The embedder whose window the chunks must fit.
        embedder: Arc<dyn Embedder>,
        /// Tokens it adds to every text.
        special: usize,
    },
}

impl Sizer {
    fn count(&self, text: &str) -> Result<usize> {
        match self {
            Self::Tokenizer(tokenizer) => tokenizer
                .encode_fast(text, false)
                .map(|encoding| encoding.get_ids().len())
                .map_err(|source| Error::Tokenizer { what: "counting tokens", source }),
            Self::Embedder { embedder, special } => embedder
                .count_tokens(text)
                .map(|count| count.saturating_sub(*special))
                .map_err(Error::Count),
        }
    }

    /// Byte ranges of `text`'s tokens (special tokens left out), when this counter knows them.
    fn spans(&self, text: &str) -> Result<Option<Vec<Range<usize>>>> {
        match self {
            Self::Tokenizer(tokenizer) => tokenizer
                .encode(text, false)
                .map(|encoding| {
                    Some(encoding.get_offsets().iter().map(|&(start, end)| start..end).collect())
                })
                .map_err(|source| Error::Tokenizer { what: "finding token offsets", source }),
            Self::Embedder { embedder, .. } => embedder.token_spans(text).map_err(Error::Count),
        }
    }
}

impl ChunkSizer for Sizer {
    fn size(&self, chunk: &str) -> usize {
        // A text that cannot be counted is never small enough to merge with another: the
        // splitter then keeps it on its own, and the count below reports the error.
        self.count(chunk).unwrap_or(usize::MAX)
    }
}

/// Sizes pieces of one block from the block's token spans (see the module documentation).
struct SpanSizer<'s> {
    /// The address of the block's first byte: a piece's offset is its address less this.
    base: usize,
    /// The block's length in bytes.
    len: usize,
    /// Each token's first byte, in order (kept non-decreasing).
    starts: Vec<usize>,
    /// Each token's end byte, in order (kept non-decreasing).
    ends: Vec<usize>,
    /// Counts a text that is not a piece of the block.
    exact: &'s Sizer,
}

impl<'s> SpanSizer<'s> {
    fn new(block: &str, spans: &[Range<usize>], exact: &'s Sizer) -> Self {
        let (mut start_floor, mut end_floor) = (0, 0);
        let (starts, ends) = spans
            .iter()
            .map(|span| {
                start_floor = start_floor.max(span.start);
                end_floor = end_floor.max(span.end);
                (start_floor, end_floor)
            })
            .unzip();
        Self { base: block.as_ptr().addr(), len: block.len(), starts, ends, exact }
    }
}

impl ChunkSizer for SpanSizer<'_> {
    fn size(&self, chunk: &str) -> usize {
        let at = chunk.as_ptr().addr().wrapping_sub(self.base);
        if at > self.len || chunk.len() > self.len - at {
            return self.exact.size(chunk);
        }
        let end = at + chunk.len();
        // Tokens that end after the piece starts and start before it ends.
        let first = self.ends.partition_point(|&token_end| token_end <= at);
        let past = self.starts.partition_point(|&token_start| token_start < end);
        past.saturating_sub(first)
    }
}

/// Splits extracted text into token-bounded chunks.
pub struct Chunker {
    /// The sizes this chunker was built with.
    config: ChunkerConfig,
    /// What counts tokens exactly.
    sizer: Sizer,
}

impl fmt::Debug for Chunker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chunker").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Chunker {
    /// A chunker counting tokens with `tokenizer`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the sizes are unusable; [`Error::Chunking`] when the
    /// tokenizer's truncation cannot be switched off.
    pub fn new(config: ChunkerConfig, mut tokenizer: Tokenizer) -> Result<Self> {
        tokenizer
            .with_truncation(None)
            .map_err(|source| Error::Tokenizer { what: "disabling truncation", source })?;
        tokenizer.with_padding(None);
        Self::with_sizer(config, Sizer::Tokenizer(Arc::new(tokenizer)))
    }

    /// A chunker counting tokens through `embedder` ([`Embedder::count_tokens`]), so chunks
    /// are sized by exactly the count the embedder will see.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the sizes are unusable; [`Error::Chunking`] when the
    /// embedder cannot count.
    pub fn with_embedder(config: ChunkerConfig, embedder: Arc<dyn Embedder>) -> Result<Self> {
        let special = embedder.count_tokens("").map_err(Error::Count)?;
        Self::with_sizer(config, Sizer::Embedder { embedder, special })
    }

    fn with_sizer(config: ChunkerConfig, sizer: Sizer) -> Result<Self> {
        config.validate()?;
        Ok(Self { config, sizer })
    }

    /// A chunker whose tokenizer is read from a `tokenizer.json` file.
    ///
    /// # Errors
    /// [`Error::TokenizerLoad`] when the file cannot be read or parsed, and the errors of
    /// [`Chunker::new`].
    pub fn from_file(config: ChunkerConfig, tokenizer_json: &Path) -> Result<Self> {
        config.validate()?;
        let tokenizer = Tokenizer::from_file(tokenizer_json).map_err(|err| {
            Error::TokenizerLoad { path: tokenizer_json.to_path_buf(), reason: err.to_string() }
        })?;
        Self::new(config, tokenizer)
    }

    /// The sizes this chunker was built with.
    #[must_use]
    pub const fn config(&self) -> ChunkerConfig {
        self.config
    }

    /// How many tokens `text` is (special tokens excluded).
    ///
    /// # Errors
    /// [`Error::Chunking`] when the tokenizer rejects the text.
    pub fn count_tokens(&self, text: &str) -> Result<usize> {
        self.sizer.count(text)
    }

    /// Splits a document's extracted text into chunks, in order.
    ///
    /// White space between chunks is dropped; an empty or blank text gives no chunks.
    ///
    /// # Errors
    /// [`Error::Chunking`] when the tokenizer fails (the splitter's panic is caught) or the
    /// document has more than `u32::MAX` chunks.
    pub fn chunk(&self, kind: DocumentKind, extracted: &Extracted) -> Result<Vec<ChunkPiece>> {
        self.chunk_with_progress(kind, extracted, |_, _| ControlFlow::Continue(()))
    }

    /// [`Chunker::chunk`], calling `progress(bytes_done, bytes_total)` after each block; a
    /// `Break` from it stops the work with [`Error::Cancelled`].
    ///
    /// # Errors
    /// As [`Chunker::chunk`], and [`Error::Cancelled`].
    pub fn chunk_with_progress(
        &self,
        kind: DocumentKind,
        extracted: &Extracted,
        mut progress: impl FnMut(usize, usize) -> ControlFlow<()>,
    ) -> Result<Vec<ChunkPiece>> {
        let text = extracted.text.as_str();
        let blocks: Vec<Block<'_>> = if kind == DocumentKind::Pptx {
            page_slices(extracted).flat_map(|page| segments(page, BLOCK_BYTES)).collect()
        } else {
            segments(text, BLOCK_BYTES)
        };
        let mut split: Vec<Option<Vec<Split<'_>>>> = vec![None; blocks.len()];
        let workers = chunk_threads().min(blocks.len());
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let mut outcome = Ok(());
        std::thread::scope(|scope| {
            let (sender, done) = std::sync::mpsc::channel();
            for _ in 0..workers {
                let sender = sender.clone();
                let (blocks, next, stop) = (&blocks, &next, &stop);
                scope.spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(block) = blocks.get(index) else { break };
                        let result = match block.table_header {
                            Some(header) => self.split_rows(kind, block.text, header),
                            None => self.split(kind, block.text),
                        };
                        if sender.send((index, result)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(sender);
            let mut bytes_done = 0;
            for (index, result) in done {
                match result {
                    Ok(pieces) => split[index] = Some(pieces),
                    Err(err) => outcome = Err(err),
                }
                bytes_done += blocks[index].text.len();
                if outcome.is_ok() && progress(bytes_done, text.len()).is_break() {
                    outcome = Err(Error::Cancelled);
                }
                if outcome.is_err() {
                    stop.store(true, Ordering::Relaxed);
                    break;
                }
            }
        });
        outcome?;

        let mut pieces = Vec::new();
        let mut char_start = 0;
        for (block, split) in blocks.iter().zip(split) {
            let split = split.ok_or_else(|| Error::Chunking("a block was not split".to_owned()))?;
            for piece in split {
                let ordinal = u32::try_from(pieces.len())
                    .map_err(|_| Error::Chunking("too many chunks for one document".to_owned()))?;
                let start = char_start + piece.char_offset;
                let header = piece.header.unwrap_or("");
                pieces.push(ChunkPiece {
                    ordinal,
                    text: [header, piece.text].concat(),
                    table_header: header.chars().count(),
                    char_start: start,
                    char_end: start + piece.chars,
                    token_count: piece.tokens,
                    page: extracted.page_at(start),
                    heading: extracted.heading_at(start).map(str::to_owned),
                });
            }
            char_start += block.text.chars().count();
        }
        Ok(pieces)
    }

    /// The chunks of one block, with char offsets into the block and exact token counts.
    fn split<'t>(&self, kind: DocumentKind, block: &'t str) -> Result<Vec<Split<'t>>> {
        let Some(spans) = self.sizer.spans(block)? else {
            return self.split_exactly(kind, block, 0);
        };
        let sizer = SpanSizer::new(block, &spans, &self.sizer);
        let mut pieces = Vec::new();
        for piece in self.split_with(kind, block, &sizer)? {
            let tokens = self.count_tokens(piece.chunk)?;
            if tokens > self.config.max_tokens {
                pieces.extend(self.split_exactly(kind, piece.chunk, piece.char_offset)?);
            } else {
                pieces.push(Split::new(piece.char_offset, piece.chunk, tokens));
            }
        }
        Ok(pieces)
    }

    /// The chunks of `rows`, consecutive rows of a Markdown table whose header is `header`
    /// (`rows` starts with the header itself when it is the table's first block): whole rows
    /// per chunk, each chunk that does not start with the header itself repeating it.
    fn split_rows<'t>(
        &self,
        kind: DocumentKind,
        rows: &'t str,
        header: &'t str,
    ) -> Result<Vec<Split<'t>>> {
        let max = self.config.max_tokens;
        let header_tokens = self.count_tokens(header)?;
        // A header that leaves less than half a chunk for rows is not repeated.
        let repeat = (header_tokens <= max / 2).then_some(header);
        // The table's first block holds the header itself: its first chunk starts with it.
        let (body_start, body_tokens) =
            if rows.as_ptr() == header.as_ptr() { (header.len(), header_tokens) } else { (0, 0) };
        let mut pieces = Vec::new();
        let mut current = RowRun { start: 0, end: body_start, tokens: body_tokens, header: None };
        let mut at = body_start;
        for row in rows[body_start..].split_inclusive('\n') {
            let (row_start, row_end) = (at, at + row.len());
            at = row_end;
            if row.trim().is_empty() {
                continue;
            }
            let tokens = self.count_tokens(row)?;
            if current.end > current.start && current.tokens + tokens <= max {
                current.end = row_end;
                current.tokens += tokens;
                continue;
            }
            self.flush_rows(kind, rows, &current, &mut pieces)?;
            let prefix_tokens = repeat.map_or(0, |_| header_tokens);
            if prefix_tokens + tokens <= max {
                current = RowRun {
                    start: row_start,
                    end: row_end,
                    tokens: prefix_tokens + tokens,
                    header: repeat,
                };
                continue;
            }
            // One row longer than a chunk: split like prose, within what the header leaves.
            current = RowRun { start: row_end, end: row_end, tokens: 0, header: None };
            let room = max - prefix_tokens;
            let config = ChunkerConfig { max_tokens: room, overlap_tokens: 0 };
            let narrower = Chunker { config, sizer: self.sizer.clone() };
            let row = row.trim_end();
            let row_chars = rows[..row_start].chars().count();
            for piece in narrower.split(kind, row)? {
                let char_offset = row_chars + piece.char_offset;
                let with_header = self.row_split(repeat, char_offset, piece.text)?;
                if with_header.tokens <= max {
                    pieces.push(with_header);
                } else {
                    pieces.push(Split::new(char_offset, piece.text, piece.tokens));
                }
            }
        }
        self.flush_rows(kind, rows, &current, &mut pieces)?;
        Ok(pieces)
    }

    /// Appends the chunk of the rows in `run` to `pieces`, after checking its exact size (a
    /// run the row-by-row sum undercounted is split like prose).
    fn flush_rows<'t>(
        &self,
        kind: DocumentKind,
        rows: &'t str,
        run: &RowRun<'t>,
        pieces: &mut Vec<Split<'t>>,
    ) -> Result<()> {
        let text = rows[run.start..run.end].trim_end();
        if text.trim().is_empty() {
            return Ok(());
        }
        let char_offset = rows[..run.start].chars().count();
        let split = self.row_split(run.header, char_offset, text)?;
        if split.tokens <= self.config.max_tokens {
            pieces.push(split);
        } else {
            pieces.extend(self.split_exactly(kind, text, char_offset)?);
        }
        Ok(())
    }

    /// A piece of table rows, counted with the header it repeats.
    fn row_split<'t>(
        &self,
        header: Option<&'t str>,
        char_offset: usize,
        text: &'t str,
    ) -> Result<Split<'t>> {
        let tokens = match header {
            Some(header) => self.count_tokens(&[header, text].concat())?,
            None => self.count_tokens(text)?,
        };
        Ok(Split { header, ..Split::new(char_offset, text, tokens) })
    }

    /// The chunks of `text`, sized by tokenizing every candidate, with char offsets plus
    /// `char_offset`.
    fn split_exactly<'t>(
        &self,
        kind: DocumentKind,
        text: &'t str,
        char_offset: usize,
    ) -> Result<Vec<Split<'t>>> {
        self.split_with(kind, text, &self.sizer)?
            .into_iter()
            .map(|piece| {
                let tokens = self.count_tokens(piece.chunk)?;
                Ok(Split::new(char_offset + piece.char_offset, piece.chunk, tokens))
            })
            .collect()
    }

    /// `text` cut by the splitter for `kind`, sizing candidates with `sizer`.
    fn split_with<'t>(
        &self,
        kind: DocumentKind,
        text: &'t str,
        sizer: &impl ChunkSizer,
    ) -> Result<Vec<ChunkCharIndex<'t>>> {
        let config = ChunkConfig::new(self.config.max_tokens)
            .with_overlap(self.config.overlap_tokens)
            .map_err(|err| Error::InvalidConfig(err.to_string()))?
            .with_sizer(sizer);
        catch_unwind(AssertUnwindSafe(|| {
            if kind == DocumentKind::Markdown {
                MarkdownSplitter::new(config).chunk_char_indices(text).collect()
            } else {
                TextSplitter::new(config).chunk_char_indices(text).collect()
            }
        }))
        .map_err(|_| Error::Chunking("the tokenizer failed while splitting the text".to_owned()))
    }
}

/// Consecutive rows of a table being gathered into one chunk: bytes of the block.
struct RowRun<'t> {
    start: usize,
    end: usize,
    /// Tokens of the rows (and of the header it repeats), summed row by row.
    tokens: usize,
    /// The header the chunk repeats.
    header: Option<&'t str>,
}

/// A part of the text chunked on its own: prose, or rows of one table.
#[derive(Debug, Clone, Copy)]
struct Block<'t> {
    /// The text, a slice of the document's text; blocks follow each other without gaps.
    text: &'t str,
    /// For rows of a table, the table's header (which starts `text` in its first block).
    table_header: Option<&'t str>,
}

/// `text` cut into blocks: each Markdown table ([`find_tables`]) in blocks of whole rows of
/// about `max` bytes, the prose around them as [`blocks`] cuts it.
fn segments(text: &str, max: usize) -> Vec<Block<'_>> {
    let mut out = Vec::new();
    let mut at = 0;
    for table in find_tables(text) {
        out.extend(
            blocks(&text[at..table.range.start], max)
                .map(|text| Block { text, table_header: None }),
        );
        let whole = &text[table.range.clone()];
        let header = &whole[..table.header_len];
        let mut start = 0;
        while start < whole.len() {
            let mut end = (start + max).min(whole.len());
            while !whole.is_char_boundary(end) {
                end += 1;
            }
            if end < whole.len() {
                end = whole[end..].find('\n').map_or(whole.len(), |i| end + i + 1);
            }
            out.push(Block { text: &whole[start..end], table_header: Some(header) });
            start = end;
        }
        at = table.range.end;
    }
    out.extend(blocks(&text[at..], max).map(|text| Block { text, table_header: None }));
    out
}

/// The text of `extracted` cut where each of its pages starts: consecutive slices covering
/// the whole text. Slides are chunked page by page, so a chunk cites one slide.
fn page_slices(extracted: &Extracted) -> impl Iterator<Item = &str> {
    let text = extracted.text.as_str();
    let mut starts = extracted.pages.iter().map(|page| page.char_start).peekable();
    let mut cuts = vec![0];
    for (chars, (at, _)) in text.char_indices().enumerate() {
        let mut starts_here = false;
        while starts.next_if(|&start| start <= chars).is_some() {
            starts_here = true;
        }
        if starts_here && at > 0 {
            cuts.push(at);
        }
    }
    cuts.push(text.len());
    cuts.dedup();
    (1..cuts.len()).map(move |i| &text[cuts[i - 1]..cuts[i]])
}

/// One chunk of a block, as a worker thread found it.
#[derive(Debug, Clone, Copy)]
struct Split<'t> {
    /// Chars before it in its block.
    char_offset: usize,
    text: &'t str,
    /// Its length in chars.
    chars: usize,
    /// Tokens of the chunk (with its header).
    tokens: usize,
    /// The table header the chunk repeats before `text`.
    header: Option<&'t str>,
}

impl<'t> Split<'t> {
    fn new(char_offset: usize, text: &'t str, tokens: usize) -> Self {
        Self { char_offset, text, chars: text.chars().count(), tokens, header: None }
    }
}

/// Threads one text is chunked on: the available parallelism, at most 4.
fn chunk_threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get).clamp(1, 4)
}

/// `text` in consecutive blocks of at most about `max` bytes (a block is longer only when
/// `max` bytes hold no char boundary), each cut after the last paragraph break in its second
/// half, else the last line break, sentence end or space, else at `max`.
fn blocks(text: &str, max: usize) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        if rest.len() <= max {
            return Some(std::mem::take(&mut rest));
        }
        let mut end = max;
        while !rest.is_char_boundary(end) {
            end += 1;
        }
        let window = &rest[..end];
        let floor = end / 2;
        let cut = ["\n\n", "\n", ". ", " "]
            .iter()
            .find_map(|sep| window.rfind(sep).map(|at| at + sep.len()).filter(|&at| at > floor))
            .unwrap_or(end);
        let (block, tail) = rest.split_at(cut);
        rest = tail;
        Some(block)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_cover_the_text_and_cut_at_breaks() {
        let text = "alpha beta.\n\ngamma delta epsilon. zeta eta theta iota\nkappa ".repeat(50);
        let pieces: Vec<&str> = blocks(&text, 100).collect();
        assert_eq!(pieces.concat(), text);
        assert!(pieces.len() > 20, "{}", pieces.len());
        assert!(pieces.iter().all(|b| b.len() <= 100), "{pieces:?}");
        assert!(pieces[..pieces.len() - 1].iter().all(|b| b.ends_with('\n')), "{pieces:?}");
        // No break at all: cut at the limit, on char boundaries.
        let solid = "é".repeat(301);
        let pieces: Vec<&str> = blocks(&solid, 100).collect();
        assert_eq!(pieces.concat(), solid);
        assert!(pieces.iter().all(|b| b.len() <= 101));
        assert_eq!(blocks("", 10).count(), 0);
    }

    #[test]
    fn config_is_validated() {
        assert!(ChunkerConfig::default().validate().is_ok());
        let zero = ChunkerConfig { max_tokens: 0, overlap_tokens: 0 };
        assert!(matches!(zero.validate(), Err(Error::InvalidConfig(_))));
        let overlap = ChunkerConfig { max_tokens: 8, overlap_tokens: 8 };
        assert!(matches!(overlap.validate(), Err(Error::InvalidConfig(_))));
    }
}
