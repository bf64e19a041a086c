//! Configuration, merged from four layers, later ones winning:
//!
//! 1. built-in defaults ([`Config::default`], which needs `HOME` for the asset directory),
//! 2. a TOML file (`--config FILE`, `RAGD_CONFIG`, or `./ragd.toml` when it exists),
//! 3. the environment: `RAGD_*` variables, with `__` between nested keys
//!    (`RAGD_SERVER__PORT=9000`), read from the process and from a `.env` file (the process
//!    wins); `ORT_DYLIB_PATH` is honoured as `ort_dylib_path`, and like `huggingface-cli`
//!    `HF_ENDPOINT` as `hub.endpoint` and `HF_HUB_OFFLINE` as `hub.offline`,
//! 4. command-line flags.
//!
//! The environment is passed in as data ([`Env`]) instead of being read here, so tests can
//! exercise every layer without touching the process environment.
//!
//! Unknown keys are errors: a typo in `ragd.toml` or in a `RAGD_` variable stops start-up
//! with a message naming the key, rather than being silently ignored.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use ragd_engine::EngineConfig;
use ragd_engine::config::{
    CatalogSettings, ChatConfig, EmbeddingSettings, ExtractIsolation, HubSettings, IngestSettings,
    ModelsSettings, RerankSettings, TelemetryConfig, VectorStoreSettings,
};
use serde::{Deserialize, Serialize};

/// Prefix of ragd's environment variables.
pub const ENV_PREFIX: &str = "RAGD";
/// Environment variable naming the config file (also `--config`).
pub const CONFIG_FILE_ENV: &str = "RAGD_CONFIG";
/// The config file read from the working directory when none is named.
pub const DEFAULT_CONFIG_FILE: &str = "ragd.toml";

/// Everything that can go wrong while loading configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The named config file does not exist.
    #[error("config file {0} does not exist")]
    MissingFile(PathBuf),
    /// The `.env` file could not be parsed.
    #[error("cannot read {path}: {source}")]
    DotEnv {
        /// The `.env` file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: dotenvy::Error,
    },
    /// An `[auth]` value is malformed.
    #[error("invalid [auth] configuration: {0}")]
    Auth(String),
    /// A layer holds a bad value or an unknown key.
    #[error("invalid configuration: {0}")]
    Invalid(#[from] config::ConfigError),
}

/// ragd's configuration: the engine's sections ([`EngineConfig`], whose defaults are
/// written there once) at the top level, plus the server's own (`server`, `log`, `auth`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where ragd keeps its state: `ragd.sqlite3`, `lance/`, `uploads/`.
    pub data_dir: PathBuf,
    /// Where `cargo xtask assets` put the bundled models and runtime.
    pub assets_dir: PathBuf,
    /// The ONNX Runtime library; defaults to the one in `assets_dir`.
    pub ort_dylib_path: Option<PathBuf>,
    /// The HTTP server.
    pub server: ServerConfig,
    /// Logging.
    pub log: LogConfig,
    /// System status sampling.
    pub telemetry: TelemetryConfig,
    /// Document ingestion.
    pub ingest: IngestSettings,
    /// The embedding model.
    pub embedding: EmbeddingSettings,
    /// The catalog database (SQLite in `data_dir`, or a shared Postgres).
    pub catalog: CatalogSettings,
    /// The vector store.
    pub vector_store: VectorStoreSettings,
    /// Chat models.
    pub models: ModelsSettings,
    /// Chat sessions: retrieval, memory, prompt budget, tagging.
    pub chat: ChatConfig,
    /// API keys and per-key request limits.
    pub auth: AuthSettings,
    /// Downloads from the Hugging Face hub (chat models and the embedding model).
    pub hub: HubSettings,
    /// The rerank stage of hybrid search.
    pub rerank: RerankSettings,
    /// The Hugging Face token, found in the environment or the `huggingface-cli` token file.
    /// Never read from the config file and never serialised.
    #[serde(skip)]
    pub hf_token: Option<HfToken>,
}

