//! Persisted FHIR resources: every version kept, one transaction per request, WAL journal with
//! full sync, so that what was acknowledged survives a crash. Knows nothing of agents.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("stored resource is not JSON: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0} is not known")]
    NotFound(String),
    #[error("version conflict: {0}")]
    Conflict(String),
}

/// One coder decision, as kept for training.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Feedback {
    pub resource_type: String,
    pub id: String,
    pub from_version: i64,
    pub to_version: i64,
    pub who: String,
    pub when: String,
    pub before: Value,
    pub after: Value,
}

pub struct Store {
    conn: Mutex<Connection>,
}

/// Search parameters we index, per resource type: (param name, JSON path to a reference or a
/// coding list).
fn index_rows(resource: &Value) -> Vec<(&'static str, String)> {
    let mut rows = Vec::new();
    let reference = |v: &Value| -> Option<String> {
        v["reference"].as_str().map(str::to_owned).or_else(|| {
            let id = &v["identifier"];
            id["value"].as_str().map(|val| format!("{}|{}", id["system"].as_str().unwrap_or(""), val))
        })
    };
    let ty = resource["resourceType"].as_str().unwrap_or("");
    match ty {
        "Condition" | "Procedure" => {
            if let Some(s) = reference(&resource["subject"]) {
                rows.push(("subject", s));
            }
            if let Some(e) = reference(&resource["encounter"]) {
                rows.push(("encounter", e));
            }
            for c in resource["code"]["coding"].as_array().into_iter().flatten() {
                if let Some(code) = c["code"].as_str() {
                    rows.push(("code", code.to_owned()));
                    rows.push(("code", format!("{}|{}", c["system"].as_str().unwrap_or(""), code)));
                }
            }
            if let Some(vs) = resource["verificationStatus"]["coding"][0]["code"].as_str() {
                rows.push(("verification-status", vs.to_owned()));
            }
        }
        "Claim" => {
            if let Some(p) = reference(&resource["patient"]) {
                rows.push(("patient", p));
            }
        }
        "AuditEvent" => {
            for a in resource["agent"].as_array().into_iter().flatten() {
                if let Some(v) = a["who"]["identifier"]["value"].as_str() {
                    rows.push(("agent", v.to_owned()));
                }
            }
            for e in resource["entity"].as_array().into_iter().flatten() {
                if let Some(r) = e["what"]["reference"].as_str() {
                    rows.push(("entity", r.to_owned()));
                }
            }
            if let Some(a) = resource["action"].as_str() {
                rows.push(("action", a.to_owned()));
            }
        }
        "Provenance" => {
            for t in resource["target"].as_array().into_iter().flatten() {
                if let Some(r) = reference(t) {
                    rows.push(("target", r));
                }
            }
        }
        _ => {}
    }
    rows
}

