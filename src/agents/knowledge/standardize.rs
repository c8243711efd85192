//! Standardization: raw diagnosis / procedure text → canonical names of the edition.
//!
//! Split the list into items, split concatenated mentions (冠状动脉粥样硬化性心脏病不稳定型心绞痛)
//! by dictionary segmentation, resolve exact names and lexicon aliases by hash, and send the
//! rest through retrieval and the trained reranker. A mention may yield several names or none.

use std::sync::Arc;

use super::course_diagnoses;
use super::reranker::{self, Reranker};
use super::text::{split_items, Piece};
use crate::agents::{Agent, AgentError, AgentInfo, AgentInput, AgentOutput, Evidence, Item, Removal, Role};
use crate::record::{EhrRecord, Section};
use crate::terminology::normalize::normalize;
use crate::terminology::{CodeSystem, Scope, Terminology};

pub struct Standardizer {
    pub terminology: Arc<Terminology>,
    pub edition: String,
    pub reranker: Arc<Reranker>,
    pub scope: Scope,
    /// Candidates retrieved per mention before reranking.
    pub k: usize,
}

/// One resolved name.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub code: String,
    pub name: String,
    pub confidence: f32,
}

impl Standardizer {
    fn cs(&self) -> Result<&Arc<CodeSystem>, String> {
        self.terminology.edition(&self.edition, None).map_err(|e| e.to_string())
    }

    /// Names for one mention (one list item): possibly several, possibly none.
    pub fn resolve(&self, mention: &str) -> Result<Vec<Resolved>, String> {
        let cs = self.cs()?;
        let stripped;
        let mention = if self.scope == Scope::Dx {
            stripped = without_ruled_out(&strip_procedure_remarks(mention));
            stripped.as_str()
        } else {
            mention
        };
        // An infarction whose walls are in brackets is coded by them (D3).
        let by_walls;
        let mention = match infarction_by_walls(mention).filter(|_| self.scope == Scope::Dx) {
            Some(w) => {
                by_walls = w;
                by_walls.as_str()
            }
            None => mention,
        };
        let Some((main, remark)) = trailing_remark(mention).filter(|_| self.scope == Scope::Dx) else {
            return self.resolve_whole(cs, mention);
        };
        // The term before the remark, read once for the readings below.
        let main_terms = self.resolve_whole(cs, main)?;
        if let Some(r) = self.named_in_remark(cs, &main_terms, remark) {
            return Ok(vec![r]);
        }
        let sites = self.sites_in_remark(cs, &main_terms, remark);
        if !sites.is_empty() {
            return Ok(sites);
        }
        // A remark in brackets (带状疱疹(左胸背部T4-5), 胃溃疡伴出血(胃角，Forrest IIa)) may say
        // which term it is (高血压病（3级，很高危）) or only where and how much: the whole mention
        // is kept where its term says something of the remark, else the term before it is.
        // A year in the remark (支架植入术后（2019，LAD）) dates the term; it is no word of a name
        // (2019冠状病毒病).
        let (main_key, remark_key) = (normalize(main), normalize(&without_years(remark)));
        let remark_only: std::collections::HashSet<char> = remark_key.chars().filter(|c| !main_key.contains(*c)).collect();
        let whole = self.resolve_whole(cs, mention)?;
        let count = |r: &Resolved, of: &dyn Fn(char) -> bool| -> usize {
            cs.get(&r.code).map_or(0, |c| c.key.chars().filter(|ch| of(*ch)).collect::<std::collections::HashSet<_>>().len())
        };
        let says_main = |r: &Resolved| count(r, &|ch| main_key.contains(ch));
        // The term read alone cannot beat a whole reading that says all of it and some of the
        // remark.
        let all_of_main = main_key.chars().collect::<std::collections::HashSet<_>>().len();
        let says_remark = |r: &Resolved| count(r, &|ch| remark_only.contains(&ch));
        let base = match whole.as_slice() {
            [one] if says_main(one) == all_of_main && says_remark(one) > 0 => Vec::new(),
            _ => main_terms,
        };
        match (whole.as_slice(), base.as_slice()) {
            // One term either way: the reading that says most of the term, then most of the
            // remark; on a tie the term's own (带状疱疹不伴有并发症, not 带状疱疹眼病; 胃溃疡伴出血,
            // not 消化性溃疡伴出血 for 胃溃疡伴出血(胃角，Forrest IIa)), each with the code of its
            // category that says it and more of the mention (脑梗死（…心源性栓塞型） is I63.400
            // 大脑动脉栓塞引起的脑梗死).
            ([_] | [], [_]) | ([_], []) => {
                let full = normalize(mention);
                let mut readings: Vec<Resolved> = Vec::new();
                for r in base.iter().chain(whole.iter()) {
                    readings.push(r.clone());
                    readings.extend(specified_by_remark(cs, r, &full, &remark_only));
                }
                let best = readings.iter().enumerate().max_by_key(|(i, r)| (says_main(r), says_remark(r), std::cmp::Reverse(*i))).map(|(_, r)| r.clone());
                Ok(best.into_iter().collect())
            }
            // Several terms: the whole mention where it says something of the remark (冠心病（陈旧
            // 心梗）), else the term before it. A remark that grades the lesion (二尖瓣狭窄（重度）)
            // brings no term of its own (重度贫血).
            _ if is_severity(remark) && !base.is_empty() => Ok(base),
            _ if whole.iter().any(|r| says_remark(r) > 0) || base.is_empty() => Ok(whole),
            _ => Ok(base),
        }
    }

    /// The term a remark names where it is a code of the subcategory the term before it has
    /// (阵发性室上速（AVNRT，慢-快型） is I47.106 房室结内折返性心动过速, not I47.102): the remark
    /// says which of the family it is. A remark of another subcategory says something else
    /// (急性前间壁心肌梗死(STEMI) is I21.0 by its wall, not I21.3 of no site). Only a part of the
    /// remark that is a name of the edition (or a lexicon alias of one) counts; a remark that
    /// says where or how much does not.
    fn named_in_remark(&self, cs: &CodeSystem, base: &[Resolved], remark: &str) -> Option<Resolved> {
        let [one] = base else { return None };
        let subcategory = one.code.get(..5)?;
        remark
            .split(['，', ',', '、', ';', '；', ' '])
            .map(normalize)
            .filter(|p| p.chars().count() >= 2)
            .filter_map(|p| self.exact(cs, &p))
            .find(|r| r.code.starts_with(subcategory) && r.code != one.code)
            // The course the term said stays said (阵发性室上性心动过速（房室结折返性心动过速） is
            // I47.106 阵发性房室结内折返性心动过速) where the edition has a name for both.
            .map(|r| match course_with_kind(cs, one, &r) {
                Some(both) => Resolved { confidence: r.confidence, ..both },
                None => r,
            })
    }

