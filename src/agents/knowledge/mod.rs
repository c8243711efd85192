//! The knowledge backend: retrieval over the code tables, the lexicon, clinical rules and small
//! models trained on CPU from coded records. No GPU, no weights to download.
pub mod chinese_medicine;
pub mod course_diagnoses;
pub mod facts;
pub mod mine;
pub mod prioritize;
pub mod procedure_facts;
pub mod procedure_rules;
pub mod reranker;
pub mod standardize;
pub mod text;

pub mod validate;

use std::path::Path;
use std::sync::Arc;

use crate::agents::{Agents, Role, Track};
use crate::terminology::{Scope, Terminology};

use prioritize::PrincipalModel;
use reranker::Reranker;

/// The trained parts of the knowledge backend, cached in the data directory's models folder
/// ([`crate::catalog::DataDir::models`]).
#[derive(Clone, Default)]
pub struct KnowledgeModels {
    pub reranker: Arc<Reranker>,
    pub principal: Arc<PrincipalModel>,
}

pub const RERANKER_FILE: &str = "reranker.json";
pub const PRINCIPAL_FILE: &str = "principal.json";

impl KnowledgeModels {
    /// Whether `jointcoder train` has written the models into `dir`.
    pub fn present(dir: &Path) -> bool {
        dir.join(RERANKER_FILE).is_file() && dir.join(PRINCIPAL_FILE).is_file()
    }

    /// Loads trained models from `dir`; the hand-set defaults stand in for missing ones.
    pub fn load(dir: &Path) -> Result<KnowledgeModels, String> {
        let read = |name: &str| -> Result<Option<String>, String> {
            let p = dir.join(name);
            if p.is_file() {
                std::fs::read_to_string(&p).map(Some).map_err(|e| format!("{}: {e}", p.display()))
            } else {
                Ok(None)
            }
        };
        let reranker = match read(RERANKER_FILE)? {
            Some(t) => serde_json::from_str(&t).map_err(|e| format!("{RERANKER_FILE}: {e}"))?,
            None => Reranker::default(),
        };
        let principal = match read(PRINCIPAL_FILE)? {
            Some(t) => serde_json::from_str(&t).map_err(|e| format!("{PRINCIPAL_FILE}: {e}"))?,
            None => PrincipalModel::default(),
        };
        Ok(KnowledgeModels { reranker: Arc::new(reranker), principal: Arc::new(principal) })
    }

    pub fn save(&self, dir: &Path) -> Result<(), String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let write = |name: &str, text: String| std::fs::write(dir.join(name), text).map_err(|e| format!("{name}: {e}"));
        write(RERANKER_FILE, serde_json::to_string_pretty(&*self.reranker).expect("serializes"))?;
        write(PRINCIPAL_FILE, serde_json::to_string_pretty(&*self.principal).expect("serializes"))
    }
}

pub fn standardizer(t: &Arc<Terminology>, models: &KnowledgeModels, edition: &str, scope: Scope) -> standardize::Standardizer {
    standardize::Standardizer { terminology: t.clone(), edition: edition.into(), reranker: models.reranker.clone(), scope, k: 20 }
}

/// All seven roles on the knowledge backend.
pub fn agents(t: &Arc<Terminology>, models: &KnowledgeModels) -> Agents {
    Agents {
        standardize_diagnosis: Arc::new(standardize::StandardizeAgent {
            role: Role::StandardizeDiagnosis,
            inner: standardizer(t, models, Track::Disease.national_edition(), Track::Disease.scope()),
        }),
        standardize_procedure: Arc::new(standardize::StandardizeAgent {
            role: Role::StandardizeProcedure,
            inner: standardizer(t, models, Track::Procedure.national_edition(), Track::Procedure.scope()),
        }),
        mine_procedures: Arc::new(mine::MineAgent { policy: t.policy.clone() }),
        prioritize_diagnoses: Arc::new(prioritize::PrioritizeDiagnosesAgent { model: models.principal.clone(), policy: t.policy.clone() }),
        prioritize_procedures: Arc::new(prioritize::PrioritizeProceduresAgent { policy: t.policy.clone(), model: models.principal.clone() }),
        validate_diagnoses: Arc::new(validate::ValidateDiagnosesAgent { policy: t.policy.clone() }),
        validate_procedures: Arc::new(validate::ValidateProceduresAgent { policy: t.policy.clone() }),
    }
}
