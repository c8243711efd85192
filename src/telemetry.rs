//! Logging setup. Clinical text never goes to logs: handlers log ids, sizes and outcomes only.

pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("JOINTCODER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
