//! The `jointcoder` command line: `serve`, `terminology …`, `bench …`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use jointcoder::catalog::datasets;
use jointcoder::config::{Config, Overrides};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use jointcoder::terminology::CodeKind;

#[derive(Parser)]
#[command(name = "jointcoder", version, about = "Codes Chinese inpatient records: ICD-10 国家临床版2.0 and ICD-9-CM-3 国家临床版3.0")]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

/// The flags of settings (`--data-dir`, `--store-url`, …) are added from the settings table
/// ([`jointcoder::config::settings::all`]) when the command line is built, not declared here again.
#[derive(Args, Clone)]
struct GlobalArgs {
    /// Config file (TOML); also JOINTCODER_CONFIG, or ./jointcoder.toml when present.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Which model serves which role, e.g. "*=qwen,standardize-diagnosis=knowledge"
    /// (JOINTCODER_LLM_ROLES; models are defined in [llm.models] or JOINTCODER_LLM_MODELS).
    #[arg(long, global = true)]
    llm_roles: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the FHIR server (the default when no command is given).
    Serve,
    /// Every setting: its value now, its config-file key, environment variable and flag.
    Settings,
    /// Search, look up and translate codes.
    #[command(subcommand)]
    Terminology(TerminologyCmd),
    /// Benchmarks that print a table.
    #[command(subcommand)]
    Bench(BenchCmd),
    /// Code records (JSON, JSON array, JSONL, XLSX, CSV): one JSONL line per record.
    Code {
        file: PathBuf,
        #[arg(short, long)]
        out: Option<PathBuf>,
        /// Include every stage's trace.
        #[arg(long)]
        trace: bool,
    },
    /// Measure on a dataset: ccl2025, chip-cdn, or a file of gold-coded records.
    Eval {
        #[arg(long, default_value = "ccl2025")]
        dataset: String,
        /// dev, test or all (CCL2025: even or odd 病案标识); CCL2025 defaults to test, a file or folder of records to all
        #[arg(long, value_parser = parse_split)]
        split: Option<jointcoder::eval::Split>,
        /// Switch a stage off (standardize, mine, prioritize, code-also, validate); repeatable.
        #[arg(long = "without", value_parser = parse_stage)]
        without: Vec<jointcoder::pipeline::Stage>,
        /// Keep only codes of this label space (CCL2025's label_space.json).
        #[arg(long)]
        label_space: Option<PathBuf>,
        /// Run every --without variant and print the paper-style table.
        #[arg(long)]
        ablation: bool,
        /// Write what was missed and what was extra, one JSONL line per item that was not right.
        #[arg(long)]
        errors: Option<PathBuf>,
    },
    /// Write the coders' reviews (accept, reject, correct) as JSONL training data.
    ExportFeedback {
        #[arg(short, long)]
        out: Option<PathBuf>,
    },
    /// Serve a local Qwen3 (a directory or a .gguf) as an OpenAI-compatible API:
    /// /v1/chat/completions and /v1/models.
    ServeModel {
        /// Model directory (config.json, tokenizer.json, *.safetensors) or .gguf file.
        #[arg(long)]
        model: PathBuf,
        /// The model's name in requests and /v1/models (default: the file or directory name).
        #[arg(long)]
        name: Option<String>,
        #[arg(long, default_value = "127.0.0.1:8081")]
        addr: String,
        /// cpu, or cuda:N (built with --features cuda).
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Write chat-format fine-tuning data, one JSONL file per role, from gold-coded records.
    ExportSft {
        /// Records with gold codes (JSON, JSONL, XLSX, CSV).
        #[arg(long)]
        dataset: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Train the knowledge backend's models from the allowed data into the data directory.
    Train {
        /// CHIP-CDN training mentions (default: the shared CHIP-CDN train file).
        #[arg(long)]
        chip_cdn: Option<PathBuf>,
    },
}

/// The command line with a flag for each setting that has one: global, but for `--addr`,
/// which belongs to `serve` (`serve-model` has an `--addr` of its own). Answers the parsed
/// command and `(setting name, value)` for each setting flag given.
fn parse_command_line() -> (Cli, Vec<(String, String)>) {
    use clap::{Arg, CommandFactory, FromArgMatches};
    let table = jointcoder::config::settings::all();
    let mut cmd = Cli::command();
    for s in &table {
        let Some(flag) = s.flag else { continue };
        let help = match s.env {
            Some(env) => format!("{} ({env})", s.help),
            None => s.help.to_owned(),
        };
        let arg = Arg::new(s.name).long(flag).value_name("VALUE").help(help);
        cmd = if flag == "addr" { cmd.mut_subcommand("serve", |serve| serve.arg(arg)) } else { cmd.arg(arg.global(true)) };
    }
    let matches = cmd.get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let mut values = Vec::new();
    for s in table.iter().filter(|s| s.flag.is_some()) {
        let given = matches
            .try_get_one::<String>(s.name)
            .ok()
            .flatten()
            .or_else(|| matches.subcommand().and_then(|(_, sub)| sub.try_get_one::<String>(s.name).ok().flatten()));
        if let Some(v) = given {
            values.push((s.name.to_owned(), v.clone()));
        }
    }
    (cli, values)
}

/// `jointcoder settings`: one row per setting of the table, secrets shown as such.
fn print_settings(config: &Config) {
    println!("| setting | value | config file | environment | flag |");
    println!("| --- | --- | --- | --- | --- |");
    for s in jointcoder::config::settings::all() {
        let or_dash = |v: Option<&str>| v.map_or_else(|| "—".to_owned(), |v| format!("`{v}`"));
        println!("| {} | {} | {} | {} | {} |", s.name, (s.show)(config), or_dash(s.file_key), or_dash(s.env), or_dash(s.flag.map(|f| format!("--{f}")).as_deref()));
    }
}

fn parse_split(s: &str) -> Result<jointcoder::eval::Split, String> {
    jointcoder::eval::Split::parse(s).ok_or_else(|| format!("unknown split {s:?}: one of dev, test, all"))
}

fn parse_stage(s: &str) -> Result<jointcoder::pipeline::Stage, String> {
    jointcoder::pipeline::Stage::parse(s).filter(|st| *st != jointcoder::pipeline::Stage::Map).ok_or_else(|| {
        format!("unknown stage {s:?}: one of standardize, mine, prioritize, code-also, validate")
    })
}

#[derive(Subcommand)]
enum TerminologyCmd {
    /// Ranked candidates for a clinician's phrasing: CODE<TAB>NAME<TAB>SCORE, best first.
    Search {
        text: String,
        /// icd10, icd9cm3, or an edition id / canonical URL.
        #[arg(long, default_value = "icd10")]
        system: String,
        #[arg(long)]
        version: Option<String>,
        #[arg(short, default_value_t = 10)]
        k: usize,
        #[arg(long)]
        json: bool,
    },
    /// Display, parent and children of a code.
    Lookup {
        code: String,
        #[arg(long)]
        system: Option<String>,
        #[arg(long)]
        version: Option<String>,
    },
    /// The insurance-edition (医保版) code for a clinical code.
    Translate {
        code: String,
        #[arg(long, default_value = "insurance")]
        to: String,
        #[arg(long)]
        system: Option<String>,
    },
}

fn main() -> ExitCode {
    jointcoder::telemetry::init();
    let (cli, values) = parse_command_line();
    let flags = Overrides { config_file: cli.global.config.clone(), values, llm_roles: cli.global.llm_roles.clone() };
    let config = match Config::load(&flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => jointcoder::server::run(config),
        Command::Settings => {
            print_settings(&config);
            Ok(())
        }
        Command::Terminology(cmd) => terminology_cmd(&config, cmd),
        Command::Bench(cmd) => run_bench(&config, cmd),
        Command::Code { file, out, trace } => jointcoder::cli::code_file(&config, &file, out.as_deref(), trace),
        Command::Eval { dataset, split, without, label_space, ablation, errors } => jointcoder::cli::eval(
            &config,
            jointcoder::cli::EvalArgs { dataset, split, without, label_space, ablation, errors },
        ),
        Command::ServeModel { model, name, addr, device } => jointcoder::server::model_api::run(&model, name, &addr, &device, config.model_api_key.clone()),
        Command::ExportSft { dataset, out } => jointcoder::sft::export(&config, &dataset, &out),
        Command::ExportFeedback { out } => jointcoder::cli::export_feedback(&config, out.as_deref()),
        Command::Train { chip_cdn } => {
            let mut sources = jointcoder::train::TrainingSources::default_paths();
            if let Some(p) = chip_cdn {
                sources.chip_cdn_train = p;
            }
            jointcoder::train::train_all(&config, &sources).map(|_| ())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A code's clinical edition, by the code's own shape.
fn system_for_code(code: &str) -> &'static str {
    match CodeKind::guess(code) {
        CodeKind::Icd9cm3 => "icd9cm3",
        CodeKind::Icd10 => "icd10",
    }
}

fn terminology_cmd(config: &Config, cmd: TerminologyCmd) -> Result<(), String> {
    let t = jointcoder::app::open_terminology(config)?;
    match cmd {
        TerminologyCmd::Search { text, system, version, k, json } => {
            let hits = t.search(&text, &system, version.as_deref(), k).map_err(|e| e.to_string())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&hits).map_err(|e| e.to_string())?);
            } else {
                for h in hits {
                    println!("{}\t{}\t{:.3}", h.code, h.name, h.score);
                }
            }
        }
        TerminologyCmd::Lookup { code, system, version } => {
            let system = system.unwrap_or_else(|| system_for_code(&code).to_owned());
            let cs = t.edition(&system, version.as_deref()).map_err(|e| e.to_string())?;
            let c = cs.get(&code).ok_or_else(|| format!("code {code} is not in {} {}", cs.meta.id, cs.meta.version))?;
            println!("code\t{}\ndisplay\t{}\nsystem\t{}\nversion\t{}", c.code, c.name, cs.meta.url, cs.meta.version);
            if let Some(p) = cs.parent(&c.code) {
                println!("parent\t{}\t{}", p.code, p.name);
            }
            for ch in cs.children(&c.code) {
                println!("child\t{}\t{}", ch.code, ch.name);
            }
        }
        TerminologyCmd::Translate { code, to, system } => {
            if to != "insurance" {
                return Err(format!("unknown target {to:?}: only 'insurance' is supported"));
            }
            let system = system.unwrap_or_else(|| system_for_code(&code).to_owned());
            let (target, tr) = t.translate(&system, &code).map_err(|e| e.to_string())?;
            match tr {
                Some(tr) => {
                    let name = target.get(tr.code()).map(|c| c.name.as_str()).unwrap_or("");
                    println!("{}\t{}\t{}\t{}", tr.code(), name, target.meta.id, target.meta.version);
                }
                None => return Err(format!("{code} has no counterpart in {}", target.meta.id)),
            }
        }
    }
    Ok(())
}

#[derive(Subcommand)]
enum BenchCmd {
    /// Start-up time and memory, search latency and retrieval recall on CHIP-CDN dev.
    Terminology {
        /// CHIP-CDN file with `text` and `normalized_result` (## joined).
        #[arg(long, default_value = datasets::CHIP_CDN_DEV)]
        mentions: PathBuf,
        /// The label space the mentions are normalized to.
        #[arg(long, default_value = datasets::BEIJING_V601)]
        vocab: PathBuf,
    },
    /// Whole-pipeline throughput on one thread over a record file (default: the CCL2025 records).
    Pipeline {
        #[arg(long, default_value = datasets::CCL2025_RECORDS)]
        records: PathBuf,
        /// Passes over the records.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// Search latency over a store of many AuditEvents (a busy server's trail): the first page,
    /// a deep page, and a filtered search, each with its total.
    Search {
        /// AuditEvents written first.
        #[arg(long, default_value_t = 140_000)]
        resources: usize,
        /// Timed searches per row.
        #[arg(long, default_value_t = 20)]
        rounds: usize,
    },
    /// PDF reading per page: the text layer, rendering at 200 dpi, OCR, and the whole record
    /// (de-identified and split), over the PDFs given (PDFium and the OCR models from pdf_dir).
    Pdf {
        /// PDF files; each is read as it is and, for OCR, as if every page were a scan.
        files: Vec<PathBuf>,
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// Every role on a local Qwen3 through candle: tokens/s, per-record latency, and the time
    /// outside candle's forward passes. Without --model, on a tiny random model it writes.
    Llm {
        /// A model directory or .gguf; default: the tiny random Qwen3 (safetensors and GGUF).
        #[arg(long)]
        model: Option<PathBuf>,
        #[arg(long, default_value = "examples/records/cardiology_procedures.json")]
        records: PathBuf,
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        #[arg(long, default_value = "cpu")]
        device: String,
    },
}

fn run_bench(config: &Config, cmd: BenchCmd) -> Result<(), String> {
    use jointcoder::bench;
    match cmd {
        BenchCmd::Llm { model, records, rounds, device } => jointcoder::bench::llm::run(config, model, &records, rounds, &device),
        BenchCmd::Terminology { mentions, vocab } => bench::terminology(config, &mentions, &vocab),
        BenchCmd::Pipeline { records, rounds } => bench::pipeline(config, &records, rounds),
        BenchCmd::Search { resources, rounds } => bench::search(resources, rounds),
        BenchCmd::Pdf { files, rounds } => bench::pdf(config, &files, rounds),
    }
}
