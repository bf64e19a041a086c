//! `ragd search QUERY`: search the stored documents from the command line.

use ragd::Config;
use ragd_search::SearchQuery;

/// Which search to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SearchMode {
    /// FTS5 BM25 over chunk text.
    Keyword,
    /// Nearest chunk vectors to the query's embedding.
    Semantic,
    /// Both, fused by reciprocal rank fusion.
    Hybrid,
}

/// Runs one search and prints the hits, best first.
#[allow(clippy::print_stdout)] // The hits are this verb's output.
pub(crate) fn run(
    config: &Config,
    text: &str,
    mode: SearchMode,
    top_k: usize,
    rerank: Option<bool>,
) -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let engine = crate::offline_engine(config, false).await?;
        let search = engine.search();
        let query = SearchQuery {
            text: text.to_owned(),
            top_k,
            document_ids: Vec::new(),
            collection_ids: Vec::new(),
            filter: ragd_core::MetadataFilter::default(),
        };
        let hits = match mode {
            SearchMode::Keyword => search.keyword(&query).await?,
            SearchMode::Semantic => search.semantic(&query).await?,
            SearchMode::Hybrid => search.hybrid(&query, search.hybrid_options(rerank)).await?,
        };
        if hits.is_empty() {
            println!("no hits");
        }
        for (rank, hit) in hits.iter().enumerate() {
            let page = hit.chunk.page.map(|p| format!(" p.{p}")).unwrap_or_default();
            let fused = match (hit.fused_score, hit.rerank_score) {
                (Some(fused), Some(_)) => format!(" (reranked; fused {fused:.4})"),
                _ => String::new(),
            };
            println!(
                "{}. {:.4}{fused}  {}{page}  chunk {}",
                rank + 1,
                hit.score,
                hit.filename,
                hit.chunk.id
            );
            let text: String = hit.chunk.text.split_whitespace().collect::<Vec<_>>().join(" ");
            let preview: String = text.chars().take(200).collect();
            println!("   {preview}{}", if text.chars().count() > 200 { "…" } else { "" });
        }
        Ok(())
    })
}
