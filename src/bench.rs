//! `jointcoder bench …`: numbers printed as a table (speed targets live here, never in tests).

use crate::config::Config;

#[derive(clap::Subcommand)]
pub enum BenchCmd {
    /// Start-up time and memory, search latency and retrieval recall on CHIP-CDN dev.
    Terminology,
}

pub fn run(_config: &Config, _cmd: BenchCmd) -> Result<(), String> {
    Err("not yet".into())
}