    /// The vessels a remark lists for the term before it, each the edition's name of the term at
    /// that site (下肢深静脉血栓形成（髂股静脉） is I80.103 髂股静脉血栓形成; （股总、股浅静脉及小腿
    /// 肌间静脉） is the femoral and the calf muscle veins' thrombosis): a part of the remark
    /// followed by the end of the term's name (血栓形成) that is a name of the term's category.
    /// Parts that are names themselves are [`Self::named_in_remark`]'s.
    fn sites_in_remark(&self, cs: &CodeSystem, base: &[Resolved], remark: &str) -> Vec<Resolved> {
        // Each term the main part names (冠心病 不稳定型心绞痛 is two), though retrieval may give
        // one term by two names of its category: the first whose category the remark specifies.
        for one in base {
            let Some(category) = one.code.get(..3) else { continue };
            let subcategory = one.code.get(..5).unwrap_or(category);
            let name: Vec<char> = one.name.chars().collect();
            let mut found: Vec<Resolved> = Vec::new();
            // Sites are vessels here (a grade, 中高危, is not where); a kind (不稳定型心绞痛(初发劳
            // 力型)) is one of the term's own subcategory (呼吸衰竭（I型） of an acute failure stays
            // acute).
            for part in remark.split(['，', ',', '、', ';', '；', ' ', '及', '和', '与']).map(normalize) {
                let within = if part.contains("静脉") || part.contains("动脉") {
                    category
                } else if part.ends_with('型') && part.chars().count() >= 3 {
                    subcategory
                } else {
                    continue;
                };
                if self.exact(cs, &part).is_some() {
                    continue;
                }
                // The longest end of the name first (静脉血栓形成, then 血栓形成).
                let named = (1..name.len().saturating_sub(1))
                    .map(|k| name[k..].iter().collect::<String>())
                    .find_map(|end| self.exact(cs, &format!("{part}{end}")).filter(|r| r.code.starts_with(within)));
                if let Some(r) = named.filter(|r| !found.iter().any(|o| o.code == r.code)) {
                    found.push(r);
                }
            }
            // A remark that names only the term's own site again (（下肢深静脉）) adds nothing.
            if found.is_empty() || found.iter().all(|r| base.iter().any(|b| b.code == r.code)) {
                continue;
            }
            let mut out: Vec<Resolved> = base.iter().filter(|b| !b.code.starts_with(category)).cloned().collect();
            out.extend(found);
            return out;
        }
        Vec::new()
    }

    /// [`Self::resolve`] of a mention taken whole.
    fn resolve_whole(&self, cs: &CodeSystem, mention: &str) -> Result<Vec<Resolved>, String> {
        let key = normalize(mention);
        // Diabetes said twice in a row (2型糖尿病 糖尿病周围神经病变) is its type and its
        // complication: one term (2型糖尿病周围神经病变). Other repeats are left to
        // segmentation (肺炎 肺炎支原体感染 is two).
        if key.contains("糖尿病糖尿病") {
            return self.resolve_whole(cs, &key.replacen("糖尿病糖尿病", "糖尿病", 1));
        }
        if key.is_empty() || self.is_umbrella(&key) {
            return Ok(Vec::new());
        }
        // A mention known whole to the lexicon may name several terms (冠心病(陈旧心梗)).
        let known: Vec<Resolved> = self
            .terminology
            .lexicon
            .canonical_names(mention, self.scope)
            .iter()
            .filter_map(|n| cs.by_name(n).first().map(|c| Resolved { code: c.code.clone(), name: c.name.clone(), confidence: 0.93 }))
            .collect();
        if known.len() > 1 {
            return Ok(known);
        }
        if let Some(r) = self.exact(cs, &key) {
            return Ok(vec![r]);
        }
        let variants = self.terminology.lexicon.rewrite_key(&key, self.scope);
        // Concatenated mentions: dictionary segmentation over the key as written, or over its
        // lexicon rewrite where that covers more of it.
        let coverage = |words: &[(String, bool)]| -> usize { words.iter().filter(|w| w.1).map(|w| w.0.chars().count()).sum() };
        let mut seg_source = key.clone();
        let mut words = segment(&key, |w| self.is_dictionary_word(cs, w));
        if let Some(v) = variants.first() {
            let alt = segment(v, |w| self.is_dictionary_word(cs, w));
            let (a, b) = (coverage(&alt) * key.chars().count(), coverage(&words) * v.chars().count());
            if a > b {
                words = alt;
                seg_source = v.clone();
            }
        }
        let covered = coverage(&words);
        let total = seg_source.chars().count();
        let matched = words.iter().filter(|w| w.1).count();
        // Only group names (经皮冠状动脉介入治疗（PCI）): nothing to code from this mention.
        if matched >= 1 && covered * 10 >= total * 7 && words.iter().filter(|w| w.1).all(|w| self.is_umbrella(&w.0)) {
            return Ok(Vec::new());
        }
        let segmented = matched >= 2 && covered * 10 >= total * 7;
        if segmented {
            if let Some(one) = self.one_name_of_words(cs, &words) {
                return Ok(vec![one]);
            }
            let mut out = Vec::new();
            for (w, is_word) in &words {
                if self.is_umbrella(w) {
                    continue;
                }
                // A procedure inside a diagnosis (心律失常心房颤动心脏永久起搏器植入术) is no diagnosis.
                if self.scope == Scope::Dx && !*is_word && w.ends_with('术') {
                    continue;
                }
                let found: Vec<Resolved> = if *is_word {
                    self.exact(cs, w).into_iter().collect()
                } else if w.chars().count() >= 2 {
                    self.rerank_accept(cs, w)?
                } else {
                    Vec::new()
                };
                for r in found {
                    if !out.iter().any(|o: &Resolved| o.code == r.code) {
                        out.push(r);
                    }
                }
            }
            if !out.is_empty() {
                return Ok(out);
            }
        }
        let found = self.rerank_accept(cs, mention)?;
        // An abbreviation inside a longer mention (持续性单形性室速) can leave retrieval unsure of
        // the mention as written though its expansion reads plainly: the expansion is tried
        // only then, so a mention that resolves pays for no second retrieval.
        // Diagnoses only: a procedure name left unresolved is a group name (择期PCI术), which its
        // expansion does not make one procedure, and a diagnosis naming a procedure
        // (冠脉造影未见明显异常) is a finding of it.
        let names_procedure = is_procedure_remark(mention) || mention.contains("造影");
        match variants.first() {
            Some(v) if found.is_empty() && *v != key && self.scope == Scope::Dx && !names_procedure => self.rerank_accept(cs, v),
            _ => Ok(found),
        }
    }

