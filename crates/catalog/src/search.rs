//! Keyword search over chunk text with SQLite FTS5.
//!
//! User text never reaches the FTS5 query parser as syntax: it is split into terms here,
//! each term becomes a quoted FTS5 string, and the strings are joined with `OR`. Operators
//! (`AND`, `NEAR`, `*`, `^`, `column:`) and unbalanced quotes or parentheses in the input
//! are therefore plain separators or words, never errors. Ranking is FTS5's BM25.

use std::{collections::HashSet, sync::LazyLock};

use ragd_core::{Chunk, DocumentId};
use rusqlite::params;

use crate::{
    error::{Error, Result},
    rows::{CHUNK_COLUMN_COUNT, CHUNK_COLUMNS, ChunkRow},
    sqlite::SqliteCatalog,
};

/// At most this many distinct terms of a query are searched for.
pub const MAX_QUERY_TERMS: usize = 32;

/// The marker placed before each matched term in [`KeywordHit::snippet`].
pub const HIGHLIGHT_START: &str = "<mark>";

/// The marker placed after each matched term in [`KeywordHit::snippet`].
pub const HIGHLIGHT_END: &str = "</mark>";

/// The most tokens a snippet holds.
pub(crate) const SNIPPET_TOKENS: u32 = 32;

/// A keyword search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeywordQuery {
    /// Free text from the user; any chunk containing any of its words matches.
    pub text: String,
    /// The most hits to return; 0 returns none.
    pub top_k: u32,
    /// Only search these documents; empty searches all.
    pub document_ids: Vec<DocumentId>,
}

/// One chunk found by [`Catalog::keyword_search`].
#[derive(Debug, Clone, PartialEq)]
pub struct KeywordHit {
    /// The chunk found.
    pub chunk: Chunk,
    /// Its document's file name.
    pub filename: String,
    /// Relevance: higher is better, positive for any match. SQLite gives the negated BM25
    /// rank, Postgres the cover density rank (`ts_rank_cd`); scores of the two backends are
    /// not comparable.
    pub score: f32,
    /// An excerpt of the chunk around the matches, each match wrapped in
    /// [`HIGHLIGHT_START`] and [`HIGHLIGHT_END`], with `…` where text was cut. The chunk
    /// text itself is not escaped: HTML clients must escape it around the markers.
    pub snippet: String,
}

/// The words of a keyword query, shared by SQLite's and Postgres' searches: each distinct
/// word (a run of alphanumeric chars, lowercased) in order of first appearance, leaving out
/// English function words when other words remain, at most [`MAX_QUERY_TERMS`]. Empty when
/// the text has no word.
pub(crate) fn query_words(text: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    let words: Vec<String> = text
        .split(|ch: char| !ch.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .filter(|word| seen.insert(word.clone()))
        .collect();
    // Function words match nearly every chunk and, ORed in, rank chunks that share nothing
    // but "the" or "my" with the query. They are dropped unless the query has nothing else.
    let (content, function): (Vec<String>, Vec<String>) =
        words.into_iter().partition(|word| !STOPWORDS.contains(&word.as_str()));
    let chosen = if content.is_empty() { function } else { content };
    chosen.into_iter().take(MAX_QUERY_TERMS).collect()
}

/// Turns free text into a safe FTS5 query: each of its [`query_words`] as a quoted string,
/// joined with `OR`. `None` when there is no word.
pub(crate) fn fts_query(text: &str) -> Option<String> {
    let terms: Vec<String> = query_words(text)
        .iter()
        // Words hold no quotes; doubling them anyway keeps the quoting correct by
        // construction.
        .map(|word| format!("\"{}\"", word.replace('"', "\"\"")))
        .collect();
    if terms.is_empty() { None } else { Some(terms.join(" OR ")) }
}

/// The error for a search text without a searchable word (only punctuation, say).
pub(crate) fn no_searchable_word(text: &str) -> Error {
    Error::InvalidInput(format!("search text {text:?} contains no searchable word"))
}

/// English function words left out of keyword queries that have other words.
const STOPWORDS: &[&str] = &[
    "a", "about", "after", "all", "am", "an", "and", "any", "are", "as", "at", "be", "been",
    "being", "but", "by", "can", "could", "did", "do", "does", "for", "from", "had", "has", "have",
    "he", "her", "him", "his", "how", "i", "if", "in", "into", "is", "it", "its", "me", "my", "no",
    "not", "of", "on", "or", "our", "she", "should", "so", "than", "that", "the", "their", "them",
    "then", "there", "these", "they", "this", "those", "to", "up", "us", "was", "we", "were",
    "what", "when", "where", "which", "while", "who", "why", "will", "with", "would", "you",
    "your",
];

/// The keyword search, one text so each connection prepares it once (statement cache).
///
/// The limit is cast: SQLite reads a bare `LIMIT ?3`'s bound value while it compiles the
/// statement (`computeLimitRegisters` takes an integer limit as a constant), which marks the
/// statement to be re-prepared whenever `?3` is bound again: parsing and planning anew on
/// every search. A cast is no integer literal, so the plan holds for any limit.
static KEYWORD_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {CHUNK_COLUMNS}, d.filename, bm25(chunks_fts), \
             snippet(chunks_fts, 0, '{HIGHLIGHT_START}', '{HIGHLIGHT_END}', '…', {SNIPPET_TOKENS}) \
         FROM chunks_fts \
         JOIN chunks c ON c.seq = chunks_fts.rowid \
         JOIN documents d ON d.id = c.document_id \
         WHERE chunks_fts MATCH ?1 \
           AND (?2 IS NULL OR c.document_id IN (SELECT value FROM json_each(?2))) \
         ORDER BY bm25(chunks_fts) \
         LIMIT CAST(?3 AS INTEGER)"
    )
});

