//! Comparing a text extraction with a reference engine's, word by word.
//!
//! ragd's regression corpus (`ragd-ingest`'s corpus test) and the extraction benchmark
//! (`cargo xtask bench extract`) both ask how much of what `pdftotext` reads in a PDF ragd
//! also found; this is the one definition of that, so the test's threshold and the
//! benchmark's figures measure the same thing.
//!
//! Texts are compared as [`comparable`] strings: lower case, without white space, with
//! words hyphenated at a line end joined again and ligatures, dashes and quotes replaced by
//! plain letters, so that spacing, line breaking and glyph choices of two engines do not
//! count, only the words and their order within a line.

/// `text` made comparable (see the module doc).
#[must_use]
pub fn comparable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.replace("-\n", "").chars() {
        match c {
            c if c.is_whitespace() || c.is_control() => {}
            'ﬀ' => out.push_str("ff"),
            'ﬁ' => out.push_str("fi"),
            'ﬂ' => out.push_str("fl"),
            'ﬃ' => out.push_str("ffi"),
            'ﬄ' => out.push_str("ffl"),
            '‐' | '‑' | '‒' | '–' | '—' | '−' => out.push('-'),
            '‘' | '’' | '′' => out.push('\''),
            '“' | '”' | '″' => out.push('"'),
            '\u{ad}' => {}
            c => out.extend(c.to_lowercase()),
        }
    }
    out
}

/// The lines of `reference` worth comparing (three words or more, at least half letters),
/// sampled evenly down to at most `max` and made [`comparable`]. A line ending in a hyphen
/// is taken without it: the other engine may have broken the line elsewhere.
#[must_use]
pub fn sampled_lines(reference: &str, max: usize) -> Vec<String> {
    let lines: Vec<&str> = reference
        .lines()
        .map(str::trim)
        .filter(|line| {
            let letters = line.chars().filter(|c| c.is_alphabetic()).count();
            line.split_whitespace().count() >= 3 && letters * 2 >= line.chars().count()
        })
        .collect();
    let step = lines.len().div_ceil(max.max(1)).max(1);
    lines.iter().step_by(step).map(|line| comparable(line.trim_end_matches('-'))).collect()
}

/// How many of a reference's sampled lines a text holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineCoverage {
    /// Lines sampled from the reference.
    pub sampled: usize,
    /// Of those, the lines found in the text.
    pub found: usize,
    /// The first few lines not found (comparable form).
    pub missed: Vec<String>,
}

impl LineCoverage {
    /// `found / sampled`, 1 when nothing was sampled.
    #[must_use]
    pub fn share(&self) -> f64 {
        if self.sampled == 0 {
            return 1.0;
        }
        // Counts of lines are far below 2^52.
        #[allow(clippy::cast_precision_loss)]
        let share = self.found as f64 / self.sampled as f64;
        share
    }
}

/// The share of [`sampled_lines`] of `reference` (at most `max` of them) found in `text`.
#[must_use]
pub fn line_coverage(reference: &str, text: &str, max: usize) -> LineCoverage {
    let lines = sampled_lines(reference, max);
    let haystack = comparable(text);
    let missed: Vec<&String> =
        lines.iter().filter(|line| !haystack.contains(line.as_str())).collect();
    LineCoverage {
        sampled: lines.len(),
        found: lines.len() - missed.len(),
        missed: missed.into_iter().take(3).cloned().collect(),
    }
}

/// How many of the words of `reference` (lower-case runs of letters and digits, counted
/// with repetition) `text` also has, and how many there are: a comparison that list
/// bullets, table rules and link brackets of two renderings do not disturb.
#[must_use]
pub fn word_coverage(reference: &str, text: &str) -> (usize, usize) {
    let words = |text: &str| -> Vec<String> {
        text.split(|c: char| !c.is_alphanumeric())
            .filter(|word| !word.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let mut available: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for word in words(text) {
        *available.entry(word).or_default() += 1;
    }
    let wanted = words(reference);
    let found = wanted
        .iter()
        .filter(|word| match available.get_mut(word.as_str()) {
            Some(count) if *count > 0 => {
                *count -= 1;
                true
            }
            _ => false,
        })
        .count();
    (found, wanted.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spacing_and_glyph_choices_do_not_count_but_words_do() {
        let reference = "Short\nThree words here\n12 34 56 78\nand another good line\n";
        assert_eq!(sampled_lines(reference, 10), ["threewordshere", "andanothergoodline"]);
        let found = line_coverage(reference, "THREE  words\nhere. And an-\nother good line", 10);
        assert_eq!((found.sampled, found.found), (2, 2));
        let missed = line_coverage(reference, "three words there", 10);
        assert_eq!((missed.found, missed.missed.len()), (0, 2));
        assert!((missed.share() - 0.0).abs() < f64::EPSILON);
        assert_eq!(comparable("ﬁne “quotes” – dash"), "fine\"quotes\"-dash");
    }

    #[test]
    fn sampling_keeps_at_most_max_lines_evenly() {
        let reference: String = (0..1000).map(|i| format!("line number {i} here\n")).collect();
        let lines = sampled_lines(&reference, 200);
        assert_eq!(lines.len(), 200);
        assert_eq!(lines[1], "linenumber5here");
    }

    #[test]
    fn words_count_with_repetition() {
        assert_eq!(word_coverage("a b b c", "b a x"), (2, 4));
        assert_eq!(word_coverage("", "anything"), (0, 0));
    }
}
