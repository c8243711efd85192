//! All settings in one struct, filled in this order: defaults, config file, `JOINTCODER_*`
//! environment variables, command-line flags. Later sources win.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::terminology::{EditionSpec, Terminology, TerminologyOptions, DEFAULT_CANONICAL_BASE};

#[derive(Debug, Clone, serde::Serialize)]
pub struct Config {
    /// Address the server binds (`JOINTCODER_ADDR`, `--addr`).
    pub addr: String,
    /// Index cache, database, trained models (`JOINTCODER_DATA_DIR`).
    pub data_dir: PathBuf,
    /// PostgreSQL for the resource store instead of SQLite in the data directory
    /// (`JOINTCODER_STORE_URL`, `store_url`, `--store-url`; `postgres://user:password@host/db`).
    /// Never serialized: it may hold a password.
    #[serde(skip)]
    pub store_url: Option<String>,
    /// Where the national tables are (`JOINTCODER_TERMINOLOGY_DIR`).
    pub terminology_dir: PathBuf,
    /// Base of the canonical URIs we publish for the Chinese editions.
    pub canonical_base: String,
    /// Further lexicon files (`JOINTCODER_LEXICON`, `:`-separated).
    pub lexicons: Vec<PathBuf>,
    /// Further editions: an admin's own `code,name` tables.
    pub extra_editions: Vec<EditionSpec>,
    /// Largest request body accepted, bytes.
    pub max_body_bytes: usize,
    /// Page size for CodeSystem concept listings and ValueSet expansions.
    pub default_page_size: usize,
    /// Train the knowledge models on first use when they are missing (`JOINTCODER_AUTO_TRAIN`).
    pub auto_train: bool,
    /// Bearer-token checking; off when no key is configured.
    pub jwt: JwtConfig,
    /// Language models per role (`[llm]`, `JOINTCODER_LLM_MODELS`, `JOINTCODER_LLM_ROLES`,
    /// `--llm-roles`); every role on the knowledge backend when empty.
    pub llm: crate::llm::config::LlmConfig,
    /// What one request may ask of the server (`[limits]`, `JOINTCODER_LIMIT_*`).
    pub limits: Limits,
    /// The bearer key `serve-model` requires (`JOINTCODER_MODEL_API_KEY`, environment only).
    #[serde(skip)]
    pub model_api_key: Option<String>,
}

/// Bounds on one request's work, each failing with its own OperationOutcome (413, 422, 503).
/// (Unknown keys are refused by the flattened record limits: serde cannot deny them here.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    #[serde(flatten)]
    pub record: crate::record::limits::RecordLimits,
    /// Milliseconds a `$code` may spend coding before it is stopped with a 503
    /// (`JOINTCODER_LIMIT_CODING_MS`).
    pub coding_ms: u64,
    /// `$code` requests that may wait for a coding slot; more are answered 503 at once
    /// (`JOINTCODER_LIMIT_WAITING`).
    pub waiting: usize,
    /// Milliseconds a request body may take to arrive before a 408
    /// (`JOINTCODER_LIMIT_BODY_MS`).
    pub body_ms: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { record: Default::default(), coding_ms: 10_000, waiting: 256, body_ms: 30_000 }
    }
}

/// Keys and expectations for bearer tokens. The HS256 secret comes from the environment only.
#[derive(Debug, Clone, Default, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// `JOINTCODER_JWT_HS256_SECRET` (development): never from a file in the repository.
    #[serde(skip)]
    pub hs256_secret: Option<String>,
    /// An RSA or EC public key, PEM (`JOINTCODER_JWT_PUBLIC_KEY`).
    pub public_key_pem: Option<PathBuf>,
    /// A JWKS file (`JOINTCODER_JWKS_FILE`).
    pub jwks_file: Option<PathBuf>,
    /// Expected `iss` (`JOINTCODER_JWT_ISSUER`).
    pub issuer: Option<String>,
    /// Expected `aud` (`JOINTCODER_JWT_AUDIENCE`).
    pub audience: Option<String>,
    /// Advertised in the SMART configuration (`JOINTCODER_SMART_TOKEN_ENDPOINT`).
    pub token_endpoint: Option<String>,
}

/// The config file: every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub addr: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub store_url: Option<String>,
    pub terminology_dir: Option<PathBuf>,
    pub canonical_base: Option<String>,
    pub lexicons: Option<Vec<PathBuf>>,
    #[serde(default, rename = "edition")]
    pub editions: Vec<EditionSpec>,
    pub max_body_bytes: Option<usize>,
    pub default_page_size: Option<usize>,
    pub auto_train: Option<bool>,
    pub jwt: Option<JwtConfig>,
    pub llm: Option<crate::llm::config::LlmConfig>,
    pub limits: Option<Limits>,
}

