//! Integration tests of `ragd-hub` against [`ragd_test_utils::FakeHub`], a hub on loopback.

// Test helpers unwrap freely: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod download;
