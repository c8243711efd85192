//! The embedded backend: one tantivy index per edition, over character 1–2-grams of the
//! normalized name and of its lexicon aliases, queried as a boolean OR of n-gram terms.
//!
//! A phrase query (what `QueryParser` makes of Chinese text) would demand every character in
//! order; coders' phrasings drop and reorder words, so recall needs OR-of-grams with BM25.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tantivy::collector::TopDocs;
use tantivy::directory::MmapDirectory;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST};
use tantivy::tokenizer::{NgramTokenizer, TextAnalyzer};
use tantivy::{doc, Index, IndexReader, ReloadPolicy, Term};

use super::{char_ngrams, split_mentions, Candidate, TermIndex};
use crate::terminology::codesystem::{CodeKind, CodeSystem};
use crate::terminology::lexicon::{Lexicon, Scope};
use crate::terminology::normalize::normalize;
use crate::terminology::TerminologyError;

/// Bumped whenever what goes into the index changes, so that cached indexes are rebuilt.
const INDEX_FORMAT: u32 = 1;
const TOKENIZER: &str = "ngram12";
/// Weight of alias n-grams against name n-grams (1.0 chosen on a CHIP-CDN train hold-out:
/// recall@1/10/50 0.265/0.602/0.759 at 0.6, 0.276/0.629/0.792 at 1.0, 0.267/0.643/0.812 at 1.5).
const ALIAS_BOOST: f32 = 1.0;
/// Exact name matches go above every fuzzy match.
const EXACT_BONUS: f32 = 100.0;

struct EditionIndex {
    cs: Arc<CodeSystem>,
    reader: IndexReader,
    /// Concept ordinal of every document, per segment: read once from the fast field so that a
    /// query does not open columns per hit.
    ords: Vec<Vec<u32>>,
    name: Field,
    alias: Field,
    scope: Scope,
}

/// Cloning shares every built edition index: a new terminology with one more edition costs
/// only that edition's build.
#[derive(Clone)]
pub struct EmbeddedIndex {
    editions: HashMap<String, Arc<EditionIndex>>,
    lexicon: Arc<Lexicon>,
}

fn ngram_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(NgramTokenizer::new(1, 2, false).expect("valid n-gram sizes")).build()
}

fn schema() -> (Schema, Field, Field) {
    let mut sb = Schema::builder();
    let opts = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default().set_tokenizer(TOKENIZER).set_index_option(IndexRecordOption::WithFreqs),
    );
    let name = sb.add_text_field("name", opts.clone());
    let alias = sb.add_text_field("alias", opts);
    sb.add_u64_field("ord", FAST);
    (sb.build(), name, alias)
}

impl EmbeddedIndex {
    pub fn new(lexicon: Arc<Lexicon>) -> EmbeddedIndex {
        EmbeddedIndex { editions: HashMap::new(), lexicon }
    }

    /// Indexes `cs`, or opens the cached index for the same content under `cache_dir`.
    /// Without a cache directory (or when it cannot be written) the index lives in memory.
    pub fn add_edition(&mut self, cs: Arc<CodeSystem>, cache_dir: Option<&Path>) -> Result<(), TerminologyError> {
        let (schema, name, alias) = schema();
        let key = format!("{}|{}", cs.meta.id, cs.meta.version);
        let fingerprint = fingerprint(&cs, &self.lexicon);
        let index = match cache_dir {
            Some(dir) => match open_or_build_cached(dir, &cs, &schema, fingerprint, &self.lexicon) {
                Ok(index) => index,
                Err(e) => {
                    tracing::warn!(edition = %cs.meta.id, error = %e, "index cache unusable; building in memory");
                    build(Index::create_in_ram(schema.clone()), &cs, &self.lexicon)?
                }
            },
            None => build(Index::create_in_ram(schema.clone()), &cs, &self.lexicon)?,
        };
        index.tokenizers().register(TOKENIZER, ngram_analyzer());
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(|e| TerminologyError::Index(e.to_string()))?;
        let scope = match cs.meta.kind {
            CodeKind::Icd10 => Scope::Dx,
            CodeKind::Icd9cm3 => Scope::Px,
        };
        let searcher = reader.searcher();
        let mut ords = Vec::with_capacity(searcher.segment_readers().len());
        for seg in searcher.segment_readers() {
            let col = seg.fast_fields().u64("ord").map_err(|e| TerminologyError::Index(e.to_string()))?;
            ords.push((0..seg.max_doc()).map(|d| col.first(d).map_or(u32::MAX, |v| v as u32)).collect());
        }
        self.editions.insert(key, Arc::new(EditionIndex { cs, reader, ords, name, alias, scope }));
        Ok(())
    }

