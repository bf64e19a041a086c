//! Token-budgeted prompts: what of the documents, memory and history fits the window.
//!
//! The window is `context_length`; `max_new_tokens` are reserved for the answer and a
//! small margin for the difference between ragd's template rendering and the backend's.
//! The system prompt and the new message always go in (or the request fails with
//! `ContextTooLong`). What is left is shared out in this order:
//!
//! 1. the summary of older history, up to a quarter of it;
//! 2. document excerpts, best first, up to `documents_share` of what remains;
//! 3. recalled exchanges (long-term memory), best first, up to `memory_share`;
//! 4. recent history, newest first, with everything left (unused document and memory
//!    budget flows here), stopping at the first message that does not fit so the history
//!    stays contiguous.
//!
//! Costs are estimated per piece, then the whole prompt is rendered with the chat template
//! and counted; while it is over budget the oldest history message, then the last memory,
//! then the last document, then the summary are dropped. The returned prompt is therefore
//! within the window by the same counter the caller supplied, whatever its quirks.

use ragd_core::{ChatMessage, ChatRole, ChunkId, DocumentId, MessageId};
use serde::Serialize;

use crate::error::{Error, Result};

/// A document excerpt offered to the prompt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContextChunk {
    /// The chunk.
    pub chunk_id: ChunkId,
    /// Its document.
    pub document_id: DocumentId,
    /// The document's file name.
    pub filename: String,
    /// The page, when the format has pages.
    pub page: Option<u32>,
    /// The chunk text.
    pub text: String,
}

/// An earlier exchange recalled from long-term memory.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recollection {
    /// The user message of the exchange.
    pub user_message_id: MessageId,
    /// The assistant message of the exchange (the memory row's id).
    pub assistant_message_id: MessageId,
    /// What the user said.
    pub user: String,
    /// What the assistant answered.
    pub assistant: String,
    /// Cosine similarity to the new message.
    pub score: f32,
}

/// How the window is shared.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetConfig {
    /// The model's window in tokens.
    pub context_length: usize,
    /// Tokens reserved for the answer.
    pub max_new_tokens: u32,
    /// Tokens kept free for template differences.
    pub margin: usize,
    /// Share (0 to 1) of the flexible budget documents may take.
    pub documents_share: f32,
    /// Share (0 to 1) of the flexible budget memory may take.
    pub memory_share: f32,
}

/// Everything that may go into a prompt.
#[derive(Debug, Clone, Copy)]
pub struct PromptParts<'a> {
    /// Instructions for the model.
    pub system_prompt: &'a str,
    /// The summary of history older than `history`.
    pub summary: Option<&'a str>,
    /// Document excerpts, best first.
    pub documents: &'a [ContextChunk],
    /// Recalled exchanges, best first.
    pub memories: &'a [Recollection],
    /// Recent history, oldest first (without the new message).
    pub history: &'a [ChatMessage],
    /// The new user message.
    pub user: &'a str,
}

/// A prompt that fits.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    /// The conversation to send.
    pub messages: Vec<ChatMessage>,
    /// Its tokens, rendered with the template, by the caller's counter.
    pub prompt_tokens: usize,
    /// The budget the prompt had to stay within.
    pub available: usize,
    /// How many of the offered documents are in it (a prefix of them).
    pub documents_used: usize,
    /// How many of the offered memories are in it (a prefix of them).
    pub memories_used: usize,
    /// How many of the newest history messages are in it.
    pub history_used: usize,
    /// Whether the summary is in it.
    pub summary_used: bool,
}

/// Counts tokens the way the model does.
pub type TokenCounter<'a> = &'a (dyn Fn(&str) -> Result<usize> + Sync);

/// Counts the tokens of a whole prompt, rendered as the backend sends it
/// ([`crate::template::PromptMeter::measure`]).
pub type PromptMeasure<'a> = &'a (dyn Fn(&[ChatMessage]) -> Result<usize> + Sync);

/// The system message for the chosen pieces.
fn system_message(
    parts: &PromptParts<'_>,
    summary: bool,
    documents: usize,
    memories: usize,
) -> String {
    let mut out = parts.system_prompt.trim().to_owned();
    if summary && let Some(summary) = parts.summary {
        out.push_str("\n\nSummary of the earlier conversation:\n");
        out.push_str(summary.trim());
    }
    if memories > 0 {
        out.push_str("\n\nRecalled from earlier in the conversation:");
        for memory in &parts.memories[..memories] {
            out.push_str(&memory_block(memory));
        }
    }
    if documents > 0 {
        out.push_str("\n\nContext documents (cite them as [1], [2], ...):");
        for (index, document) in parts.documents[..documents].iter().enumerate() {
            out.push_str(&document_block(index + 1, document));
        }
    }
    out
}

fn memory_block(memory: &Recollection) -> String {
    format!("\n- User: {}\n  Assistant: {}", memory.user.trim(), memory.assistant.trim())
}

fn document_block(number: usize, document: &ContextChunk) -> String {
    let page = document.page.map(|p| format!(", page {p}")).unwrap_or_default();
    format!("\n[{number}] ({}{page})\n{}", document.filename, document.text.trim())
}

