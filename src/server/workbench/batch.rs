//! A batch upload: the file's records coded one after another off the request, each its own
//! case, while the page polls for the rows' states. Kept in memory (a batch is watched while it
//! runs; its cases are stored as they finish), for the client that started it only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::record::{EhrRecord, Section};

#[derive(Clone)]
pub enum RowState {
    Queued,
    Coding,
    Done { case: String },
    Failed(String),
}

#[derive(Clone)]
pub struct Row {
    pub record_id: String,
    pub state: RowState,
}

#[derive(Clone)]
pub struct Batch {
    pub id: String,
    pub name: String,
    /// The client that started it: nobody else sees it.
    pub client: String,
    pub rows: Vec<Row>,
}

/// Batches started since the server did, by id; finished ones past the newest few are dropped.
#[derive(Default)]
pub struct Batches(Mutex<HashMap<String, Arc<Mutex<Batch>>>>);

/// Finished batches kept for the page to show.
const KEPT: usize = 32;

impl Batches {
    pub fn start(&self, batch: Batch) -> Arc<Mutex<Batch>> {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if all.len() >= KEPT {
            let finished: Vec<String> = all
                .iter()
                .filter(|(_, b)| b.lock().map(|b| b.rows.iter().all(|r| matches!(r.state, RowState::Done { .. } | RowState::Failed(_)))).unwrap_or(true))
                .map(|(k, _)| k.clone())
                .collect();
            for k in finished.into_iter().take(all.len() + 1 - KEPT) {
                all.remove(&k);
            }
        }
        let shared = Arc::new(Mutex::new(batch));
        let id = shared.lock().unwrap_or_else(|e| e.into_inner()).id.clone();
        all.insert(id, shared.clone());
        shared
    }

    /// The batch, if it is this client's.
    pub fn get(&self, id: &str, client: &str) -> Option<Batch> {
        let all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let b = all.get(id)?.lock().unwrap_or_else(|e| e.into_inner()).clone();
        (b.client == client).then_some(b)
    }
}

/// A record to code: its sections as the case will keep them, or why it cannot be coded.
pub enum Item {
    Record(EhrRecord),
    Bad { record_id: String, why: String },
}

pub fn sections_of(r: &EhrRecord) -> Vec<(Section, String)> {
    r.sections.iter().map(|(s, t)| (*s, t.clone())).collect()
}