    /// One name of the edition the words make together, the way names compose: joined by 性
    /// at a boundary, or with a trailing 病变 said as 病 (2型糖尿病 + 周围神经病变 is E11.401
    /// 2型糖尿病性周围神经病); then the mention is one term, not the words it splits into. Exact
    /// lookups only: a retrieval per split mention cost half the pipeline's speed.
    fn one_name_of_words(&self, cs: &CodeSystem, words: &[(String, bool)]) -> Option<Resolved> {
        // Two words, the second perhaps split before its last character (视网膜病 + 变).
        let (first, rest) = words.split_first()?;
        let tail_split = rest.len() == 2 && rest[1].0 == "变";
        if !first.1 || !(rest.len() == 1 || tail_split) {
            return None;
        }
        let a = &first.0;
        let b: String = rest.iter().map(|w| w.0.as_str()).collect();
        let mut tries = vec![format!("{a}性{b}")];
        if let Some(short) = b.strip_suffix("病变") {
            tries.push(format!("{a}性{short}病"));
            tries.push(format!("{a}{short}病"));
        }
        tries.iter().find_map(|t| self.exact(cs, t))
    }

    /// Where the record tells the type of diabetes (2型糖尿病, E11), a complication written
    /// without it (糖尿病性视网膜病变, E14) is coded as that type's (2型糖尿病性视网膜病变), and
    /// diabetes of no type (E14.9) is no second diagnosis.
    pub fn diabetes_of_the_type_told(&self, out: &mut AgentOutput) {
        let Ok(cs) = self.cs() else { return };
        let told = |prefix: &str| out.items.iter().any(|i| i.code.as_deref().is_some_and(|c| c.starts_with(prefix)));
        let listed = [("E11", "2型"), ("E10", "1型")].into_iter().find(|(p, _)| told(p)).map(|(_, k)| k);
        let mut i = 0;
        while i < out.items.len() {
            let Some(code) = out.items[i].code.clone().filter(|c| c.starts_with("E14")) else {
                i += 1;
                continue;
            };
            // The mention's own words first (1型糖尿病酮症酸中毒 read as 糖尿病性酮症酸中毒), then
            // the type another item tells.
            let mention = &out.items[i].mention;
            let own = ["1型", "2型"].into_iter().find(|k| mention.contains(k));
            let Some(kind) = own.or(listed) else {
                i += 1;
                continue;
            };
            if code.starts_with("E14.9") && own.is_none() {
                let item = out.items.remove(i);
                out.removed.push(Removal { item, reason: format!("the record tells the type ({kind}糖尿病)") });
                continue;
            }
            let name = cs.get(&code).map(|c| c.name.clone()).unwrap_or_default();
            if let Some(typed) = cs.by_key_exact(&normalize(&format!("{kind}{name}"))).first() {
                out.notes.push(format!("{code} → {}: the record tells the type ({kind}糖尿病)", typed.code));
                out.items[i].code = Some(typed.code.clone());
                out.items[i].name = typed.name.clone();
            }
            i += 1;
        }
    }

    fn is_dictionary_word(&self, cs: &CodeSystem, w: &str) -> bool {
        w.chars().count() >= 2
            && (!cs.by_key_exact(w).is_empty() || self.terminology.lexicon.has_alias_key(w) || self.is_umbrella(w))
    }

    /// Whether the mention contains a group name (PCI), which explains an empty result.
    fn names_umbrella(&self, mention: &str) -> bool {
        let key = normalize(mention);
        let Ok(cs) = self.cs() else { return false };
        self.is_umbrella(&key) || segment(&key, |w| self.is_dictionary_word(cs, w)).iter().any(|w| w.1 && self.is_umbrella(&w.0))
    }

    fn is_umbrella(&self, key: &str) -> bool {
        self.terminology.lexicon.is_umbrella(key, self.scope)
    }

    /// A name of the edition, directly or through one lexicon step.
    fn exact(&self, cs: &CodeSystem, key: &str) -> Option<Resolved> {
        if let Some(c) = cs.by_key_exact(key).first() {
            return Some(Resolved { code: c.code.clone(), name: c.name.clone(), confidence: 0.97 });
        }
        for v in self.terminology.lexicon.rewrite_key(key, self.scope) {
            if let Some(c) = cs.by_key_exact(&v).first() {
                return Some(Resolved { code: c.code.clone(), name: c.name.clone(), confidence: 0.93 });
            }
        }
        None
    }

    /// Retrieval + reranking: the best candidate if the model accepts it, and further ones
    /// above the model's second threshold (a mention may name several terms).
    pub fn rerank_accept(&self, cs: &CodeSystem, mention: &str) -> Result<Vec<Resolved>, String> {
        let mut scored = self.scored_candidates(cs, mention)?;
        // A candidate's normalized name is its concept's key, kept by the edition.
        let name_key = |c: &crate::terminology::Candidate| -> String { cs.get(&c.code).map_or_else(|| normalize(&c.name), |k| k.key.clone()) };
        let key = normalize(mention);
        if let Some(i) = more_specific_in_family(&key, &scored, name_key).or_else(|| keeps_the_head(&key, &scored, name_key)) {
            // The one it displaces named the same words less well: not a second term.
            let (_, c) = scored.remove(i);
            let (p0, _) = scored.remove(0);
            scored.insert(0, (p0, c));
        }
        let mut out: Vec<(Resolved, String)> = Vec::new();
        for (i, (p, c)) in scored.into_iter().enumerate() {
            let th = if i == 0 { self.reranker.threshold } else { self.reranker.extra_threshold };
            if p < th {
                if i == 0 {
                    break;
                }
                continue;
            }
            // A second code of the same name once normalized (主动脉瓣狭窄, 主动脉(瓣)狭窄) is a
            // synonym of the first, not a second standard term of the mention.
            let key = name_key(&c);
            // Nor is a name the first one already says (动脉粥样硬化 beside 冠状动脉粥样硬化).
            if !out.iter().any(|(o, k): &(Resolved, String)| o.name == c.name || *k == key || k.contains(key.as_str())) {
                out.push((Resolved { code: c.code, name: c.name, confidence: p as f32 }, key));
            }
        }
        Ok(out.into_iter().map(|(r, _)| r).collect())
    }

    /// Candidates with the reranker's probability, best first.
    pub fn scored_candidates(&self, cs: &CodeSystem, mention: &str) -> Result<Vec<(f64, crate::terminology::Candidate)>, String> {
        let key = normalize(mention);
        let variants = self.terminology.lexicon.rewrite_key(&key, self.scope);
        let cands = self
            .terminology
            .search(mention, &cs.meta.id, Some(&cs.meta.version), self.k)
            .map_err(|e| e.to_string())?;
        let best = cands.iter().filter(|c| !c.exact).map(|c| c.score).fold(0.0f32, f32::max);
        let mut scored: Vec<(f64, crate::terminology::Candidate)> = cands
            .into_iter()
            .enumerate()
            .map(|(rank, c)| (self.reranker.prob(&reranker::features(&key, &variants, &c, rank, best)), c))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        Ok(scored)
    }