    fn search_one(&self, ed: &EditionIndex, text: &str, k: usize) -> Result<Vec<Candidate>, TerminologyError> {
        let key = normalize(text);
        if key.is_empty() {
            return Ok(Vec::new());
        }
        let mut variants = vec![key.clone()];
        variants.extend(self.lexicon.rewrite_key(&key, ed.scope));

        let mut grams: Vec<String> = Vec::new();
        let mut seen = HashSet::new();
        for v in &variants {
            for g in char_ngrams(v) {
                if seen.insert(g.clone()) {
                    grams.push(g);
                }
            }
        }
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::with_capacity(grams.len() * 2);
        for g in &grams {
            clauses.push((Occur::Should, Box::new(TermQuery::new(Term::from_field_text(ed.name, g), IndexRecordOption::WithFreqs))));
            clauses.push((
                Occur::Should,
                Box::new(BoostQuery::new(
                    Box::new(TermQuery::new(Term::from_field_text(ed.alias, g), IndexRecordOption::WithFreqs)),
                    ALIAS_BOOST,
                )),
            ));
        }
        let query = BooleanQuery::new(clauses);
        let searcher = ed.reader.searcher();
        let top = searcher
            .search(&query, &TopDocs::with_limit(k.max(1)).order_by_score())
            .map_err(|e| TerminologyError::Index(e.to_string()))?;

        let mut out: Vec<Candidate> = Vec::with_capacity(k + 4);
        let mut have: HashSet<usize> = HashSet::new();
        let mut push_exact = |out: &mut Vec<Candidate>, key: &str, score: f32| {
            for c in ed.cs.by_key_exact(key) {
                let ord = ed.cs.ordinal(&c.code).expect("concept of this edition");
                if have.insert(ord) {
                    out.push(Candidate { code: c.code.clone(), name: c.name.clone(), score, exact: true });
                }
            }
        };
        // Exact names first: the query itself, then its lexicon rewrites.
        for (rank, v) in variants.iter().enumerate() {
            push_exact(&mut out, v, EXACT_BONUS - rank as f32);
        }
        // Nothing of that name: the name without a limb's side or a grade of severity, or the
        // disease's default form (带状疱疹 is 带状疱疹不伴有并发症).
        if out.is_empty() {
            let bare = variants.iter().flat_map(|v| super::super::lexicon::bare_forms(v).into_iter().chain(super::super::lexicon::default_forms(v)));
            for (rank, v) in bare.enumerate() {
                push_exact(&mut out, &v, EXACT_BONUS - (variants.len() + rank) as f32);
            }
        }
        for (score, addr) in top {
            let Some(&ord) = ed.ords.get(addr.segment_ord as usize).and_then(|s| s.get(addr.doc_id as usize)) else { continue };
            if ord == u32::MAX {
                continue;
            }
            let ord = ord as usize;
            if have.insert(ord) {
                let c = &ed.cs.concepts[ord];
                out.push(Candidate { code: c.code.clone(), name: c.name.clone(), score, exact: false });
            }
        }
        out.truncate(k);
        Ok(out)
    }
}

