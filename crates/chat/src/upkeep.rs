//! Session upkeep done with the model, on [`ChatService`]: extending the session summary
//! with history that no longer fits the window (asked for while a prompt is built), and
//! refreshing the automatic tags after an exchange (keywords, or the model's suggestions
//! with keywords as the fallback; see [`crate::tagging`]).

use std::sync::Arc;

use ragd_core::{
    ChatMessage, ChatRole, CompletionRequest, GenerationSettings, LlmBackend, Message, Session,
    SessionId,
};

use crate::error::Result;
use crate::service::ChatService;
use crate::tagging::{self, TaggingMode};
use crate::template::PromptMeter;

impl ChatService {
    /// Extends the session summary with `messages` (the oldest history not yet in it) and
    /// stores it.
    pub(crate) async fn summarise(
        &self,
        backend: &Arc<dyn LlmBackend>,
        session: &Session,
        messages: &[Message],
        meter: &PromptMeter,
    ) -> Result<String> {
        let Some(last) = messages.last() else {
            return Ok(session.summary.clone().unwrap_or_default());
        };
        let max_new_tokens = self.config().summary_max_tokens;
        let window = backend.context_length();
        let instructions = "Summarise the conversation below in a few sentences. Keep names, \
                            numbers, facts and decisions. Answer with the summary only.";
        // Keep the newest part of the transcript that fits next to the instructions.
        let mut transcript = String::new();
        if let Some(previous) = &session.summary {
            transcript.push_str(&format!("Earlier summary: {previous}\n"));
        }
        let mut lines: Vec<String> =
            messages.iter().map(|m| format!("{}: {}", m.role.as_str(), m.content.trim())).collect();
        let fits = |text: &str| -> Result<bool> {
            let probe = [
                ChatMessage { role: ChatRole::System, content: instructions.to_owned() },
                ChatMessage { role: ChatRole::User, content: text.to_owned() },
            ];
            let tokens = meter.measure(&probe)?;
            Ok(tokens
                + usize::try_from(max_new_tokens).unwrap_or(usize::MAX)
                + self.config().margin_tokens
                <= window)
        };
        let mut body = format!("{transcript}{}", lines.join("\n"));
        while !fits(&body)? {
            if lines.len() > 1 {
                lines.remove(0);
            } else if let Some(line) = lines.first_mut() {
                let keep = line.chars().count() / 2;
                if keep == 0 {
                    break;
                }
                *line = line.chars().take(keep).collect();
            } else {
                break;
            }
            body = format!("{transcript}{}", lines.join("\n"));
        }
        let completion = backend
            .complete(CompletionRequest {
                messages: vec![
                    ChatMessage { role: ChatRole::System, content: instructions.to_owned() },
                    ChatMessage { role: ChatRole::User, content: body },
                ],
                settings: GenerationSettings {
                    temperature: 0.2,
                    max_new_tokens,
                    seed: Some(0),
                    ..GenerationSettings::default()
                },
            })
            .await?;
        let summary = completion.text.trim().to_owned();
        let (id, through, stored) = (session.id, last.id, summary.clone());
        self.db(move |c| c.set_session_summary(id, &stored, through)).await?;
        tracing::info!(session = %session.id, messages = messages.len(), "summarised old history");
        Ok(summary)
    }

    /// Refreshes the session's automatic tags after its `exchanges`-th exchange.
    pub(crate) async fn refresh_tags(
        &self,
        backend: &Arc<dyn LlmBackend>,
        id: SessionId,
        exchanges: u64,
    ) {
        let config = self.config();
        let due = exchanges == 1
            || (config.tag_every > 0 && exchanges.is_multiple_of(u64::from(config.tag_every)));
        if config.tagging == TaggingMode::Off || !due {
            return;
        }
        let text = match self.db(move |c| c.recent_messages(id, 40)).await {
            Ok(messages) => {
                messages.iter().map(|m| m.content.as_str()).collect::<Vec<_>>().join("\n")
            }
            Err(err) => {
                tracing::warn!(session = %id, error = %err, "could not read messages for tagging");
                return;
            }
        };
        let mut tags = Vec::new();
        if config.tagging == TaggingMode::Llm {
            let request = CompletionRequest {
                messages: vec![ChatMessage {
                    role: ChatRole::User,
                    content: tagging::llm_prompt(&truncate_chars(&text, 4000)),
                }],
                settings: GenerationSettings {
                    temperature: 0.0,
                    max_new_tokens: 32,
                    seed: Some(0),
                    ..GenerationSettings::default()
                },
            };
            match backend.complete(request).await {
                Ok(completion) => {
                    tags = tagging::parse_llm_tags(&completion.text, config.max_auto_tags);
                }
                Err(err) => {
                    tracing::warn!(session = %id, error = %err, "LLM tagging failed; using keywords");
                }
            }
        }
        if tags.is_empty() {
            tags = tagging::keyword_tags(&text, config.max_auto_tags);
        }
        match self.db(move |c| c.set_auto_tags(id, &tags)).await {
            Ok(session) => tracing::debug!(session = %id, tags = ?session.tags, "refreshed tags"),
            Err(err) => tracing::warn!(session = %id, error = %err, "storing tags failed"),
        }
    }
}

/// The last `max` characters of `text`.
fn truncate_chars(text: &str, max: usize) -> String {
    let count = text.chars().count();
    text.chars().skip(count.saturating_sub(max)).collect()
}
