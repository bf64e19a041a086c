//! `LocalLlm` against the bundled SmolLM2-135M-Instruct (GGUF Q4_1).
//!
//! One model instance is shared by the tests (they run on one generation thread, as in the
//! server); tests that need other settings load their own, among them the tests of
//! concurrent generation.

use std::sync::OnceLock;
use std::time::Instant;

use futures::{FutureExt, StreamExt};
use ragd_core::{
    ChatMessage, ChatRole, CompletionDelta, CompletionRequest, ErrorKind, FinishReason,
    GenerationSettings, LlmBackend,
};
use ragd_llm_backends::{LocalLlm, LocalLlmConfig};

pub(crate) use ragd_test_utils::assets_dir;

/// The bundled chat model's configuration.
fn config() -> LocalLlmConfig {
    let path = assets_dir().join(ragd_core::assets::CHAT_MODEL.path);
    assert!(path.is_file(), "{} is missing; run `cargo xtask assets`", path.display());
    LocalLlmConfig::new(path)
}

/// The model shared by the tests.
fn llm() -> &'static LocalLlm {
    static LLM: OnceLock<LocalLlm> = OnceLock::new();
    LLM.get_or_init(|| LocalLlm::load(&config()).unwrap())
}

/// Greedy settings with `max_new_tokens`.
pub(crate) fn greedy(max_new_tokens: u32) -> GenerationSettings {
    GenerationSettings {
        temperature: 0.0,
        repetition_penalty: 1.0,
        max_new_tokens,
        ..GenerationSettings::default()
    }
}

/// A one-question conversation.
pub(crate) fn ask(question: &str, settings: GenerationSettings) -> CompletionRequest {
    CompletionRequest {
        messages: vec![ChatMessage { role: ChatRole::User, content: question.to_owned() }],
        settings,
    }
}

const QUESTION: &str = "What is the capital of France?";

#[test]
fn the_bundled_model_loads_with_its_metadata() {
    let llm = llm();
    assert_eq!(llm.name(), "llama-cpp");
    assert_eq!(llm.model_id(), "SmolLM2-135M-Instruct.Q4_1");
    assert!(llm.context_length() > 0);
    assert!(llm.context_length() <= 4096);
    let template = llm.chat_template().unwrap();
    assert!(template.contains("<|im_start|>"), "{template}");
    assert!(llm.count_tokens("Hello world").unwrap() > 0);
    assert_eq!(llm.count_tokens("").unwrap(), 0);
}

#[tokio::test]
async fn greedy_generation_is_reproducible() {
    let first = llm().complete(ask(QUESTION, greedy(40))).await.unwrap();
    let second = llm().complete(ask(QUESTION, greedy(40))).await.unwrap();
    assert!(!first.text.trim().is_empty());
    assert_eq!(first.text, second.text);
    assert_eq!(first.model, "SmolLM2-135M-Instruct.Q4_1");
    assert!(first.usage.prompt_tokens > 0);
    assert!(first.usage.completion_tokens > 0);
}

#[tokio::test]
async fn a_fixed_seed_makes_sampling_reproducible() {
    let settings = GenerationSettings {
        temperature: 0.9,
        seed: Some(7),
        max_new_tokens: 24,
        ..GenerationSettings::default()
    };
    let first = llm().complete(ask(QUESTION, settings.clone())).await.unwrap();
    let second = llm().complete(ask(QUESTION, settings)).await.unwrap();
    assert!(!first.text.is_empty());
    assert_eq!(first.text, second.text);
}

#[tokio::test]
async fn max_new_tokens_limits_the_length() {
    let completion = llm().complete(ask(QUESTION, greedy(5))).await.unwrap();
    assert!(completion.usage.completion_tokens <= 5, "{:?}", completion.usage);
    assert_eq!(completion.finish_reason, FinishReason::Length);
}