/// The HTTP server's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to bind.
    pub host: String,
    /// Port to bind; 0 picks a free one.
    pub port: u16,
    /// How long in-flight requests may take to finish after a shutdown signal.
    pub shutdown_grace_secs: u64,
    /// The largest JSON request body (search, sessions, models); larger ones get 413.
    /// Uploads have their own limits (`ingest.max_upload_bytes` per file).
    pub max_json_body_bytes: usize,
    /// Serve the web page's files from this directory instead of the copies embedded in
    /// the binary (for developing or customising the page; the file names are fixed).
    pub ui_dir: Option<PathBuf>,
    /// Folders `POST /api/v1/documents/sync` may sync (each with everything under it); the
    /// API syncs nothing while this is empty. `ragd sync` is not limited by it.
    pub sync_dirs: Vec<PathBuf>,
}

/// Logging settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `tracing` filter (`info`, `ragd=debug,tower_http=info`, ...); `RUST_LOG` wins.
    pub filter: String,
    /// Output format.
    pub format: LogFormat,
}

/// API keys and per-key request limits. With no key configured the API is open.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// Plain API keys, comma-separated. Meant for `RAGD_AUTH__KEYS` (or `.env`), not the
    /// file: they are hashed when the configuration loads and are never kept or printed.
    #[serde(skip_serializing)]
    pub keys: Option<String>,
    /// SHA-256 digests (64 hex digits) of the accepted keys; `ragd hash-key KEY` prints one.
    pub key_sha256: Vec<String>,
    /// Requests per minute one key may make (0: unlimited).
    pub requests_per_minute: u32,
    /// Keys limited to some collections (`[[auth.scoped_keys]]`): they see only those
    /// collections' documents, the sessions restricted to them and their search hits, and
    /// cannot change what all keys share (collections, models, the index).
    pub scoped_keys: Vec<ScopedKey>,
}

/// One key limited to collections.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScopedKey {
    /// The SHA-256 digest (64 hex digits) of the key; `ragd hash-key KEY` prints one.
    pub key_sha256: String,
    /// The collections it may use, by name or id (a name that does not exist yet grants
    /// nothing until a key without limits creates it).
    pub collections: Vec<String>,
}

impl AuthSettings {
    /// Moves plain keys into `key_sha256` and checks every digest.
    fn hash_plain_keys(&mut self) -> Result<(), ConfigError> {
        if let Some(keys) = self.keys.take() {
            for key in keys.split(',').map(str::trim).filter(|key| !key.is_empty()) {
                self.key_sha256.push(crate::api::auth::hash_key(key));
            }
        }
        let scoped = self.scoped_keys.iter_mut().map(|key| &mut key.key_sha256);
        for digest in self.key_sha256.iter_mut().chain(scoped) {
            if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ConfigError::Auth(format!(
                    "key_sha256 entry {digest:?} is not 64 hex digits (`ragd hash-key KEY` prints one)"
                )));
            }
            digest.make_ascii_lowercase();
        }
        for key in &self.scoped_keys {
            if key.collections.is_empty() {
                return Err(ConfigError::Auth(format!(
                    "scoped key {} names no collections",
                    &key.key_sha256[..8]
                )));
            }
            if self.key_sha256.contains(&key.key_sha256) {
                return Err(ConfigError::Auth(format!(
                    "key {} is both unlimited and scoped",
                    &key.key_sha256[..8]
                )));
            }
        }
        Ok(())
    }
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: 8080,
            shutdown_grace_secs: 10,
            max_json_body_bytes: 1024 * 1024,
            ui_dir: None,
            sync_dirs: Vec::new(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { filter: "info".to_owned(), format: LogFormat::Text }
    }
}

