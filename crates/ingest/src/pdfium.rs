//! PDF text and page images through PDFium, the PDF engine of Chromium.
//!
//! `cargo xtask assets` takes `libpdfium.so` out of the pinned `pypdfium2` wheel (the way
//! ONNX Runtime arrives); [`Pdfium::load`] opens it at run time. On the corpus of real
//! manuals (`fixtures/ingest-corpus`) PDFium read every PDF, where `pdf-extract` failed
//! outright on three and lost words on thirty (`docs/BENCHMARKS.md`).
//!
//! The binding is a dozen C functions of `fpdfview.h` and `fpdf_text.h`, resolved with
//! `libloading`, rather than the `pdfium-render` crate: that crate turns on `chrono`'s
//! default features, which changes the build of every Arrow, DataFusion and LanceDB crate
//! in the workspace, and ragd needs only page text and page images.
//!
//! PDFium is not thread-safe: every call goes through one process-wide lock. The library is
//! initialised once and never unloaded. Extraction normally runs in a worker process with
//! memory and time limits ([`crate::isolate`]), which is what bounds a hostile file here.
//!
//! This is one of the two files of the workspace where `unsafe` is allowed (xtask's tidy
//! test holds that), each block with the reason it is sound.

#![allow(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

use std::ffi::{c_int, c_ulong, c_ushort, c_void};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, TryLockError};
use std::time::Duration;

use crate::error::{Error, Result};

/// `FPDF_DOCUMENT`, `FPDF_PAGE`, `FPDF_TEXTPAGE`, `FPDF_BITMAP`: opaque handles.
type Handle = *mut c_void;

/// How often a document waiting for PDFium's lock looks again.
const LOCK_POLL: Duration = Duration::from_millis(10);

/// `FPDFBitmap_BGR`: three bytes a pixel, blue first.
const BITMAP_BGR: c_int = 2;
/// `FPDF_ANNOT`: draw annotations (form fields, stamps) too.
const RENDER_ANNOTATIONS: c_int = 0x01;

/// The functions ragd calls, resolved from the library.
struct Api {
    init_library: unsafe extern "C" fn(),
    load_mem_document64: unsafe extern "C" fn(*const c_void, usize, *const i8) -> Handle,
    get_last_error: unsafe extern "C" fn() -> c_ulong,
    close_document: unsafe extern "C" fn(Handle),
    get_page_count: unsafe extern "C" fn(Handle) -> c_int,
    load_page: unsafe extern "C" fn(Handle, c_int) -> Handle,
    close_page: unsafe extern "C" fn(Handle),
    page_width: unsafe extern "C" fn(Handle) -> f32,
    page_height: unsafe extern "C" fn(Handle) -> f32,
    text_load_page: unsafe extern "C" fn(Handle) -> Handle,
    text_close_page: unsafe extern "C" fn(Handle),
    text_count_chars: unsafe extern "C" fn(Handle) -> c_int,
    text_get_text: unsafe extern "C" fn(Handle, c_int, c_int, *mut c_ushort) -> c_int,
    bitmap_create_ex: unsafe extern "C" fn(c_int, c_int, c_int, *mut c_void, c_int) -> Handle,
    bitmap_fill_rect: unsafe extern "C" fn(Handle, c_int, c_int, c_int, c_int, c_ulong) -> c_int,
    bitmap_get_buffer: unsafe extern "C" fn(Handle) -> *mut c_void,
    bitmap_get_stride: unsafe extern "C" fn(Handle) -> c_int,
    bitmap_destroy: unsafe extern "C" fn(Handle),
    render_page_bitmap:
        unsafe extern "C" fn(Handle, Handle, c_int, c_int, c_int, c_int, c_int, c_int),
    /// Keeps the functions above loaded.
    _library: libloading::Library,
}

/// A loaded PDFium library; every document opened through it holds its lock.
pub struct Pdfium {
    api: Mutex<Api>,
    path: PathBuf,
}

impl std::fmt::Debug for Pdfium {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pdfium").field("path", &self.path).finish_non_exhaustive()
    }
}

/// The libraries loaded so far, by path (normally one).
static LOADED: OnceLock<Mutex<Vec<&'static Pdfium>>> = OnceLock::new();

