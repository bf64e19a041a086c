//! E-mail messages (EML, RFC 5322 with MIME), parsed by `mail-parser`.
//!
//! The text is the headers people read (`From`, `To`, `Cc`, `Date`, `Subject`), a blank
//! line, the body, and a list of the attachments. The body is the first text part, or the
//! first HTML part rendered like an HTML page ([`crate::html`]: tables as Markdown tables)
//! when the message has no text part; encoded words, transfer encodings and charsets are
//! decoded. Attachments are listed by name, type and size, never extracted. The subject is
//! the document's heading.

use std::fmt::Write as _;

use mail_parser::{Address, MessageParser, MimeHeaders, PartType};

use crate::error::{Error, Result};
use crate::extract::{Builder, Extracted, normalize};
use crate::guard::ExtractLimits;

/// Extracts an e-mail message's headers, body and attachment list.
///
/// # Errors
/// [`Error::Extraction`] when the message is larger than the limits or cannot be parsed.
pub(crate) fn extract_eml(bytes: &[u8], limits: &ExtractLimits) -> Result<Extracted> {
    if bytes.len() as u64 > limits.max_extracted_bytes {
        return Err(limits.too_much("eml"));
    }
    let message = MessageParser::default().parse(bytes).ok_or_else(|| Error::Extraction {
        format: "eml",
        reason: "not a readable e-mail message".to_owned(),
    })?;
    let mut head = String::new();
    for (name, address) in [("From", message.from()), ("To", message.to()), ("Cc", message.cc())] {
        if let Some(address) = address.map(addresses).filter(|list| !list.is_empty()) {
            writeln!(head, "{name}: {address}").ok();
        }
    }
    if let Some(date) = message.date() {
        writeln!(head, "Date: {}", date.to_rfc3339()).ok();
    }
    let subject = message.subject().map(str::trim).filter(|subject| !subject.is_empty());
    if let Some(subject) = subject {
        writeln!(head, "Subject: {subject}").ok();
    }
    let mut builder = Builder::default();
    let head = normalize(head.trim_end());
    if !head.is_empty() {
        let start = builder.push_block(&head);
        if let Some(subject) = subject {
            builder.heading(1, subject, start);
        }
    }
    let has_text_part = message
        .text_body
        .first()
        .and_then(|&index| message.part(index))
        .is_some_and(|part| matches!(part.body, PartType::Text(_)));
    let body = if has_text_part {
        message.body_text(0).map(std::borrow::Cow::into_owned)
    } else if let Some(html) = message.body_html(0) {
        Some(crate::html::extract_html(html.as_bytes(), limits)?.text)
    } else {
        message.body_text(0).map(std::borrow::Cow::into_owned)
    };
    if let Some(body) = body {
        let body = normalize(body.trim());
        if !body.is_empty() {
            builder.push_block(&body);
        }
    }
    let attachments: Vec<String> = message
        .attachments()
        .map(|part| {
            let name = part.attachment_name().unwrap_or("unnamed");
            let kind = part.content_type().map_or_else(String::new, |kind| {
                kind.subtype().map_or_else(
                    || kind.ctype().to_owned(),
                    |subtype| format!("{}/{subtype}", kind.ctype()),
                )
            });
            format!("- {name} ({kind}, {} bytes)", part.contents().len())
        })
        .collect();
    if !attachments.is_empty() {
        builder.push_block(&normalize(&format!("Attachments:\n{}", attachments.join("\n"))));
    }
    Ok(builder.finish())
}

/// The addresses of a header as `Name <address>`, comma-separated.
fn addresses(address: &Address<'_>) -> String {
    address
        .iter()
        .map(|addr| match (addr.name(), addr.address()) {
            (Some(name), Some(email)) => format!("{name} <{email}>"),
            (Some(name), None) => name.to_owned(),
            (None, Some(email)) => email.to_owned(),
            (None, None) => String::new(),
        })
        .filter(|text| !text.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}