/// Flag values (all optional; `None` leaves the value from file or environment).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub addr: Option<String>,
    pub data_dir: Option<PathBuf>,
    /// `--store-url`: as `JOINTCODER_STORE_URL`.
    pub store_url: Option<String>,
    pub terminology_dir: Option<PathBuf>,
    /// `--llm-roles`: as `JOINTCODER_LLM_ROLES`.
    pub llm_roles: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {message}")]
    File { path: String, message: String },
    #[error("environment variable {name}: {message}")]
    Env { name: String, message: String },
    #[error("{name}: {message}")]
    Invalid { name: String, message: String },
}

impl Default for Config {
    fn default() -> Config {
        Config {
            addr: "127.0.0.1:8080".to_owned(),
            data_dir: PathBuf::from("./data"),
            store_url: None,
            terminology_dir: default_terminology_dir(),
            canonical_base: DEFAULT_CANONICAL_BASE.to_owned(),
            lexicons: Vec::new(),
            extra_editions: Vec::new(),
            max_body_bytes: 8 * 1024 * 1024,
            default_page_size: 100,
            auto_train: true,
            jwt: JwtConfig::default(),
            llm: Default::default(),
            limits: Limits::default(),
            model_api_key: None,
        }
    }
}

/// `terminology/` when it holds the tables (a hospital's install), else the shared checkout
/// data, so that the plain command works inside this repository.
fn default_terminology_dir() -> PathBuf {
    let local = PathBuf::from("terminology");
    if Terminology::dir_has_tables(&local) {
        local
    } else {
        PathBuf::from(crate::catalog::datasets::TERMINOLOGY_DIR)
    }
}

impl Config {
    /// Loads with the real process environment.
    pub fn load(flags: &Overrides) -> Result<Config, ConfigError> {
        Config::load_with(flags, |k| std::env::var(k).ok())
    }

