//! `ragd eval FILE`: scores keyword, semantic and hybrid search (and hybrid + rerank when a
//! reranker is configured) on a labelled set of queries (`ragd_search::eval`) against the
//! documents of a data directory, and prints recall@k, MRR@10, nDCG@10 and the mean time per
//! query of each mode as a table or JSON.

use std::path::Path;

use ragd::Config;
use ragd_search::eval::{EvalSet, METRIC_DEPTH, Scores, judge, mean, score};
use ragd_search::{SearchQuery, Searcher};

/// The modes scored, in print order; the last only with a reranker.
const MODES: [&str; 4] = ["keyword", "semantic", "hybrid", "hybrid+rerank"];

/// One mode's hits for a query; a query keyword search cannot use (no words) finds nothing.
async fn hits(
    search: &Searcher,
    mode: &str,
    query: &SearchQuery,
) -> Result<Vec<ragd_search::Hit>, ragd_search::Error> {
    let result = match mode {
        "keyword" => search.keyword(query).await,
        "semantic" => search.semantic(query).await,
        "hybrid" => search.hybrid(query, search.hybrid_options(Some(false))).await,
        _ => search.hybrid(query, search.hybrid_options(Some(true))).await,
    };
    match result {
        Err(err) if mode == "keyword" && err.kind() == ragd_core::ErrorKind::InvalidInput => {
            Ok(Vec::new())
        }
        other => other,
    }
}

/// Runs the set and prints the scores.
#[allow(clippy::print_stdout, clippy::print_stderr)] // The scores are this verb's output.
pub(crate) fn run(
    config: &Config,
    file: &Path,
    k: usize,
    json: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(file).map_err(|err| format!("{}: {err}", file.display()))?;
    let set = EvalSet::from_json(&text).map_err(|err| format!("{}: {err}", file.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let engine = crate::offline_engine(config, false).await?;
        if engine.catalog().count_documents()? == 0 {
            return Err(format!(
                "no documents in {}: ingest the set's documents first (`ragd ingest DIR`)",
                config.data_dir.display()
            )
            .into());
        }
        let search = engine.search();
        let depth = k.max(METRIC_DEPTH);
        let mut results = Vec::new();
        let modes = if search.reranker_model().is_some() { &MODES[..] } else { &MODES[..3] };
        for &mode in modes {
            let started = std::time::Instant::now();
            let mut scores = Vec::with_capacity(set.queries.len());
            for labelled in &set.queries {
                let query = SearchQuery {
                    text: labelled.query.clone(),
                    top_k: depth,
                    document_ids: Vec::new(),
                    collection_ids: Vec::new(),
                    filter: ragd_core::MetadataFilter::default(),
                };
                let found = hits(search, mode, &query).await?;
                scores.push(score(&judge(&found, &labelled.relevant), labelled.relevant.len(), k));
            }
            #[allow(clippy::cast_precision_loss)] // Sets are small.
            let ms = started.elapsed().as_secs_f64() * 1000.0 / set.queries.len() as f64;
            results.push((mode, mean(&scores), ms));
        }
        print(&results, set.queries.len(), k, json);
        Ok(())
    })
}

#[allow(clippy::print_stdout)]
fn print(results: &[(&str, Scores, f64)], queries: usize, k: usize, json: bool) {
    if json {
        let modes: serde_json::Map<String, serde_json::Value> = results
            .iter()
            .map(|(mode, s, ms)| {
                let scores = serde_json::json!({
                    format!("recall@{k}"): s.recall, "mrr@10": s.mrr, "ndcg@10": s.ndcg,
                    "ms_per_query": ms,
                });
                ((*mode).to_owned(), scores)
            })
            .collect();
        println!("{}", serde_json::json!({"queries": queries, "k": k, "modes": modes}));
        return;
    }
    println!("{queries} queries");
    println!(
        "{:<14} {:>10} {:>8} {:>8} {:>12}",
        "mode",
        format!("recall@{k}"),
        "MRR@10",
        "nDCG@10",
        "ms/query"
    );
    for (mode, s, ms) in results {
        println!("{mode:<14} {:>10.3} {:>8.3} {:>8.3} {ms:>12.1}", s.recall, s.mrr, s.ndcg);
    }
}
