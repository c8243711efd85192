//! A role served by a language model. The role's knowledge agent runs first and gives the draft
//! and the candidates; the model then decides only what the role decides (which candidate name,
//! which principal, keep or drop), one question per item where the role runs per item. Answers
//! outside the options are impossible under constrained decoding and refused otherwise; an
//! unusable answer keeps the knowledge decision for that question, and the trace says so.

use std::sync::Arc;

use serde_json::json;

use super::parse::{choice, verdict, Parsed};
use super::prompts::{numbered, prompt, record_text, RolePrompt};
use super::{ChatModel, ChatRequest, LlmError};
use crate::agents::{Agent, AgentError, AgentInfo, AgentInput, AgentOutput, Item, Removal, Role};
use crate::record::EhrRecord;
use crate::terminology::Terminology;

pub struct LlmAgent {
    pub questions: Questions,
    pub model: Arc<dyn ChatModel>,
    /// The knowledge agent of the same role: draft, candidates and fallback.
    pub fallback: Arc<dyn Agent>,
}

/// How a role's decisions are put to a model: shared by the agent and by `export-sft`, so that
/// fine-tuning data asks exactly what inference asks.
pub struct Questions {
    pub role: Role,
    pub terminology: Arc<Terminology>,
    /// Edition searched for standardization candidates.
    pub edition: String,
    /// Candidates offered per item.
    pub k: usize,
    pub max_tokens: usize,
}

/// One question to the model, the options its answer picks from, and the answer strings
/// allowed (one per option, or the two verdicts).
pub struct Question {
    pub request: ChatRequest,
    pub options: Vec<String>,
}

/// What the standardization questions offer per item: (name, code) candidates, the draft's first.
pub type Offered = Vec<(String, Option<String>)>;

fn names(items: &[Item]) -> String {
    if items.is_empty() {
        "（无）".into()
    } else {
        items.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join("；")
    }
}

impl Questions {
    pub fn prompt(&self) -> &'static RolePrompt {
        prompt(self.role)
    }

    fn ask(&self, context: &[(&str, &str)], question: &[(&str, &str)], options: Vec<String>, answers: Vec<String>) -> Question {
        let p = self.prompt();
        Question {
            request: ChatRequest { messages: p.messages(context, question), max_tokens: self.max_tokens, choices: Some(answers) },
            options,
        }
    }

    fn verdict_answers(&self) -> Vec<String> {
        vec![self.prompt().answer_json(json!(true)), self.prompt().answer_json(json!(false))]
    }

    /// Standardization: per drafted item, a choice among its draft name and the index's
    /// candidates for the mention.
    pub fn standardize(&self, record: &EhrRecord, draft: &[Item]) -> Vec<(Question, Offered)> {
        let text = record_text(record, self.role);
        draft
            .iter()
            .map(|item| {
                let mut cands: Offered = vec![(item.name.clone(), item.code.clone())];
                if let Ok(found) = self.terminology.search(&item.mention, &self.edition, None, self.k) {
                    for c in found {
                        if !cands.iter().any(|(n, _)| *n == c.name) {
                            cands.push((c.name, Some(c.code)));
                        }
                    }
                }
                let options: Vec<String> = cands.iter().map(|(n, _)| n.clone()).collect();
                let answers = options.iter().map(|o| self.prompt().answer_json(json!(o))).collect();
                (self.ask(&[("record", &text)], &[("mention", &item.mention), ("candidates", &numbered(&options))], options, answers), cands)
            })
            .collect()
    }

    /// Mining: a keep/drop question per drafted item that the procedure list did not have.
    pub fn mine(&self, record: &EhrRecord, listed: &[Item], draft: &[Item]) -> Vec<(usize, Question)> {
        let text = record_text(record, self.role);
        let listed_names = names(listed);
        (0..draft.len())
            .filter(|&i| !listed.iter().any(|x| x.key() == draft[i].key()))
            .map(|i| {
                let it = &draft[i];
                let evidence = it.evidence.first().map(|e| e.text.clone()).unwrap_or_default();
                (i, self.ask(&[("record", &text), ("listed", &listed_names)], &[("name", &it.name), ("evidence", &evidence)], Vec::new(), self.verdict_answers()))
            })
            .collect()
    }

    /// Prioritization: one choice of principal among the drafted items (none for fewer than two).
    pub fn prioritize(&self, record: &EhrRecord, other_track: &[Item], draft: &[Item]) -> Option<Question> {
        if draft.len() < 2 {
            return None;
        }
        let text = record_text(record, self.role);
        let other = names(other_track);
        let options: Vec<String> = draft.iter().map(|i| i.name.clone()).collect();
        let answers = options.iter().map(|o| self.prompt().answer_json(json!(o))).collect();
        Some(self.ask(&[("record", &text), ("other", &other)], &[("candidates", &numbered(&options))], options, answers))
    }

    /// Validation: a keep/drop question per item the draft kept or dropped (pool order: kept,
    /// then dropped).
    pub fn validate(&self, record: &EhrRecord, other_track: &[Item], pool: &[Item]) -> Vec<Question> {
        let text = record_text(record, self.role);
        let other = names(other_track);
        let all = names(pool);
        pool.iter()
            .map(|it| {
                let code = it.code.clone().unwrap_or_else(|| "未编码".into());
                self.ask(&[("record", &text), ("other", &other), ("all", &all)], &[("name", &it.name), ("code", &code)], Vec::new(), self.verdict_answers())
            })
            .collect()
    }
}

