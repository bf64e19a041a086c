//! The `ragd` server as a library: configuration, the HTTP router and the serve loop.
//!
//! `main.rs` is a thin CLI over this crate. Everything that wires concrete implementations
//! of the `ragd-core` traits together lives here, and only here (architecture invariant 2),
//! so tests can build the same router in process.
//!
//! Entry points: [`config::Config::load`] merges configuration, [`api::router`] builds the
//! axum router, [`server::Server`] binds and serves it with graceful shutdown.

pub mod api;
pub mod config;
pub mod hub;
pub mod metrics;
pub mod server;
pub mod state;
pub mod status_table;

pub use config::Config;
pub use server::Server;
pub use state::AppState;
