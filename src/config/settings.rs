//! Every scalar setting declared once: its name, its key in the config file, its environment
//! variable, its command-line flag, its help, and where it lands in [`Config`]. The loader
//! (file, then environment, then flags), the command line's flags and `jointcoder settings`
//! all read this one table, the way text-embeddings-inference declares each option once.
//! Structured sections (`[llm.models]`, `[[edition]]`) are read whole by the loader.

use std::path::PathBuf;

use crate::config::Config;

/// One setting.
pub struct Setting {
    /// Its name in messages and in `jointcoder settings`.
    pub name: &'static str,
    /// Dotted key in the TOML file (`jwt.issuer`); `None` for secrets, which come from the
    /// environment only.
    pub file_key: Option<&'static str>,
    pub env: Option<&'static str>,
    /// Long flag, global to every command.
    pub flag: Option<&'static str>,
    pub help: &'static str,
    /// Sets it from text (environment, flag).
    pub from_text: fn(&mut Config, &str) -> Result<(), String>,
    /// Sets it from a TOML value (file).
    pub from_toml: fn(&mut Config, toml::Value) -> Result<(), String>,
    /// Its value as `jointcoder settings` shows it (`(secret)` for secrets).
    pub show: fn(&Config) -> String,
}

/// How a setting's type reads from text.
pub trait FromText: Sized {
    fn from_text(s: &str) -> Result<Self, String>;
}

impl FromText for String {
    fn from_text(s: &str) -> Result<String, String> {
        Ok(s.to_owned())
    }
}

impl FromText for PathBuf {
    fn from_text(s: &str) -> Result<PathBuf, String> {
        Ok(PathBuf::from(s))
    }
}

impl FromText for usize {
    fn from_text(s: &str) -> Result<usize, String> {
        s.trim().parse().map_err(|_| format!("not a number: {s}"))
    }
}

impl FromText for u64 {
    fn from_text(s: &str) -> Result<u64, String> {
        s.trim().parse().map_err(|_| format!("not a number: {s}"))
    }
}

impl FromText for i64 {
    fn from_text(s: &str) -> Result<i64, String> {
        s.trim().parse().map_err(|_| format!("not a whole number: {s}"))
    }
}

impl FromText for bool {
    fn from_text(s: &str) -> Result<bool, String> {
        match s.trim() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            other => Err(format!("not true or false: {other}")),
        }
    }
}

/// An empty value unsets an optional setting.
impl<T: FromText> FromText for Option<T> {
    fn from_text(s: &str) -> Result<Option<T>, String> {
        if s.is_empty() {
            Ok(None)
        } else {
            T::from_text(s).map(Some)
        }
    }
}

/// Paths `:`-separated, as `PATH` is.
impl FromText for Vec<PathBuf> {
    fn from_text(s: &str) -> Result<Vec<PathBuf>, String> {
        Ok(s.split(':').filter(|p| !p.is_empty()).map(PathBuf::from).collect())
    }
}

/// How a setting's type reads from the config file.
pub fn from_toml<T: serde::de::DeserializeOwned>(v: toml::Value) -> Result<T, String> {
    v.try_into().map_err(|e: toml::de::Error| e.message().to_owned())
}

macro_rules! settings {
    ($( $name:literal, $($field:ident).+ : $ty:ty, file $file:expr, env $env:expr, flag $flag:expr, $secret:literal, $help:literal; )*) => {
        /// The table, in the order `jointcoder settings` prints it.
        pub fn all() -> Vec<Setting> {
            vec![$(
                Setting {
                    name: $name,
                    file_key: $file,
                    env: $env,
                    flag: $flag,
                    help: $help,
                    from_text: |c, s| { c.$($field).+ = <$ty as FromText>::from_text(s)?; Ok(()) },
                    from_toml: |c, v| { c.$($field).+ = from_toml::<$ty>(v)?; Ok(()) },
                    show: |c| if $secret { if format!("{:?}", c.$($field).+) == "None" { "(unset)".into() } else { "(secret)".into() } } else { format!("{:?}", c.$($field).+) },
                },
            )*]
        }
    };
}