#[tokio::test]
async fn generation_stops_before_a_stop_sequence() {
    let full = llm().complete(ask(QUESTION, greedy(40))).await.unwrap();
    let text = full.text;
    // A short piece from the middle of the output, starting on a character boundary.
    let mut middle = text.len() / 2;
    while !text.is_char_boundary(middle) {
        middle += 1;
    }
    let stop: String = text[middle..].chars().take(3).collect();
    assert_eq!(stop.chars().count(), 3, "output too short: {text:?}");
    let expected = &text[..text.find(&stop).unwrap()];

    let mut settings = greedy(40);
    settings.stop = vec![stop.clone()];
    let stopped = llm().complete(ask(QUESTION, settings)).await.unwrap();
    assert_eq!(stopped.text, expected, "stop {stop:?} in {text:?}");
    assert_eq!(stopped.finish_reason, FinishReason::StopSequence);
}

#[tokio::test]
async fn streaming_matches_complete() {
    let whole = llm().complete(ask(QUESTION, greedy(32))).await.unwrap();
    let deltas: Vec<_> = llm().stream(ask(QUESTION, greedy(32))).await.unwrap().collect().await;
    let deltas: Vec<CompletionDelta> = deltas.into_iter().map(Result::unwrap).collect();

    let text: String = deltas
        .iter()
        .filter_map(|delta| match delta {
            CompletionDelta::Text(text) => Some(text.as_str()),
            CompletionDelta::Done { .. } => None,
        })
        .collect();
    assert_eq!(text, whole.text);
    let done: Vec<_> =
        deltas.iter().filter(|delta| matches!(delta, CompletionDelta::Done { .. })).collect();
    assert_eq!(done.len(), 1);
    assert!(matches!(deltas.last(), Some(CompletionDelta::Done { finish_reason, usage })
        if *finish_reason == whole.finish_reason && *usage == whole.usage));
}

#[tokio::test]
async fn dropping_a_stream_early_does_not_wedge_the_worker() {
    let mut stream = llm().stream(ask("Tell me a long story.", greedy(400))).await.unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert!(matches!(first, CompletionDelta::Text(_)));
    drop(stream);

    let completion = llm().complete(ask(QUESTION, greedy(8))).await.unwrap();
    assert!(!completion.text.is_empty());
}

#[tokio::test]
async fn a_prompt_longer_than_the_context_is_rejected() {
    let long = "lorem ipsum ".repeat(llm().context_length());
    let err = llm().complete(ask(&long, greedy(8))).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ContextTooLong);

    let max_new = u32::try_from(llm().context_length()).unwrap();
    let err = llm().stream(ask(QUESTION, greedy(max_new))).await.err().unwrap();
    assert_eq!(err.kind(), ErrorKind::ContextTooLong);
}

