//! Retrieval evaluation: a labelled set of queries, and recall@k, MRR@10 and nDCG@10 of the
//! hits a search mode returns for them.
//!
//! Labels name documents by file name and, optionally, a phrase that the answering chunk
//! contains, so a set stays valid across data directories (chunk ids are not stable: they
//! are made at ingest). A hit is relevant when its document is a labelled one and its text
//! contains the label's phrase (ASCII case-insensitive), if the label has one. Each label is
//! credited once: a second hit for the same label is not a gain again.

use serde::Deserialize;

use crate::searcher::Hit;

/// The depth MRR and nDCG are computed at.
pub const METRIC_DEPTH: usize = 10;

/// One relevant item of a query.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Relevant {
    /// The document's file name.
    pub document: String,
    /// A phrase the answering chunk contains; without it any chunk of the document counts.
    #[serde(default)]
    pub phrase: Option<String>,
}

/// A query with what answers it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelledQuery {
    /// The query text.
    pub query: String,
    /// What answers it (at least one).
    pub relevant: Vec<Relevant>,
}

/// A labelled set, as stored in a JSON file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalSet {
    /// What the set is.
    #[serde(default)]
    pub description: Option<String>,
    /// The queries.
    pub queries: Vec<LabelledQuery>,
}

impl EvalSet {
    /// Reads a set from JSON and checks that every query has a label.
    ///
    /// # Errors
    /// A message for malformed JSON, an empty set or a query without labels.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let set: Self =
            serde_json::from_str(text).map_err(|err| format!("not a labelled set: {err}"))?;
        if set.queries.is_empty() {
            return Err("the set has no queries".to_owned());
        }
        if let Some(query) = set.queries.iter().find(|q| q.relevant.is_empty()) {
            return Err(format!("query {:?} has no relevant items", query.query));
        }
        Ok(set)
    }
}

/// The scores of one query, or their mean over a set.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Scores {
    /// The share of labels found in the top k.
    pub recall: f64,
    /// 1 / rank of the first relevant hit within the top [`METRIC_DEPTH`], else 0.
    pub mrr: f64,
    /// Normalised discounted cumulative gain at [`METRIC_DEPTH`] (binary gains).
    pub ndcg: f64,
}

/// Which label each hit answers, if any (the first label it matches that no earlier hit
/// answered).
#[must_use]
pub fn judge(hits: &[Hit], relevant: &[Relevant]) -> Vec<Option<usize>> {
    let mut credited = vec![false; relevant.len()];
    hits.iter()
        .map(|hit| {
            let text = hit.chunk.text.to_ascii_lowercase();
            let found = relevant.iter().enumerate().position(|(index, label)| {
                !credited[index]
                    && label.document == hit.filename
                    && label.phrase.as_ref().is_none_or(|p| text.contains(&p.to_ascii_lowercase()))
            });
            if let Some(index) = found {
                credited[index] = true;
            }
            found
        })
        .collect()
}

/// The scores of one ranked list judged by [`judge`], with `labels` relevant items and
/// recall counted in the top `k`.
#[must_use]
#[allow(clippy::cast_precision_loss)] // Counts of at most a few hundred.
pub fn score(judged: &[Option<usize>], labels: usize, k: usize) -> Scores {
    if labels == 0 {
        return Scores::default();
    }
    let found = judged.iter().take(k).filter(|j| j.is_some()).count();
    let mrr = judged
        .iter()
        .take(METRIC_DEPTH)
        .position(Option::is_some)
        .map_or(0.0, |rank| 1.0 / (rank + 1) as f64);
    let discount = |rank: usize| 1.0 / ((rank + 2) as f64).log2();
    let dcg: f64 = judged
        .iter()
        .take(METRIC_DEPTH)
        .enumerate()
        .filter(|(_, j)| j.is_some())
        .map(|(rank, _)| discount(rank))
        .sum();
    let ideal: f64 = (0..labels.min(METRIC_DEPTH)).map(discount).sum();
    Scores { recall: found as f64 / labels as f64, mrr, ndcg: dcg / ideal }
}

