//! Optional bearer-token authentication and a per-key request rate limit.
//!
//! Keys are configured as SHA-256 digests (`[auth] key_sha256`, or plain keys through
//! `RAGD_AUTH__KEYS`, hashed at load), so neither the config file nor memory holds a usable
//! key. A request's `Authorization: Bearer <key>` is hashed and compared with every digest
//! in constant time. With no key configured the API is open. `/health` is always open, so
//! orchestrators can probe liveness without a secret, and so are the web page (`/`, `/ui/...`)
//! and its files, which hold no data: the page asks for a key when the API needs one.
//!
//! A key may be scoped to collections (`[[auth.scoped_keys]]`): the middleware puts its
//! [`KeyScope`] into the request, and handlers check what they serve against it
//! (`scope.rs`).
//!
//! The rate limit is a token bucket per key: `requests_per_minute` tokens of capacity,
//! refilled continuously; a request without a token gets `429 overloaded` with
//! `Retry-After`. (The `governor` crate would have been the first choice, but it turns on
//! a `portable-atomic` feature that lance's `moka` also uses, which rebuilds LanceDB.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::http::header::{AUTHORIZATION, RETRY_AFTER};
use axum::middleware::Next;
use axum::response::Response;
use ragd_core::ErrorKind;
use sha2::{Digest, Sha256};

use crate::api::scope::KeyScope;
use crate::api::{ApiError, Protocol};
use crate::config::AuthSettings;

/// Paths served without a key: liveness, and the web page with its files (the page asks
/// for a key when the API answers 401; it holds no data itself).
const OPEN_PATHS: &[&str] = &["/health", "/"];

/// Whether `path` is served without a key.
fn is_open(path: &str) -> bool {
    OPEN_PATHS.contains(&path)
        || path.strip_prefix(crate::api::ui::UI_PATH).is_some_and(|rest| rest.starts_with('/'))
}

/// The hex SHA-256 of an API key, as `[auth] key_sha256` holds it.
#[must_use]
pub fn hash_key(key: &str) -> String {
    Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn parse_hex(hex: &str) -> Option<[u8; 32]> {
    let mut out = [0_u8; 32];
    for (index, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(index * 2..index * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Equal digests, in time independent of where they differ.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A token bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    refilled_at: Instant,
}

/// Authentication and rate-limit state, shared by every request.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    /// Each key's digest, with its collections when it is scoped.
    keys: Arc<Vec<([u8; 32], KeyScope)>>,
    per_minute: u32,
    buckets: Arc<Mutex<HashMap<[u8; 32], Bucket>>>,
}

impl Auth {
    /// The state for `settings` (digests were checked when the configuration loaded;
    /// malformed ones are skipped here).
    #[must_use]
    pub fn new(settings: &AuthSettings) -> Self {
        let unlimited =
            settings.key_sha256.iter().filter_map(|hex| parse_hex(hex)).map(|d| (d, KeyScope::All));
        let scoped = settings.scoped_keys.iter().filter_map(|key| {
            let scope = KeyScope::Collections(key.collections.clone().into());
            parse_hex(&key.key_sha256).map(|digest| (digest, scope))
        });
        let keys = unlimited.chain(scoped).collect();
        Self {
            keys: Arc::new(keys),
            per_minute: settings.requests_per_minute,
            buckets: Arc::default(),
        }
    }

    /// `true` when requests need a key.
    #[must_use]
    pub fn enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The matching key's digest and scope, if the request carries a valid one.
    fn authenticate(&self, request: &Request) -> Option<([u8; 32], KeyScope)> {
        let header = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
        let (scheme, key) = header.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let presented = digest(key.trim());
        // Compare with every key so the time does not reveal which one matched.
        let mut matched = None;
        for (key, scope) in self.keys.iter() {
            if constant_time_eq(key, &presented) {
                matched = Some(scope.clone());
            }
        }
        matched.map(|scope| (presented, scope))
    }

    /// Takes a token from the key's bucket, or says how many seconds until one is there.
    fn take_token(&self, key: [u8; 32]) -> Result<(), u64> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let capacity = f64::from(self.per_minute);
        let per_second = capacity / 60.0;
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let bucket = buckets.entry(key).or_insert(Bucket { tokens: capacity, refilled_at: now });
        let elapsed = now.duration_since(bucket.refilled_at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(capacity);
        bucket.refilled_at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            // At most 60 s: the wait for one token at the slowest rate of 1 per minute.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let wait = ((1.0 - bucket.tokens) / per_second).ceil().clamp(1.0, 60.0) as u64;
            Err(wait)
        }
    }
}

/// The middleware: 401 without a valid key (when keys are configured), 429 over the rate.
pub async fn require_key(State(auth): State<Auth>, mut request: Request, next: Next) -> Response {
    if !auth.enabled() || is_open(request.uri().path()) {
        return next.run(request).await;
    }
    // Each protocol's clients expect their own error shape.
    let protocol = Protocol::of_path(request.uri().path());
    let Some((key, scope)) = auth.authenticate(&request) else {
        return ApiError::new(
            ErrorKind::Unauthorized,
            "this server needs an API key: send `Authorization: Bearer <key>`",
        )
        .into_response_for(protocol);
    };
    if let Err(wait) = auth.take_token(key) {
        let mut response = ApiError::new(
            ErrorKind::Overloaded,
            format!(
                "rate limit of {} requests per minute reached; retry in {wait} s",
                auth.per_minute
            ),
        )
        .into_response_for(protocol);
        response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(wait));
        return response;
    }
    // Handlers read the key's scope from the request (an open server or an unlimited key
    // leaves none: everything is visible).
    request.extensions_mut().insert(scope);
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_hash_to_sha256_hex_and_parse_back() {
        let hex = hash_key("secret");
        assert_eq!(hex, "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b");
        assert_eq!(parse_hex(&hex), Some(digest("secret")));
        assert_eq!(parse_hex("zz"), None);
    }

    #[test]
    fn the_bucket_empties_and_says_when_to_retry() {
        let auth = Auth::new(&AuthSettings {
            keys: None,
            key_sha256: vec![hash_key("k")],
            requests_per_minute: 2,
            scoped_keys: Vec::new(),
        });
        let key = digest("k");
        assert!(auth.take_token(key).is_ok());
        assert!(auth.take_token(key).is_ok());
        let wait = auth.take_token(key).unwrap_err();
        assert!((1..=30).contains(&wait), "{wait}");
        // Another key has its own bucket.
        assert!(auth.take_token(digest("other")).is_ok());
    }
}