impl SqliteCatalog {
    /// Finds the chunks that best match `query.text` by BM25, best first.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when the text has no searchable word (for example only
    /// punctuation); [`Error::Sqlite`] when the query fails.
    pub(crate) fn keyword_search(&self, query: &KeywordQuery) -> Result<Vec<KeywordHit>> {
        let Some(fts) = fts_query(&query.text) else {
            return Err(no_searchable_word(&query.text));
        };
        if query.top_k == 0 {
            return Ok(Vec::new());
        }
        // Hyphenated UUIDs need no JSON escaping.
        let documents = (!query.document_ids.is_empty()).then(|| {
            let quoted: Vec<String> =
                query.document_ids.iter().map(|id| format!("\"{id}\"")).collect();
            format!("[{}]", quoted.join(","))
        });
        let conn = self.read();
        let mut statement = conn.prepare_cached(&KEYWORD_SQL)?;
        let rows = statement.query_map(params![fts, documents, query.top_k], |row| {
            Ok((
                ChunkRow::read(row)?,
                row.get::<_, String>(CHUNK_COLUMN_COUNT)?,
                row.get::<_, f64>(CHUNK_COLUMN_COUNT + 1)?,
                row.get::<_, String>(CHUNK_COLUMN_COUNT + 2)?,
            ))
        })?;
        let mut hits = Vec::new();
        for row in rows {
            let (chunk, filename, rank, snippet) = row?;
            hits.push(KeywordHit {
                chunk: chunk.into_chunk()?,
                filename,
                // BM25 ranks are small; f32 keeps enough precision to order them.
                score: (-rank) as f32,
                snippet,
            });
        }
        Ok(hits)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // A failed setup fails the test loudly.

    use rusqlite::StatementStatus;

    use super::*;

    #[test]
    fn searches_reuse_the_prepared_statement() {
        // SQLite re-prepares a statement whose plan depended on a bound value each time
        // that value is bound again: parsing and planning on every search.
        let (_dir, catalog, document, _chunk) =
            crate::sqlite::tests::seeded("the quokka crossed the road to meet a wombat");
        let searches = [
            ("quokka", 5, Vec::new()),
            ("wombat road", 3, Vec::new()),
            ("quokka", 5, vec![document]),
            ("road", 1, vec![document]),
            ("wombat", 20, Vec::new()),
        ];
        for (words, top_k, document_ids) in searches {
            let query = KeywordQuery { text: words.to_owned(), top_k, document_ids };
            assert_eq!(catalog.keyword_search(&query).unwrap().len(), 1, "{words}");
        }
        let conn = catalog.read();
        let statement = conn.prepare_cached(&KEYWORD_SQL).unwrap();
        assert_eq!(statement.get_status(StatementStatus::Run), 5);
        assert_eq!(statement.get_status(StatementStatus::RePrepare), 0);
    }

    #[test]
    fn query_terms_are_quoted_deduplicated_and_joined() {
        assert_eq!(fts_query("Rust, rust AND \"sqlite\"").unwrap(), r#""rust" OR "sqlite""#);
        assert_eq!(fts_query("NEAR(a b)").unwrap(), r#""near" OR "b""#);
        assert_eq!(fts_query("col:x^2*").unwrap(), r#""col" OR "x" OR "2""#);
        assert_eq!(fts_query("Ünïcødé 日本語").unwrap(), r#""ünïcødé" OR "日本語""#);
        assert!(fts_query("\" )( * ^ : -").is_none());
        assert!(fts_query("").is_none());
    }

    #[test]
    fn function_words_are_dropped_unless_nothing_else_is_left() {
        assert_eq!(
            fts_query("When will my order be delivered?").unwrap(),
            r#""order" OR "delivered""#
        );
        assert_eq!(fts_query("to be or not to be").unwrap(), r#""to" OR "be" OR "or" OR "not""#);
    }

    #[test]
    fn query_words_are_the_terms_of_the_fts_query() {
        assert_eq!(query_words("When will my Order be delivered? order"), ["order", "delivered"]);
        assert_eq!(query_words("to be or not to be"), ["to", "be", "or", "not"]);
        assert!(query_words("?! ...").is_empty());
    }

    #[test]
    fn query_terms_are_capped() {
        let text: Vec<String> = (0..100).map(|n| format!("w{n}")).collect();
        let query = fts_query(&text.join(" ")).unwrap();
        assert_eq!(query.matches(" OR ").count(), MAX_QUERY_TERMS - 1);
    }
}
