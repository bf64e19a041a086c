//! Incremental text assembly for streamed generation.
//!
//! Two small state machines sit between the token sampler and the caller:
//!
//! - [`Utf8Decoder`] turns token pieces (raw bytes) into text, keeping a multi-byte UTF-8
//!   character that is split across tokens until its last byte arrives.
//! - [`StopMatcher`] holds back text that could still become a stop sequence and cuts the
//!   output right before the first stop sequence, which is never emitted.

/// Decodes a stream of byte pieces into UTF-8 text without splitting characters.
#[derive(Debug, Default)]
pub(crate) struct Utf8Decoder {
    /// Bytes of a character whose remaining bytes have not arrived yet.
    pending: Vec<u8>,
}

impl Utf8Decoder {
    /// Appends `bytes` and returns all text that is complete so far.
    ///
    /// Invalid sequences become U+FFFD, as `String::from_utf8_lossy` would write them.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut text = String::new();
        let mut start = 0;
        loop {
            match std::str::from_utf8(&self.pending[start..]) {
                Ok(valid) => {
                    text.push_str(valid);
                    start = self.pending.len();
                    break;
                }
                Err(err) => {
                    let valid_end = start + err.valid_up_to();
                    text.push_str(&String::from_utf8_lossy(&self.pending[start..valid_end]));
                    match err.error_len() {
                        // The tail is an incomplete character: keep it for the next piece.
                        None => {
                            start = valid_end;
                            break;
                        }
                        Some(invalid) => {
                            text.push(char::REPLACEMENT_CHARACTER);
                            start = valid_end + invalid;
                        }
                    }
                }
            }
        }
        self.pending.drain(..start);
        text
    }

    /// Returns what is left at the end of generation (an incomplete character becomes
    /// U+FFFD) and empties the decoder.
    pub(crate) fn finish(&mut self) -> String {
        let rest = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        rest
    }
}

/// What [`StopMatcher::push`] decided.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Matched {
    /// Text that can be shown now.
    pub(crate) emit: String,
    /// Whether a stop sequence matched; generation ends and nothing more is emitted.
    pub(crate) stopped: bool,
}

/// Cuts generated text before the first stop sequence.
#[derive(Debug)]
pub(crate) struct StopMatcher {
    /// The stop sequences, without empty strings.
    stops: Vec<String>,
    /// Text held back because it may be the start of a stop sequence.
    held: String,
}

impl StopMatcher {
    /// A matcher for `stops`; empty strings are ignored.
    pub(crate) fn new(stops: &[String]) -> Self {
        Self {
            stops: stops.iter().filter(|stop| !stop.is_empty()).cloned().collect(),
            held: String::new(),
        }
    }

    /// Adds generated text and returns what may be emitted.
    pub(crate) fn push(&mut self, text: &str) -> Matched {
        self.held.push_str(text);
        let first_match = self.stops.iter().filter_map(|stop| self.held.find(stop.as_str())).min();
        if let Some(at) = first_match {
            let emit = self.held[..at].to_owned();
            self.held.clear();
            return Matched { emit, stopped: true };
        }
        let keep = self.longest_partial_match();
        let emit_end = self.held.len() - keep;
        let emit = self.held[..emit_end].to_owned();
        self.held.drain(..emit_end);
        Matched { emit, stopped: false }
    }

    /// Returns the held-back text at the end of generation.
    pub(crate) fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    /// The length in bytes of the longest suffix of the held text that is a proper prefix
    /// of some stop sequence (and so could still grow into it).
    fn longest_partial_match(&self) -> usize {
        let held = self.held.as_str();
        // Candidate suffixes start at character boundaries, longest first.
        held.char_indices()
            .map(|(start, _)| &held[start..])
            .find(|suffix| {
                self.stops.iter().any(|stop| stop.len() > suffix.len() && stop.starts_with(suffix))
            })
            .map_or(0, str::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoder_keeps_split_characters() {
        let mut decoder = Utf8Decoder::default();
        let euro = "€".as_bytes();
        assert_eq!(decoder.push(b"a"), "a");
        assert_eq!(decoder.push(&euro[..1]), "");
        assert_eq!(decoder.push(&euro[1..2]), "");
        assert_eq!(decoder.push(&[euro[2], b'b']), "€b");
        assert_eq!(decoder.finish(), "");
    }

    #[test]
    fn decoder_replaces_invalid_bytes_and_flushes_incomplete_tail() {
        let mut decoder = Utf8Decoder::default();
        assert_eq!(decoder.push(&[b'x', 0xFF, b'y']), "x\u{FFFD}y");
        assert_eq!(decoder.push(&"é".as_bytes()[..1]), "");
        assert_eq!(decoder.finish(), "\u{FFFD}");
    }

    #[test]
    fn matcher_holds_back_possible_prefixes() {
        let mut matcher = StopMatcher::new(&["END".to_owned()]);
        assert_eq!(matcher.push("hello E"), Matched { emit: "hello ".into(), stopped: false });
        assert_eq!(matcher.push("N"), Matched { emit: String::new(), stopped: false });
        assert_eq!(matcher.push("X"), Matched { emit: "ENX".into(), stopped: false });
        assert_eq!(matcher.push(" and EN"), Matched { emit: " and ".into(), stopped: false });
        assert_eq!(matcher.push("D more"), Matched { emit: String::new(), stopped: true });
    }

    #[test]
    fn matcher_stops_at_the_earliest_sequence() {
        let mut matcher = StopMatcher::new(&["world".to_owned(), "lo".to_owned(), String::new()]);
        assert_eq!(matcher.push("hello world"), Matched { emit: "hel".into(), stopped: true });
    }

    #[test]
    fn matcher_without_stops_emits_everything() {
        let mut matcher = StopMatcher::new(&[]);
        assert_eq!(matcher.push("a€"), Matched { emit: "a€".into(), stopped: false });
        assert_eq!(matcher.finish(), "");
    }

    #[test]
    fn matcher_respects_character_boundaries() {
        let mut matcher = StopMatcher::new(&["€x".to_owned()]);
        assert_eq!(matcher.push("a€"), Matched { emit: "a".into(), stopped: false });
        assert_eq!(matcher.finish(), "€");
    }
}
