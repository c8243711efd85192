//! Logging setup. Clinical text never goes to logs: handlers log ids, sizes and outcomes only.

pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("JOINTCODER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// A record identifier as logs show it: a short digest, never the identifier itself, which
/// hospitals fill with names and MRNs (`张伟-住院号20261120`). The same record gives the same
/// tag, so a log line can still be matched to a record by someone who holds the identifier.
pub fn record_tag(record_id: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(record_id.as_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("rec-{hex}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn record_tags_hide_the_identifier_and_are_stable() {
        let tag = super::record_tag("张伟-住院号20261120");
        assert!(tag.starts_with("rec-") && tag.len() == 16, "{tag}");
        assert!(!tag.contains("张伟") && !tag.contains("20261120"));
        assert_eq!(tag, super::record_tag("张伟-住院号20261120"));
        assert_ne!(tag, super::record_tag("张伟-住院号20261121"));
    }
}