impl Default for Config {
    /// Defaults without an environment: the asset directory is relative to the working
    /// directory. [`Config::load`] puts it under `$HOME/.cache/ragd/assets` instead.
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            assets_dir: PathBuf::from(".cache/ragd/assets"),
            ort_dylib_path: None,
            server: ServerConfig::default(),
            log: LogConfig::default(),
            telemetry: TelemetryConfig::default(),
            // The `ragd` executable answers the extraction worker's verb, so the server
            // isolates extraction in worker processes (the library default is threads).
            ingest: IngestSettings {
                extract_isolation: ExtractIsolation::Process,
                ..IngestSettings::default()
            },
            embedding: EmbeddingSettings::default(),
            catalog: CatalogSettings::default(),
            vector_store: VectorStoreSettings::default(),
            models: ModelsSettings::default(),
            chat: ChatConfig::default(),
            auth: AuthSettings::default(),
            hub: HubSettings::default(),
            rerank: RerankSettings::default(),
            hf_token: None,
        }
    }
}

/// The process environment as data: variables from `.env` overlaid by the real ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// Builds an environment from pairs, for tests and embedding.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self { vars: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }

    /// Reads `dotenv` (when it exists) and overlays `process`, so real variables win.
    ///
    /// # Errors
    /// When the `.env` file exists but cannot be parsed.
    pub fn with_dotenv(
        dotenv: &Path,
        process: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut vars = BTreeMap::new();
        if dotenv.is_file() {
            let dotenv_err = |source| ConfigError::DotEnv { path: dotenv.to_path_buf(), source };
            for item in dotenvy::from_path_iter(dotenv).map_err(dotenv_err)? {
                let (key, value) = item.map_err(dotenv_err)?;
                vars.insert(key, value);
            }
        }
        vars.extend(process);
        Ok(Self { vars })
    }

    /// The value of `key`, ignoring empty values.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// The `RAGD_*` variables that are configuration keys (not `RAGD_CONFIG`), with
    /// `ORT_DYLIB_PATH`, `HF_ENDPOINT` and `HF_HUB_OFFLINE` mapped to their `RAGD_`
    /// variables unless those are set.
    fn config_vars(&self) -> config::Map<String, String> {
        let prefix = format!("{ENV_PREFIX}_");
        let mut out: config::Map<String, String> = self
            .vars
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix) && k.as_str() != CONFIG_FILE_ENV)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(path) = self.get("ORT_DYLIB_PATH") {
            out.entry(format!("{prefix}ORT_DYLIB_PATH")).or_insert_with(|| path.to_owned());
        }
        if let Some(endpoint) = self.get("HF_ENDPOINT") {
            out.entry(format!("{prefix}HUB__ENDPOINT")).or_insert_with(|| endpoint.to_owned());
        }
        if let Some(offline) = self.get("HF_HUB_OFFLINE") {
            // huggingface_hub's truthy values.
            let on = matches!(offline.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on");
            out.entry(format!("{prefix}HUB__OFFLINE")).or_insert_with(|| on.to_string());
        }
        out
    }

    fn home(&self) -> Option<PathBuf> {
        self.get("HOME").map(PathBuf::from)
    }
}

/// Which config file to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigFile {
    /// A file the user named: it must exist.
    Required(PathBuf),
    /// A file read only when it exists (`./ragd.toml`).
    Optional(PathBuf),
    /// No file.
    None,
}

impl ConfigFile {
    /// `--config` if given, else `RAGD_CONFIG`, else `./ragd.toml` when present.
    #[must_use]
    pub fn resolve(cli: Option<PathBuf>, env: &Env) -> Self {
        match cli.or_else(|| env.get(CONFIG_FILE_ENV).map(PathBuf::from)) {
            Some(path) => Self::Required(path),
            None => Self::Optional(PathBuf::from(DEFAULT_CONFIG_FILE)),
        }
    }
}

/// Values from command-line flags: the last and strongest layer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--host`.
    pub host: Option<String>,
    /// `--port`.
    pub port: Option<u16>,
}