    /// Items for a whole section.
    pub fn standardize_section(&self, section: Section, text: &str, origin: &str) -> Result<(Vec<Item>, Vec<Removal>), String> {
        let (pieces, tcm) = super::chinese_medicine::set_aside(text, split_items(text));
        let (items, mut removed) = self.standardize_pieces(section, pieces, origin)?;
        removed.extend(tcm.into_iter().map(|p| Removal {
            item: Item { name: p.text.clone(), code: None, mention: p.text.clone(), evidence: vec![Evidence { section, start: p.start, end: p.end, text: p.text }], confidence: 0.0, origin: origin.into() },
            reason: "a Chinese-medicine diagnosis (中医诊断): coded in the TCM classification, not in ICD-10".into(),
        }));
        Ok((items, removed))
    }

    /// A pneumonia whose organism the mention names (重症肺炎(肺炎克雷伯菌), 社区获得性肺炎（重症，
    /// 肺炎链球菌）) is the organism's pneumonia code, not the unspecified one beside it.
    fn pneumonia_by_organism(&self, mention: &str, resolved: Vec<Resolved>) -> Result<Vec<Resolved>, String> {
        let unspecified = |c: &str| c.starts_with("J18") || c.starts_with("J15.9");
        let Some(&(_, code)) = PNEUMONIA_BY_ORGANISM.iter().find(|(words, _)| words.iter().any(|w| mention.contains(w))) else { return Ok(resolved) };
        if !resolved.iter().any(|r| unspecified(&r.code)) {
            return Ok(resolved);
        }
        let Some(concept) = self.cs()?.get(code) else { return Ok(resolved) };
        let confidence = resolved.iter().map(|r| r.confidence).fold(0.0, f32::max);
        let mut out: Vec<Resolved> = resolved.into_iter().filter(|r| !unspecified(&r.code)).collect();
        out.insert(0, Resolved { code: code.to_owned(), name: concept.name.clone(), confidence });
        Ok(out)
    }

    /// One mention that gave a rhythm's course (持续性室性心动过速, 阵发性室上性心动过速) and another
    /// term of its subcategory (单形性室性心动过速, 房室结折返性心动过速) names one rhythm: the edition's
    /// name that says the course and the other term in order where it has one (阵发性房室结内折返性心动过速),
    /// else the course's code — the axis the edition subdivides by (持续性单形性室速 is I47.203).
    fn one_course_of_one_rhythm(&self, cs: &CodeSystem, resolved: Vec<Resolved>, mut general: Vec<Resolved>) -> (Vec<Resolved>, Vec<Resolved>) {
        let subcategory = |r: &Resolved| r.code.get(..5).map(str::to_owned);
        let Some(i) = resolved.iter().position(|r| course_of(r).is_some()) else { return (resolved, general) };
        let Some(j) = resolved.iter().position(|r| r.code != resolved[i].code && course_of(r).is_none() && subcategory(r) == subcategory(&resolved[i])) else {
            return (resolved, general);
        };
        let combined = course_with_kind(cs, &resolved[i], &resolved[j]);
        let mut out = resolved;
        let other = out.remove(j);
        if let Some(c) = combined {
            let at = if j < i { i - 1 } else { i };
            let first = std::mem::replace(&mut out[at], Resolved { confidence: other.confidence, ..c });
            general.push(first);
        }
        general.push(other);
        (out, general)
    }

    /// Two pieces that a comma split out of one name of the edition (社区获得性肺炎，重症 is
    /// J15.903, not 社区获得性肺炎 and a word of no code) are that name again.
    fn join_names_split_at_commas(&self, pieces: Vec<Piece>) -> Result<Vec<Piece>, String> {
        let cs = self.cs()?;
        let mut out: Vec<Piece> = Vec::with_capacity(pieces.len());
        for p in pieces {
            if let Some(last) = out.last_mut() {
                let joined = format!("{}，{}", last.text, p.text);
                if !cs.by_key_exact(&normalize(&joined)).is_empty() {
                    last.text = joined;
                    last.end = p.end;
                    continue;
                }
            }
            out.push(p);
        }
        Ok(out)
    }

    /// Items for pieces of a section's text (a list's items, or the course's statements).
    pub fn standardize_pieces(&self, section: Section, pieces: Vec<Piece>, origin: &str) -> Result<(Vec<Item>, Vec<Removal>), String> {
        let cs = self.cs()?;
        let mut items: Vec<Item> = Vec::new();
        let mut removed = Vec::new();
        for Piece { start, end, text: piece } in self.join_names_split_at_commas(pieces)? {
            let ev = Evidence { section, start, end, text: piece.clone() };
            let resolved = self.resolve(&piece)?;
            if resolved.is_empty() && self.names_umbrella(&piece) {
                removed.push(Removal {
                    item: Item { name: piece.clone(), code: None, mention: piece.clone(), evidence: vec![ev], confidence: 0.0, origin: origin.into() },
                    reason: "a group name, not one procedure: the operative report says what was done".into(),
                });
                continue;
            }
            if resolved.is_empty() {
                removed.push(Removal {
                    item: Item { name: piece.clone(), code: None, mention: piece.clone(), evidence: vec![ev], confidence: 0.0, origin: origin.into() },
                    reason: "no name of the edition matches confidently".into(),
                });
                continue;
            }
            // One mention that gave a code and a more specific one of its category (心房颤动(持续性):
            // 心房颤动 and 持续性心房颤动; 心脏骤停（心肺复苏术后）: 心脏停搏 and 心脏停搏复苏成功) is the
            // specific one alone (D2).
            let specific_beside = |r: &Resolved| {
                resolved.iter().any(|o| o.code != r.code && o.code.get(..3) == r.code.get(..3) && is_subsequence(&r.name, &o.name))
            };
            let (resolved, general): (Vec<Resolved>, Vec<Resolved>) = resolved.iter().cloned().partition(|r| !specific_beside(r));
            // An organism in the brackets of an infection of a site (囊袋感染(表皮葡萄球菌),
            // 社区获得性肺炎（肺炎链球菌）) says what grew: the edition has no B95–B97 codes to add,
            // and A49 is an infection of no site.
            let resolved: Vec<Resolved> = if resolved.iter().any(|r| !r.code.starts_with("A49")) {
                resolved.into_iter().filter(|r| !r.code.starts_with("A49")).collect()
            } else {
                resolved
            };
            // A sequela with what it left in brackets (脑梗死后遗症（左侧偏瘫）) is the sequela's
            // code alone.
            let resolved: Vec<Resolved> = if piece.contains("后遗症") && resolved.iter().any(|r| r.name.contains("后遗症")) {
                resolved.into_iter().filter(|r| r.name.contains("后遗症")).collect()
            } else {
                resolved
            };
            let resolved = self.pneumonia_by_organism(&piece, resolved)?;
            let (resolved, general) = self.one_course_of_one_rhythm(cs, resolved, general);
            for g in general {
                removed.push(Removal {
                    item: Item { name: g.name, code: Some(g.code), mention: piece.clone(), evidence: vec![ev.clone()], confidence: g.confidence, origin: origin.into() },
                    reason: "the same mention gives a more specific code of its category".into(),
                });
            }
            for r in resolved {
                if let Some(existing) = items.iter_mut().find(|i| i.code.as_deref() == Some(&r.code)) {
                    existing.evidence.push(ev.clone());
                    continue;
                }
                items.push(Item {
                    name: r.name,
                    code: Some(r.code),
                    mention: piece.clone(),
                    evidence: vec![ev.clone()],
                    confidence: r.confidence,
                    origin: origin.into(),
                });
            }
        }
        Ok((items, removed))
    }
}

