//! `LlamaReranker` against the bundled SmolLM2-135M-Instruct (GGUF Q4_1): query likelihood,
//! which this small model can do, and the yes/no judge, which it is too small for (its
//! mechanics are tested; its quality needs a reranker model such as Qwen3-Reranker).

use std::sync::OnceLock;

use ragd_core::{ErrorKind, Reranker};
use ragd_llm_backends::{LlamaReranker, LlamaRerankerConfig, RerankMethod};

use crate::local::assets_dir;

fn config() -> LlamaRerankerConfig {
    let path = assets_dir().join(ragd_core::assets::CHAT_MODEL.path);
    assert!(path.is_file(), "{} is missing; run `cargo xtask assets`", path.display());
    LlamaRerankerConfig::new(path)
}

/// The reranker shared by the tests.
fn reranker() -> &'static LlamaReranker {
    static RERANKER: OnceLock<LlamaReranker> = OnceLock::new();
    RERANKER.get_or_init(|| LlamaReranker::load(&config()).unwrap())
}

async fn scores(query: &str, passages: &[&str]) -> Vec<f32> {
    let passages = passages.iter().map(|p| (*p).to_owned()).collect();
    reranker().score(query.to_owned(), passages).await.unwrap()
}

#[tokio::test]
async fn an_answer_outscores_unrelated_passages() {
    let cases = [
        (
            "What is the capital of France?",
            "Paris is the capital and largest city of France.",
            "Bananas are a yellow fruit that grows in tropical climates.",
        ),
        (
            "How many legs does a spider have?",
            "Spiders have eight legs, while insects have six.",
            "The stock market closed higher on Tuesday after a volatile session.",
        ),
    ];
    for (query, answer, unrelated) in cases {
        let scored = scores(query, &[unrelated, answer]).await;
        assert_eq!(scored.len(), 2);
        assert!(scored.iter().all(|s| s.is_finite()), "{scored:?}");
        assert!(scored[1] > scored[0], "{query}: answer {} <= unrelated {}", scored[1], scored[0]);
    }
}

#[tokio::test]
async fn the_judge_scores_each_passage_as_if_alone() {
    let judge =
        LlamaReranker::load(&LlamaRerankerConfig { method: RerankMethod::Judge, ..config() })
            .unwrap();
    let query = "Which planet is known as the red planet?".to_owned();
    let passages: Vec<String> =
        ["Mars is often called the red planet.", "Photosynthesis turns light into energy."]
            .map(str::to_owned)
            .to_vec();
    let together = judge.score(query.clone(), passages.clone()).await.unwrap();
    assert_eq!(together.len(), 2);
    assert!(together.iter().all(|s| s.is_finite()), "{together:?}");
    assert_ne!(together[0], together[1], "the passage changes the judgement");
    for (passage, score) in passages.iter().zip(&together) {
        let alone = judge.score(query.clone(), vec![passage.clone()]).await.unwrap();
        assert!((alone[0] - score).abs() < 1e-4, "{passage}: alone {} vs {score}", alone[0]);
    }
}

#[tokio::test]
async fn a_passage_scores_the_same_alone_and_among_others() {
    let query = "Which planet is known as the red planet?";
    let passages = [
        "Mars is often called the red planet because of iron oxide on its surface.",
        "Jupiter is the largest planet in the solar system.",
        "Photosynthesis turns light into chemical energy in plants.",
    ];
    let together = scores(query, &passages).await;
    for (passage, score) in passages.iter().zip(&together) {
        let alone = scores(query, &[passage]).await;
        assert!((alone[0] - score).abs() < 1e-3, "{passage}: alone {} vs {score}", alone[0]);
    }
    assert_eq!(scores(query, &[]).await, Vec::<f32>::new());
}

#[tokio::test]
async fn long_passages_are_cut_to_fit() {
    let reranker = LlamaReranker::load(&LlamaRerankerConfig {
        context_length: 256,
        max_passage_chars: 400,
        ..config()
    })
    .unwrap();
    let long = "The quick brown fox jumps over the lazy dog. ".repeat(200);
    let scored = reranker.score("fox".to_owned(), vec![long.clone()]).await.unwrap();
    assert!(scored[0].is_finite());
    // With the default window, a prompt of about 900 tokens is scored in one piece.
    let scored = scores("Which animal jumps over the dog?", &[&long]).await;
    assert!(scored[0].is_finite() && scored[0] < 0.0, "{scored:?}");

    // Many tokens per char: cut shorter until the prompt fits, never an error for the search.
    let small =
        LlamaReranker::load(&LlamaRerankerConfig { context_length: 256, ..config() }).unwrap();
    let emoji = "🙂🚲🌧️ ".repeat(1000);
    let scored = small.score("weather".to_owned(), vec![emoji, "rain".to_owned()]).await.unwrap();
    assert!(scored.iter().all(|s| s.is_finite()), "{scored:?}");

    let query = "word ".repeat(400);
    let err = reranker.score(query, vec!["short".to_owned()]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ContextTooLong, "{err}");
}

#[test]
fn a_file_that_is_not_gguf_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.gguf");
    std::fs::write(&path, b"not a model").unwrap();
    let err = LlamaReranker::load(&LlamaRerankerConfig::new(&path)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}