fn assemble(
    parts: &PromptParts<'_>,
    summary: bool,
    documents: usize,
    memories: usize,
    history: usize,
) -> Vec<ChatMessage> {
    let mut messages = Vec::with_capacity(history + 2);
    messages.push(ChatMessage {
        role: ChatRole::System,
        content: system_message(parts, summary, documents, memories),
    });
    messages.extend_from_slice(&parts.history[parts.history.len() - history..]);
    messages.push(ChatMessage { role: ChatRole::User, content: parts.user.to_owned() });
    messages
}

/// Every part of `parts` in one conversation, left out nothing (what a caller that must not
/// lose history is told it needs).
pub(crate) fn assemble_all(parts: &PromptParts<'_>) -> Vec<ChatMessage> {
    assemble(parts, true, parts.documents.len(), parts.memories.len(), parts.history.len())
}

fn share(budget: usize, fraction: f32) -> usize {
    let fraction = f64::from(fraction.clamp(0.0, 1.0));
    // Budgets are far below 2^52, so the float round trip is exact enough.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
    let out = (budget as f64 * fraction) as usize;
    out
}

/// Fits `parts` into the window.
///
/// # Errors
/// [`Error::ContextTooLong`] when the system prompt and message alone do not fit;
/// counter and template errors.
pub fn build(
    parts: &PromptParts<'_>,
    budget: &BudgetConfig,
    measure: PromptMeasure<'_>,
    count: TokenCounter<'_>,
) -> Result<Prompt> {
    let reserved = usize::try_from(budget.max_new_tokens).unwrap_or(usize::MAX);
    let available = budget.context_length.saturating_sub(reserved).saturating_sub(budget.margin);

    let bare = measure(&assemble(parts, false, 0, 0, 0))?;
    if bare > available {
        return Err(Error::ContextTooLong {
            needed: bare,
            available,
            context_length: budget.context_length,
            max_new_tokens: budget.max_new_tokens,
        });
    }
    let mut left = available - bare;

    // Estimated costs per piece; the final measurement corrects them.
    let summary = match parts.summary {
        Some(text) if !text.trim().is_empty() => {
            let cost = count(text)? + 12;
            if cost <= left / 4 {
                left -= cost;
                true
            } else {
                false
            }
        }
        _ => false,
    };

    let flexible = left;
    let mut documents = 0;
    let mut documents_budget = share(flexible, budget.documents_share);
    for (index, document) in parts.documents.iter().enumerate() {
        let cost = count(&document_block(index + 1, document))? + 4;
        if cost > documents_budget {
            break;
        }
        documents_budget -= cost;
        left -= cost;
        documents += 1;
    }
    let mut memories = 0;
    let mut memory_budget = share(flexible, budget.memory_share).min(left);
    for memory in parts.memories {
        let cost = count(&memory_block(memory))? + 4;
        if cost > memory_budget {
            break;
        }
        memory_budget -= cost;
        left -= cost;
        memories += 1;
    }

    // Per-message overhead of the template (role markers, separators).
    let probe = ChatMessage { role: ChatRole::Assistant, content: "x".to_owned() };
    let with_probe = {
        let mut messages = assemble(parts, false, 0, 0, 0);
        messages.insert(1, probe);
        measure(&messages)?
    };
    let overhead = with_probe.saturating_sub(bare).saturating_sub(count("x")?) + 1;
    let mut history = 0;
    for message in parts.history.iter().rev() {
        let cost = count(&message.content)? + overhead;
        if cost > left {
            break;
        }
        left -= cost;
        history += 1;
    }

    // Measure the real thing and trim until it fits.
    let (mut summary, mut documents, mut memories, mut history) =
        (summary, documents, memories, history);
    loop {
        let messages = assemble(parts, summary, documents, memories, history);
        let prompt_tokens = measure(&messages)?;
        if prompt_tokens <= available {
            return Ok(Prompt {
                messages,
                prompt_tokens,
                available,
                documents_used: documents,
                memories_used: memories,
                history_used: history,
                summary_used: summary,
            });
        }
        if history > 0 {
            history -= 1;
        } else if memories > 0 {
            memories -= 1;
        } else if documents > 0 {
            documents -= 1;
        } else if summary {
            summary = false;
        } else {
            // The bare prompt fitted above, so a counter that is deterministic never gets
            // here; one that is not gets a clear error rather than a loop.
            return Err(Error::ContextTooLong {
                needed: prompt_tokens,
                available,
                context_length: budget.context_length,
                max_new_tokens: budget.max_new_tokens,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::template::ChatTemplate;

    /// About four chars per token, like English with a BPE vocabulary.
    fn chars_over_four(text: &str) -> Result<usize> {
        Ok(text.chars().count().div_ceil(4))
    }

    /// A whole ChatML prompt, counted by [`chars_over_four`].
    fn chatml(messages: &[ChatMessage]) -> Result<usize> {
        chars_over_four(&ChatTemplate::chatml().render(messages, true)?)
    }

    fn chunk(n: usize, len: usize) -> ContextChunk {
        ContextChunk {
            chunk_id: ChunkId::new(),
            document_id: DocumentId::new(),
            filename: format!("doc{n}.md"),
            page: n.is_multiple_of(2).then_some(1),
            text: "word ".repeat(len),
        }
    }

    fn turn(n: usize, len: usize) -> ChatMessage {
        let role = if n.is_multiple_of(2) { ChatRole::User } else { ChatRole::Assistant };
        ChatMessage { role, content: format!("m{n} {}", "blah ".repeat(len)) }
    }

    fn memory(len: usize) -> Recollection {
        Recollection {
            user_message_id: MessageId::new(),
            assistant_message_id: MessageId::new(),
            user: "q ".repeat(len),
            assistant: "a ".repeat(len),
            score: 0.5,
        }
    }

    fn budget(context_length: usize, max_new_tokens: u32) -> BudgetConfig {
        BudgetConfig {
            context_length,
            max_new_tokens,
            margin: 8,
            documents_share: 0.5,
            memory_share: 0.15,
        }
    }

    #[test]
    fn everything_fits_in_a_big_window() {
        let documents = [chunk(0, 10), chunk(1, 10)];
        let memories = [memory(5)];
        let history = [turn(0, 3), turn(1, 3)];
        let parts = PromptParts {
            system_prompt: "Be helpful.",
            summary: Some("They talked about tea."),
            documents: &documents,
            memories: &memories,
            history: &history,
            user: "And coffee?",
        };
        let prompt = build(&parts, &budget(4096, 256), &chatml, &chars_over_four).unwrap();
        assert_eq!((prompt.documents_used, prompt.memories_used, prompt.history_used), (2, 1, 2));
        assert!(prompt.summary_used);
        assert_eq!(prompt.messages.len(), 4);
        let system = &prompt.messages[0].content;
        assert!(system.contains("[1] (doc0.md, page 1)") && system.contains("[2] (doc1.md)"));
        assert!(system.contains("They talked about tea."));
        assert_eq!(prompt.messages[3].content, "And coffee?");
    }

    #[test]
    fn history_keeps_the_newest_messages() {
        let history: Vec<ChatMessage> = (0..50).map(|n| turn(n, 20)).collect();
        let parts = PromptParts {
            system_prompt: "s",
            summary: None,
            documents: &[],
            memories: &[],
            history: &history,
            user: "u",
        };
        let prompt = build(&parts, &budget(400, 100), &chatml, &chars_over_four).unwrap();
        assert!(prompt.history_used > 0 && prompt.history_used < 50);
        assert!(prompt.messages[1].content.starts_with(&format!("m{}", 50 - prompt.history_used)));
        assert!(prompt.prompt_tokens <= 400 - 100 - 8);
    }

    #[test]
    fn a_message_too_long_for_the_window_is_refused() {
        let long = "word ".repeat(2000);
        let parts = PromptParts {
            system_prompt: "s",
            summary: None,
            documents: &[],
            memories: &[],
            history: &[],
            user: &long,
        };
        let err = build(&parts, &budget(1024, 128), &chatml, &chars_over_four).unwrap_err();
        assert!(matches!(err, Error::ContextTooLong { .. }), "{err}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever the history, documents and window, the prompt plus the answer
        /// reserve never exceeds the window.
        #[test]
        fn the_prompt_never_exceeds_the_window(
            context_length in 64_usize..4096,
            max_new_tokens in 1_u32..512,
            document_lens in proptest::collection::vec(0_usize..600, 0..12),
            history_lens in proptest::collection::vec(0_usize..300, 0..80),
            memory_lens in proptest::collection::vec(0_usize..100, 0..5),
            summary_len in 0_usize..400,
            user_len in 0_usize..100,
        ) {
            let documents: Vec<ContextChunk> =
                document_lens.iter().enumerate().map(|(n, len)| chunk(n, *len)).collect();
            let history: Vec<ChatMessage> =
                history_lens.iter().enumerate().map(|(n, len)| turn(n, *len)).collect();
            let memories: Vec<Recollection> = memory_lens.iter().map(|len| memory(*len)).collect();
            let summary = "s ".repeat(summary_len);
            let user = format!("question {}", "u ".repeat(user_len));
            let parts = PromptParts {
                system_prompt: "You are helpful.",
                summary: Some(&summary),
                documents: &documents,
                memories: &memories,
                history: &history,
                user: &user,
            };
            let config = budget(context_length, max_new_tokens);
            let template = ChatTemplate::chatml();
            match build(&parts, &config, &chatml, &chars_over_four) {
                Ok(prompt) => {
                    let rendered = template.render(&prompt.messages, true).unwrap();
                    let tokens = chars_over_four(&rendered).unwrap();
                    prop_assert_eq!(tokens, prompt.prompt_tokens);
                    prop_assert!(tokens + max_new_tokens as usize <= context_length);
                    prop_assert_eq!(prompt.messages.last().unwrap().content.clone(), user);
                }
                Err(Error::ContextTooLong { needed, available, .. }) => {
                    prop_assert!(needed > available);
                }
                Err(other) => prop_assert!(false, "unexpected error {other}"),
            }
        }
    }
}
