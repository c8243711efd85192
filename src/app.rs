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

/// Why the application could not be assembled: which part failed, so that a caller can say
/// what to fix (the terminology directory, the models, a language model).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{source} (terminology directory: {dir}; set JOINTCODER_TERMINOLOGY_DIR)")]
    Terminology { dir: String, source: crate::terminology::TerminologyError },
    #[error("knowledge models: {0}")]
    Models(String),
    #[error("language models: {0}")]
    Llm(#[from] crate::llm::LlmError),
}

/// The commands answer errors as text.
impl From<AppError> for String {
    fn from(e: AppError) -> String {
        e.to_string()
    }
}

/// What a command codes with.
pub struct App {
    pub terminology: Arc<Terminology>,
    pub models: KnowledgeModels,
    pub llm: LoadedModels,
    pub pipeline: Pipeline,
}

impl App {
    /// The whole application of `config`, training the knowledge models first when missing.
    pub fn open(config: &Config) -> Result<App, AppError> {
        let models = models_or_train(config)?;
        let terminology = Arc::new(open_terminology(config)?);
        App::assemble(config, terminology, models)
    }

    /// The application over a terminology and models the caller already has (the server loads
    /// them its own way: it starts at once and trains in the background).
    pub fn assemble(config: &Config, terminology: Arc<Terminology>, models: KnowledgeModels) -> Result<App, AppError> {
        let llm = LoadedModels::load(&config.llm)?;
        let pipeline = llm.pipeline(&config.llm, terminology.clone(), &models);
        Ok(App { terminology, models, llm, pipeline })
    }
}

/// Loads the configured terminology; a failure names the directory and the setting to change.
pub fn open_terminology(config: &Config) -> Result<Terminology, AppError> {
    Terminology::load(&config.terminology_options()).map_err(|source| AppError::Terminology { dir: config.terminology_dir.display().to_string(), source })
}

/// The trained models, trained now (and cached) if missing and the training data is here.
pub fn models_or_train(config: &Config) -> Result<KnowledgeModels, AppError> {
    let dir = config.data().models();
    if !KnowledgeModels::present(&dir) {
        let sources = train::TrainingSources::default_paths();
        if config.auto_train && sources.available() {
            eprintln!("no trained models in {}: training them now (jointcoder train)", dir.display());
            train::train_all(config, &sources).map_err(AppError::Models)?;
        } else {
            eprintln!("no trained models (and auto-training off or no training data): using the hand-set defaults");
        }
    }
    KnowledgeModels::load(&dir).map_err(AppError::Models)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A terminology directory without the tables is named, with the setting that moves it.
    #[test]
    fn a_missing_terminology_directory_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config { terminology_dir: dir.path().join("nowhere"), data_dir: dir.path().to_owned(), ..Config::default() };
        let e = open_terminology(&config).err().expect("no tables there");
        assert!(matches!(e, AppError::Terminology { .. }), "{e:?}");
        let text = String::from(e);
        assert!(text.contains("nowhere") && text.contains("JOINTCODER_TERMINOLOGY_DIR"), "{text}");
    }
}