impl TermIndex for EmbeddedIndex {
    fn search(&self, text: &str, edition: &str, k: usize) -> Result<Vec<Candidate>, TerminologyError> {
        let ed = self.editions.get(edition).ok_or_else(|| TerminologyError::UnknownEdition(edition.to_owned()))?;
        let mentions = split_mentions(text);
        if mentions.len() <= 1 {
            return self.search_one(ed, text, k);
        }
        // Several mentions in one query: interleave their rankings so each is represented.
        let lists: Vec<Vec<Candidate>> =
            mentions.iter().map(|m| self.search_one(ed, m, k)).collect::<Result<_, _>>()?;
        let mut out = Vec::with_capacity(k);
        let mut seen = HashSet::new();
        for rank in 0..k {
            for list in &lists {
                if let Some(c) = list.get(rank) {
                    if seen.insert(c.code.clone()) {
                        out.push(c.clone());
                    }
                }
            }
            if out.len() >= k {
                break;
            }
        }
        out.truncate(k);
        Ok(out)
    }

    fn backend(&self) -> &'static str {
        "embedded"
    }
}

fn build(index: Index, cs: &CodeSystem, lexicon: &Lexicon) -> Result<Index, TerminologyError> {
    let err = |e: tantivy::TantivyError| TerminologyError::Index(e.to_string());
    index.tokenizers().register(TOKENIZER, ngram_analyzer());
    let schema = index.schema();
    let name = schema.get_field("name").map_err(err)?;
    let alias = schema.get_field("alias").map_err(err)?;
    let ord = schema.get_field("ord").map_err(err)?;
    let mut writer = index.writer_with_num_threads(1, 50_000_000).map_err(err)?;
    for (i, c) in cs.concepts.iter().enumerate() {
        if !c.selectable {
            continue;
        }
        let mut d = doc!(name => c.key.clone(), ord => i as u64);
        for a in alias_texts(&c.key, lexicon) {
            d.add_text(alias, a);
        }
        writer.add_document(d).map_err(err)?;
    }
    writer.commit().map_err(err)?;
    writer.wait_merging_threads().map_err(err)?;
    Ok(index)
}

/// The concept's name with each canonical phrase inside it replaced by its aliases
/// (冠状动脉粥样硬化性心脏病 → 冠心病), so that abbreviations find it.
fn alias_texts(key: &str, lexicon: &Lexicon) -> Vec<String> {
    let mut out = Vec::new();
    for a in lexicon.aliases_of(key) {
        out.push(a.clone());
    }
    out
}

fn open_or_build_cached(
    dir: &Path,
    cs: &CodeSystem,
    schema: &Schema,
    fingerprint: u64,
    lexicon: &Lexicon,
) -> Result<Index, TerminologyError> {
    let io = |e: std::io::Error| TerminologyError::Io(e.to_string());
    let path: PathBuf = dir.join(format!("{}-{}-{fingerprint:016x}", cs.meta.id, sanitize(&cs.meta.version)));
    let done = path.join("COMPLETE");
    if done.exists() {
        let index = Index::open_in_dir(&path).map_err(|e| TerminologyError::Index(e.to_string()))?;
        return Ok(index);
    }
    // Build beside, then rename: a crash mid-build never leaves a half index marked complete.
    let tmp = dir.join(format!(".building-{}-{}", cs.meta.id, std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io)?;
    let mmap = MmapDirectory::open(&tmp).map_err(|e| TerminologyError::Index(e.to_string()))?;
    let index = Index::create(mmap, schema.clone(), Default::default())
        .map_err(|e| TerminologyError::Index(e.to_string()))?;
    build(index, cs, lexicon)?;
    std::fs::write(tmp.join("COMPLETE"), b"ok").map_err(io)?;
    let _ = std::fs::remove_dir_all(&path);
    std::fs::rename(&tmp, &path).map_err(io)?;
    Index::open_in_dir(&path).map_err(|e| TerminologyError::Index(e.to_string()))
}

fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '_' }).collect()
}

fn fingerprint(cs: &CodeSystem, lexicon: &Lexicon) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    INDEX_FORMAT.hash(&mut h);
    for c in &cs.concepts {
        c.code.hash(&mut h);
        c.key.hash(&mut h);
        lexicon.aliases_of(&c.key).hash(&mut h);
    }
    h.finish()
}
