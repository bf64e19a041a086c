//! `ragd-vector-store`: the vector store on embedded LanceDB.
//!
//! It owns `LanceStore`, the `VectorStore` implementation on embedded LanceDB: the
//! `chunks` and `memory` tables, their schema version and model id, ANN indexes.
//!
//! Architecture invariant: Arrow and LanceDB types never cross this crate's public API.

pub mod error;

pub use error::{Error, Result};
