//! Keyword search over chunk text with Postgres full-text search, and the query building
//! that session search shares.
//!
//! The words searched for are SQLite's ([`query_words`]: the distinct words of the text,
//! function words dropped unless nothing else is left, at most
//! [`MAX_QUERY_TERMS`](crate::MAX_QUERY_TERMS)). Each word reaches Postgres only as a bind
//! parameter of `plainto_tsquery`, and the per-word queries are ORed with the `||` operator,
//! so user text never reaches the `tsquery` syntax. Chunks rank by cover density
//! (`ts_rank_cd`), best first; snippets come from `ts_headline`, with `…` where text was cut
//! as FTS5's `snippet` gives.
//!
//! Postgres' `english` configuration drops its own stop words, and the stored `tsvector`s
//! hold none either. A query whose every word is such a stop word ("to be or not to be",
//! "the") would match nothing, where FTS5 matches the chunks holding the words; such a query
//! is searched with `ragd_simple` (no stop words, no stemming; accents removed) over
//! `to_tsvector('ragd_simple', text)` computed at query time. That reads every row, which only
//! such queries pay, and they match nearly every row anyway.

use postgres::{GenericClient, types::ToSql};

use crate::{
    error::Result,
    pg::PostgresCatalog,
    rows::{CHUNK_COLUMN_COUNT, CHUNK_COLUMNS, ChunkRow, id_to_sql},
    search::{
        HIGHLIGHT_END, HIGHLIGHT_START, KeywordHit, KeywordQuery, SNIPPET_TOKENS,
        no_searchable_word, query_words,
    },
};

/// The text search configuration of the stored `tsvector` columns (`schema.rs`).
pub(crate) const TS_CONFIG: &str = "ragd_english";

/// The configuration of queries whose every word [`TS_CONFIG`] drops as a stop word.
const FALLBACK_CONFIG: &str = "ragd_simple";

/// The fewest words a snippet holds when the chunk has them (`ts_headline`'s `MinWords`).
const SNIPPET_MIN_WORDS: u32 = 12;

/// The bind parameters of a statement built piece by piece.
#[derive(Debug, Default)]
pub(crate) struct SqlParams {
    values: Vec<Box<dyn ToSql + Sync>>,
}

impl SqlParams {
    /// Adds a parameter and returns its placeholder (`$1`, `$2`, ...).
    pub(crate) fn push(&mut self, value: impl ToSql + Sync + 'static) -> String {
        self.values.push(Box::new(value));
        format!("${}", self.values.len())
    }

    /// The parameters, in placeholder order, as a statement takes them.
    pub(crate) fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.values.iter().map(|value| &**value).collect()
    }
}

/// The words of a keyword query and the configuration that searches them.
#[derive(Debug)]
pub(crate) struct TextQuery {
    words: Vec<String>,
    config: &'static str,
}

impl TextQuery {
    /// The query for `words` (from [`query_words`], not empty): with [`TS_CONFIG`] when it
    /// keeps some of them, else with the `simple` configuration. Asks the database, which
    /// knows the configuration's stop words.
    pub(crate) fn new(client: &mut impl GenericClient, words: Vec<String>) -> Result<Self> {
        let mut query = Self { words, config: TS_CONFIG };
        let mut params = SqlParams::default();
        let tsquery = query.tsquery(&mut params);
        let nodes: i32 =
            client.query_one(&format!("SELECT numnode({tsquery})"), &params.refs())?.try_get(0)?;
        if nodes == 0 {
            query.config = FALLBACK_CONFIG;
        }
        Ok(query)
    }

    /// The configuration the query uses, a constant of this module.
    pub(crate) const fn config(&self) -> &'static str {
        self.config
    }

    /// The SQL expression of the `tsquery`: any of the words. Each word is a new parameter
    /// of `params`; the expression may be used several times in one statement.
    pub(crate) fn tsquery(&self, params: &mut SqlParams) -> String {
        let config = self.config;
        let parts: Vec<String> = self
            .words
            .iter()
            .map(|word| {
                let placeholder = params.push(word.clone());
                format!("plainto_tsquery('{config}'::regconfig, {placeholder}::text)")
            })
            .collect();
        format!("({})", parts.join(" || "))
    }

    /// The SQL expression of the `tsvector` to match: the `stored` column (with
    /// [`TS_CONFIG`]), or one computed from the `text` column with the fallback
    /// configuration.
    pub(crate) fn vector(&self, stored: &str, text: &str) -> String {
        if self.config == TS_CONFIG {
            stored.to_owned()
        } else {
            format!("to_tsvector('{}'::regconfig, {text})", self.config)
        }
    }
}

/// The `ts_headline` options: the highlight markers and snippet length of SQLite's search.
fn headline_options() -> String {
    // Double quotes keep `<`, `/` and `>` inside the values whatever the option parser
    // takes for separators.
    format!(
        "StartSel=\"{HIGHLIGHT_START}\", StopSel=\"{HIGHLIGHT_END}\", \
         MaxWords={SNIPPET_TOKENS}, MinWords={SNIPPET_MIN_WORDS}, ShortWord=0, \
         HighlightAll=false"
    )
}

