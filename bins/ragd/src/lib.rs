//! The `ragd` server as a library: configuration, the HTTP router and the serve loop.
//!
//! `main.rs` is a thin CLI over this crate, and this crate a thin HTTP layer over
//! [`ragd_engine::Engine`], which wires the concrete implementations together and owns the
//! start-up sequence (architecture invariant 2). Handlers extract, make one service call
//! and map the result (invariant 6); tests build the same router in process.
//!
//! Entry points: [`config::Config::load`] merges configuration, [`api::router`] builds the
//! axum router, [`server::Server`] binds and serves it with graceful shutdown. [`mcp`] is
//! the Model Context Protocol server over the same engine: tools and document resources for
//! AI assistants, served over Streamable HTTP at `/mcp` (inside [`api::router`]) and over
//! stdin/stdout by `ragd mcp`.

pub mod api;
pub mod config;
pub mod mcp;
pub mod metrics;
pub mod server;
pub mod state;
pub mod status_table;

pub use config::Config;
pub use server::Server;
pub use state::AppState;