#[tokio::test]
async fn bad_requests_are_invalid_input() {
    let empty = CompletionRequest { messages: Vec::new(), settings: greedy(8) };
    assert_eq!(llm().complete(empty).await.unwrap_err().kind(), ErrorKind::InvalidInput);
    let mut settings = greedy(8);
    settings.top_p = 2.0;
    assert_eq!(
        llm().complete(ask(QUESTION, settings)).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

#[tokio::test]
async fn a_full_queue_is_overloaded() {
    let mut config = config();
    config.queue_capacity = 1;
    config.context_length = Some(1024);
    config.parallel = 1;
    let llm = LocalLlm::load(&config).unwrap();
    // The first job takes the only sequence for 400 tokens, the second waits in the queue
    // of one, and the rest are refused.
    let mut streams = Vec::new();
    let mut overloaded = 0;
    for _ in 0..4 {
        match llm.stream(ask("Tell me a long story.", greedy(400))).await {
            Ok(stream) => streams.push(stream),
            Err(err) => {
                assert_eq!(err.kind(), ErrorKind::Overloaded);
                overloaded += 1;
            }
        }
    }
    assert!(overloaded >= 1, "no request was refused");
    drop(streams);
}

#[test]
fn missing_and_invalid_model_files_are_reported() {
    let err = LocalLlm::load(&LocalLlmConfig::new("/nope/missing.gguf")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.to_string().contains("/nope/missing.gguf"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.gguf");
    std::fs::write(&path, b"GGUF but nothing else").unwrap();
    let err = LocalLlm::load(&LocalLlmConfig::new(&path)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");

    std::fs::write(&path, b"plain text").unwrap();
    let err = LocalLlm::load(&LocalLlmConfig::new(&path)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}

/// A model of its own that generates for `parallel` requests at once.
fn parallel_llm(parallel: usize, context_length: u32) -> LocalLlm {
    let mut config = config();
    config.parallel = parallel;
    config.context_length = Some(context_length);
    let llm = LocalLlm::load(&config).unwrap();
    assert_eq!(llm.parallel(), parallel);
    llm
}

/// A request the greedy model answers at length: more than 400 tokens.
const LONG_ANSWER: &str = "Write a very long essay about the history of Rome.";

/// Reads a stream to its end; returns its text, its `Done` and when `Done` arrived.
async fn drain(
    mut stream: futures::stream::BoxStream<'static, ragd_core::Result<CompletionDelta>>,
) -> (String, CompletionDelta, Instant) {
    let mut text = String::new();
    while let Some(delta) = stream.next().await {
        match delta.unwrap() {
            CompletionDelta::Text(piece) => text.push_str(&piece),
            done @ CompletionDelta::Done { .. } => return (text, done, Instant::now()),
        }
    }
    panic!("the stream ended without Done after {text:?}");
}

#[tokio::test]
async fn a_short_request_finishes_while_a_long_one_is_still_generating() {
    let llm = parallel_llm(2, 1024);
    let mut long = llm.stream(ask(LONG_ANSWER, greedy(300))).await.unwrap();
    assert!(matches!(long.next().await, Some(Ok(CompletionDelta::Text(_)))));
    let long = tokio::spawn(drain(long));

    let short = llm.complete(ask(QUESTION, greedy(8))).await.unwrap();
    let short_done = Instant::now();
    assert!(!short.text.trim().is_empty());

    let (_, done, long_done) = long.await.unwrap();
    assert!(
        matches!(done, CompletionDelta::Done { finish_reason: FinishReason::Length, usage }
            if usage.completion_tokens == 300),
        "{done:?}"
    );
    assert!(short_done < long_done, "the short request waited for the long one");
}

#[tokio::test]
async fn concurrent_requests_each_get_the_answer_to_their_own_question() {
    let llm = std::sync::Arc::new(parallel_llm(4, 1024));
    let questions = [
        "What is the capital of France?",
        "Name three primary colours.",
        "What is two plus two?",
        "Say hello in Spanish.",
    ];
    let mut alone = Vec::new();
    for question in questions {
        alone.push(llm.complete(ask(question, greedy(16))).await.unwrap());
    }
    let together = futures::future::join_all(questions.iter().map(|question| {
        let llm = std::sync::Arc::clone(&llm);
        async move { llm.complete(ask(question, greedy(16))).await.unwrap() }
    }))
    .await;
    for ((question, alone), together) in questions.iter().zip(&alone).zip(&together) {
        assert!(!together.text.trim().is_empty(), "{question}");
        assert_eq!(together.usage.prompt_tokens, alone.usage.prompt_tokens, "{question}");
        assert_eq!(together.text, alone.text, "{question}");
    }
}

#[tokio::test]
async fn a_cancelled_stream_frees_its_sequence_for_the_next_request() {
    let llm = parallel_llm(2, 1024);
    let mut cancelled = llm.stream(ask(LONG_ANSWER, greedy(300))).await.unwrap();
    let mut running = llm.stream(ask(LONG_ANSWER, greedy(300))).await.unwrap();
    assert!(matches!(cancelled.next().await, Some(Ok(CompletionDelta::Text(_)))));
    let Some(Ok(CompletionDelta::Text(first))) = running.next().await else {
        panic!("the running request sent no text");
    };
    drop(cancelled);
    let running = tokio::spawn(drain(running));

    // Both sequences were taken: this request runs only once the cancelled one is freed.
    let mut settings = greedy(40);
    settings.stop = vec![" is".to_owned()];
    let next = llm.complete(ask(QUESTION, settings)).await.unwrap();
    let next_done = Instant::now();
    assert_eq!(next.finish_reason, FinishReason::StopSequence, "{next:?}");
    assert!(!next.text.contains(" is"), "{next:?}");

    let (rest, done, running_done) = running.await.unwrap();
    assert!(matches!(done, CompletionDelta::Done { finish_reason: FinishReason::Length, .. }));
    let text = first + &rest;
    assert!(text.contains("Rome"), "{text:?}");
    assert!(next_done < running_done, "the next request waited for the running one");
}

#[tokio::test]
async fn a_long_prompt_joins_in_slices_while_another_request_generates() {
    let llm = parallel_llm(2, 4096);
    // About 3,000 prompt tokens: six micro-batches of 512.
    let long_prompt = format!(
        "{}How many dogs were there?",
        "The quick brown fox jumps over the lazy dog. ".repeat(300)
    );
    let prompt_tokens = llm.count_tokens(&long_prompt).unwrap();
    assert!((2_500..4_000).contains(&prompt_tokens), "{prompt_tokens} tokens");

    let mut running = llm.stream(ask(LONG_ANSWER, greedy(400))).await.unwrap();
    assert!(matches!(running.next().await, Some(Ok(CompletionDelta::Text(_)))));
    // Only tokens sent after the long prompt is queued count below.
    while let Some(delta) = running.next().now_or_never() {
        assert!(matches!(delta, Some(Ok(CompletionDelta::Text(_)))), "{delta:?}");
    }
    let mut joining = llm.stream(ask(&long_prompt, greedy(4))).await.unwrap();

    // Tokens the running request produced while the joining one read its prompt.
    let mut meanwhile = 0;
    loop {
        tokio::select! {
            biased;
            delta = joining.next() => {
                assert!(matches!(delta, Some(Ok(CompletionDelta::Text(_)))), "{delta:?}");
                break;
            }
            delta = running.next() => match delta {
                Some(Ok(CompletionDelta::Text(_))) => meanwhile += 1,
                other => panic!("the running request ended while the prompt was read: {other:?}"),
            },
        }
    }
    // In slices of 512 the prompt takes six steps, each with a token of the running request.
    // Read in llama.cpp's batches of 2,048 instead, it would take two, and the running
    // request would produce three tokens at most (one more before the job is admitted).
    assert!(meanwhile >= 5, "{meanwhile} tokens while a {prompt_tokens}-token prompt was read");
}

#[test]
fn parallel_is_validated() {
    for parallel in [0, ragd_llm_backends::MAX_PARALLEL + 1] {
        let mut config = config();
        config.parallel = parallel;
        let err = LocalLlm::load(&config).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{parallel}: {err}");
        assert!(err.to_string().contains("parallel"), "{err}");
    }
}

#[tokio::test]
async fn dropping_the_model_ends_its_running_streams_with_an_error() {
    let llm = parallel_llm(2, 1024);
    let mut stream = llm.stream(ask(LONG_ANSWER, greedy(400))).await.unwrap();
    assert!(matches!(stream.next().await, Some(Ok(CompletionDelta::Text(_)))));
    // The drop waits for the generation thread, which ends the running job first.
    drop(llm);
    let mut last = None;
    while let Some(delta) = stream.next().await {
        last = Some(delta);
    }
    let err = last.expect("the stream ended without a last item").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
}

/// A conversation of `turns`: user, assistant, user, …
fn conversation(turns: &[&str], settings: GenerationSettings) -> CompletionRequest {
    let role =
        |index: usize| if index.is_multiple_of(2) { ChatRole::User } else { ChatRole::Assistant };
    CompletionRequest {
        messages: turns
            .iter()
            .enumerate()
            .map(|(index, text)| ChatMessage { role: role(index), content: (*text).to_owned() })
            .collect(),
        settings,
    }
}

#[tokio::test]
async fn the_next_turn_of_a_chat_reads_only_what_is_new() {
    let llm = parallel_llm(1, 1024);
    let first = llm.complete(ask(QUESTION, greedy(16))).await.unwrap();
    assert_eq!(first.usage.cached_prompt_tokens, 0, "a fresh model holds nothing");

    let turns = [QUESTION, first.text.as_str(), "And of Italy?"];
    let second = llm.complete(conversation(&turns, greedy(16))).await.unwrap();
    // The first prompt is the beginning of the second, and the model still holds it.
    assert!(
        second.usage.cached_prompt_tokens >= first.usage.prompt_tokens,
        "{:?} after {:?}",
        second.usage,
        first.usage
    );
    assert!(second.usage.cached_prompt_tokens < second.usage.prompt_tokens);

    // The answer is the one a model that holds nothing gives.
    let fresh = parallel_llm(1, 1024);
    let expected = fresh.complete(conversation(&turns, greedy(16))).await.unwrap();
    assert_eq!(expected.usage.cached_prompt_tokens, 0);
    assert_eq!(second.text, expected.text);
    assert!(second.text.contains("Rome"), "{second:?}");
}

#[tokio::test]
async fn a_different_prompt_reuses_only_the_shared_beginning() {
    let llm = parallel_llm(1, 1024);
    let fresh = parallel_llm(1, 1024);
    let long = llm.complete(ask(LONG_ANSWER, greedy(64))).await.unwrap();
    assert_eq!(long.usage.completion_tokens, 64);

    // The cells past the shared beginning (the rest of the essay prompt and its 64 tokens
    // of answer) are dropped; were they kept, this answer would attend to them.
    let other = "Name three primary colours.";
    let answer = llm.complete(ask(other, greedy(24))).await.unwrap();
    let expected = fresh.complete(ask(other, greedy(24))).await.unwrap();
    let cached = answer.usage.cached_prompt_tokens;
    assert!(cached > 0, "the chat template's beginning is shared: {:?}", answer.usage);
    assert!(cached + 4 < answer.usage.prompt_tokens, "{:?}", answer.usage);
    assert_eq!(answer.text, expected.text);

    // The same prompt again reads only its last token, for the logits of the first answer
    // token, and answers the same.
    let again = llm.complete(ask(other, greedy(24))).await.unwrap();
    assert_eq!(again.usage.cached_prompt_tokens + 1, again.usage.prompt_tokens);
    assert_eq!(again.text, expected.text);
}

#[tokio::test]
async fn each_request_takes_the_sequence_that_holds_most_of_its_prompt() {
    let llm = std::sync::Arc::new(parallel_llm(2, 1024));
    let questions = ["What is the capital of France?", "Write a haiku about autumn leaves."];
    // Both at once, so each fills its own sequence.
    let first = futures::future::join_all(questions.iter().map(|question| {
        let llm = std::sync::Arc::clone(&llm);
        async move { llm.complete(ask(question, greedy(8))).await.unwrap() }
    }))
    .await;
    // One at a time, in the other order: each finds its own prompt whole.
    for (question, before) in questions.iter().zip(&first).rev() {
        let again = llm.complete(ask(question, greedy(8))).await.unwrap();
        assert_eq!(again.usage.cached_prompt_tokens + 1, again.usage.prompt_tokens, "{question}");
        assert_eq!(again.text, before.text, "{question}");
    }
}
