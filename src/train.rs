//! `jointcoder train`: builds the knowledge backend's models on CPU from the allowed data only:
//! CHIP-CDN train, the procedure normalization pairs (their train split), and the CCL2025
//! records whose 病案标识 ends in an even digit. Nothing is fitted to test data.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use crate::agents::knowledge::facts::Facts;
use crate::agents::knowledge::prioritize::{principal_features, principal_procedure, PrincipalModel};
use crate::agents::knowledge::reranker::{self, Reranker};
use crate::agents::knowledge::{self as knowledge, standardizer, KnowledgeModels};
use crate::catalog::LEARNED_LEXICON_FILE;
use crate::catalog::datasets;
use crate::config::Config;
use crate::eval::{in_split, Split};
use crate::pipeline::{Pipeline, Stage, Track};
use crate::terminology::normalize::normalize;
use crate::terminology::{CodeKind, EditionSpec, Scope, Terminology};

#[derive(Clone, Debug)]
pub struct TrainingSources {
    pub chip_cdn_train: PathBuf,
    pub beijing_v601: PathBuf,
    pub procedure_pairs: PathBuf,
    pub procedure_vocab: PathBuf,
    pub ccl_records: PathBuf,
}

impl TrainingSources {
    pub fn default_paths() -> TrainingSources {
        TrainingSources {
            chip_cdn_train: datasets::CHIP_CDN_TRAIN.into(),
            beijing_v601: datasets::BEIJING_V601.into(),
            procedure_pairs: datasets::PROCEDURE_PAIRS.into(),
            procedure_vocab: datasets::PROCEDURE_VOCAB.into(),
            ccl_records: datasets::CCL2025_RECORDS.into(),
        }
    }

    pub fn available(&self) -> bool {
        self.chip_cdn_train.is_file() && self.beijing_v601.is_file()
    }
}

/// (mention, gold names) pairs.
type Pairs = Vec<(String, Vec<String>)>;