impl Config {
    /// Merges defaults, `file`, `env` and `overrides`, in that order of strength.
    ///
    /// # Errors
    /// A required file that is missing, a file or variable that does not parse, an unknown
    /// key, or a value of the wrong type.
    pub fn load(file: &ConfigFile, env: &Env, overrides: &Overrides) -> Result<Self, ConfigError> {
        let mut defaults = Self::default();
        if let Some(home) = env.home() {
            defaults.assets_dir = home.join(".cache/ragd/assets");
        }

        let mut builder =
            config::Config::builder().add_source(config::Config::try_from(&defaults)?);
        match file {
            ConfigFile::Required(path) if !path.is_file() => {
                return Err(ConfigError::MissingFile(path.clone()));
            }
            ConfigFile::Required(path) | ConfigFile::Optional(path) => {
                builder = builder.add_source(
                    config::File::from(path.as_path())
                        .format(config::FileFormat::Toml)
                        .required(false),
                );
            }
            ConfigFile::None => {}
        }
        builder = builder.add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true)
                .source(Some(env.config_vars())),
        );

        let mut config: Self = builder.build()?.try_deserialize()?;
        if let Some(data_dir) = &overrides.data_dir {
            config.data_dir.clone_from(data_dir);
        }
        if let Some(host) = &overrides.host {
            config.server.host.clone_from(host);
        }
        if let Some(port) = overrides.port {
            config.server.port = port;
        }
        config.auth.hash_plain_keys()?;
        config.hf_token = HfToken::discover(env);
        // The key of OpenAI-compatible servers: `RAGD_MODELS__API_KEY` (read with the rest of
        // the configuration), else the variable the `openai` clients read.
        if config.models.api_key.is_none() {
            config.models.api_key =
                env.get("OPENAI_API_KEY").filter(|key| !key.is_empty()).map(str::to_owned);
        }
        let caches = ragd_llm_backends::registry::hf_cache_dirs(
            env.get("HF_HUB_CACHE").map(Path::new),
            env.get("HF_HOME").map(Path::new),
            env.home().as_deref(),
        );
        if config.models.hf_cache_dir.is_none() {
            config.models.hf_cache_dir = caches.first().cloned();
        }
        if config.models.other_hf_cache_dirs.is_empty() {
            config.models.other_hf_cache_dirs = caches
                .into_iter()
                .filter(|dir| config.models.hf_cache_dir.as_ref() != Some(dir))
                .collect();
        }
        Ok(config)
    }

    /// The engine's part of the configuration.
    #[must_use]
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            data_dir: self.data_dir.clone(),
            assets_dir: self.assets_dir.clone(),
            ort_dylib_path: self.ort_dylib_path.clone(),
            telemetry: self.telemetry.clone(),
            ingest: self.ingest.clone(),
            embedding: self.embedding.clone(),
            catalog: self.catalog.clone(),
            vector_store: self.vector_store.clone(),
            models: self.models.clone(),
            chat: self.chat.clone(),
            hub: self.hub.clone(),
            rerank: self.rerank.clone(),
            hf_token: self.hf_token.as_ref().map(|token| token.expose().to_owned()),
        }
    }
}

/// Where a Hugging Face token was found. The token itself never reaches logs or the API.
#[derive(Clone, PartialEq, Eq)]
pub struct HfToken {
    token: String,
    /// Where it came from: an environment variable name or the token file's path.
    pub source: String,
}

impl HfToken {
    /// Looks for a token the way `huggingface_hub` does: `HF_TOKEN`, then
    /// `HUGGING_FACE_HUB_TOKEN`, then the file at `HF_TOKEN_PATH`, `$HF_HOME/token` or
    /// `~/.cache/huggingface/token` (written by `huggingface-cli login`).
    #[must_use]
    pub fn discover(env: &Env) -> Option<Self> {
        for var in ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"] {
            if let Some(token) = env.get(var) {
                return Some(Self { token: token.trim().to_owned(), source: var.to_owned() });
            }
        }
        let path = env.get("HF_TOKEN_PATH").map(PathBuf::from).or_else(|| {
            env.get("HF_HOME")
                .map(PathBuf::from)
                .or_else(|| env.home().map(|home| home.join(".cache/huggingface")))
                .map(|dir| dir.join("token"))
        })?;
        let token = std::fs::read_to_string(&path).ok()?;
        let token = token.trim();
        (!token.is_empty())
            .then(|| Self { token: token.to_owned(), source: path.display().to_string() })
    }

    /// The token, for the hub client only.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.token
    }
}

