//! Where things live, each path written once: the layout of the data directory (what the
//! server and the CLI keep) and the datasets under the shared data folder (what training and
//! evaluation read). Callers ask for a path by name instead of joining strings of their own.

use std::path::{Path, PathBuf};

use crate::terminology::{CodeKind, EditionSpec};

/// The learned aliases' file name in the models folder.
pub const LEARNED_LEXICON_FILE: &str = "learned_lexicon.tsv";

/// The data directory (`JOINTCODER_DATA_DIR`, `--data-dir`).
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> DataDir {
        DataDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The knowledge backend's trained models (`jointcoder train`).
    pub fn models(&self) -> PathBuf {
        self.root.join("models")
    }

    /// Aliases learned by training, read by every index built for this data directory.
    pub fn learned_lexicon(&self) -> PathBuf {
        self.models().join(LEARNED_LEXICON_FILE)
    }

    /// The SQLite resource store (unless a PostgreSQL URL is configured).
    pub fn sqlite(&self) -> PathBuf {
        self.root.join("jointcoder.sqlite")
    }

    /// One folder per bulk export job.
    pub fn exports(&self) -> PathBuf {
        self.root.join("exports")
    }

    /// Code-system versions installed through the API, kept for the next start.
    pub fn code_system_versions(&self) -> PathBuf {
        self.root.join("code-system-versions")
    }

    /// PDFium, unless the `pdf_dir` setting names another place (`scripts/fetch-pdf.sh`).
    pub fn pdf(&self) -> PathBuf {
        self.root.join("pdf")
    }

    /// Where the terminology caches its built indexes (below it, `index/`).
    pub fn index_cache(&self) -> PathBuf {
        self.root.clone()
    }
}

/// The shared data folder beside a checkout (`../shared/data`): the national tables in this
/// repository's checkouts and CI, and the evaluation and training sets. Relative to the
/// working directory, as every command is run from the repository root.
pub mod datasets {
    /// The national code tables when `terminology/` holds none.
    pub const TERMINOLOGY_DIR: &str = "../shared/data/terminology";
    /// CHIP-CDN train: diagnosis normalization pairs (allowed for tuning).
    pub const CHIP_CDN_TRAIN: &str = "../shared/data/eval/chip-cdn/CHIP-CDN_train.json";
    /// CHIP-CDN dev: measured only.
    pub const CHIP_CDN_DEV: &str = "../shared/data/eval/chip-cdn/CHIP-CDN_dev.json";
    /// The Beijing clinical v6.01 table CHIP-CDN is normalized to.
    pub const BEIJING_V601: &str = "../shared/data/eval/vocab/icd10_beijing_clinical_v601.csv";
    /// CCL2025: 206 cardiology records with gold ICD-10 codes (the even 病案标识 half may be
    /// tuned on; the odd half is test data).
    pub const CCL2025_RECORDS: &str = "../shared/data/eval/ccl2025-icd-coding/train_fulltext_first206.json";
    pub const CCL2025_LABEL_SPACE: &str = "../shared/data/eval/ccl2025-icd-coding/label_space.json";
    /// Procedure normalization pairs (their train split is used) and the vocabulary they
    /// normalize to.
    pub const PROCEDURE_PAIRS: &str = "../shared/data/terminology/procedure_normalization_pairs_zh.csv";
    pub const PROCEDURE_VOCAB: &str = "../shared/data/terminology/icd9cm3_vocabulary_beijing_style.csv";
}

/// The Beijing v6.01 table as an edition of its own (CHIP-CDN's label space).
pub fn beijing_edition() -> EditionSpec {
    let path = datasets::BEIJING_V601;
    EditionSpec {
        id: "icd-10-cn-beijing".into(),
        file: std::path::absolute(path).unwrap_or_else(|_| path.into()),
        version: "6.01".into(),
        title: Some("ICD-10 北京临床版 v6.01".into()),
        url: None,
        kind: Some(CodeKind::Icd10),
        role: None,
        headers: None,
    }
}
