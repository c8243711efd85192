//! Assembling the application, once for every caller (the server, the CLI commands, the
//! benches, `export-sft`): the configured terminology, the knowledge models (trained when
//! missing and the allowed training data is here), the language models of the roles given to
//! one, and the pipeline over them. Nothing here parses arguments or answers HTTP.

use std::sync::Arc;

use crate::agents::knowledge::KnowledgeModels;
use crate::train;
use crate::config::Config;
use crate::llm::config::LoadedModels;
use crate::pipeline::Pipeline;
use crate::terminology::Terminology;

/// What a command codes with.
pub struct App {
    pub terminology: Arc<Terminology>,
    pub models: KnowledgeModels,
    pub llm: LoadedModels,
    pub pipeline: Pipeline,
}

impl App {
    /// The whole application of `config`, training the knowledge models first when missing.
    pub fn open(config: &Config) -> Result<App, String> {
        let models = models_or_train(config)?;
        let terminology = Arc::new(open_terminology(config)?);
        App::assemble(config, terminology, models)
    }

    /// The application over a terminology and models the caller already has (the server loads
    /// them its own way: it starts at once and trains in the background).
    pub fn assemble(config: &Config, terminology: Arc<Terminology>, models: KnowledgeModels) -> Result<App, String> {
        let llm = LoadedModels::load(&config.llm).map_err(|e| e.to_string())?;
        let pipeline = llm.pipeline(&config.llm, terminology.clone(), &models);
        Ok(App { terminology, models, llm, pipeline })
    }
}

/// Loads the configured terminology; a failure names the directory and the setting to change.
pub fn open_terminology(config: &Config) -> Result<Terminology, String> {
    Terminology::load(&config.terminology_options()).map_err(|e| {
        format!("{e} (terminology directory: {}; set JOINTCODER_TERMINOLOGY_DIR)", config.terminology_dir.display())
    })
}

/// The trained models, trained now (and cached) if missing and the training data is here.
pub fn models_or_train(config: &Config) -> Result<KnowledgeModels, String> {
    let dir = config.data().models();
    if !KnowledgeModels::present(&dir) {
        let sources = train::TrainingSources::default_paths();
        if config.auto_train && sources.available() {
            eprintln!("no trained models in {}: training them now (jointcoder train)", dir.display());
            train::train_all(config, &sources)?;
        } else {
            eprintln!("no trained models (and auto-training off or no training data): using the hand-set defaults");
        }
    }
    KnowledgeModels::load(&dir)
}