impl Pdfium {
    /// The PDFium library at `path`, loaded and initialised on first use and kept for the
    /// life of the process.
    ///
    /// # Errors
    /// [`Error::Extraction`] when the library cannot be loaded or lacks a function.
    pub fn load(path: &Path) -> Result<&'static Self> {
        let loaded = LOADED.get_or_init(|| Mutex::new(Vec::new()));
        let mut loaded = loaded.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(pdfium) = loaded.iter().find(|pdfium| pdfium.path == path) {
            return Ok(pdfium);
        }
        let api = Self::open(path).map_err(|reason| Error::Extraction {
            format: "pdf",
            reason: format!("cannot load PDFium from {}: {reason}", path.display()),
        })?;
        // SAFETY: `FPDF_InitLibrary` takes no arguments; it runs once per library, under
        // the lock of `LOADED`, before any other call.
        unsafe { (api.init_library)() };
        let pdfium: &'static Self =
            Box::leak(Box::new(Self { api: Mutex::new(api), path: path.to_owned() }));
        loaded.push(pdfium);
        Ok(pdfium)
    }

    /// Loads the library and resolves every function of [`Api`].
    fn open(path: &Path) -> std::result::Result<Api, String> {
        // SAFETY: loading runs the library's initialisers; libpdfium's have no requirements.
        let library = unsafe { libloading::Library::new(path) }.map_err(|err| err.to_string())?;
        macro_rules! resolve {
            ($name:literal) => {
                // SAFETY: the symbol is declared with its C signature from PDFium's headers.
                *unsafe { library.get(concat!($name, "\0").as_bytes()) }
                    .map_err(|err| format!("{}: {err}", $name))?
            };
        }
        Ok(Api {
            init_library: resolve!("FPDF_InitLibrary"),
            load_mem_document64: resolve!("FPDF_LoadMemDocument64"),
            get_last_error: resolve!("FPDF_GetLastError"),
            close_document: resolve!("FPDF_CloseDocument"),
            get_page_count: resolve!("FPDF_GetPageCount"),
            load_page: resolve!("FPDF_LoadPage"),
            close_page: resolve!("FPDF_ClosePage"),
            page_width: resolve!("FPDF_GetPageWidthF"),
            page_height: resolve!("FPDF_GetPageHeightF"),
            text_load_page: resolve!("FPDFText_LoadPage"),
            text_close_page: resolve!("FPDFText_ClosePage"),
            text_count_chars: resolve!("FPDFText_CountChars"),
            text_get_text: resolve!("FPDFText_GetText"),
            bitmap_create_ex: resolve!("FPDFBitmap_CreateEx"),
            bitmap_fill_rect: resolve!("FPDFBitmap_FillRect"),
            bitmap_get_buffer: resolve!("FPDFBitmap_GetBuffer"),
            bitmap_get_stride: resolve!("FPDFBitmap_GetStride"),
            bitmap_destroy: resolve!("FPDFBitmap_Destroy"),
            render_page_bitmap: resolve!("FPDF_RenderPageBitmap"),
            _library: library,
        })
    }

    /// Opens the PDF in `bytes` (without a password). The document holds PDFium's lock
    /// until it is dropped; while another document holds it, this waits, until `cancel`
    /// is set. (An extraction abandoned on a thread keeps the lock while it runs: the
    /// documents after it wait for their own deadlines instead of for ever.)
    ///
    /// # Errors
    /// [`Error::Extraction`] when PDFium cannot read the file, with PDFium's reason, or
    /// when `cancel` was set while waiting.
    pub fn open_document<'a>(
        &'a self,
        bytes: &'a [u8],
        cancel: &AtomicBool,
    ) -> Result<PdfDocument<'a>> {
        let api = loop {
            match self.api.try_lock() {
                Ok(api) => break api,
                Err(TryLockError::Poisoned(poisoned)) => break poisoned.into_inner(),
                Err(TryLockError::WouldBlock) if cancel.load(Ordering::Relaxed) => {
                    return Err(Error::Extraction {
                        format: "pdf",
                        reason: "PDFium stayed busy with another document until the deadline"
                            .to_owned(),
                    });
                }
                Err(TryLockError::WouldBlock) => std::thread::sleep(LOCK_POLL),
            }
        };
        // SAFETY: `bytes` outlives the document (both live for 'a), the password is null.
        let handle = unsafe {
            (api.load_mem_document64)(bytes.as_ptr().cast(), bytes.len(), std::ptr::null())
        };
        if handle.is_null() {
            // SAFETY: no arguments; reports the last failure of this thread.
            let code = unsafe { (api.get_last_error)() };
            return Err(Error::Extraction { format: "pdf", reason: load_error(code).to_owned() });
        }
        Ok(PdfDocument { api, handle, _bytes: bytes })
    }
}

/// PDFium's `FPDF_ERR_*` codes in words.
const fn load_error(code: c_ulong) -> &'static str {
    match code {
        2 => "PDFium cannot open the file",
        3 => "the file is not a PDF or is damaged beyond repair",
        4 => "the file is encrypted with a password",
        5 => "the file's security scheme is not supported",
        6 => "the PDF has a page error",
        _ => "PDFium cannot read the file",
    }
}