impl fmt::Debug for HfToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HfToken")
            .field("token", &"<redacted>")
            .field("source", &self.source)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(file: Option<&str>, env: &[(&str, &str)], overrides: &Overrides) -> Config {
        try_load(file, env, overrides).unwrap()
    }

    fn try_load(
        file: Option<&str>,
        env: &[(&str, &str)],
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let file = match file {
            Some(text) => {
                let path = dir.path().join("ragd.toml");
                std::fs::write(&path, text).unwrap();
                ConfigFile::Required(path)
            }
            None => ConfigFile::None,
        };
        Config::load(&file, &Env::from_pairs(env.iter().copied()), overrides)
    }

    #[test]
    fn defaults_apply_without_any_layer() {
        let config = load(None, &[("HOME", "/home/u")], &Overrides::default());
        assert_eq!(config.data_dir, PathBuf::from("data"));
        assert_eq!(config.assets_dir, PathBuf::from("/home/u/.cache/ragd/assets"));
        assert_eq!(config.server, ServerConfig::default());
        assert_eq!(
            config.engine_config().ort_dylib(),
            PathBuf::from("/home/u/.cache/ragd/assets/onnxruntime/libonnxruntime.so.1.32.0")
        );
    }

    #[test]
    fn each_layer_overrides_the_previous_one() {
        let file = "data_dir = \"from-file\"\n[server]\nport = 1111\nhost = \"0.0.0.0\"\n";
        let env = [("RAGD_SERVER__PORT", "2222"), ("RAGD_DATA_DIR", "from-env")];

        let from_file = load(Some(file), &[], &Overrides::default());
        assert_eq!(from_file.server.port, 1111);
        assert_eq!(from_file.data_dir, PathBuf::from("from-file"));

        let from_env = load(Some(file), &env, &Overrides::default());
        assert_eq!(from_env.server.port, 2222, "env beats file");
        assert_eq!(from_env.data_dir, PathBuf::from("from-env"));
        assert_eq!(from_env.server.host, "0.0.0.0", "untouched keys keep the file's value");

        let cli = Overrides { port: Some(3333), ..Overrides::default() };
        let from_cli = load(Some(file), &env, &cli);
        assert_eq!(from_cli.server.port, 3333, "CLI beats env");
        assert_eq!(from_cli.data_dir, PathBuf::from("from-env"));
    }

    #[test]
    fn dotenv_fills_in_but_process_env_wins() {
        let dir = tempfile::tempdir().unwrap();
        let dotenv = dir.path().join(".env");
        std::fs::write(&dotenv, "RAGD_SERVER__PORT=4444\nRAGD_LOG__FILTER=debug\n").unwrap();
        let env = Env::with_dotenv(&dotenv, [("RAGD_SERVER__PORT".to_owned(), "5555".to_owned())])
            .unwrap();
        let config = Config::load(&ConfigFile::None, &env, &Overrides::default()).unwrap();
        assert_eq!(config.server.port, 5555);
        assert_eq!(config.log.filter, "debug");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let err = try_load(Some("[server]\nprot = 1\n"), &[], &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("prot"), "{err}");
        let err = try_load(None, &[("RAGD_SERVER__PORT", "not-a-port")], &Overrides::default())
            .unwrap_err();
        assert!(matches!(err, ConfigError::Invalid(_)), "{err}");
    }

    #[test]
    fn model_defaults_are_read_checked_and_the_api_key_never_printed() {
        let none = Overrides::default();
        let config = load(None, &[("OPENAI_API_KEY", "sk-openai")], &none);
        assert_eq!(config.models.api_key.as_deref(), Some("sk-openai"));
        let env = [("OPENAI_API_KEY", "sk-openai"), ("RAGD_MODELS__API_KEY", "sk-ragd")];
        let config = load(None, &env, &none);
        assert_eq!(config.models.api_key.as_deref(), Some("sk-ragd"), "ragd's variable wins");
        let printed = toml::to_string_pretty(&config).unwrap();
        assert!(!printed.contains("sk-"), "{printed}");

        let file = "[models]\ndefault_backend = \"vllm\"\ntemperature = 0.3\nmax_new_tokens = 99\n";
        let engine = load(Some(file), &[], &none).engine_config();
        engine.validate().unwrap();
        let settings = engine.models.generation_defaults().unwrap();
        assert!((settings.temperature - 0.3).abs() < 1e-6);
        assert_eq!(settings.max_new_tokens, 99);
        for (file, named) in [
            ("[models]\ntemperature = 7.0\n", "temperature"),
            ("[models]\ndefault_backend = \"tgi\"\n", "default_backend"),
        ] {
            let err = load(Some(file), &[], &none).engine_config().validate().unwrap_err();
            assert!(err.to_string().contains(named), "{err}");
        }
    }

    #[test]
    fn vector_store_options_are_read_and_their_secrets_never_printed() {
        let file = "[vector_store]\nuri = \"s3://bucket/ragd\"\nread_consistency_ms = 250\n\
                    storage_options = { aws_endpoint = \"http://minio:9000\", \
                    aws_secret_access_key = \"hunter2\", aws_session_token = \"tok-9\" }\n";
        let config = load(Some(file), &[], &Overrides::default());
        let store = &config.vector_store;
        assert_eq!(store.uri.as_deref(), Some("s3://bucket/ragd"));
        assert_eq!(store.read_consistency_ms, Some(250));
        assert_eq!(store.storage_options["aws_secret_access_key"], "hunter2");
        let printed = toml::to_string_pretty(&config).unwrap();
        let debugged = format!("{config:?}");
        for shown in [&printed, &debugged] {
            assert!(shown.contains("http://minio:9000"), "{shown}");
            assert!(!shown.contains("hunter2") && !shown.contains("tok-9"), "{shown}");
        }
        let engine = config.engine_config();
        assert!(!format!("{engine:?}").contains("hunter2"));
    }

    #[test]
    fn the_catalog_url_is_read_and_its_password_never_printed() {
        let file = "[catalog]\nurl = \"postgres://ragd:hunter2@db.internal:5432/ragd\"\n";
        let config = load(Some(file), &[], &Overrides::default());
        assert_eq!(
            config.catalog.url.as_deref(),
            Some("postgres://ragd:hunter2@db.internal:5432/ragd")
        );
        let printed = toml::to_string_pretty(&config).unwrap();
        let debugged = format!("{config:?}");
        let engine = format!("{:?}", config.engine_config());
        for shown in [&printed, &debugged, &engine] {
            assert!(shown.contains("postgres://ragd:<redacted>@db.internal:5432/ragd"), "{shown}");
            assert!(!shown.contains("hunter2"), "{shown}");
        }
    }

    #[test]
    fn a_named_config_file_must_exist() {
        let file = ConfigFile::Required(PathBuf::from("/nonexistent/ragd.toml"));
        let err = Config::load(&file, &Env::default(), &Overrides::default()).unwrap_err();
        assert!(matches!(err, ConfigError::MissingFile(_)));
        let optional = ConfigFile::Optional(PathBuf::from("/nonexistent/ragd.toml"));
        assert!(Config::load(&optional, &Env::default(), &Overrides::default()).is_ok());
    }

    #[test]
    fn the_example_config_file_is_valid() {
        // Relative to the package root, the working directory of `cargo test`: a path baked in
        // at compile time would point into whichever clone built the shared target dir.
        let example = "../../docs/ragd.example.toml";
        let file = ConfigFile::Required(PathBuf::from(example));
        let config = Config::load(&file, &Env::default(), &Overrides::default()).unwrap();
        assert_eq!(config.server.port, 8080);
    }

    #[test]
    fn ort_dylib_path_env_is_honoured_and_ragd_variable_wins() {
        let config = load(None, &[("ORT_DYLIB_PATH", "/opt/ort.so")], &Overrides::default());
        assert_eq!(config.engine_config().ort_dylib(), PathBuf::from("/opt/ort.so"));
        let config = load(
            None,
            &[("ORT_DYLIB_PATH", "/opt/ort.so"), ("RAGD_ORT_DYLIB_PATH", "/mine.so")],
            &Overrides::default(),
        );
        assert_eq!(config.engine_config().ort_dylib(), PathBuf::from("/mine.so"));
    }

    #[test]
    fn hf_endpoint_and_offline_are_honoured_and_ragd_variables_win() {
        let config = load(None, &[], &Overrides::default());
        assert_eq!(config.hub.endpoint, "https://huggingface.co");
        assert!(!config.hub.offline);
        let env = [("HF_ENDPOINT", "https://hf-mirror.example"), ("HF_HUB_OFFLINE", "1")];
        let config = load(None, &env, &Overrides::default());
        assert_eq!(config.hub.endpoint, "https://hf-mirror.example");
        assert!(config.hub.offline);
        let config = load(
            None,
            &[("HF_HUB_OFFLINE", "0"), ("RAGD_HUB__ENDPOINT", "http://127.0.0.1:1")],
            &Overrides::default(),
        );
        assert!(!config.hub.offline);
        assert_eq!(config.hub.endpoint, "http://127.0.0.1:1");
        let config = load(
            None,
            &[("HF_HUB_OFFLINE", "1"), ("RAGD_HUB__OFFLINE", "false")],
            &Overrides::default(),
        );
        assert!(!config.hub.offline);
    }

    #[test]
    fn hf_token_comes_from_env_then_token_file_and_is_redacted() {
        let config = load(None, &[("HUGGING_FACE_HUB_TOKEN", "hf_abc")], &Overrides::default());
        let token = config.hf_token.unwrap();
        assert_eq!(token.expose(), "hf_abc");
        assert_eq!(token.source, "HUGGING_FACE_HUB_TOKEN");
        assert!(!format!("{token:?}").contains("hf_abc"));

        let home = tempfile::tempdir().unwrap();
        let hf_home = home.path().join("hf");
        std::fs::create_dir_all(&hf_home).unwrap();
        std::fs::write(hf_home.join("token"), "hf_file\n").unwrap();
        let env = Env::from_pairs([("HF_HOME", hf_home.to_str().unwrap())]);
        let token = HfToken::discover(&env).unwrap();
        assert_eq!(token.expose(), "hf_file");

        assert!(HfToken::discover(&Env::from_pairs([("HOME", "/nonexistent")])).is_none());
    }

    #[test]
    fn scoped_keys_load_from_the_file_and_bad_ones_are_refused() {
        let digest = "A".repeat(64);
        let file = format!(
            "[[auth.scoped_keys]]\nkey_sha256 = \"{digest}\"\ncollections = [\"legal\", \"hr\"]\n"
        );
        let config = load(Some(&file), &[], &Overrides::default());
        let key = &config.auth.scoped_keys[0];
        assert_eq!(key.key_sha256, "a".repeat(64), "digests are lowercased");
        assert_eq!(key.collections, ["legal", "hr"]);

        let none = format!("[[auth.scoped_keys]]\nkey_sha256 = \"{digest}\"\ncollections = []\n");
        let short = "[[auth.scoped_keys]]\nkey_sha256 = \"abc\"\ncollections = [\"x\"]\n";
        let both = format!("[auth]\nkey_sha256 = [\"{digest}\"]\n{file}");
        for (text, expected) in [
            (none.as_str(), "names no collections"),
            (short, "not 64 hex digits"),
            (both.as_str(), "both unlimited and scoped"),
        ] {
            let err = try_load(Some(text), &[], &Overrides::default()).unwrap_err();
            assert!(err.to_string().contains(expected), "{err}");
        }
    }
}