/// Adds `…` where the headline does not reach the start or the end of the chunk `text`, as
/// FTS5's `snippet` does.
fn mark_cuts(text: &str, headline: &str) -> String {
    let plain = headline.replace(HIGHLIGHT_START, "").replace(HIGHLIGHT_END, "");
    let cut_start = !text.trim_start().starts_with(plain.trim_start());
    let cut_end = !text.trim_end().ends_with(plain.trim_end());
    let mut body = headline;
    if cut_start {
        body = body.trim_start();
    }
    if cut_end {
        body = body.trim_end();
    }
    format!("{}{body}{}", if cut_start { "…" } else { "" }, if cut_end { "…" } else { "" })
}

impl PostgresCatalog {
    /// Finds the chunks that best match `query.text` by cover density, best first.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) when the text has no searchable
    /// word (for example only punctuation); [`Error::Postgres`](crate::Error::Postgres)
    /// when the query fails.
    pub(crate) fn keyword_search(&self, query: &KeywordQuery) -> Result<Vec<KeywordHit>> {
        let words = query_words(&query.text);
        if words.is_empty() {
            return Err(no_searchable_word(&query.text));
        }
        if query.top_k == 0 {
            return Ok(Vec::new());
        }
        let mut client = self.client()?;
        let search = TextQuery::new(&mut *client, words)?;
        let mut params = SqlParams::default();
        let tsquery = search.tsquery(&mut params);
        let vector = search.vector("c.tsv", "c.text");
        let documents = if query.document_ids.is_empty() {
            String::new()
        } else {
            let ids: Vec<String> = query.document_ids.iter().map(id_to_sql).collect();
            format!(" AND c.document_id = ANY({})", params.push(ids))
        };
        let limit = params.push(i64::from(query.top_k));
        let options = params.push(headline_options());
        let config = search.config();
        // The best `top_k` chunks first, then the headlines of those only. Ties rank in
        // document and ordinal order.
        let sql = format!(
            "SELECT {CHUNK_COLUMNS}, d.filename, top.score, \
                    ts_headline('{config}'::regconfig, c.text, top.query, {options}::text) \
             FROM (SELECT c.id, ts_rank_cd({vector}, q.query) AS score, q.query \
                   FROM (SELECT {tsquery} AS query) q \
                   CROSS JOIN chunks c \
                   WHERE {vector} @@ q.query{documents} \
                   ORDER BY score DESC, c.document_id, c.ordinal \
                   LIMIT {limit}) top \
             JOIN chunks c ON c.id = top.id \
             JOIN documents d ON d.id = c.document_id \
             ORDER BY top.score DESC, c.document_id, c.ordinal"
        );
        let rows = client.query(&sql, &params.refs())?;
        let mut hits = Vec::with_capacity(rows.len());
        for row in &rows {
            let chunk = ChunkRow::read_pg(row)?.into_chunk()?;
            let filename: String = row.try_get(CHUNK_COLUMN_COUNT)?;
            let score: f32 = row.try_get(CHUNK_COLUMN_COUNT + 1)?;
            let headline: String = row.try_get(CHUNK_COLUMN_COUNT + 2)?;
            let snippet = mark_cuts(&chunk.text, &headline);
            hits.push(KeywordHit { chunk, filename, score, snippet });
        }
        Ok(hits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_become_parameters_ored_together() {
        let query = TextQuery { words: vec!["rust".into(), "sql".into()], config: TS_CONFIG };
        let mut params = SqlParams::default();
        params.push(1_i64);
        assert_eq!(
            query.tsquery(&mut params),
            "(plainto_tsquery('ragd_english'::regconfig, $2::text) || \
             plainto_tsquery('ragd_english'::regconfig, $3::text))"
        );
        assert_eq!(params.refs().len(), 3);
        assert_eq!(query.vector("c.tsv", "c.text"), "c.tsv");
        let fallback = TextQuery { words: vec!["the".into()], config: FALLBACK_CONFIG };
        assert_eq!(
            fallback.vector("c.tsv", "c.text"),
            "to_tsvector('ragd_simple'::regconfig, c.text)"
        );
    }

    #[test]
    fn cut_text_is_marked_with_ellipses() {
        let text = "one two three four";
        assert_eq!(
            mark_cuts(text, "one <mark>two</mark> three four"),
            "one <mark>two</mark> three four"
        );
        assert_eq!(mark_cuts(text, "<mark>two</mark> three "), "…<mark>two</mark> three…");
        assert_eq!(mark_cuts(text, "one <mark>two</mark>"), "one <mark>two</mark>…");
        assert_eq!(mark_cuts(text, " three <mark>four</mark>"), "…three <mark>four</mark>");
    }

    #[test]
    fn headline_options_carry_the_markers() {
        let options = headline_options();
        assert!(options.contains("StartSel=\"<mark>\""), "{options}");
        assert!(options.contains("StopSel=\"</mark>\""), "{options}");
        assert!(options.contains("MaxWords=32"), "{options}");
    }
}
