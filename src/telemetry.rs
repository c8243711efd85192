//! Logging setup. Clinical text never goes to logs: handlers log ids, sizes and outcomes only.

pub fn init() {
    let filter = tracing_subscriber::EnvFilter::new(filter_directives(std::env::var("JOINTCODER_LOG").ok().as_deref()));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// The log filter: `JOINTCODER_LOG` (default `info`). actix's HTTP/1 dispatcher reports every
/// malformed request a client sends (a bad header, a broken `Content-Length`) at ERROR, which
/// buries the server's own errors and lets any client fill the log: it is silenced unless the
/// filter names `actix_http` itself.
fn filter_directives(configured: Option<&str>) -> String {
    let base = configured.filter(|f| !f.trim().is_empty()).unwrap_or("info");
    if base.contains("actix_http") {
        base.to_owned()
    } else {
        format!("{base},actix_http::h1::dispatcher=off")
    }
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
    fn client_protocol_errors_are_not_logged_as_server_errors() {
        assert_eq!(super::filter_directives(None), "info,actix_http::h1::dispatcher=off");
        assert_eq!(super::filter_directives(Some("debug")), "debug,actix_http::h1::dispatcher=off");
        assert_eq!(super::filter_directives(Some("info,actix_http=debug")), "info,actix_http=debug");
    }

    #[test]
    fn record_tags_hide_the_identifier_and_are_stable() {
        let tag = super::record_tag("张伟-住院号20261120");
        assert!(tag.starts_with("rec-") && tag.len() == 16, "{tag}");
        assert!(!tag.contains("张伟") && !tag.contains("20261120"));
        assert_eq!(tag, super::record_tag("张伟-住院号20261120"));
        assert_ne!(tag, super::record_tag("张伟-住院号20261121"));
    }
}