/// A stored body back to JSON; a body that does not parse means the file was damaged.
fn parse(body: &str) -> Result<Value, StoreError> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Invalid(format!("{}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=FULL;
             PRAGMA busy_timeout=5000;
             PRAGMA wal_autocheckpoint=8192;
             CREATE TABLE IF NOT EXISTS resource (
                 type TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
                 last_updated TEXT NOT NULL, body TEXT NOT NULL,
                 PRIMARY KEY (type, id, version));
             CREATE TABLE IF NOT EXISTS search_index (
                 type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL, value TEXT NOT NULL);
             CREATE INDEX IF NOT EXISTS search_by_value ON search_index (type, param, value);
             CREATE INDEX IF NOT EXISTS search_by_id ON search_index (type, id);
             CREATE TABLE IF NOT EXISTS conditional (key TEXT PRIMARY KEY, body TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS feedback (
                 type TEXT NOT NULL, id TEXT NOT NULL, from_version INTEGER NOT NULL, to_version INTEGER NOT NULL,
                 who TEXT NOT NULL, at TEXT NOT NULL, before TEXT NOT NULL, after TEXT NOT NULL);",
        )?;
        Ok(Store { conn: Mutex::new(conn) })
    }

    /// Stores new resources (each must carry `resourceType` and `id`) in one transaction, with
    /// `meta.versionId` 1 and `meta.lastUpdated`, and, when `conditional_key` is given, the
    /// response remembered under it. Returns the resources as stored.
    pub fn create_all(&self, resources: Vec<Value>, conditional: Option<(&str, &dyn Fn(&[Value]) -> Value)>) -> Result<(Vec<Value>, Option<Value>), StoreError> {
        let mut conn = self.conn.lock().expect("store lock");
        let tx = conn.transaction()?;
        let now = crate::ids::now_rfc3339();
        let mut stored = Vec::with_capacity(resources.len());
        for mut r in resources {
            let ty = r["resourceType"].as_str().ok_or_else(|| StoreError::Invalid("resource without resourceType".into()))?.to_owned();
            let id = r["id"].as_str().ok_or_else(|| StoreError::Invalid("resource without id".into()))?.to_owned();
            // Shared resources with derived ids (the agents' Devices) are stored once.
            if ty == "Device" {
                let existing: Option<String> = tx
                    .prepare_cached("SELECT body FROM resource WHERE type = ?1 AND id = ?2 ORDER BY version DESC LIMIT 1")?
                    .query_row(params![ty, id], |row| row.get(0))
                    .optional()?;
                if let Some(body) = existing {
                    stored.push(parse(&body)?);
                    continue;
                }
            }
            let meta = r.get("meta").cloned().unwrap_or_else(|| json!({}));
            let mut meta = meta;
            meta["versionId"] = json!("1");
            meta["lastUpdated"] = json!(now);
            r["meta"] = meta;
            tx.prepare_cached("INSERT INTO resource (type, id, version, last_updated, body) VALUES (?1, ?2, 1, ?3, ?4)")?
                .execute(params![ty, id, now, r.to_string()])?;
            let mut index = tx.prepare_cached("INSERT INTO search_index (type, id, param, value) VALUES (?1, ?2, ?3, ?4)")?;
            for (param, value) in index_rows(&r) {
                index.execute(params![ty, id, param, value])?;
            }
            drop(index);
            stored.push(r);
        }
        let mut response = None;
        if let Some((key, build)) = conditional {
            let body = build(&stored);
            tx.execute("INSERT INTO conditional (key, body) VALUES (?1, ?2)", params![key, body.to_string()])?;
            response = Some(body);
        }
        // (Without a conditional key the caller builds its answer from `stored`.)
        tx.commit()?;
        Ok((stored, response))
    }

    /// A new version of a stored resource (a coder's review), in one transaction with its
    /// feedback row. `if_match` is the version the client last saw; a different current
    /// version is a conflict.
    pub fn update(&self, ty: &str, id: &str, mut resource: Value, if_match: Option<i64>, who: &str, summary: fn(&Value) -> Value) -> Result<Value, StoreError> {
        let mut conn = self.conn.lock().expect("store lock");
        let tx = conn.transaction()?;
        let current: Option<(i64, String)> = tx
            .query_row("SELECT version, body FROM resource WHERE type = ?1 AND id = ?2 ORDER BY version DESC LIMIT 1", params![ty, id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((version, body)) = current else { return Err(StoreError::NotFound(format!("{ty}/{id}"))) };
        if let Some(expected) = if_match {
            if expected != version {
                return Err(StoreError::Conflict(format!("{ty}/{id} is at version {version}, not {expected}")));
            }
        }
        let before = parse(&body)?;
        let now = crate::ids::now_rfc3339();
        let next = version + 1;
        let mut meta = before["meta"].clone();
        meta["versionId"] = json!(next.to_string());
        meta["lastUpdated"] = json!(now);
        resource["meta"] = meta;
        resource["id"] = json!(id);
        tx.execute("INSERT INTO resource (type, id, version, last_updated, body) VALUES (?1, ?2, ?3, ?4, ?5)", params![ty, id, next, now, resource.to_string()])?;
        tx.execute("DELETE FROM search_index WHERE type = ?1 AND id = ?2", params![ty, id])?;
        for (param, value) in index_rows(&resource) {
            tx.execute("INSERT INTO search_index (type, id, param, value) VALUES (?1, ?2, ?3, ?4)", params![ty, id, param, value])?;
        }
        tx.execute(
            "INSERT INTO feedback (type, id, from_version, to_version, who, at, before, after) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![ty, id, version, next, who, now, summary(&before).to_string(), summary(&resource).to_string()],
        )?;
        tx.commit()?;
        Ok(resource)
    }

    /// Every coder decision, oldest first.
    pub fn feedback(&self) -> Result<Vec<Feedback>, StoreError> {
        let conn = self.conn.lock().expect("store lock");
        let mut stmt = conn.prepare("SELECT type, id, from_version, to_version, who, at, before, after FROM feedback ORDER BY rowid")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?, r.get::<_, String>(4)?, r.get::<_, String>(5)?, r.get::<_, String>(6)?, r.get::<_, String>(7)?))
        })?;
        rows.map(|row| {
            let (resource_type, id, from_version, to_version, who, when, before, after) = row?;
            Ok(Feedback {
                resource_type,
                id,
                from_version,
                to_version,
                who,
                when,
                before: parse(&before)?,
                after: parse(&after)?,
            })
        })
        .collect()
    }

    /// The response remembered for a conditional create key, if the same request came before.
    pub fn conditional(&self, key: &str) -> Result<Option<Value>, StoreError> {
        let conn = self.conn.lock().expect("store lock");
        let body: Option<String> = conn.query_row("SELECT body FROM conditional WHERE key = ?1", params![key], |r| r.get(0)).optional()?;
        body.map(|b| parse(&b)).transpose()
    }

    /// The current version of a resource.
    pub fn read(&self, ty: &str, id: &str) -> Result<Option<Value>, StoreError> {
        let conn = self.conn.lock().expect("store lock");
        let body: Option<String> = conn
            .query_row("SELECT body FROM resource WHERE type = ?1 AND id = ?2 ORDER BY version DESC LIMIT 1", params![ty, id], |r| r.get(0))
            .optional()?;
        body.map(|b| parse(&b)).transpose()
    }

    pub fn vread(&self, ty: &str, id: &str, version: i64) -> Result<Option<Value>, StoreError> {
        let conn = self.conn.lock().expect("store lock");
        let body: Option<String> = conn
            .query_row("SELECT body FROM resource WHERE type = ?1 AND id = ?2 AND version = ?3", params![ty, id, version], |r| r.get(0))
            .optional()?;
        body.map(|b| parse(&b)).transpose()
    }

    /// Every version, newest first.
    pub fn history(&self, ty: &str, id: &str) -> Result<Vec<Value>, StoreError> {
        let conn = self.conn.lock().expect("store lock");
        let mut stmt = conn.prepare("SELECT body FROM resource WHERE type = ?1 AND id = ?2 ORDER BY version DESC")?;
        let rows = stmt.query_map(params![ty, id], |r| r.get::<_, String>(0))?;
        rows.map(|b| parse(&b?)).collect()
    }

    /// Current resources of a type matching every `(param, value)` (AND), `_lastUpdated`
    /// prefixes `ge`/`gt`/`le`/`lt` on the stored instant; ordered by last update, paged.
    pub fn search(&self, ty: &str, filters: &[(String, String)], count: usize, offset: usize) -> Result<(Vec<Value>, usize), StoreError> {
        let mut sql = String::from(
            "SELECT r.body FROM resource r WHERE r.type = ?1 AND r.version = (SELECT MAX(version) FROM resource x WHERE x.type = r.type AND x.id = r.id)",
        );
        let mut args: Vec<String> = vec![ty.to_owned()];
        for (param, value) in filters {
            if param == "_lastUpdated" {
                let (op, v) = match value.get(..2) {
                    Some("ge") => (">=", &value[2..]),
                    Some("gt") => (">", &value[2..]),
                    Some("le") => ("<=", &value[2..]),
                    Some("lt") => ("<", &value[2..]),
                    _ => (">=", value.as_str()),
                };
                args.push(v.to_owned());
                sql.push_str(&format!(" AND r.last_updated {op} ?{}", args.len()));
            } else {
                args.push(param.clone());
                args.push(value.clone());
                sql.push_str(&format!(
                    " AND EXISTS (SELECT 1 FROM search_index s WHERE s.type = r.type AND s.id = r.id AND s.param = ?{} AND s.value = ?{})",
                    args.len() - 1,
                    args.len()
                ));
            }
        }
        sql.push_str(" ORDER BY r.last_updated, r.id");
        let conn = self.conn.lock().expect("store lock");
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), |r| r.get::<_, String>(0))?;
        let all: Vec<String> = rows.collect::<Result<_, _>>()?;
        let total = all.len();
        let page = all
            .into_iter()
            .skip(offset)
            .take(count)
            .map(|b| parse(&b))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((page, total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_read_search_and_conditional() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.sqlite")).unwrap();
        let cond = json!({ "resourceType": "Condition", "id": "c1", "subject": { "reference": "Patient/p1" },
            "code": { "coding": [{ "system": "s", "code": "I25.103" }] },
            "verificationStatus": { "coding": [{ "code": "provisional" }] } });
        let claim = json!({ "resourceType": "Claim", "id": "k1", "patient": { "reference": "Patient/p1" } });
        let build = |stored: &[Value]| json!({ "n": stored.len() });
        let (stored, resp) = store.create_all(vec![cond, claim], Some(("doc-1", &build))).unwrap();
        assert_eq!(stored[0]["meta"]["versionId"], "1");
        assert_eq!(resp.unwrap()["n"], 2);
        assert_eq!(store.conditional("doc-1").unwrap().unwrap()["n"], 2);
        assert!(store.conditional("doc-2").unwrap().is_none());
        assert_eq!(store.read("Condition", "c1").unwrap().unwrap()["id"], "c1");
        assert!(store.read("Condition", "nope").unwrap().is_none());
        let (hits, total) = store.search("Condition", &[("subject".into(), "Patient/p1".into()), ("code".into(), "I25.103".into())], 10, 0).unwrap();
        assert_eq!((hits.len(), total), (1, 1));
        let (hits, _) = store.search("Condition", &[("code".into(), "I10".into())], 10, 0).unwrap();
        assert!(hits.is_empty());
        let (hits, _) = store.search("Claim", &[("patient".into(), "Patient/p1".into()), ("_lastUpdated".into(), "ge2000-01-01".into())], 10, 0).unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(store.history("Condition", "c1").unwrap().len(), 1);
    }
}