/// The organisms whose pneumonia has a code of its own in the clinical edition.
const PNEUMONIA_BY_ORGANISM: &[(&[&str], &str)] = &[
    (&["肺炎克雷伯", "克雷伯菌", "克雷伯杆菌"], "J15.000"),
    (&["肺炎链球菌"], "J13.x00x001"),
    (&["H1N1"], "J10.001"),
    (&["铜绿假单胞", "假单胞菌"], "J15.100"),
    (&["金黄色葡萄球菌", "金葡菌"], "J15.200"),
    (&["肺炎支原体", "支原体"], "J15.700"),
    (&["流感嗜血杆菌"], "J14.x00"),
];

/// Whether every char of `short` appears in `long`, in order (急性胰腺炎 in 急性胆源型胰腺炎，轻症).
fn is_subsequence(short: &str, long: &str) -> bool {
    let mut rest = long.chars();
    short.chars().count() < long.chars().count() && short.chars().all(|c| rest.any(|l| l == c))
}

/// A mention without the terms it says were ruled out (胸痛待查 冠心病已排除 is the chest pain,
/// not the coronary disease): each term written just before 已排除/已除外, back to the space or
/// stop before it.
fn without_ruled_out(mention: &str) -> String {
    let mut out = mention.to_string();
    for word in ["已排除", "已除外"] {
        while let Some(at) = out.find(word) {
            let start = out[..at].rfind([' ', '　', '，', ',', '；', ';', '、']).map_or(0, |p| p + out[p..].chars().next().map_or(1, char::len_utf8));
            out.replace_range(start..at + word.len(), "");
        }
    }
    out.trim().to_string()
}

/// The text without its years (2019, 2019年): four digits from 1900 to 2099 standing alone.
fn without_years(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let run = chars[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if run == 4 && (i == 0 || !chars[i - 1].is_ascii_digit()) && matches!((chars[i], chars[i + 1]), ('1', '9') | ('2', '0')) {
            i += 4;
            if chars.get(i) == Some(&'年') {
                i += 1;
            }
            continue;
        }
        let step = run.max(1);
        out.extend(&chars[i..i + step]);
        i += step;
    }
    out
}

/// Words that mark a remark about a procedure, not a diagnosis.
const PROCEDURE_REMARK: &[&str] = &["术后", "治疗后", "植入", "置入", "PCI", "PTCA", "球囊", "支架", "消融", "搭桥"];
/// A complication of a device or a procedure is a diagnosis, though it names the procedure
/// (LAD支架内再狭窄, 起搏器囊袋感染).
/// A resuscitation's outcome (心脏骤停（心肺复苏术后）) says which arrest code it is.
const COMPLICATION: &[&str] = &["再狭窄", "支架内血栓", "支架血栓", "囊袋感染", "囊袋破溃", "电极脱位", "导线脱位", "电极移位", "复苏"];

fn is_procedure_remark(part: &str) -> bool {
    PROCEDURE_REMARK.iter().any(|w| part.contains(w)) && !COMPLICATION.iter().any(|w| part.contains(w))
}

/// A diagnosis mention without its remarks about procedures: "不稳定型心绞痛（LCX药物球囊治疗后）"
/// and "冠心病 不稳定型心绞痛 LAD远段PTCA术后" name angina, and a separate status code is
/// read from the history. A mention that is only such a remark (PCI术后) stays whole.
pub fn strip_procedure_remarks(mention: &str) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    let mut group = String::new();
    for c in mention.chars() {
        match c {
            '(' | '（' => {
                depth += 1;
                if depth == 1 {
                    group.clear();
                    continue;
                }
            }
            ')' | '）' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    if !is_procedure_remark(&group) {
                        out.push('（');
                        out.push_str(&group);
                        out.push('）');
                    }
                    continue;
                }
            }
            _ => {}
        }
        if depth > 0 {
            group.push(c);
        } else {
            out.push(c);
        }
    }
    if depth > 0 {
        out.push_str(&group);
    }
    // Parts end at spaces, dashes and a closing bracket: 起搏器囊袋感染——起搏系统完全拔除术后 and
    // WPW综合症（左侧游离壁显性旁路）RFCA术后 are a diagnosis and a remark.
    let spaced = out.replace("——", " ").replace('—', " ").replace('）', "） ");
    let parts: Vec<&str> = spaced.split([' ', '\u{3000}']).filter(|p| !p.is_empty()).collect();
    let kept: Vec<&str> = parts.iter().copied().filter(|p| !is_procedure_remark(p)).collect();
    let result = if kept.is_empty() || kept.len() == parts.len() { out.trim().to_owned() } else { kept.join(" ") };
    if result.trim().is_empty() { mention.to_owned() } else { result }
}

/// Segments `key` into dictionary words and gaps, maximizing the sum of squared word lengths
/// (long names beat their fragments). Returns (text, is_word) runs in order.
pub fn segment(key: &str, is_word: impl Fn(&str) -> bool) -> Vec<(String, bool)> {
    const MAX_WORD: usize = 32;
    let chars: Vec<char> = key.chars().collect();
    let n = chars.len();
    let mut best = vec![0usize; n + 1];
    let mut back: Vec<Option<usize>> = vec![None; n + 1]; // Some(start) for a word ending here
    for j in 1..=n {
        best[j] = best[j - 1];
        back[j] = None;
        for i in j.saturating_sub(MAX_WORD)..j.saturating_sub(1) {
            let w: String = chars[i..j].iter().collect();
            let score = best[i] + (j - i) * (j - i);
            if score > best[j] && is_word(&w) {
                best[j] = score;
                back[j] = Some(i);
            }
        }
    }
    let mut runs: Vec<(String, bool)> = Vec::new();
    let mut j = n;
    let mut gap = String::new();
    while j > 0 {
        match back[j] {
            Some(i) => {
                if !gap.is_empty() {
                    runs.push((gap.chars().rev().collect(), false));
                    gap.clear();
                }
                runs.push((chars[i..j].iter().collect(), true));
                j = i;
            }
            None => {
                gap.push(chars[j - 1]);
                j -= 1;
            }
        }
    }
    if !gap.is_empty() {
        runs.push((gap.chars().rev().collect(), false));
    }
    runs.reverse();
    runs
}

/// Diagnoses coded once per category: the course's restatement replaces the listed one.
const ONE_PER_CATEGORY: [&str; 4] = ["I10", "I48", "I44", "I63"];