    /// Loads with an injected environment (tests must not race on the process environment).
    pub fn load_with(flags: &Overrides, env: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut cfg = Config::default();
        let file = flags
            .config_file
            .clone()
            .or_else(|| env("JOINTCODER_CONFIG").map(PathBuf::from))
            .or_else(|| Path::new("jointcoder.toml").is_file().then(|| PathBuf::from("jointcoder.toml")));
        if let Some(path) = file {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| ConfigError::File { path: path.display().to_string(), message: e.to_string() })?;
            let f: ConfigFile = toml::from_str(&text)
                .map_err(|e| ConfigError::File { path: path.display().to_string(), message: e.to_string() })?;
            cfg.apply_file(f);
        }
        cfg.apply_env(&env)?;
        if let Some(v) = &flags.addr {
            cfg.addr = v.clone();
        }
        if let Some(v) = &flags.data_dir {
            cfg.data_dir = v.clone();
        }
        if let Some(v) = &flags.store_url {
            cfg.store_url = Some(v.clone());
        }
        if let Some(url) = &cfg.store_url {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(ConfigError::Invalid { name: "store_url (config file, JOINTCODER_STORE_URL, --store-url)".into(), message: "a postgres:// URL, or unset for SQLite in the data directory".into() });
            }
        }
        if let Some(v) = &flags.terminology_dir {
            cfg.terminology_dir = v.clone();
        }
        if let Some(v) = &flags.llm_roles {
            cfg.llm.roles = crate::llm::config::LlmConfig::parse_roles(v).map_err(|message| ConfigError::Invalid { name: "--llm-roles".into(), message })?;
        }
        cfg.llm.check().map_err(|message| ConfigError::Invalid { name: "llm settings (config file, JOINTCODER_LLM_*, --llm-roles)".into(), message })?;
        Ok(cfg)
    }

    fn apply_file(&mut self, f: ConfigFile) {
        if let Some(v) = f.addr { self.addr = v; }
        if let Some(v) = f.data_dir { self.data_dir = v; }
        if let Some(v) = f.store_url { self.store_url = Some(v); }
        if let Some(v) = f.terminology_dir { self.terminology_dir = v; }
        if let Some(v) = f.canonical_base { self.canonical_base = v; }
        if let Some(v) = f.lexicons { self.lexicons = v; }
        if let Some(v) = f.max_body_bytes { self.max_body_bytes = v; }
        if let Some(v) = f.default_page_size { self.default_page_size = v; }
        if let Some(v) = f.auto_train { self.auto_train = v; }
        if let Some(v) = f.jwt { self.jwt = v; }
        if let Some(v) = f.llm { self.llm = v; }
        if let Some(v) = f.limits { self.limits = v; }
        self.extra_editions.extend(f.editions);
    }

    fn apply_env(&mut self, env: &impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = env("JOINTCODER_ADDR") { self.addr = v; }
        if let Some(v) = env("JOINTCODER_DATA_DIR") { self.data_dir = v.into(); }
        if let Some(v) = env("JOINTCODER_STORE_URL").filter(|v| !v.is_empty()) { self.store_url = Some(v); }
        if let Some(v) = env("JOINTCODER_TERMINOLOGY_DIR") { self.terminology_dir = v.into(); }
        if let Some(v) = env("JOINTCODER_CANONICAL_BASE") { self.canonical_base = v; }
        if let Some(v) = env("JOINTCODER_LEXICON") {
            self.lexicons = v.split(':').filter(|s| !s.is_empty()).map(PathBuf::from).collect();
        }
        if let Some(v) = env("JOINTCODER_JWT_HS256_SECRET") { self.jwt.hs256_secret = Some(v); }
        if let Some(v) = env("JOINTCODER_JWT_PUBLIC_KEY") { self.jwt.public_key_pem = Some(v.into()); }
        if let Some(v) = env("JOINTCODER_JWKS_FILE") { self.jwt.jwks_file = Some(v.into()); }
        if let Some(v) = env("JOINTCODER_JWT_ISSUER") { self.jwt.issuer = Some(v); }
        if let Some(v) = env("JOINTCODER_JWT_AUDIENCE") { self.jwt.audience = Some(v); }
        if let Some(v) = env("JOINTCODER_SMART_TOKEN_ENDPOINT") { self.jwt.token_endpoint = Some(v); }
        // Secrets: from the environment only.
        if let Some(v) = env("JOINTCODER_OPENAI_API_KEY").filter(|v| !v.is_empty()) { self.llm.api_key = Some(v); }
        if let Some(v) = env("JOINTCODER_MODEL_API_KEY").filter(|v| !v.is_empty()) { self.model_api_key = Some(v); }
        if let Some(v) = env("JOINTCODER_LLM_MODELS") {
            let models = crate::llm::config::LlmConfig::parse_models(&v).map_err(|message| ConfigError::Env { name: "JOINTCODER_LLM_MODELS".into(), message })?;
            self.llm.models.extend(models);
        }
        if let Some(v) = env("JOINTCODER_LLM_ROLES") {
            self.llm.roles = crate::llm::config::LlmConfig::parse_roles(&v).map_err(|message| ConfigError::Env { name: "JOINTCODER_LLM_ROLES".into(), message })?;
        }
        if let Some(v) = env("JOINTCODER_AUTO_TRAIN") {
            self.auto_train = !matches!(v.as_str(), "0" | "false" | "no" | "off");
        }
        let number = |name: &str| -> Result<Option<usize>, ConfigError> {
            env(name).map(|v| v.parse().map_err(|_| ConfigError::Env { name: name.into(), message: format!("not a number: {v}") })).transpose()
        };
        if let Some(v) = number("JOINTCODER_MAX_BODY_BYTES")? { self.max_body_bytes = v; }
        if let Some(v) = number("JOINTCODER_LIMIT_SECTION_CHARS")? { self.limits.record.max_section_chars = v; }
        if let Some(v) = number("JOINTCODER_LIMIT_SECTIONS")? { self.limits.record.max_sections = v; }
        if let Some(v) = number("JOINTCODER_LIMIT_LIST_ITEMS")? { self.limits.record.max_list_items = v; }
        if let Some(v) = number("JOINTCODER_LIMIT_ITEM_CHARS")? { self.limits.record.max_item_chars = v; }
        if let Some(v) = number("JOINTCODER_LIMIT_CODING_MS")? { self.limits.coding_ms = v as u64; }
        if let Some(v) = number("JOINTCODER_LIMIT_WAITING")? { self.limits.waiting = v; }
        if let Some(v) = number("JOINTCODER_LIMIT_BODY_MS")? { self.limits.body_ms = v as u64; }
        Ok(())
    }

    /// The data directory's layout.
    pub fn data(&self) -> crate::catalog::DataDir {
        crate::catalog::DataDir::new(&self.data_dir)
    }

    pub fn terminology_options(&self) -> TerminologyOptions {
        let learned = self.data().learned_lexicon();
        TerminologyOptions {
            dir: self.terminology_dir.clone(),
            canonical_base: self.canonical_base.clone(),
            cache_dir: Some(self.data().index_cache()),
            extra_editions: self.extra_editions.clone(),
            extra_lexicons: self.lexicons.clone(),
            learned_lexicon: learned.is_file().then_some(learned),
            only: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn file_then_env_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "addr = \"0.0.0.0:1\"\ndata_dir = \"/from/file\"\nmax_body_bytes = 10\n").unwrap();
        let env: HashMap<&str, &str> = [("JOINTCODER_DATA_DIR", "/from/env")].into();
        let flags = Overrides { config_file: Some(path.clone()), addr: Some("127.0.0.1:9".into()), ..Default::default() };
        let cfg = Config::load_with(&flags, |k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(cfg.addr, "127.0.0.1:9");
        assert_eq!(cfg.data_dir, PathBuf::from("/from/env"));
        assert_eq!(cfg.max_body_bytes, 10);
    }

    #[test]
    fn bad_file_and_env_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "adr = 1\n").unwrap();
        let flags = Overrides { config_file: Some(path), ..Default::default() };
        let err = Config::load_with(&flags, |_| None).unwrap_err().to_string();
        assert!(err.contains("c.toml"), "{err}");
        let err = Config::load_with(&Overrides::default(), |k| {
            (k == "JOINTCODER_MAX_BODY_BYTES").then(|| "lots".to_string())
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("JOINTCODER_MAX_BODY_BYTES"), "{err}");
    }

    #[test]
    fn llm_roles_from_file_then_env_then_flag() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[llm.models.local]\nbackend = \"candle\"\npath = \"/m/qwen3\"\n[llm.roles]\n\"*\" = \"local\"\n",
        )
        .unwrap();
        let file_only = Overrides { config_file: Some(path.clone()), ..Default::default() };
        let cfg = Config::load_with(&file_only, |_| None).unwrap();
        assert_eq!(cfg.llm.model_for(crate::agents::Role::MineProcedures), "local");
        let env: HashMap<&str, &str> = [("JOINTCODER_LLM_ROLES", "validate-diagnoses=local")].into();
        let cfg = Config::load_with(&file_only, |k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(cfg.llm.model_for(crate::agents::Role::MineProcedures), "knowledge");
        let flag = Overrides { llm_roles: Some("*=knowledge".into()), ..file_only };
        let cfg = Config::load_with(&flag, |k| env.get(k).map(|v| v.to_string())).unwrap();
        assert!(cfg.llm.is_empty());
        let bad = Overrides { llm_roles: Some("*=missing".into()), ..Default::default() };
        let err = Config::load_with(&bad, |_| None).unwrap_err().to_string();
        assert!(err.contains("missing") && err.contains("llm"), "{err}");
    }

    /// The two API keys come from the environment only, reach what uses them through the
    /// config, and are never written out.
    #[test]
    fn api_keys_come_from_the_environment_and_are_never_serialized() {
        let env: HashMap<&str, &str> = [("JOINTCODER_OPENAI_API_KEY", "sk-openai-secret"), ("JOINTCODER_MODEL_API_KEY", "model-secret")].into();
        let cfg = Config::load_with(&Overrides::default(), |k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(cfg.llm.api_key.as_deref(), Some("sk-openai-secret"));
        assert_eq!(cfg.model_api_key.as_deref(), Some("model-secret"));
        let text = serde_json::to_string(&cfg).unwrap();
        assert!(!text.contains("secret"), "{text}");
        assert!(Config::load_with(&Overrides::default(), |_| None).unwrap().llm.api_key.is_none());
    }

    /// The store URL comes from the environment or a flag, must be PostgreSQL's, and is never
    /// written out with the rest of the configuration (it may hold a password).
    #[test]
    fn store_url_is_checked_and_never_serialized() {
        let env: HashMap<&str, &str> = [("JOINTCODER_STORE_URL", "postgres://jc:secret@db/jc")].into();
        let cfg = Config::load_with(&Overrides::default(), |k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(cfg.store_url.as_deref(), Some("postgres://jc:secret@db/jc"));
        assert!(!serde_json::to_string(&cfg).unwrap().contains("secret"));
        let flag = Overrides { store_url: Some("postgresql://other/jc".into()), ..Default::default() };
        assert_eq!(Config::load_with(&flag, |k| env.get(k).map(|v| v.to_string())).unwrap().store_url.as_deref(), Some("postgresql://other/jc"));
        let bad = Overrides { store_url: Some("mysql://db/jc".into()), ..Default::default() };
        let err = Config::load_with(&bad, |_| None).unwrap_err().to_string();
        assert!(err.contains("store_url") && err.contains("postgres://"), "{err}");
        assert!(Config::load_with(&Overrides::default(), |_| None).unwrap().store_url.is_none(), "SQLite unless set");
    }
}