/// The mean of several queries' scores.
#[must_use]
#[allow(clippy::cast_precision_loss)]
pub fn mean(scores: &[Scores]) -> Scores {
    if scores.is_empty() {
        return Scores::default();
    }
    let n = scores.len() as f64;
    Scores {
        recall: scores.iter().map(|s| s.recall).sum::<f64>() / n,
        mrr: scores.iter().map(|s| s.mrr).sum::<f64>() / n,
        ndcg: scores.iter().map(|s| s.ndcg).sum::<f64>() / n,
    }
}

#[cfg(test)]
mod tests {
    use ragd_core::{Chunk, ChunkId, DocumentId};

    use super::*;

    fn hit(filename: &str, text: &str) -> Hit {
        Hit {
            chunk: Chunk {
                id: ChunkId::new(),
                document_id: DocumentId::new(),
                ordinal: 0,
                text: text.to_owned(),
                char_start: 0,
                char_end: text.chars().count() as u64,
                token_count: 1,
                page: None,
                heading: None,
            },
            filename: filename.to_owned(),
            score: 1.0,
            snippet: None,
            keyword_rank: None,
            semantic_rank: None,
            fused_score: None,
            rerank_score: None,
        }
    }

    fn label(document: &str, phrase: Option<&str>) -> Relevant {
        Relevant { document: document.to_owned(), phrase: phrase.map(str::to_owned) }
    }

    #[test]
    fn hits_are_judged_by_document_and_phrase_and_credited_once() {
        let labels = [label("fox.md", Some("Sour Grapes")), label("ant.md", None)];
        let hits = [
            hit("crow.md", "a crow"),
            hit("fox.md", "the fox left"),
            hit("fox.md", "they are sour grapes, said the fox"),
            hit("fox.md", "sour grapes again"),
            hit("ant.md", "the ant worked"),
        ];
        assert_eq!(judge(&hits, &labels), vec![None, None, Some(0), None, Some(1)]);
    }

    #[test]
    fn metrics_match_hand_computed_values() {
        // Relevant at ranks 3 and 5 of two labels.
        let judged = [None, None, Some(0), None, Some(1)];
        let scores = score(&judged, 2, 10);
        assert!((scores.recall - 1.0).abs() < 1e-9);
        assert!((scores.mrr - 1.0 / 3.0).abs() < 1e-9);
        let dcg = 1.0 / 4_f64.log2() + 1.0 / 6_f64.log2();
        let ideal = 1.0 + 1.0 / 3_f64.log2();
        assert!((scores.ndcg - dcg / ideal).abs() < 1e-9);
        // Recall at 3 sees only the first.
        assert!((score(&judged, 2, 3).recall - 0.5).abs() < 1e-9);
        // Nothing found.
        assert_eq!(score(&[None, None], 1, 10), Scores::default());
        // A perfect list.
        let perfect = score(&[Some(0), Some(1)], 2, 10);
        assert!((perfect.ndcg - 1.0).abs() < 1e-9 && (perfect.mrr - 1.0).abs() < 1e-9);
        let both = mean(&[perfect, Scores::default()]);
        assert!((both.recall - 0.5).abs() < 1e-9);
    }

    #[test]
    fn sets_without_queries_or_labels_are_refused() {
        assert!(EvalSet::from_json(r#"{"queries": []}"#).is_err());
        assert!(EvalSet::from_json(r#"{"queries": [{"query": "x", "relevant": []}]}"#).is_err());
        assert!(EvalSet::from_json(r#"{"queries": [{"query": "x"}]}"#).is_err());
        let set = EvalSet::from_json(
            r#"{"queries": [{"query": "x", "relevant": [{"document": "a.md"}]}]}"#,
        )
        .unwrap();
        assert_eq!(set.queries[0].relevant[0].phrase, None);
    }
}
