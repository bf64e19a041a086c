//! SQL predicates for LanceDB, built only from parsed UUIDs.
//!
//! The values in these predicates are the `Display` form of [`Uuid`]s (hex digits and
//! hyphens), never caller-supplied text, so they cannot break out of their quotes.

use std::fmt::Write as _;

use ragd_core::VectorFilter;
use uuid::Uuid;

use crate::schema::{COL_DOCUMENT_ID, COL_ID, COL_SESSION_ID};

/// The predicate selecting the rows a [`VectorFilter`] allows, or `None` when it restricts
/// nothing.
pub(crate) fn predicate(filter: &VectorFilter) -> Option<String> {
    let documents = filter.document_ids.iter().map(|id| *id.as_uuid());
    let sessions = filter.session_ids.iter().map(|id| *id.as_uuid());
    let clauses: Vec<String> = [
        in_list(COL_DOCUMENT_ID, documents),
        in_list(COL_SESSION_ID, sessions),
        in_list(COL_ID, filter.ids.iter().copied()),
    ]
    .into_iter()
    .flatten()
    .collect();
    if clauses.is_empty() { None } else { Some(clauses.join(" AND ")) }
}

/// The predicate selecting the rows whose `id` is one of `ids`, or `None` for no ids.
pub(crate) fn ids_predicate(ids: impl IntoIterator<Item = Uuid>) -> Option<String> {
    in_list(COL_ID, ids)
}

/// `column IN ('…', '…')`, or `None` for an empty list.
fn in_list(column: &str, ids: impl IntoIterator<Item = Uuid>) -> Option<String> {
    let mut out = String::new();
    for id in ids {
        let separator = if out.is_empty() { "" } else { ", " };
        // Writing to a `String` cannot fail.
        let _ = write!(out, "{separator}'{}'", id.hyphenated());
    }
    if out.is_empty() { None } else { Some(format!("{column} IN ({out})")) }
}

#[cfg(test)]
mod tests {
    use ragd_core::{DocumentId, SessionId};

    use super::*;

    #[test]
    fn empty_filter_has_no_predicate() {
        assert_eq!(predicate(&VectorFilter::default()), None);
        assert_eq!(ids_predicate([]), None);
    }

    #[test]
    fn both_lists_are_combined_with_and() {
        let doc = DocumentId::new();
        let session = SessionId::new();
        let filter = VectorFilter {
            document_ids: vec![doc, doc],
            session_ids: vec![session],
            ids: Vec::new(),
        };
        assert_eq!(
            predicate(&filter).unwrap(),
            format!("document_id IN ('{doc}', '{doc}') AND session_id IN ('{session}')")
        );
    }
}