/// An open PDF document.
pub struct PdfDocument<'a> {
    api: MutexGuard<'a, Api>,
    handle: Handle,
    _bytes: &'a [u8],
}

impl std::fmt::Debug for PdfDocument<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PdfDocument").field("bytes", &self._bytes.len()).finish_non_exhaustive()
    }
}

/// A page rendered in shades of grey, one byte a pixel, rows top to bottom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrayImage {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

impl GrayImage {
    /// The image as a binary PGM file (`P5`), which Tesseract reads.
    #[must_use]
    pub fn to_pgm(&self) -> Vec<u8> {
        let mut out = format!("P5\n{} {}\n255\n", self.width, self.height).into_bytes();
        out.extend_from_slice(&self.pixels);
        out
    }
}

impl PdfDocument<'_> {
    /// How many pages the document has.
    #[must_use]
    pub fn page_count(&self) -> usize {
        // SAFETY: `handle` is an open document.
        let count = unsafe { (self.api.get_page_count)(self.handle) };
        usize::try_from(count).unwrap_or(0)
    }

    /// The text of page `index` (from 0), in reading order as PDFium finds it, with `\n`
    /// between lines.
    ///
    /// # Errors
    /// [`Error::Extraction`] when the page cannot be loaded.
    pub fn page_text(&self, index: usize) -> Result<String> {
        let page = self.page(index)?;
        // SAFETY: `page.handle` is a loaded page of this document.
        let text = unsafe { (self.api.text_load_page)(page.handle) };
        if text.is_null() {
            return Err(Error::Extraction {
                format: "pdf",
                reason: format!("PDFium cannot read the text of page {}", index + 1),
            });
        }
        // SAFETY: `text` is a loaded text page.
        let count = unsafe { (self.api.text_count_chars)(text) }.max(0);
        let mut units: Vec<u16> = vec![0; usize::try_from(count).unwrap_or(0) + 1];
        // SAFETY: the buffer holds `count` UTF-16 units and the terminating NUL.
        let written = unsafe { (self.api.text_get_text)(text, 0, count, units.as_mut_ptr()) };
        // SAFETY: `text` is closed once, before its page.
        unsafe { (self.api.text_close_page)(text) };
        let written = usize::try_from(written).unwrap_or(0).min(units.len());
        let units = &units[..written];
        let units = units.strip_suffix(&[0]).unwrap_or(units);
        Ok(clean_text(&String::from_utf16_lossy(units)))
    }

    /// Page `index` (from 0) rendered at `dpi` dots per inch, scaled down where that would
    /// pass `max_pixels`.
    ///
    /// # Errors
    /// [`Error::Extraction`] when the page cannot be loaded or PDFium cannot make the image.
    pub fn render_gray(&self, index: usize, dpi: f32, max_pixels: u64) -> Result<GrayImage> {
        let page = self.page(index)?;
        // SAFETY: `page.handle` is a loaded page.
        let (points_wide, points_high) =
            unsafe { ((self.api.page_width)(page.handle), (self.api.page_height)(page.handle)) };
        let (width, height) = pixel_size(points_wide, points_high, dpi, max_pixels);
        let bad = |what: &str| Error::Extraction {
            format: "pdf",
            reason: format!("PDFium cannot render page {} ({what})", index + 1),
        };
        let (w, h) = (
            c_int::try_from(width).map_err(|_| bad("too wide"))?,
            c_int::try_from(height).map_err(|_| bad("too high"))?,
        );
        // SAFETY: a null buffer asks PDFium to allocate one; stride 0 lets it choose.
        let bitmap =
            unsafe { (self.api.bitmap_create_ex)(w, h, BITMAP_BGR, std::ptr::null_mut(), 0) };
        if bitmap.is_null() {
            return Err(bad("out of memory"));
        }
        // SAFETY: `bitmap` is a live w x h bitmap and `page.handle` a loaded page; the
        // buffer PDFium returns holds `stride * h` bytes until the bitmap is destroyed.
        let pixels = unsafe {
            (self.api.bitmap_fill_rect)(bitmap, 0, 0, w, h, 0xFFFF_FFFF);
            (self.api.render_page_bitmap)(bitmap, page.handle, 0, 0, w, h, 0, RENDER_ANNOTATIONS);
            let stride = usize::try_from((self.api.bitmap_get_stride)(bitmap)).unwrap_or(0);
            let buffer = (self.api.bitmap_get_buffer)(bitmap).cast::<u8>();
            let pixels = if buffer.is_null() || stride < width * 3 {
                None
            } else {
                let bytes = std::slice::from_raw_parts(buffer, stride * height);
                Some(to_gray(bytes, width, height, stride))
            };
            (self.api.bitmap_destroy)(bitmap);
            pixels
        };
        let pixels = pixels.ok_or_else(|| bad("no pixel buffer"))?;
        Ok(GrayImage { width, height, pixels })
    }

    /// Page `index`, loaded until the returned guard is dropped.
    fn page(&self, index: usize) -> Result<Page<'_>> {
        let number = c_int::try_from(index).unwrap_or(c_int::MAX);
        // SAFETY: `handle` is an open document; PDFium checks the index.
        let handle = unsafe { (self.api.load_page)(self.handle, number) };
        if handle.is_null() {
            return Err(Error::Extraction {
                format: "pdf",
                reason: format!("PDFium cannot load page {}", index + 1),
            });
        }
        Ok(Page { api: &self.api, handle })
    }
}

