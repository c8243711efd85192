//! All settings in one struct, filled in this order: defaults, config file, `JOINTCODER_*`
//! environment variables, command-line flags. Later sources win.

pub mod settings;

use std::path::{Path, PathBuf};

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
    /// The coding conventions (`[policy] profile`, `JOINTCODER_POLICY`, `--policy`): a shipped
    /// policy's name or a policy file; the national default when unset.
    pub policy: Option<String>,
    /// Further editions: an admin's own `code,name` tables.
    pub extra_editions: Vec<EditionSpec>,
    /// Where PDFium is (`pdf_dir`, `JOINTCODER_PDF_DIR`; `scripts/fetch-pdf.sh` installs it);
    /// the data directory's `pdf/` when unset.
    pub pdf_dir: Option<PathBuf>,
    /// Whether a PDF posted as a Binary is kept as it came, identifiers and all
    /// (`pdf.store_originals`, `JOINTCODER_PDF_STORE_ORIGINALS`). Off: such a POST is refused,
    /// and PDFs are coded inline, where only the de-identified text is ever kept.
    pub pdf_store_originals: bool,
    /// Days every date of a PDF is moved by when it is de-identified (`pdf.date_shift_days`,
    /// `JOINTCODER_PDF_DATE_SHIFT_DAYS`, environment only: knowing it undoes it); unset: dates
    /// are kept.
    #[serde(skip)]
    pub pdf_date_shift_days: Option<i64>,
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
/// Read from the file, environment and flags through the settings table (`limits.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
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

/// Keys and expectations for bearer tokens (`jwt.*` in the settings table). The HS256 secret
/// comes from the environment only.
#[derive(Debug, Clone, Default, serde::Serialize)]
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

/// Flag values: the config file to read, and `(setting name, text)` for the flags given
/// (the names of [`crate::config::settings::all`]); a flag not given leaves the value from file or
/// environment.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub values: Vec<(String, String)>,
    /// `--llm-roles`: as `JOINTCODER_LLM_ROLES`.
    pub llm_roles: Option<String>,
}

impl Overrides {
    /// One flag's value, by setting name.
    pub fn with(mut self, setting: &str, value: impl Into<String>) -> Overrides {
        self.values.push((setting.to_owned(), value.into()));
        self
    }
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
            policy: None,
            extra_editions: Vec::new(),
            pdf_dir: None,
            pdf_store_originals: true,
            pdf_date_shift_days: None,
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
            cfg.apply_file(&text).map_err(|message| ConfigError::File { path: path.display().to_string(), message })?;
        }
        cfg.apply_env(&env)?;
        let table = crate::config::settings::all();
        for (name, value) in &flags.values {
            let setting = table.iter().find(|s| s.name == name).ok_or_else(|| ConfigError::Invalid { name: name.clone(), message: "no such setting".into() })?;
            let flag = setting.flag.map_or_else(|| name.clone(), |f| format!("--{f}"));
            (setting.from_text)(&mut cfg, value).map_err(|message| ConfigError::Invalid { name: flag, message })?;
        }
        if let Some(url) = &cfg.store_url {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(ConfigError::Invalid { name: "store_url (config file, JOINTCODER_STORE_URL, --store-url)".into(), message: "a postgres:// URL, or unset for SQLite in the data directory".into() });
            }
        }
        if let Some(v) = &flags.llm_roles {
            cfg.llm.roles = crate::llm::config::LlmConfig::parse_roles(v).map_err(|message| ConfigError::Invalid { name: "--llm-roles".into(), message })?;
        }
        cfg.llm.check().map_err(|message| ConfigError::Invalid { name: "llm settings (config file, JOINTCODER_LLM_*, --llm-roles)".into(), message })?;
        Ok(cfg)
    }

    /// The config file: every key of the settings table (dotted keys are TOML tables, as
    /// `[jwt] issuer = …`), plus the `[llm]` and `[[edition]]` sections; any other key is an
    /// error that names it.
    fn apply_file(&mut self, text: &str) -> Result<(), String> {
        let file: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
        let table = crate::config::settings::all();
        let mut keys = Vec::new();
        leaf_keys(&file, "", &mut keys);
        if let Some(unknown) = keys.iter().find(|k| !table.iter().any(|s| s.file_key == Some(k.as_str()))) {
            let secret = table.iter().any(|s| s.file_key.is_none() && s.name == unknown.as_str());
            return Err(if secret { format!("{unknown} is read from the environment only, never from a file") } else { format!("unknown key {unknown}") });
        }
        for s in &table {
            let Some(key) = s.file_key else { continue };
            let mut at = Some(&file);
            let mut value = None;
            for (i, part) in key.split('.').enumerate() {
                let here = at.and_then(|t| t.get(part));
                if i + 1 == key.split('.').count() {
                    value = here.cloned();
                } else {
                    at = here.and_then(toml::Value::as_table);
                }
            }
            if let Some(v) = value {
                (s.from_toml)(self, v).map_err(|m| format!("{key}: {m}"))?;
            }
        }
        if let Some(llm) = file.get("llm") {
            self.llm = crate::config::settings::from_toml(llm.clone()).map_err(|m| format!("llm: {m}"))?;
        }
        if let Some(editions) = file.get("edition") {
            self.extra_editions.extend(crate::config::settings::from_toml::<Vec<EditionSpec>>(editions.clone()).map_err(|m| format!("edition: {m}"))?);
        }
        Ok(())
    }

    /// Every setting's variable, then the LLM models and roles (written as one line each).
    fn apply_env(&mut self, env: &impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        for s in crate::config::settings::all() {
            let Some(var) = s.env else { continue };
            if let Some(v) = env(var) {
                (s.from_text)(self, &v).map_err(|message| ConfigError::Env { name: var.into(), message })?;
            }
        }
        if let Some(v) = env("JOINTCODER_LLM_MODELS") {
            let models = crate::llm::config::LlmConfig::parse_models(&v).map_err(|message| ConfigError::Env { name: "JOINTCODER_LLM_MODELS".into(), message })?;
            self.llm.models.extend(models);
        }
        if let Some(v) = env("JOINTCODER_LLM_ROLES") {
            self.llm.roles = crate::llm::config::LlmConfig::parse_roles(&v).map_err(|message| ConfigError::Env { name: "JOINTCODER_LLM_ROLES".into(), message })?;
        }
        Ok(())
    }

    /// How PDFs' dates are de-identified.
    pub fn pdf_dates(&self) -> crate::ingest::deid::Dates {
        self.pdf_date_shift_days.map_or(crate::ingest::deid::Dates::Keep, crate::ingest::deid::Dates::Shift)
    }

    /// Where PDFium is looked for.
    pub fn pdf_dir(&self) -> PathBuf {
        self.pdf_dir.clone().unwrap_or_else(|| self.data().pdf())
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
            policy: self.policy.clone(),
        }
    }
}