impl LlmAgent {
    fn prompt(&self) -> &'static RolePrompt {
        self.questions.prompt()
    }

    /// Runs the questions as one batch; per question, the model's reading or why it failed.
    fn run_batch(&self, questions: &[Question]) -> Vec<Result<String, String>> {
        if questions.is_empty() {
            return Vec::new();
        }
        let requests: Vec<ChatRequest> = questions.iter().map(|q| q.request.clone()).collect();
        self.model.complete(&requests).into_iter().map(|r| r.map(|c| c.text).map_err(|e: LlmError| e.to_string())).collect()
    }

    /// The model's answer read by `parse`, with a note when it failed, needed repair or was
    /// unusable; `None` keeps the knowledge decision.
    fn read<T>(&self, answer: &Result<String, String>, what: &str, notes: &mut Vec<String>, parse: impl Fn(&str) -> Parsed<T>) -> Option<T> {
        let text = match answer {
            Ok(text) => text,
            Err(e) => {
                notes.push(format!("llm failed on {what} ({e}): knowledge answer kept"));
                return None;
            }
        };
        match parse(text) {
            Parsed::Exact(v) => Some(v),
            Parsed::Repaired(v, how) => {
                notes.push(format!("llm answer on {what} repaired ({how})"));
                Some(v)
            }
            Parsed::Unusable(why) => {
                notes.push(format!("llm answer on {what} unusable ({why}): knowledge answer kept"));
                None
            }
        }
    }

    fn read_choice(&self, answer: &Result<String, String>, options: &[String], what: &str, notes: &mut Vec<String>) -> Option<usize> {
        self.read(answer, what, notes, |t| choice(t, &self.prompt().answer, options))
    }

    fn read_verdict(&self, answer: &Result<String, String>, what: &str, notes: &mut Vec<String>) -> Option<bool> {
        self.read(answer, what, notes, |t| verdict(t, &self.prompt().answer))
    }

    /// Standardization: the model picks a name per item; the code comes with the candidate.
    fn standardize(&self, input: &AgentInput<'_>, draft: AgentOutput) -> AgentOutput {
        let (questions, offered): (Vec<Question>, Vec<Offered>) = self.questions.standardize(input.record, &draft.items).into_iter().unzip();
        let answers = self.run_batch(&questions);
        let mut out = draft;
        for ((item, cands), (q, a)) in out.items.iter_mut().zip(offered).zip(questions.iter().zip(&answers)) {
            let what = format!("'{}'", item.mention);
            if let Some(i) = self.read_choice(a, &q.options, &what, &mut out.notes) {
                if i != 0 {
                    out.notes.push(format!("llm chose '{}' for '{}' (knowledge: '{}')", cands[i].0, item.mention, item.name));
                    item.name = cands[i].0.clone();
                    item.code = cands[i].1.clone();
                }
            }
        }
        out
    }

    /// Mining: the model keeps or drops each procedure the knowledge agent found outside the
    /// procedure list; listed procedures pass through.
    fn mine(&self, input: &AgentInput<'_>, draft: AgentOutput) -> AgentOutput {
        let (mined, questions): (Vec<usize>, Vec<Question>) = self.questions.mine(input.record, &input.items, &draft.items).into_iter().unzip();
        let answers = self.run_batch(&questions);
        let mut out = draft;
        let mut drop = Vec::new();
        for (&i, a) in mined.iter().zip(&answers) {
            let what = format!("mined '{}'", out.items[i].name);
            if self.read_verdict(a, &what, &mut out.notes) == Some(false) {
                drop.push(i);
            }
        }
        for i in drop.into_iter().rev() {
            let item = out.items.remove(i);
            out.notes.push(format!("llm dropped mined '{}'", item.name));
            out.removed.push(Removal { item, reason: "llm: not done in this stay".into() });
        }
        out
    }

    /// Prioritization: the model names the principal among the drafted items; it moves first,
    /// the others keep the knowledge order.
    fn prioritize(&self, input: &AgentInput<'_>, draft: AgentOutput) -> AgentOutput {
        let Some(q) = self.questions.prioritize(input.record, input.other_track, &draft.items) else { return draft };
        let answers = self.run_batch(std::slice::from_ref(&q));
        let mut out = draft;
        if let Some(i) = self.read_choice(&answers[0], &q.options, "the principal", &mut out.notes) {
            if i != 0 {
                let item = out.items.remove(i);
                out.notes.push(format!("llm chose '{}' as principal (knowledge: '{}')", item.name, out.items[0].name));
                out.items.insert(0, item);
            }
        }
        out
    }

    /// Validation: the model judges every item the knowledge agent kept or dropped; items it
    /// keeps stay (dropped ones are restored from the input, never invented).
    fn validate(&self, input: &AgentInput<'_>, draft: AgentOutput) -> AgentOutput {
        let mut pool: Vec<(Item, bool)> = draft.items.iter().cloned().map(|i| (i, true)).collect();
        pool.extend(draft.removed.iter().map(|r| (r.item.clone(), false)));
        let items_only: Vec<Item> = pool.iter().map(|(i, _)| i.clone()).collect();
        let questions = self.questions.validate(input.record, input.other_track, &items_only);
        let answers = self.run_batch(&questions);
        let mut notes = draft.notes.clone();
        let mut items = Vec::new();
        let mut removed = Vec::new();
        let knowledge_reason = |it: &Item| draft.removed.iter().find(|r| r.item.key() == it.key()).map(|r| r.reason.clone());
        for ((item, kept_by_knowledge), a) in pool.into_iter().zip(&answers) {
            let what = format!("'{}'", item.name);
            let keep = match self.read_verdict(a, &what, &mut notes) {
                Some(v) => {
                    if v != kept_by_knowledge {
                        notes.push(format!("llm {} '{}' (knowledge: {})", if v { "kept" } else { "dropped" }, item.name, if kept_by_knowledge { "kept" } else { "dropped" }));
                    }
                    v
                }
                None => kept_by_knowledge,
            };
            if keep {
                items.push(item);
            } else {
                let reason = if kept_by_knowledge { "llm: not supported by the record".into() } else { knowledge_reason(&item).unwrap_or_default() };
                removed.push(Removal { item, reason });
            }
        }
        AgentOutput { items, removed, notes }
    }
}

impl Agent for LlmAgent {
    fn info(&self) -> AgentInfo {
        AgentInfo {
            role: self.questions.role,
            backend: self.model.backend().to_owned(),
            model: self.model.id().to_owned(),
            version: format!("prompt v{}", self.prompt().version),
        }
    }

    fn run(&self, input: AgentInput<'_>) -> Result<AgentOutput, AgentError> {
        let draft = self.fallback.run(AgentInput { record: input.record, items: input.items.clone(), other_track: input.other_track })?;
        Ok(match self.questions.role {
            Role::StandardizeDiagnosis | Role::StandardizeProcedure => self.standardize(&input, draft),
            Role::MineProcedures => self.mine(&input, draft),
            Role::PrioritizeDiagnoses | Role::PrioritizeProcedures => self.prioritize(&input, draft),
            Role::ValidateDiagnoses | Role::ValidateProcedures => self.validate(&input, draft),
        })
    }
}