impl StandardizeAgent {
    /// An infection the course diagnoses and treats at once (诊断尿路感染，予左氧氟沙星) joins a
    /// discharge list that forgets it (D1); other conditions the course restates are the list's.
    fn intercurrent_infections(&self, rec: &EhrRecord, out: &mut AgentOutput) -> Result<(), String> {
        const INFECTIONS: [&str; 8] = ["N39.0", "N30", "J18", "J98.414", "J06", "J20", "A09", "L03"];
        for (section, piece) in course_diagnoses::treated_in_the_course(rec) {
            let (items, _) = self.inner.standardize_pieces(section, vec![piece], "standardize")?;
            for it in items {
                let code = it.code.as_deref().unwrap_or("");
                let same_category = out.items.iter().any(|o| o.code.as_deref().and_then(|c| c.get(..3)) == code.get(..3));
                if INFECTIONS.iter().any(|f| code.starts_with(f)) && !same_category {
                    out.notes.push(format!("{code}: an infection the course diagnosed and treated (D1)"));
                    out.items.push(it);
                }
            }
        }
        Ok(())
    }

    /// Without a discharge diagnosis the admission diagnosis is a hypothesis: the diagnoses the
    /// course states (诊断：…, …诊断明确) join it, what it rules out (排除冠心病) goes, and a
    /// question (II度房室传导阻滞？, 急性冠脉综合征？) gives way, in its place in the list, to what
    /// the course found of its kind (III度房室传导阻滞, 不稳定型心绞痛); prioritization then decides.
    fn what_the_course_established(&self, rec: &EhrRecord, out: &mut AgentOutput) -> Result<(), String> {
        let mut found: Vec<Item> = Vec::new();
        for (section, piece) in course_diagnoses::established(rec) {
            let (items, _) = self.inner.standardize_pieces(section, vec![piece], "standardize")?;
            for it in items {
                if !found.iter().any(|f| f.code == it.code) {
                    found.push(it);
                }
            }
        }
        let mut ruled_out: Vec<String> = Vec::new();
        for text in course_diagnoses::ruled_out(rec) {
            let (items, _) = self.inner.standardize_pieces(Section::ClinicalCourse, vec![Piece { start: 0, end: 0, text }], "standardize")?;
            ruled_out.extend(items.into_iter().filter_map(|i| i.code));
        }
        let category = |c: &str| c.get(..3).map(str::to_owned);
        let mut established: Vec<Item> = found.into_iter().filter(|f| !ruled_out.iter().any(|r| Some(r.as_str()) == f.code.as_deref())).collect();
        if !established.is_empty() {
            out.notes.push(format!("{} item(s) the course established (no discharge diagnosis)", established.len()));
        }
        let listed = std::mem::take(&mut out.items);
        for it in listed {
            let code = it.code.as_deref().unwrap_or("");
            let question = it.mention.contains('?') || it.mention.contains('？');
            // What the course found in the place of a listed one: any kind for a question, and for
            // the diagnoses coded once (a hypertension's grade and risk restratified, an AF's type,
            // a block's degree) the course's own words even without one.
            let answer = established.iter().position(|f| {
                let fc = f.code.as_deref().unwrap_or("");
                let kind = category(fc) == category(code) && (question || ONE_PER_CATEGORY.iter().any(|p| code.starts_with(p)));
                f.code != it.code && !code.starts_with('R') && (kind || question && code.starts_with("I24.9") && (fc.starts_with("I20") || fc.starts_with("I21")))
            });
            if ruled_out.iter().any(|r| r == code) {
                out.removed.push(Removal { item: it, reason: "ruled out by the course (排除)".into() });
            } else if let Some(at) = answer {
                out.removed.push(Removal { item: it, reason: "the course found another diagnosis of its kind in its place".into() });
                // The answer takes the listed one's place in the list.
                let f = established.remove(at);
                if !out.items.iter().any(|o| o.code == f.code) {
                    out.items.push(f);
                }
            } else if !out.items.iter().any(|o| o.code == it.code) {
                // A question the course confirms (急性左心衰竭？ and then 诊断：…，急性左心衰竭)
                // carries the course's words as its evidence: it is no open question any more.
                let mut it = it;
                if let Some(f) = established.iter().find(|f| f.code == it.code) {
                    it.evidence.extend(f.evidence.iter().cloned());
                }
                out.items.push(it);
            }
        }
        for f in established {
            if !out.items.iter().any(|o| o.code == f.code) {
                out.items.push(f);
            }
        }
        Ok(())
    }
}

/// The two standardization roles differ only in section and edition.
pub struct StandardizeAgent {
    pub role: Role,
    pub inner: Standardizer,
}

