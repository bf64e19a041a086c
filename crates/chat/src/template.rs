//! [`ChatTemplate`]: renders a conversation the way the model sees it, to count its tokens.
//!
//! Models ship their chat template as Jinja (in the GGUF metadata or the tokenizer
//! config). It is rendered here with minijinja, plus the Python string methods Hugging Face
//! templates call and their `raise_exception` helper. A model without a template, or with
//! one minijinja cannot compile or render, gets ChatML, the format most small instruct
//! models were trained on.
//!
//! [`PromptMeter`] is what budgets use: a backend that renders prompts itself (llama.cpp
//! in process) counts them through [`LlmBackend::prompt_tokens`], so the budget counts the
//! very string that is sent, with one renderer. Only for backends that do not (a remote
//! server renders on its side) is the prompt rendered here and counted with the backend's
//! tokenizer, an approximation the budget keeps a margin for.

use minijinja::{Environment, ErrorKind as JinjaErrorKind, context};
use std::sync::Arc;

use ragd_core::{ChatMessage, LlmBackend};
use serde::Serialize;

use crate::error::{Error, Result};

/// ChatML, the fallback template.
pub const CHATML_TEMPLATE: &str = "{% for message in messages %}\
{{ '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' }}\
{% endfor %}\
{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

const TEMPLATE_NAME: &str = "chat";

/// A compiled chat template.
#[derive(Debug)]
pub struct ChatTemplate {
    env: Environment<'static>,
    /// `true` when the model's own template is in use, `false` for the ChatML fallback.
    from_model: bool,
}

#[derive(Serialize)]
struct TemplateMessage<'a> {
    role: &'a str,
    content: &'a str,
}

fn environment(source: String) -> std::result::Result<Environment<'static>, minijinja::Error> {
    let mut env = Environment::new();
    minijinja_contrib::add_to_environment(&mut env);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function("raise_exception", |message: String| -> std::result::Result<String, _> {
        Err(minijinja::Error::new(JinjaErrorKind::InvalidOperation, message))
    });
    env.add_template_owned(TEMPLATE_NAME, source)?;
    Ok(env)
}

impl ChatTemplate {
    /// Compiles the model's template, or ChatML when there is none or it does not work
    /// (a warning says why).
    #[must_use]
    pub fn new(source: Option<&str>) -> Self {
        if let Some(source) = source {
            match environment(source.to_owned()) {
                Ok(env) => {
                    let template = Self { env, from_model: true };
                    // A template that compiles may still fail on ordinary input (for example
                    // one that insists on strict user/assistant alternation with no system
                    // turn); probe it with the shapes ragd sends.
                    let probe = [
                        ChatMessage { role: ragd_core::ChatRole::System, content: "s".into() },
                        ChatMessage { role: ragd_core::ChatRole::User, content: "u".into() },
                    ];
                    match template.render(&probe, true) {
                        Ok(_) => return template,
                        Err(err) => {
                            tracing::warn!(error = %err, "the model's chat template fails on a system + user prompt; counting tokens with ChatML");
                        }
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "the model's chat template does not compile; counting tokens with ChatML");
                }
            }
        }
        Self::chatml()
    }

    /// The ChatML template.
    #[must_use]
    pub fn chatml() -> Self {
        // ChatML is a constant known to compile; the fallback would only be reached by a
        // broken edit of it, which the unit tests catch.
        let env = environment(CHATML_TEMPLATE.to_owned()).unwrap_or_else(|_| Environment::new());
        Self { env, from_model: false }
    }

    /// `true` when the model's own template is in use.
    #[must_use]
    pub const fn is_from_model(&self) -> bool {
        self.from_model
    }

    /// Renders `messages`, opening the assistant's turn when `add_generation_prompt`.
    ///
    /// # Errors
    /// [`Error::Template`] when rendering fails.
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        let messages: Vec<TemplateMessage<'_>> = messages
            .iter()
            .map(|m| TemplateMessage { role: m.role.as_str(), content: &m.content })
            .collect();
        let template = self.env.get_template(TEMPLATE_NAME).map_err(Error::Template)?;
        template
            .render(context! {
                messages => messages,
                add_generation_prompt => add_generation_prompt,
                bos_token => "",
                eos_token => "",
            })
            .map_err(Error::Template)
    }
}

#[cfg(test)]
mod tests {
    use ragd_core::ChatRole;

    use super::*;

    fn conversation() -> Vec<ChatMessage> {
        vec![
            ChatMessage { role: ChatRole::System, content: "Be brief.".into() },
            ChatMessage { role: ChatRole::User, content: "Hi".into() },
        ]
    }

    #[test]
    fn chatml_renders_with_the_generation_prompt() {
        let rendered = ChatTemplate::new(None).render(&conversation(), true).unwrap();
        assert_eq!(
            rendered,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn hugging_face_style_templates_work() {
        // The shape of Llama-2/Mistral templates: python methods and raise_exception.
        let source = "{{ bos_token }}{% for m in messages %}{% if m.role == 'user' %}[INST] {{ m.content.strip() }} [/INST]{% elif m.role == 'system' %}<<SYS>>{{ m.content }}<</SYS>>{% else %}{{ m.content }}{% endif %}{% endfor %}";
        let template = ChatTemplate::new(Some(source));
        assert!(template.is_from_model());
        let rendered = template.render(&conversation(), true).unwrap();
        assert_eq!(rendered, "<<SYS>>Be brief.<</SYS>>[INST] Hi [/INST]");
    }

    #[test]
    fn broken_or_strict_templates_fall_back_to_chatml() {
        assert!(!ChatTemplate::new(Some("{% for %}")).is_from_model());
        let strict = "{% if messages[0].role == 'system' %}{{ raise_exception('no system role') }}{% endif %}";
        assert!(!ChatTemplate::new(Some(strict)).is_from_model());
    }
}

/// Counts a whole prompt's tokens as the backend will see it; see the module docs.
#[derive(Debug)]
pub struct PromptMeter {
    backend: Arc<dyn LlmBackend>,
    template: ChatTemplate,
}

impl PromptMeter {
    /// A meter for `backend`, with the model's template as the fallback renderer.
    #[must_use]
    pub fn new(backend: Arc<dyn LlmBackend>) -> Self {
        let template = ChatTemplate::new(backend.chat_template());
        Self { backend, template }
    }

    /// The tokens `messages` take, with the generation prompt for the assistant's turn.
    ///
    /// # Errors
    /// When rendering or counting fails.
    pub fn measure(&self, messages: &[ChatMessage]) -> Result<usize> {
        if let Some(tokens) = self.backend.prompt_tokens(messages) {
            return Ok(tokens?);
        }
        Ok(self.backend.count_tokens(&self.template.render(messages, true)?)?)
    }
}
