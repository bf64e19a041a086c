//! Identifier newtypes.
//!
//! Every addressable thing in ragd has a UUID id wrapped in its own type, so a `ChunkId`
//! can never be passed where a `DocumentId` is expected. Ids are UUID version 7: they sort
//! by creation time, which keeps SQLite and LanceDB inserts local.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The string given could not be parsed as an id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} id {input:?}: expected a UUID")]
pub struct IdParseError {
    /// Which id type was being parsed (`document`, `chunk`, ...).
    pub kind: &'static str,
    /// The rejected input.
    pub input: String,
}

macro_rules! id_newtype {
    ($(#[$meta:meta])* $name:ident, $kind:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered id.
            #[must_use]
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an existing UUID.
            #[must_use]
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The underlying UUID.
            #[must_use]
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s)
                    .map(Self)
                    .map_err(|_| IdParseError { kind: $kind, input: s.to_owned() })
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }
    };
}

id_newtype!(
    /// Identifies an uploaded document.
    DocumentId,
    "document"
);
id_newtype!(
    /// Identifies one chunk of a document's extracted text.
    ChunkId,
    "chunk"
);
id_newtype!(
    /// Identifies a chat session.
    SessionId,
    "session"
);
id_newtype!(
    /// Identifies one message of a chat session.
    MessageId,
    "message"
);
id_newtype!(
    /// Identifies a collection: a named set of documents.
    CollectionId,
    "collection"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_display_and_serde() {
        let id = ChunkId::new();
        assert_eq!(id.to_string().parse::<ChunkId>().unwrap(), id);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<ChunkId>(&json).unwrap(), id);
    }

    #[test]
    fn ids_are_time_ordered() {
        let a = DocumentId::new();
        let b = DocumentId::new();
        assert!(a < b);
    }

    #[test]
    fn bad_id_names_its_kind() {
        let err = "nope".parse::<SessionId>().unwrap_err();
        assert_eq!(err.kind, "session");
        assert!(err.to_string().contains("invalid session id"));
    }
}