impl Agent for StandardizeAgent {
    fn info(&self) -> AgentInfo {
        AgentInfo {
            role: self.role,
            backend: "knowledge".into(),
            model: format!("retrieval+reranker({})", self.inner.reranker.trained_on),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }

    fn run(&self, input: AgentInput<'_>) -> Result<AgentOutput, AgentError> {
        let fail = |message: String| AgentError::Failed { role: self.role.as_str(), message };
        let rec = input.record;
        let sections: &[Section] = match self.role {
            Role::StandardizeProcedure => &[Section::ProcedureName],
            // 出院诊断, falling back to 入院诊断 when there is none.
            _ if rec.has(Section::DischargeDiagnosis) => &[Section::DischargeDiagnosis],
            _ => &[Section::AdmissionDiagnosis],
        };
        let mut out = AgentOutput { items: input.items, ..Default::default() };
        for &s in sections {
            let (items, removed) = self.inner.standardize_section(s, rec.text(s), "standardize").map_err(fail)?;
            out.notes.push(format!("{} item(s) from {}", items.len(), s.key()));
            for it in items {
                if !out.items.iter().any(|o| o.code == it.code) {
                    out.items.push(it);
                }
            }
            out.removed.extend(removed);
        }
        if self.role == Role::StandardizeDiagnosis && !rec.has(Section::DischargeDiagnosis) {
            self.what_the_course_established(rec, &mut out).map_err(fail)?;
        } else if self.role == Role::StandardizeDiagnosis {
            self.intercurrent_infections(rec, &mut out).map_err(fail)?;
        }
        if self.role == Role::StandardizeDiagnosis {
            self.inner.diabetes_of_the_type_told(&mut out);
        }
        Ok(out)
    }
}

/// A character that negates what follows it: a candidate never says more by adding one.
fn is_negation(ch: char) -> bool {
    matches!(ch, '不' | '非' | '无' | '未')
}

/// How far down the list a more specific code of the best one's family is looked for.
const SPECIFIC_WITHIN: usize = 10;

/// A candidate of the best one's ICD category that says more of what the mention says: it
/// keeps every character the best one matched, matches more of the mention's, and adds at most
/// one character the mention does not have (never a negation). 阵发性房室结折返性心动过速 is
/// I47.106 阵发性房室结内折返性心动过速, not I47.100x004 房室结折返性心动过速; 下肢肌间静脉血栓
/// is I80.300x006, not I80.303 下肢静脉血栓形成: coders code the most specific term the
/// record supports.
fn more_specific_in_family(
    key: &str,
    scored: &[(f64, crate::terminology::Candidate)],
    name_key: impl Fn(&crate::terminology::Candidate) -> String,
) -> Option<usize> {
    use std::collections::HashSet;
    let (_, best) = scored.first()?;
    let mention: HashSet<char> = key.chars().collect();
    let chars = |c: &crate::terminology::Candidate| -> HashSet<char> { name_key(c).chars().collect() };
    let a = chars(best);
    let matched: HashSet<char> = a.intersection(&mention).copied().collect();
    let extra_a = a.difference(&mention).count();
    let family = |code: &str| code.get(..3).map(str::to_owned);
    scored.iter().enumerate().skip(1).take(SPECIFIC_WITHIN).find_map(|(i, (_, c))| {
        let b = chars(c);
        let extra: Vec<char> = b.difference(&mention).copied().collect();
        let ok = family(&c.code) == family(&best.code)
            && matched.is_subset(&b)
            && b.intersection(&mention).count() > matched.len()
            && extra.len() <= extra_a + 1
            && !extra.iter().any(|ch| is_negation(*ch));
        ok.then_some(i)
    })
}

/// The mention with an infarction whose remark names only its walls written as the edition
/// names it: 急性ST段抬高型心肌梗死（下壁、右心室） Killip II级 → 急性下壁右心室心肌梗死 Killip II级
/// (a wall's STEMI is coded by the wall).
fn infarction_by_walls(mention: &str) -> Option<String> {
    const WALLS: &[&str] = &["广泛前壁", "前间壁", "高侧壁", "正后壁", "前壁", "下壁", "后壁", "侧壁", "间壁", "右心室", "右室", "心尖"];
    let head = mention.find("心肌梗死")?;
    let after = &mention[head + "心肌梗死".len()..];
    let open = after.chars().next().filter(|c| matches!(c, '（' | '('))?;
    let close = after.find(['）', ')'])?;
    let mut rest = &after[open.len_utf8()..close];
    let mut walls = String::new();
    loop {
        rest = rest.trim_start_matches(['、', '，', ',', ' ', '+', '及']);
        if rest.is_empty() {
            break;
        }
        let w = WALLS.iter().find(|w| rest.starts_with(*w))?;
        walls.push_str(if *w == "右室" { "右心室" } else { w });
        rest = &rest[w.len()..];
    }
    if walls.is_empty() {
        return None;
    }
    let before = mention[..head].strip_suffix("ST段抬高型").unwrap_or(&mention[..head]);
    let tail = &after[close + after[close..].chars().next()?.len_utf8()..];
    Some(format!("{before}{walls}心肌梗死{tail}"))
}

/// A remark that only grades what it follows (重度, 中-重度, 少量).
fn is_severity(remark: &str) -> bool {
    let rest: String = normalize(remark).chars().filter(|c| !"轻中重极度大少等量微偏-~至".contains(*c)).collect();
    rest.is_empty() && !remark.trim().is_empty()
}

/// The words the edition subdivides a rhythm by its course with (阵发性室上性心动过速).
const COURSE: &[&str] = &["非持续性", "非阵发性", "长程持续性", "持续性", "阵发性", "永久性"];

fn course_of(r: &Resolved) -> Option<&'static str> {
    COURSE.iter().find(|c| r.name.starts_with(**c)).copied()
}

/// The edition's name, in the subcategory of `course`, that says its course and the kind
/// `kind` names, in order (阵发性 + 房室结折返性心动过速 → I47.106 阵发性房室结内折返性心动过速);
/// the shortest such name, so that it says nothing more.
fn course_with_kind(cs: &CodeSystem, course: &Resolved, kind: &Resolved) -> Option<Resolved> {
    let word = course_of(course)?;
    let prefix = course.code.get(..5)?;
    let said = format!("{word}{}", kind.name);
    cs.codes_with_prefix(prefix)
        .into_iter()
        .filter(|c| c.name.starts_with(word) && (c.name == said || is_subsequence(&said, &c.name)))
        .min_by_key(|c| c.name.chars().count())
        .map(|c| Resolved { code: c.code.clone(), name: c.name.clone(), confidence: 0.0 })
}

/// A mention's trailing remark in brackets and what comes before it (both non-empty).
fn trailing_remark(mention: &str) -> Option<(&str, &str)> {
    let t = mention.trim_end();
    let close = t.chars().next_back().filter(|c| matches!(c, ')' | '）'))?;
    let open = if close == ')' { '(' } else { '（' };
    let at = t.rfind(open).or_else(|| t.rfind(if open == '(' { '（' } else { '(' }))?;
    let (main, remark) = (t[..at].trim(), &t[at + open.len_utf8()..t.len() - close.len_utf8()]);
    (main.chars().count() >= 2 && !remark.trim().is_empty()).then_some((main, remark))
}

/// A code of `r`'s ICD category that says everything `r` says, something of the remark and at
/// least two characters more of the mention than `r` does, adding at most three the mention
/// does not have (never a negation).
fn specified_by_remark(cs: &CodeSystem, r: &Resolved, mention_key: &str, remark_only: &std::collections::HashSet<char>) -> Option<Resolved> {
    use std::collections::HashSet;
    let own: HashSet<char> = cs.get(&r.code)?.key.chars().collect();
    let mention: HashSet<char> = mention_key.chars().collect();
    let own_says = own.intersection(&mention).count();
    let category = r.code.get(..3)?;
    cs.codes_with_prefix(category)
        .into_iter()
        .filter(|c| c.code != r.code)
        // Most of the category lacks some character `r` says: rejected before any set is built.
        .filter(|c| own.iter().all(|ch| c.key.contains(*ch)))
        .filter_map(|c| {
            let chars: HashSet<char> = c.key.chars().collect();
            let gain = chars.iter().filter(|ch| remark_only.contains(ch)).count();
            let says = chars.intersection(&mention).count();
            let extra: Vec<char> = chars.difference(&mention).copied().collect();
            let ok = own.is_subset(&chars) && gain >= 1 && says >= own_says + 2 && extra.len() <= 3 && !extra.iter().any(|ch| is_negation(*ch));
            ok.then_some((gain, std::cmp::Reverse(extra.len()), std::cmp::Reverse(c.key.chars().count()), c))
        })
        .max_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)))
        .map(|(_, _, _, c)| Resolved { code: c.code.clone(), name: c.name.clone(), confidence: r.confidence })
}