/// Dotted keys of a TOML table's values, not descending into the sections read whole.
fn leaf_keys(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
    for (k, v) in table {
        let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        if prefix.is_empty() && crate::config::settings::SECTIONS.contains(&k.as_str()) {
            continue;
        }
        match v {
            toml::Value::Table(t) => leaf_keys(t, &key, out),
            _ => out.push(key),
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
        let flags = Overrides { config_file: Some(path.clone()), ..Default::default() }.with("addr", "127.0.0.1:9");
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

    /// Dotted settings are TOML tables; a secret in the file, or a key no setting has, is an
    /// error naming it.
    #[test]
    fn file_sections_and_refused_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[jwt]\nissuer = \"https://auth.example\"\n[limits]\ncoding_ms = 5\nmax_sections = 9\n").unwrap();
        let flags = Overrides { config_file: Some(path.clone()), ..Default::default() };
        let cfg = Config::load_with(&flags, |_| None).unwrap();
        assert_eq!(cfg.jwt.issuer.as_deref(), Some("https://auth.example"));
        assert_eq!((cfg.limits.coding_ms, cfg.limits.record.max_sections), (5, 9));
        let env: HashMap<&str, &str> = [("JOINTCODER_LIMIT_CODING_MS", "7")].into();
        assert_eq!(Config::load_with(&flags, |k| env.get(k).map(|v| v.to_string())).unwrap().limits.coding_ms, 7, "environment over file");
        for (text, says) in [("[jwt]\nhs256_secret = \"0123456789abcdef0123456789abcdef\"\n", "environment only"), ("[limits]\ncoding_secs = 1\n", "limits.coding_secs"), ("max_body_bytes = \"lots\"\n", "max_body_bytes")] {
            std::fs::write(&path, text).unwrap();
            let err = Config::load_with(&flags, |_| None).unwrap_err().to_string();
            assert!(err.contains(says) && err.contains("c.toml"), "{err}");
        }
        let err = Config::load_with(&Overrides::default().with("max_body_bytes", "x"), |_| None).unwrap_err().to_string();
        assert!(err.contains("max_body_bytes") && err.contains("not a number"), "{err}");
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
        let flag = Overrides::default().with("store_url", "postgresql://other/jc");
        assert_eq!(Config::load_with(&flag, |k| env.get(k).map(|v| v.to_string())).unwrap().store_url.as_deref(), Some("postgresql://other/jc"));
        let bad = Overrides::default().with("store_url", "mysql://db/jc");
        let err = Config::load_with(&bad, |_| None).unwrap_err().to_string();
        assert!(err.contains("store_url") && err.contains("postgres://"), "{err}");
        assert!(Config::load_with(&Overrides::default(), |_| None).unwrap().store_url.is_none(), "SQLite unless set");
    }
}