fn procedure_pairs(path: &std::path::Path) -> Result<Pairs, String> {
    let mut rdr = csv::Reader::from_path(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for rec in rdr.records().flatten() {
        if rec.get(2) != Some("train") {
            continue;
        }
        let gold = rec.get(1).unwrap_or("").split("##").map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
        out.push((rec.get(0).unwrap_or("").to_owned(), gold));
    }
    Ok(out)
}

/// Reranker rows for pairs against an edition: features of the top candidates of every piece,
/// labelled by whether the candidate's name is gold.
fn rows_for(
    t: &Arc<Terminology>,
    edition: &str,
    scope: Scope,
    pairs: &Pairs,
    rows: &mut Vec<(Vec<f64>, bool)>,
    groups: &mut Vec<(usize, usize, usize)>,
) -> Result<(), String> {
    let st = standardizer(t, &KnowledgeModels::default(), edition, scope);
    let cs = t.edition(edition, None).map_err(|e| e.to_string())?.clone();
    for (text, gold) in pairs {
        let gold: HashSet<String> = gold.iter().map(|g| normalize(g.trim_matches('"'))).collect();
        let mut first = true;
        for piece in crate::record::lists::split_items(text) {
            let key = normalize(&piece.text);
            let variants = t.lexicon.rewrite_key(&key, scope);
            let cands = t.search(&piece.text, &cs.meta.id, Some(&cs.meta.version), st.k).map_err(|e| e.to_string())?;
            let best = cands.iter().filter(|c| !c.exact).map(|c| c.score).fold(0.0f32, f32::max);
            let start = rows.len();
            for (rank, c) in cands.iter().enumerate() {
                rows.push((reranker::features(&key, &variants, c, rank, best), gold.contains(&normalize(&c.name))));
            }
            groups.push((start, rows.len() - start, if first { gold.len() } else { 0 }));
            first = false;
        }
    }
    Ok(())
}

/// Aliases learned from CHIP-CDN train: each mention becomes an alias of each of its gold
/// terms (so the index finds a term by the ways clinicians wrote it), except mentions that are
/// lists of several diagnoses (split by punctuation), which would teach nothing about one term.
fn learned_aliases(pairs: &Pairs) -> String {
    let mut out = String::from("# Learned by `jointcoder train` from CHIP-CDN train (mention → gold terms).\n");
    let mut seen = HashSet::new();
    for (text, gold) in pairs {
        let n = text.chars().count();
        if !(4..=24).contains(&n) || gold.len() > 3 || crate::record::lists::split_items(text).len() > 1 || text.contains(['\t', '\n']) {
            continue;
        }
        for g in gold {
            let g = g.trim_matches('"');
            if normalize(text) == normalize(g) || !seen.insert((normalize(text), normalize(g))) {
                continue;
            }
            out.push_str(&format!("{}\t{}\tdx\n", text.trim(), g));
        }
    }
    out
}

fn chip_pairs(path: &std::path::Path) -> Result<Pairs, String> {
    Ok(crate::eval::chip_cdn::read(path)?.into_iter().map(|i| (i.text, i.gold)).collect())
}

pub fn train_all(config: &Config, src: &TrainingSources) -> Result<KnowledgeModels, String> {
    let dir = config.data().models();
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let started = std::time::Instant::now();

    // 1. Reranker, on editions without the learned lexicon (it would make train mentions exact).
    let mut opts = config.terminology_options();
    opts.learned_lexicon = None;
    opts.cache_dir = None;
    opts.only = vec!["none".into()];
    let mut extra = vec![crate::catalog::beijing_edition()];
    extra[0].file = std::path::absolute(&src.beijing_v601).map_err(|e| e.to_string())?;
    let with_px = src.procedure_pairs.is_file() && src.procedure_vocab.is_file();
    if with_px {
        extra.push(EditionSpec {
            id: "icd-9-cm-3-beijing".into(),
            file: std::path::absolute(&src.procedure_vocab).map_err(|e| e.to_string())?,
            version: "train".into(),
            title: None,
            url: None,
            kind: Some(CodeKind::Icd9cm3),
            role: None,
            headers: None,
        });
    }
    opts.extra_editions = extra;
    let t = Arc::new(Terminology::load(&opts).map_err(|e| e.to_string())?);
    let chip = chip_pairs(&src.chip_cdn_train)?;
    let mut rows = Vec::new();
    let mut groups = Vec::new();
    rows_for(&t, "icd-10-cn-beijing", Scope::Dx, &chip, &mut rows, &mut groups)?;
    if with_px {
        rows_for(&t, "icd-9-cm-3-beijing", Scope::Px, &procedure_pairs(&src.procedure_pairs)?, &mut rows, &mut groups)?;
    }
    let reranker = Reranker::fit(&rows, &groups, "CHIP-CDN train + procedure pairs (train)");
    eprintln!("reranker: {} rows from {} mentions, threshold {:.2}", rows.len(), groups.len(), reranker.threshold);
    drop(t);

    // 2. Learned aliases, used from now on by every index built in this data directory.
    std::fs::write(dir.join(LEARNED_LEXICON_FILE), learned_aliases(&chip)).map_err(|e| e.to_string())?;

    // 3. Principal diagnosis model, on the CCL2025 development half.
    let mut models = KnowledgeModels { reranker: Arc::new(reranker), principal: Arc::new(PrincipalModel::default()) };
    if src.ccl_records.is_file() {
        let t = Arc::new(Terminology::load(&config.terminology_options()).map_err(|e| e.to_string())?);
        let pipeline = Pipeline::new(t.clone(), knowledge::agents(&t, &models));
        let read = crate::record::io::read_path(&src.ccl_records).map_err(|e| e.to_string())?;
        let mut groups = Vec::new();
        for rec in read.records.iter().filter(|r| in_split(&r.record_id, Split::Dev)) {
            let Some(gold) = rec.gold.as_ref().and_then(|g| g.diseases.first().cloned()) else { continue };
            let Ok(coding) = pipeline.code(rec) else { continue };
            // The candidates as the prioritization stage saw them.
            let Some(st) = coding.trace.iter().find(|s| s.stage == Stage::Prioritize && s.track == Track::Disease) else { continue };
            let items = &st.input;
            if !items.iter().any(|i| i.code.as_deref() == Some(gold.as_str())) {
                continue;
            }
            // The tie-break learns over every candidate, not only over what one policy's
            // decision list leaves: a terminology admin may change the policy without retraining.
            let facts = Facts::read(rec);
            let n = items.len();
            let procedure = principal_procedure(&coding.procedures);
            groups.push(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, it)| (principal_features(it, i, n, items, &facts, procedure, &t.policy), it.code.as_deref() == Some(gold.as_str())))
                    .collect::<Vec<_>>(),
            );
        }
        eprintln!("principal model: {} development records with the gold principal among the candidates", groups.len());
        if !groups.is_empty() {
            models.principal = Arc::new(PrincipalModel::fit(&groups, "CCL2025 development half (even 病案标识)"));
        }
    }
    models.save(&dir)?;
    eprintln!("trained in {:.1} s → {}", started.elapsed().as_secs_f64(), dir.display());
    Ok(models)
}