settings! {
    "addr", addr: String, file Some("addr"), env Some("JOINTCODER_ADDR"), flag Some("addr"), false,
        "Address the server binds";
    "data_dir", data_dir: PathBuf, file Some("data_dir"), env Some("JOINTCODER_DATA_DIR"), flag Some("data-dir"), false,
        "Index cache, database, trained models";
    "store_url", store_url: Option<String>, file Some("store_url"), env Some("JOINTCODER_STORE_URL"), flag Some("store-url"), true,
        "PostgreSQL for the resource store, postgres://user:password@host/db (the environment is the better place for a password); unset: SQLite in the data directory";
    "terminology_dir", terminology_dir: PathBuf, file Some("terminology_dir"), env Some("JOINTCODER_TERMINOLOGY_DIR"), flag Some("terminology-dir"), false,
        "Directory with the national code tables";
    "canonical_base", canonical_base: String, file Some("canonical_base"), env Some("JOINTCODER_CANONICAL_BASE"), flag None, false,
        "Base of the canonical URIs published for the Chinese editions";
    "lexicons", lexicons: Vec<PathBuf>, file Some("lexicons"), env Some("JOINTCODER_LEXICON"), flag None, false,
        "Further lexicon files (environment: ':'-separated)";
    "policy.profile", policy: Option<String>, file Some("policy.profile"), env Some("JOINTCODER_POLICY"), flag Some("policy"), false,
        "Coding policy: a shipped one (national, paper-hospital) or the path of a policy file that extends one; unset: national";
    "pdf_dir", pdf_dir: Option<PathBuf>, file Some("pdf_dir"), env Some("JOINTCODER_PDF_DIR"), flag None, false,
        "Where PDFium is (scripts/fetch-pdf.sh installs it); unset: the data directory's pdf/";
    "pdf.store_originals", pdf_store_originals: bool, file Some("pdf.store_originals"), env Some("JOINTCODER_PDF_STORE_ORIGINALS"), flag None, false,
        "Keep a PDF posted as a Binary as it came (identifiers and all); false: refuse such a POST and code PDFs inline, keeping only de-identified text";
    "pdf.date_shift_days", pdf_date_shift_days: Option<i64>, file None, env Some("JOINTCODER_PDF_DATE_SHIFT_DAYS"), flag None, true,
        "Days every date of a PDF is moved by when it is de-identified (environment only); unset: dates are kept";
    "max_body_bytes", max_body_bytes: usize, file Some("max_body_bytes"), env Some("JOINTCODER_MAX_BODY_BYTES"), flag None, false,
        "Largest request body accepted, bytes";
    "default_page_size", default_page_size: usize, file Some("default_page_size"), env None, flag None, false,
        "Page size for CodeSystem concept listings and ValueSet expansions";
    "auto_train", auto_train: bool, file Some("auto_train"), env Some("JOINTCODER_AUTO_TRAIN"), flag None, false,
        "Train the knowledge models on first use when they are missing";
    "jwt.hs256_secret", jwt.hs256_secret: Option<String>, file None, env Some("JOINTCODER_JWT_HS256_SECRET"), flag None, true,
        "HS256 secret for development tokens (at least 32 bytes; environment only)";
    "jwt.public_key_pem", jwt.public_key_pem: Option<PathBuf>, file Some("jwt.public_key_pem"), env Some("JOINTCODER_JWT_PUBLIC_KEY"), flag None, false,
        "An RSA or EC public key (PEM) that signs bearer tokens";
    "jwt.jwks_file", jwt.jwks_file: Option<PathBuf>, file Some("jwt.jwks_file"), env Some("JOINTCODER_JWKS_FILE"), flag None, false,
        "A JWKS file with the keys that sign bearer tokens";
    "jwt.issuer", jwt.issuer: Option<String>, file Some("jwt.issuer"), env Some("JOINTCODER_JWT_ISSUER"), flag None, false,
        "Required iss of bearer tokens";
    "jwt.audience", jwt.audience: Option<String>, file Some("jwt.audience"), env Some("JOINTCODER_JWT_AUDIENCE"), flag None, false,
        "Required aud of bearer tokens";
    "jwt.token_endpoint", jwt.token_endpoint: Option<String>, file Some("jwt.token_endpoint"), env Some("JOINTCODER_SMART_TOKEN_ENDPOINT"), flag None, false,
        "Token endpoint advertised in the SMART configuration";
    "limits.max_section_chars", limits.record.max_section_chars: usize, file Some("limits.max_section_chars"), env Some("JOINTCODER_LIMIT_SECTION_CHARS"), flag None, false,
        "Characters in one section of a record (413 past it)";
    "limits.max_sections", limits.record.max_sections: usize, file Some("limits.max_sections"), env Some("JOINTCODER_LIMIT_SECTIONS"), flag None, false,
        "Sections in one document (413 past it)";
    "limits.max_list_items", limits.record.max_list_items: usize, file Some("limits.max_list_items"), env Some("JOINTCODER_LIMIT_LIST_ITEMS"), flag None, false,
        "Items in one diagnosis or procedure list (422 past it)";
    "limits.max_item_chars", limits.record.max_item_chars: usize, file Some("limits.max_item_chars"), env Some("JOINTCODER_LIMIT_ITEM_CHARS"), flag None, false,
        "Characters in one list item (422 past it)";
    "limits.coding_ms", limits.coding_ms: u64, file Some("limits.coding_ms"), env Some("JOINTCODER_LIMIT_CODING_MS"), flag None, false,
        "Milliseconds a $code may spend coding (503 past it)";
    "limits.waiting", limits.waiting: usize, file Some("limits.waiting"), env Some("JOINTCODER_LIMIT_WAITING"), flag None, false,
        "$code requests coding or waiting at once (503 past it)";
    "limits.body_ms", limits.body_ms: u64, file Some("limits.body_ms"), env Some("JOINTCODER_LIMIT_BODY_MS"), flag None, false,
        "Milliseconds a request body may take to arrive (408 past it)";
    "llm.api_key", llm.api_key: Option<String>, file None, env Some("JOINTCODER_OPENAI_API_KEY"), flag None, true,
        "Bearer key for OpenAI-compatible model servers (environment only)";
    "model_api_key", model_api_key: Option<String>, file None, env Some("JOINTCODER_MODEL_API_KEY"), flag None, true,
        "Bearer key serve-model requires (environment only)";
}

/// Keys of the config file read as whole sections rather than as settings of the table.
pub const SECTIONS: &[&str] = &["edition", "llm"];

#[cfg(test)]
mod tests {
    use super::*;

    /// Names, file keys, variables and flags are each unique; every file key and variable
    /// sets the field its row names (a value in, the same value shown).
    #[test]
    fn the_table_is_consistent() {
        let all = all();
        for pick in [|s: &Setting| Some(s.name), |s: &Setting| s.file_key, |s: &Setting| s.env, |s: &Setting| s.flag] {
            let mut seen = std::collections::HashSet::new();
            for s in &all {
                if let Some(k) = pick(s) {
                    assert!(seen.insert(k), "{k} twice");
                }
            }
        }
        for s in &all {
            assert!(s.env.is_none_or(|e| e.starts_with("JOINTCODER_")), "{}", s.name);
            let mut c = Config::default();
            let before = (s.show)(&c);
            (s.from_text)(&mut c, "7").or_else(|_| (s.from_text)(&mut c, "false")).unwrap_or_else(|e| panic!("{}: {e}", s.name));
            assert_ne!((s.show)(&c), before, "{} did not change", s.name);
        }
    }
}