impl Drop for PdfDocument<'_> {
    fn drop(&mut self) {
        // SAFETY: every page guard borrows the document, so all pages are closed by now.
        unsafe { (self.api.close_document)(self.handle) };
    }
}

/// A loaded page, closed on drop.
struct Page<'d> {
    api: &'d Api,
    handle: Handle,
}

impl Drop for Page<'_> {
    fn drop(&mut self) {
        // SAFETY: the page was loaded by this library and is closed once.
        unsafe { (self.api.close_page)(self.handle) };
    }
}

/// PDFium's page text made plain: `\r\n` line ends become `\n`, the markers PDFium puts
/// for hyphens it kept at a line end (U+0002) become `-`, other control characters go.
fn clean_text(text: &str) -> String {
    text.replace("\r\n", "\n")
        .chars()
        .filter_map(|c| match c {
            '\u{2}' => Some('-'),
            '\r' => Some('\n'),
            '\u{fffe}' | '\u{feff}' => None,
            c if c.is_control() && c != '\n' && c != '\t' => None,
            c => Some(c),
        })
        .collect()
}

/// Pixels of a page of `points_wide` x `points_high` (1/72 inch) at `dpi`, both scaled
/// down by one factor when their product would pass `max_pixels`; at least 1 x 1.
fn pixel_size(points_wide: f32, points_high: f32, dpi: f32, max_pixels: u64) -> (usize, usize) {
    let scale = dpi / 72.0;
    let mut wide = f64::from((points_wide * scale).max(1.0));
    let mut high = f64::from((points_high * scale).max(1.0));
    // Sizes are far below 2^52 pixels, where f64 stops counting them exactly.
    #[allow(clippy::cast_precision_loss)]
    let max = max_pixels.max(1) as f64;
    if wide * high > max {
        let shrink = (max / (wide * high)).sqrt();
        wide *= shrink;
        high *= shrink;
    }
    // Both values are at least 1 and at most `max_pixels`, so they fit in usize.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (wide.floor().max(1.0) as usize, high.floor().max(1.0) as usize)
}

/// BGR rows of `stride` bytes to one grey byte a pixel (ITU-R BT.601 luma).
fn to_gray(bgr: &[u8], width: usize, height: usize, stride: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(width * height);
    for row in bgr.chunks(stride).take(height) {
        for pixel in row[..width * 3].chunks_exact(3) {
            let luma =
                u32::from(pixel[0]) * 114 + u32::from(pixel[1]) * 587 + u32::from(pixel[2]) * 299;
            // At most 255 * 1000 / 1000.
            #[allow(clippy::cast_possible_truncation)]
            out.push((luma / 1000) as u8);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_sized_by_dpi_and_capped() {
        assert_eq!(pixel_size(612.0, 792.0, 72.0, u64::MAX), (612, 792));
        assert_eq!(pixel_size(72.0, 144.0, 300.0, u64::MAX), (300, 600));
        let (w, h) = pixel_size(612.0, 792.0, 300.0, 1_000_000);
        assert!(w * h <= 1_000_000 && w * h > 990_000, "{w} x {h}");
        assert_eq!(pixel_size(0.0, -5.0, 300.0, 100), (1, 1));
    }

    #[test]
    fn text_is_cleaned() {
        assert_eq!(clean_text("a\r\nb\rc\u{2}\r\nd\u{0}e\u{fffe}"), "a\nb\nc-\nde");
    }

    #[test]
    fn gray_conversion_reads_bgr_rows() {
        // Two pixels a row (white, blue) plus two bytes of padding, two rows.
        let rows = [255, 255, 255, 255, 0, 0, 9, 9, 0, 0, 0, 0, 0, 255, 9, 9];
        assert_eq!(to_gray(&rows, 2, 2, 8), [255, 29, 0, 76]);
        let pgm = GrayImage { width: 2, height: 1, pixels: vec![0, 255] }.to_pgm();
        assert_eq!(pgm, b"P5\n2 1\n255\n\x00\xff");
    }
}