/// A candidate that says the whole mention, in order, and ends as it does, where the best one
/// loses its last character: a Chinese diagnosis ends in what it is (炎, 痛, 病, 瘤, 症), so
/// 肋软骨炎 is M94.001 肋骨软骨炎 (one character more), not R07.300x002 肋软骨痛 (a symptom). At
/// most two characters the mention does not have, never a negation.
fn keeps_the_head(
    key: &str,
    scored: &[(f64, crate::terminology::Candidate)],
    name_key: impl Fn(&crate::terminology::Candidate) -> String,
) -> Option<usize> {
    let (_, best) = scored.first()?;
    let head = key.chars().last()?;
    // 病, 癌 and 瘤 are the heads the editions also write otherwise (高血压病 is 高血压, 癌 a
    // 恶性肿瘤): a best candidate without them may still say the same.
    if key.chars().count() < 3 || matches!(head, '病' | '癌' | '瘤') || name_key(best).contains(head) {
        return None;
    }
    let says_whole = |name: &str| {
        let mut rest = name.chars();
        key.chars().all(|k| rest.any(|n| n == k))
    };
    scored.iter().enumerate().skip(1).take(SPECIFIC_WITHIN).find_map(|(i, (_, c))| {
        let name = name_key(c);
        let extra = name.chars().count().saturating_sub(key.chars().count());
        let ok = says_whole(&name) && name.ends_with(head) && extra <= 2 && !name.chars().any(|ch| is_negation(ch) && !key.contains(ch));
        ok.then_some(i)
    })
}

#[cfg(test)]
mod tests {
    use super::segment;

    /// A term the mention says was ruled out is no part of it; a year in a remark is no word.
    #[test]
    fn ruled_out_terms_and_years_are_set_aside() {
        use super::{without_ruled_out, without_years};
        assert_eq!(without_ruled_out("胸痛待查 冠心病已排除"), "胸痛待查");
        assert_eq!(without_ruled_out("冠心病已除外"), "");
        assert_eq!(without_ruled_out("胸痛，急性冠脉综合征已排除，肺栓塞已除外"), "胸痛，，");
        assert_eq!(without_ruled_out("冠心病"), "冠心病");
        assert_eq!(without_years("2019，LAD"), "，LAD");
        assert_eq!(without_years("3级，很高危"), "3级，很高危");
    }

    #[test]
    fn procedure_remarks_are_not_diagnoses() {
        use super::strip_procedure_remarks as strip;
        assert_eq!(strip("冠状动脉粥样硬化性心脏病 不稳定型心绞痛（LCX药物球囊治疗后）"), "冠状动脉粥样硬化性心脏病 不稳定型心绞痛");
        assert_eq!(strip("冠心病 不稳定型心绞痛 LAD远段PTCA术后"), "冠心病 不稳定型心绞痛");
        assert_eq!(strip("冠心病(陈旧心梗)"), "冠心病（陈旧心梗）");
        assert_eq!(strip("PCI术后"), "PCI术后");
        assert_eq!(strip("起搏器囊袋感染——起搏系统完全拔除术后"), "起搏器囊袋感染");
        assert_eq!(strip("WPW综合症（左侧游离壁显性旁路）RFCA术后"), "WPW综合症（左侧游离壁显性旁路）");
        assert_eq!(strip("高血压病（3级，很高危）伴左心室肥厚"), "高血压病（3级，很高危）伴左心室肥厚");
        // Complications and a resuscitation's outcome name a procedure and are diagnoses.
        assert_eq!(strip("冠心病 不稳定型心绞痛 LAD支架内再狭窄 冠状动脉支架植入术后"), "冠心病 不稳定型心绞痛 LAD支架内再狭窄");
        assert_eq!(strip("心脏骤停（心肺复苏术后）"), "心脏骤停（心肺复苏术后）");
    }

    fn more_specific_in_family_by_name(key: &str, scored: &[(f64, crate::terminology::Candidate)]) -> Option<usize> {
        super::more_specific_in_family(key, scored, |c| crate::terminology::normalize::normalize(&c.name))
    }

    #[test]
    fn a_more_specific_code_of_the_family_wins_when_it_says_more_of_the_mention() {
        let cand = |code: &str, name: &str| (0.9, crate::terminology::Candidate { code: code.into(), name: name.into(), score: 1.0, exact: false });
        let scored = vec![cand("I47.100x004", "房室结折返性心动过速"), cand("I47.104", "阵发性房室折返性心动过速"), cand("I47.106", "阵发性房室结内折返性心动过速")];
        assert_eq!(more_specific_in_family_by_name("阵发性房室结折返性心动过速", &scored), Some(2), "I47.104 drops 结; I47.106 keeps all and adds one character");
        assert_eq!(more_specific_in_family_by_name("房室结折返性心动过速", &scored), None, "nothing more is said");
        let other_family = vec![cand("I80.303", "下肢静脉血栓形成"), cand("I82.900x002", "下肢肌间静脉血栓形成")];
        assert_eq!(more_specific_in_family_by_name("左下肢肌间静脉血栓形成", &other_family), None, "not across categories");
        let negated = vec![cand("B02.300", "带状疱疹"), cand("B02.900", "带状疱疹不伴")];
        assert_eq!(more_specific_in_family_by_name("带状疱疹伴", &negated), None, "never by adding a negation");
    }

    #[test]
    fn a_candidate_that_keeps_the_mention_whole_and_its_head_wins_over_one_that_loses_it() {
        let cand = |code: &str, name: &str| (0.9, crate::terminology::Candidate { code: code.into(), name: name.into(), score: 1.0, exact: false });
        let by_name = |c: &crate::terminology::Candidate| crate::terminology::normalize::normalize(&c.name);
        let scored = vec![cand("R07.300x002", "肋软骨痛"), cand("M94.001", "肋骨软骨炎"), cand("M94.808", "软骨炎")];
        assert_eq!(super::keeps_the_head("肋软骨炎", &scored, by_name), Some(1), "炎 kept, the mention in order, one character more");
        assert_eq!(super::keeps_the_head("肋软骨痛", &scored, by_name), None, "the best one keeps the head");
        let generic = vec![cand("I10.x00", "高血压"), cand("I12.900", "高血压性肾病")];
        assert_eq!(super::keeps_the_head("高血压病", &generic, by_name), None, "病 is a head the editions drop");
        let far = vec![cand("R07.300x002", "肋软骨痛"), cand("M94.0", "肋骨及胸骨软骨炎")];
        assert_eq!(super::keeps_the_head("肋软骨炎", &far, by_name), None, "at most two characters more");
    }

    #[test]
    fn segmentation_prefers_long_names() {
        let dict = ["冠状动脉粥样硬化性心脏病", "心脏病", "不稳定型心绞痛", "心绞痛"];
        let runs = segment("冠状动脉粥样硬化性心脏病不稳定型心绞痛", |w| dict.contains(&w));
        assert_eq!(runs, vec![("冠状动脉粥样硬化性心脏病".to_string(), true), ("不稳定型心绞痛".to_string(), true)]);
        let runs = segment("心律失常xx心房颤动", |w| ["心律失常", "心房颤动"].contains(&w));
        assert_eq!(runs.iter().filter(|r| r.1).count(), 2);
        assert_eq!(runs[1], ("xx".to_string(), false));
    }
}
