//! The SQLite engine: WAL journal, group commit with the fsync outside the write lock
//! ([`super::wal_sync`]), a background writer for records nobody waits on, and checkpoints off
//! the request path.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

use super::wal_sync::WalSync;
use super::{index_rows, parse, Conditional, Created, Feedback, Row, StoreError};

pub struct SqliteStore {
    shared: std::sync::Arc<Shared>,
    /// Reads use their own connection: in WAL mode they see every committed transaction and
    /// never wait for a commit in progress.
    reader: Mutex<Connection>,
    /// Dropped to stop the background writer (which then flushes what is queued).
    stop: Option<std::sync::mpsc::Sender<()>>,
    background: Option<std::thread::JoinHandle<()>>,
}

/// What the request threads and the background writer share.
struct Shared {
    conn: Mutex<Writer>,
    /// Create requests waiting for the next commit.
    queue: Mutex<Vec<Job>>,
    wal: WalSync,
}

/// The write connection, and the shared resources (the agents' Devices, whose ids derive from
/// what they describe) known to be committed: each `$code` answer carries its Devices, and
/// they would otherwise be read back and parsed on every request.
struct Writer {
    conn: Connection,
    committed_shared: std::collections::HashMap<(String, String), (Value, String)>,
}

impl Shared {
    /// Commits everything queued, if the lock is free or once it is, and answers each request
    /// once the commit is on disk.
    fn flush(&self) {
        let (answers, commit) = {
            let mut writer = self.conn.lock().expect("store lock");
            let jobs = std::mem::take(&mut *self.queue.lock().expect("store queue"));
            // Empty when an earlier holder of the lock took the queue with its own batch.
            if jobs.is_empty() {
                return;
            }
            run_batch(&mut writer, &self.wal, jobs)
        };
        // The next batch runs its inserts while this one's flush is on its way to the disk.
        let durable = self.wal.make_durable(commit);
        for (reply, outcome) in answers {
            let outcome = match &durable {
                Ok(()) => outcome,
                Err(e) => Err(not_durable(e)),
            };
            if let Err(e) = &outcome {
                tracing::warn!(error = %e, "a queued create failed");
            }
            let _ = reply.send(outcome);
        }
    }
}

/// How often the background writer commits records queued without a waiter (audit events),
/// and how often it checkpoints the WAL into the database file.
const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(20);
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

/// The background writer: commits queued fire-and-forget records, and checkpoints the WAL on
/// its own connection, which keeps checkpoints off the request path.
fn background(shared: std::sync::Arc<Shared>, checkpointer: Connection, stop: std::sync::mpsc::Receiver<()>) {
    let mut last_checkpoint = std::time::Instant::now();
    loop {
        let stopping = !matches!(stop.recv_timeout(FLUSH_EVERY), Err(std::sync::mpsc::RecvTimeoutError::Timeout));
        if !shared.queue.lock().expect("store queue").is_empty() {
            shared.flush();
        }
        if stopping || last_checkpoint.elapsed() >= CHECKPOINT_EVERY {
            checkpoint(&shared, &checkpointer);
            last_checkpoint = std::time::Instant::now();
        }
        if stopping {
            return;
        }
    }
}

/// Copies the WAL into the database, and keeps the WAL from growing without bound.
///
/// SQLite starts the WAL over from its beginning only when a commit begins with all of it
/// copied. Under steady load a passive checkpoint never gets there: commits keep appending
/// while it copies. The WAL grew without bound (2.2 GB in 30 s of `$code` load), each commit
/// extended the file, and its flush had to commit file-system metadata too. So once the WAL
/// holds [`WAL_FRAMES_BEFORE_RESTART`] frames, the little written during the passive copy is
/// copied again with commits held off (the write lock), which leaves nothing uncopied.
/// That second pass holds commits for about 15 ms here (mostly the database's fsync), hence
/// not on every round.
fn checkpoint(shared: &Shared, checkpointer: &Connection) {
    let passive = || checkpointer.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1));
    let copied = passive().and_then(|frames| {
        if frames < WAL_FRAMES_BEFORE_RESTART {
            return Ok(frames);
        }
        let _no_commits = shared.conn.lock().expect("store lock");
        passive()
    });
    if let Err(e) = copied {
        tracing::warn!(error = %e, "WAL checkpoint failed");
    }
}

/// 16 MiB of 4 KiB pages: under full `$code` load, about every half second.
const WAL_FRAMES_BEFORE_RESTART: i64 = 4096;

/// Where a commit copies the WAL itself: the background checkpointer runs every 50 ms, and a
/// burst of large writes on every core (the release build's writers filled 32 MiB between two
/// of its rounds) can outrun it. Called after each commit on the writer connection, while the
/// store's write lock is still held, so the copy leaves nothing uncopied and the next commit
/// starts the WAL over. Checkpoints stay off the request path otherwise.
const WAL_FRAMES_BACKSTOP: i64 = WAL_FRAMES_BEFORE_RESTART * 3 / 2;

/// SQLite's WAL hook (`sqlite3_wal_hook`): `frames` is the WAL's length after the commit.
/// The commit has happened whatever this returns, so a failed copy is logged, never returned
/// (an error would reach the caller as a failed write).
fn wal_backstop(wal: &rusqlite::hooks::Wal, frames: std::ffi::c_int) -> rusqlite::Result<()> {
    if i64::from(frames) >= WAL_FRAMES_BACKSTOP {
        if let Err(e) = wal.checkpoint_v2(rusqlite::hooks::CheckpointMode::PASSIVE) {
            tracing::warn!(error = %e, "WAL checkpoint on commit failed");
        }
    }
    Ok(())
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(h) = self.background.take() {
            let _ = h.join();
        }
    }
}

struct Job {
    rows: Vec<Row>,
    /// Each row's body as stored ([`pack`]), compressed before the write lock is taken.
    packed: Vec<Vec<u8>>,
    conditional: Option<Conditional>,
    reply: std::sync::mpsc::Sender<Result<Created, StoreError>>,
}

type Reply = std::sync::mpsc::Sender<Result<Created, StoreError>>;

/// The error a request gets when its commit could not be flushed to disk.
fn not_durable(e: &std::io::Error) -> StoreError {
    tracing::error!(error = %e, "WAL flush failed");
    StoreError::Invalid(format!("the commit could not be flushed to disk: {e}"))
}

/// Runs queued create requests in one transaction, one savepoint each. Returns each request's
/// outcome, to be sent once the commit (the number returned) is durable.
fn run_batch(writer: &mut Writer, wal: &WalSync, jobs: Vec<Job>) -> (Vec<(Reply, Result<Created, StoreError>)>, u64) {
    let mut done: Vec<(Reply, Result<Created, StoreError>)> = Vec::with_capacity(jobs.len());
    let mut pending: Vec<Reply> = jobs.iter().map(|j| j.reply.clone()).collect();
    let mut commit_number = 0;
    let Writer { conn, committed_shared } = writer;
    // Shared resources this batch stored or found: known committed once the batch is.
    let mut shared_seen: Vec<((String, String), (Value, String))> = Vec::new();
    let committed = (|| -> Result<(), StoreError> {
        let mut tx = conn.transaction()?;
        for job in jobs {
            let mut sp = tx.savepoint()?;
            let mut seen = Vec::new();
            let outcome = insert_job(&sp, job.rows, job.packed, job.conditional, committed_shared, &mut seen);
            if outcome.is_ok() {
                sp.commit()?;
                shared_seen.append(&mut seen);
            } else {
                sp.rollback()?;
            }
            done.push((job.reply, outcome));
        }
        let (committed, n) = wal.commit(|| tx.commit());
        commit_number = n;
        Ok(committed?)
    })();
    if committed.is_ok() {
        committed_shared.extend(shared_seen);
    }
    match committed {
        Ok(()) => (done, commit_number),
        Err(e) => {
            // Nothing of the batch is stored: every request in it is told so.
            let message = e.to_string();
            tracing::error!(error = %message, "store commit failed");
            let failed = pending.drain(..).map(|reply| (reply, Err(StoreError::Invalid(format!("commit failed: {message}"))))).collect();
            (failed, commit_number)
        }
    }
}

/// One create request inside the batch's transaction.
fn insert_job(
    tx: &rusqlite::Connection,
    rows: Vec<Row>,
    packed: Vec<Vec<u8>>,
    conditional: Option<Conditional>,
    committed_shared: &std::collections::HashMap<(String, String), (Value, String)>,
    seen: &mut Vec<((String, String), (Value, String))>,
) -> Result<Created, StoreError> {
    if let Some(c) = &conditional {
        let known: Option<(String, Result<String, StoreError>)> =
            tx.prepare_cached("SELECT digest, body FROM conditional WHERE key = ?1")?.query_row(params![c.key], |r| Ok((r.get(0)?, unpack(r.get_ref(1)?)))).optional()?;
        if let Some((digest, body)) = known {
            return Ok(Created::Existing(super::remembered(&digest, &c.digest, &body?)?));
        }
    }
    let mut stored = Vec::with_capacity(rows.len());
    let mut bodies = Vec::with_capacity(rows.len());
    for (row, packed) in rows.into_iter().zip(packed) {
        // Shared resources with derived ids (the agents' Devices) are stored once.
        if row.ty == "Device" {
            let key = (row.ty.clone(), row.id.clone());
            if let Some((resource, body)) = committed_shared.get(&key) {
                stored.push(resource.clone());
                bodies.push(body.clone());
                continue;
            }
            let existing: Option<String> = tx
                .prepare_cached("SELECT body FROM resource WHERE type = ?1 AND id = ?2 ORDER BY version DESC LIMIT 1")?
                .query_row(params![row.ty, row.id], |r| Ok(unpack(r.get_ref(0)?)))
                .optional()?
                .transpose()?;
            if let Some(body) = existing {
                let resource = parse(&body)?;
                seen.push((key, (resource.clone(), body.clone())));
                stored.push(resource);
                bodies.push(body);
                continue;
            }
            seen.push((key, (row.resource.clone(), row.body.clone())));
        }
        let now = row.resource["meta"]["lastUpdated"].as_str().unwrap_or_default();
        tx.prepare_cached("INSERT INTO resource (type, id, version, last_updated, body) VALUES (?1, ?2, 1, ?3, ?4)")?
            .execute(params![row.ty, row.id, now, packed])?;
        let mut index = tx.prepare_cached("INSERT OR IGNORE INTO search_param (type, param, value, id) VALUES (?1, ?2, ?3, ?4)")?;
        for (param, value) in &row.index {
            index.execute(params![row.ty, param, value, row.id])?;
        }
        stored.push(row.resource);
        bodies.push(row.body);
    }
    let response = match conditional {
        Some(c) => {
            let body = (c.build)(&stored);
            tx.prepare_cached("INSERT INTO conditional (key, digest, body) VALUES (?1, ?2, ?3)")?.execute(params![c.key, c.digest, pack(&body.to_string())])?;
            Some(body)
        }
        None => None,
    };
    Ok(Created::New { stored, bodies, response })
}

/// A body as stored: an LZ4 block with its length in front. Resource JSON shrinks to about a
/// third, and every byte saved is written twice (the WAL commit and its checkpoint).
fn pack(body: &str) -> Vec<u8> {
    lz4_flex::compress_prepend_size(body.as_bytes())
}

/// A stored body as JSON text: an LZ4 blob, or plain text as stores before compression wrote
/// it (both are read, so that no store needs rewriting).
fn unpack(stored: ValueRef<'_>) -> Result<String, StoreError> {
    match stored {
        ValueRef::Text(text) => String::from_utf8(text.to_vec()).map_err(|e| StoreError::Corrupt(e.to_string())),
        ValueRef::Blob(block) => {
            let bytes = lz4_flex::decompress_size_prepended(block).map_err(|e| StoreError::Corrupt(format!("body does not decompress: {e}")))?;
            String::from_utf8(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
        }
        _ => Err(StoreError::Corrupt("body is neither text nor a blob".into())),
    }
}

/// A stored body straight to JSON.
fn parse_stored(stored: ValueRef<'_>) -> Result<Value, StoreError> {
    parse(&unpack(stored)?)
}

/// The schema this code writes; older stores are brought up to it on open, once.
const SCHEMA_VERSION: i64 = 4;

/// Brings a store written by an older version up to [`SCHEMA_VERSION`], in one transaction.
/// - Search rows in `search_index` (a table and two indexes) move to the clustered
///   `search_param`.
/// - Codings had two rows (`X` and `S|X`); they keep one, `X|S` ([`super::token_key`]).
/// - Version 3: each row says whether it is its resource's current version (`current`, with
///   an index in search order over the current rows, so that a search pages in the database);
///   a conditional answer keeps the digest of the request it answers.
/// - Version 4 and later: the types of [`super::REINDEXED`] have their current versions'
///   search rows written again.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version >= SCHEMA_VERSION {
        return Ok(());
    }
    let tx = conn.transaction()?;
    let old_table: bool = tx.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'search_index'", [], |r| r.get::<_, i64>(0))? > 0;
    if old_table {
        tx.execute_batch(
            "INSERT OR IGNORE INTO search_param (type, param, value, id) SELECT type, param, value, id FROM search_index;
             DROP TABLE search_index;",
        )?;
    }
    if version < 2 {
        // Every coding had its `S|X` row (S empty without a system); the bare `X` rows go.
        tx.execute_batch(
            "CREATE TEMP TABLE old_code AS SELECT type, value, id FROM search_param WHERE param = 'code';
             DELETE FROM search_param WHERE param = 'code';
             INSERT OR IGNORE INTO search_param (type, param, value, id)
                 SELECT type, 'code', substr(value, instr(value, '|') + 1) || '|' || substr(value, 1, instr(value, '|') - 1), id
                 FROM old_code WHERE instr(value, '|') > 0;
             DROP TABLE old_code;",
        )?;
    }
    if version < 3 {
        let has = |table: &str, column: &str| -> Result<bool, StoreError> {
            Ok(tx.query_row(&format!("SELECT count(*) FROM pragma_table_info('{table}') WHERE name = ?1"), params![column], |r| r.get::<_, i64>(0))? > 0)
        };
        if !has("resource", "current")? {
            tx.execute_batch(
                "ALTER TABLE resource ADD COLUMN current INTEGER NOT NULL DEFAULT 1;
                 UPDATE resource SET current = 0 WHERE version < (SELECT MAX(version) FROM resource x WHERE x.type = resource.type AND x.id = resource.id);",
            )?;
        }
        if !has("conditional", "digest")? {
            tx.execute_batch("ALTER TABLE conditional ADD COLUMN digest TEXT NOT NULL DEFAULT '';")?;
        }
        tx.execute_batch("CREATE INDEX IF NOT EXISTS resource_current ON resource (type, last_updated, id) WHERE current = 1;")?;
    }
    for (_, ty) in super::REINDEXED.iter().filter(|(v, _)| version < *v) {
        let rows: Vec<(String, Value)> = {
            let mut current = tx.prepare("SELECT id, body FROM resource WHERE type = ?1 AND current = 1")?;
            let found = current.query_map(params![ty], |r| Ok((r.get::<_, String>(0)?, parse_stored(r.get_ref(1)?))))?;
            found.map(|f| f.map_err(StoreError::from).and_then(|(id, body)| Ok((id, body?)))).collect::<Result<_, _>>()?
        };
        let mut index = tx.prepare("INSERT OR IGNORE INTO search_param (type, param, value, id) VALUES (?1, ?2, ?3, ?4)")?;
        for (id, body) in rows {
            for (param, value) in index_rows(&body) {
                index.execute(params![ty, param, value, id])?;
            }
        }
    }
    tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION};"))?;
    tx.commit()?;
    Ok(())
}

impl SqliteStore {
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Invalid(format!("{}: {e}", dir.display())))?;
        }
        let mut conn = Connection::open(path)?;
        // Checkpoints run on the background connection, not inside request commits; the
        // per-request savepoints' sub-journals stay in memory rather than in a temporary file.
        // 4 KiB pages (for new stores; an existing one keeps its size): a commit writes a third
        // of the WAL frames 1 KiB pages need, each one write call, and the tail of `$code`
        // latency under load was shorter (p99 70-88 ms against 91-120 ms). A WAL that grew
        // (a long read kept it from starting over) is cut back to 64 MiB when it does.
        conn.execute_batch(
            "PRAGMA page_size=4096;
             PRAGMA journal_mode=WAL;
             PRAGMA synchronous=FULL;
             PRAGMA busy_timeout=5000;
             PRAGMA wal_autocheckpoint=0;
             PRAGMA journal_size_limit=67108864;
             PRAGMA temp_store=MEMORY;
             CREATE TABLE IF NOT EXISTS resource (
                 type TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
                 last_updated TEXT NOT NULL, body TEXT NOT NULL,
                 PRIMARY KEY (type, id, version));
             CREATE TABLE IF NOT EXISTS search_param (
                 type TEXT NOT NULL, param TEXT NOT NULL, value TEXT NOT NULL, id TEXT NOT NULL,
                 PRIMARY KEY (type, param, value, id)) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS conditional (key TEXT PRIMARY KEY, body TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS feedback (
                 type TEXT NOT NULL, id TEXT NOT NULL, from_version INTEGER NOT NULL, to_version INTEGER NOT NULL,
                 who TEXT NOT NULL, at TEXT NOT NULL, before TEXT NOT NULL, after TEXT NOT NULL);",
        )?;
        migrate(&mut conn)?;
        // From here on commits write their frames and [`WalSync`] flushes them outside the lock;
        // the migration above committed with a full sync.
        conn.execute_batch("PRAGMA synchronous=NORMAL;")?;
        // After the `wal_autocheckpoint` pragma, which would replace it.
        conn.wal_hook(Some(wal_backstop));
        let open_more = || -> Result<Connection, StoreError> {
            let c = Connection::open(path)?;
            c.execute_batch("PRAGMA busy_timeout=5000;")?;
            Ok(c)
        };
        let reader = open_more()?;
        let checkpointer = open_more()?;
        // The database file as SQLite resolved it (symbolic links followed): its WAL is beside it.
        let wal = WalSync::new(conn.path().filter(|p| !p.is_empty()).map(Path::new).unwrap_or(path));
        let shared = std::sync::Arc::new(Shared { conn: Mutex::new(Writer { conn, committed_shared: Default::default() }), queue: Mutex::new(Vec::new()), wal });
        let (stop, stopped) = std::sync::mpsc::channel();
        let worker = shared.clone();
        let background = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || background(worker, checkpointer, stopped))
            .map_err(|e| StoreError::Invalid(format!("cannot start the store writer: {e}")))?;
        Ok(SqliteStore { shared, reader: Mutex::new(reader), stop: Some(stop), background: Some(background) })
    }

    /// Stores new resources (each must carry `resourceType` and `id`) atomically, with
    /// `meta.versionId` 1 and `meta.lastUpdated`. With a conditional key, the response `build`
    /// makes from the stored resources is remembered under it; when the key is already known
    /// nothing is stored and the remembered response comes back instead (`Created::Existing`),
    /// so that two identical requests racing each other still store one set.
    ///
    /// Durable on return. Concurrent callers share commits (group commit): each waits for the
    /// fsync of the transaction that carries its work, but one fsync serves every request
    /// queued meanwhile, and each request runs in its own savepoint so that one failure does
    /// not undo the others.
    pub fn create_all(&self, resources: Vec<Value>, conditional: Option<Conditional>) -> Result<Created, StoreError> {
        let answer = self.enqueue(resources, conditional)?;
        self.shared.flush();
        // Our job was queued before we took the lock, so whoever ran it answered already.
        answer.recv().unwrap_or_else(|_| Err(StoreError::Invalid("the store writer stopped".into())))
    }

    /// Queues resources for the next commit without waiting for it: for records of the
    /// server's own activity (AuditEvents), where the request must not pay a second commit.
    /// They are durable within [`FLUSH_EVERY`] or with the next request's commit, whichever
    /// comes first, and on shutdown; a crash can lose that last moment of them.
    pub fn create_later(&self, resources: Vec<Value>) -> Result<(), StoreError> {
        // Nobody waits on the answer; failures are logged by the batch.
        self.enqueue(resources, None).map(drop)
    }

    /// Stamps and queues resources for the next commit; the receiver gets the outcome.
    fn enqueue(&self, resources: Vec<Value>, conditional: Option<Conditional>) -> Result<std::sync::mpsc::Receiver<Result<Created, StoreError>>, StoreError> {
        let now = crate::ids::now_rfc3339();
        let rows = resources.into_iter().map(|r| Row::stamp(r, &now)).collect::<Result<Vec<_>, _>>()?;
        let packed = rows.iter().map(|r| pack(&r.body)).collect();
        let (reply, answer) = std::sync::mpsc::channel();
        self.shared.queue.lock().expect("store queue").push(Job { rows, packed, conditional, reply });
        Ok(answer)
    }

    /// Runs a read on the reader connection. Queued records are committed first, so that a
    /// read sees everything answered before it (an audit trail read right after the access it
    /// records); the answer waits until every commit the read may have seen is on disk.
    fn reading<T>(&self, read: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        if !self.shared.queue.lock().expect("store queue").is_empty() {
            self.shared.flush();
        }
        let answer = read(&self.reader.lock().expect("store lock"))?;
        self.shared.wal.make_durable(self.shared.wal.seen()).map_err(|e| not_durable(&e))?;
        Ok(answer)
    }

    /// A new version of a stored resource (a coder's review), in one transaction with its
    /// feedback row. `if_match` is the version the client last saw; a different current
    /// version is a conflict.
    pub fn update(&self, ty: &str, id: &str, mut resource: Value, if_match: Option<i64>, who: &str, summary: fn(&Value) -> Value) -> Result<Value, StoreError> {
        let mut writer = self.shared.conn.lock().expect("store lock");
        // A changed shared resource is read from the table again.
        writer.committed_shared.remove(&(ty.to_owned(), id.to_owned()));
        let tx = writer.conn.transaction()?;
        let current: Option<(i64, Result<Value, StoreError>)> = tx
            .query_row("SELECT version, body FROM resource WHERE type = ?1 AND id = ?2 ORDER BY version DESC LIMIT 1", params![ty, id], |r| Ok((r.get(0)?, parse_stored(r.get_ref(1)?))))
            .optional()?;
        let Some((version, before)) = current else { return Err(StoreError::NotFound(format!("{ty}/{id}"))) };
        let before = before?;
        let (next, now) = super::next_version(ty, id, version, if_match, &before, &mut resource)?;
        tx.execute("UPDATE resource SET current = 0 WHERE type = ?1 AND id = ?2 AND version = ?3", params![ty, id, version])?;
        tx.execute("INSERT INTO resource (type, id, version, last_updated, body) VALUES (?1, ?2, ?3, ?4, ?5)", params![ty, id, next, now, pack(&resource.to_string())])?;
        // The previous version's rows, found by key (the table is clustered by value).
        for (param, value) in index_rows(&before) {
            tx.execute("DELETE FROM search_param WHERE type = ?1 AND param = ?2 AND value = ?3 AND id = ?4", params![ty, param, value, id])?;
        }
        for (param, value) in index_rows(&resource) {
            tx.execute("INSERT OR IGNORE INTO search_param (type, param, value, id) VALUES (?1, ?2, ?3, ?4)", params![ty, param, value, id])?;
        }
        tx.execute(
            "INSERT INTO feedback (type, id, from_version, to_version, who, at, before, after) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![ty, id, version, next, who, now, summary(&before).to_string(), summary(&resource).to_string()],
        )?;
        let (committed, n) = self.shared.wal.commit(|| tx.commit());
        committed?;
        drop(writer);
        self.shared.wal.make_durable(n).map_err(|e| not_durable(&e))?;
        Ok(resource)
    }

    /// Every coder decision, oldest first.
    pub fn feedback(&self) -> Result<Vec<Feedback>, StoreError> {
        self.reading(|conn| {
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
        })
    }

    /// The response remembered for a conditional create key, if the same request came before.
    pub fn conditional(&self, key: &str, digest: &str) -> Result<Option<Value>, StoreError> {
        self.reading(|conn| {
            let known: Option<(String, Result<String, StoreError>)> =
                conn.query_row("SELECT digest, body FROM conditional WHERE key = ?1", params![key], |r| Ok((r.get(0)?, unpack(r.get_ref(1)?)))).optional()?;
            known.map(|(stored, body)| super::remembered(&stored, digest, &body?)).transpose()
        })
    }

    /// The current version of a resource.
    pub fn read(&self, ty: &str, id: &str) -> Result<Option<Value>, StoreError> {
        self.reading(|conn| {
            conn.query_row("SELECT body FROM resource WHERE type = ?1 AND id = ?2 ORDER BY version DESC LIMIT 1", params![ty, id], |r| Ok(parse_stored(r.get_ref(0)?)))
                .optional()?
                .transpose()
        })
    }

    pub fn vread(&self, ty: &str, id: &str, version: i64) -> Result<Option<Value>, StoreError> {
        self.reading(|conn| {
            conn.query_row("SELECT body FROM resource WHERE type = ?1 AND id = ?2 AND version = ?3", params![ty, id, version], |r| Ok(parse_stored(r.get_ref(0)?)))
                .optional()?
                .transpose()
        })
    }

    /// Every version, newest first.
    pub fn history(&self, ty: &str, id: &str) -> Result<Vec<Value>, StoreError> {
        self.reading(|conn| {
            let mut stmt = conn.prepare("SELECT body FROM resource WHERE type = ?1 AND id = ?2 ORDER BY version DESC")?;
            let rows = stmt.query_map(params![ty, id], |r| Ok(parse_stored(r.get_ref(0)?)))?;
            rows.map(|b| b?).collect()
        })
    }

    pub fn search(&self, ty: &str, filters: &[(String, String)], count: usize, offset: usize, newest_first: bool) -> Result<(Vec<Value>, usize), StoreError> {
        let sql = super::search_sql(ty, filters, count, offset, newest_first, |n| format!("?{n}"));
        self.reading(|conn| {
            let total: i64 = conn.prepare_cached(&sql.count)?.query_row(rusqlite::params_from_iter(sql.args.iter()), |r| r.get(0))?;
            let mut stmt = conn.prepare_cached(&sql.page)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(sql.args.iter()), |r| Ok(parse_stored(r.get_ref(0)?)))?;
            let page = rows.map(|b| b?).collect::<Result<Vec<_>, _>>()?;
            Ok((page, total as usize))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use serde_json::json;

    #[test]
    fn create_read_search_and_conditional() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.sqlite")).unwrap();
        let cond = json!({ "resourceType": "Condition", "id": "c1", "subject": { "reference": "Patient/p1" },
            "code": { "coding": [{ "system": "s", "code": "I25.103" }] },
            "verificationStatus": { "coding": [{ "code": "provisional" }] } });
        let claim = json!({ "resourceType": "Claim", "id": "k1", "patient": { "reference": "Patient/p1" } });
        let build = || Conditional { key: "doc-1".into(), digest: "d1".into(), build: Box::new(|stored: &[Value]| json!({ "n": stored.len() })) };
        let Created::New { stored, response, .. } = store.create_all(vec![cond.clone(), claim], Some(build())).unwrap() else { panic!("first create") };
        assert_eq!(stored[0]["meta"]["versionId"], "1");
        assert_eq!(response.unwrap()["n"], 2);
        // The same key again: the first answer, nothing stored twice.
        let mut again = cond;
        again["id"] = json!("c2");
        let Created::Existing(first) = store.create_all(vec![again], Some(build())).unwrap() else { panic!("second create") };
        assert_eq!(first["n"], 2);
        assert!(store.read("Condition", "c2").unwrap().is_none());
        assert_eq!(store.conditional("doc-1", "d1").unwrap().unwrap()["n"], 2);
        assert!(store.conditional("doc-2", "d1").unwrap().is_none());
        // The same key from a request with other content is refused, not answered.
        assert!(matches!(store.conditional("doc-1", "d2"), Err(StoreError::ConditionalMismatch)));
        let other = Conditional { key: "doc-1".into(), digest: "d2".into(), build: Box::new(|_: &[Value]| json!({})) };
        let mut third = json!({ "resourceType": "Claim", "id": "k9" });
        assert!(matches!(store.create_all(vec![third.take()], Some(other)), Err(StoreError::ConditionalMismatch)));
        assert!(store.read("Claim", "k9").unwrap().is_none(), "nothing of the refused request is stored");
        assert_eq!(store.read("Condition", "c1").unwrap().unwrap()["id"], "c1");
        assert!(store.read("Condition", "nope").unwrap().is_none());
        let (hits, total) = store.search("Condition", &[("subject".into(), "Patient/p1".into()), ("code".into(), "I25.103".into())], 10, 0).unwrap();
        assert_eq!((hits.len(), total), (1, 1));
        let (hits, _) = store.search("Condition", &[("code".into(), "I10".into())], 10, 0).unwrap();
        assert!(hits.is_empty());
        let (hits, _) = store.search("Claim", &[("patient".into(), "Patient/p1".into()), ("_lastUpdated".into(), "ge2000-01-01".into())], 10, 0).unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(store.history("Condition", "c1").unwrap().len(), 1);
        // After a review only the new version is found, counted once.
        let mut reviewed = store.read("Condition", "c1").unwrap().unwrap();
        reviewed["verificationStatus"]["coding"][0]["code"] = json!("confirmed");
        store.update("Condition", "c1", reviewed, Some(1), "coder", |v| v.clone()).unwrap();
        let (hits, total) = store.search("Condition", &[], 10, 0).unwrap();
        assert_eq!((hits.len(), total), (1, 1));
        assert_eq!(hits[0]["meta"]["versionId"], "2");
    }

    /// Concurrent creates share commits; a bad request fails alone and its neighbours in the
    /// same batch are stored.
    #[test]
    fn concurrent_creates_commit_together_and_fail_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(Store::open(&dir.path().join("db.sqlite")).unwrap());
        let handles: Vec<_> = (0..24)
            .map(|i| {
                let store = store.clone();
                std::thread::spawn(move || {
                    let mut r = json!({ "resourceType": "Claim", "patient": { "reference": "Patient/p" } });
                    if i % 6 != 5 {
                        r["id"] = json!(format!("k{i}"));
                    }
                    (i, store.create_all(vec![r], None))
                })
            })
            .collect();
        for h in handles {
            let (i, result) = h.join().unwrap();
            if i % 6 == 5 {
                assert!(matches!(result, Err(StoreError::Invalid(_))), "request {i} has no id");
            } else {
                assert!(matches!(result, Ok(Created::New { .. })), "request {i}");
                assert!(store.read("Claim", &format!("k{i}")).unwrap().is_some());
            }
        }
        let (_, total) = store.search("Claim", &[], 100, 0).unwrap();
        assert_eq!(total, 20);
    }

    /// Every create is flushed to disk before it is answered, and a read answers only once what
    /// it may have seen is flushed, records nobody waited for included.
    #[test]
    fn answers_wait_for_the_flush() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db.sqlite")).unwrap();
        let claim = |id: &str| json!({ "resourceType": "Claim", "id": id, "patient": { "reference": "Patient/p" } });
        store.create_all(vec![claim("k1")], None).unwrap();
        let (begun, finished, synced) = store.shared.wal.counts();
        assert_eq!((begun, finished, synced), (1, 1, 1));
        store.create_later(vec![claim("k2")]).unwrap();
        assert!(store.read("Claim", "k2").unwrap().is_some());
        let (begun, _, synced) = store.shared.wal.counts();
        assert!(begun >= 2 && synced == begun, "read answered before its commit was flushed: {begun} begun, {synced} flushed");
        let updated = store.update("Claim", "k1", claim("k1"), Some(1), "coder", |v| v.clone()).unwrap();
        assert_eq!(updated["meta"]["versionId"], "2");
        let (begun, _, synced) = store.shared.wal.counts();
        assert_eq!(synced, begun);
    }

    /// A database file reached through a symbolic link: SQLite keeps its WAL beside the file
    /// the link names, and that is the one flushed.
    #[test]
    fn a_linked_database_file_is_flushed_where_sqlite_writes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        let target = dir.path().join("real/db.sqlite");
        drop(Connection::open(&target).unwrap());
        let link = dir.path().join("db.sqlite");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let store = SqliteStore::open(&link).unwrap();
        let claim = json!({ "resourceType": "Claim", "id": "k1", "patient": { "reference": "Patient/p" } });
        assert!(matches!(store.create_all(vec![claim], None), Ok(Created::New { .. })));
        assert!(store.read("Claim", "k1").unwrap().is_some());
    }

    /// Under steady concurrent writes the WAL is started over, not grown without bound.
    #[test]
    fn the_wal_stays_bounded_under_steady_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let store = std::sync::Arc::new(SqliteStore::open(&path).unwrap());
        // Bodies that do not compress: about 50 MiB written in all.
        let noise = |seed: u64| {
            let mut x = seed | 1;
            (0..16 * 1024 / 16).map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                format!("{x:016x}")
            }).collect::<String>()
        };
        let writers: Vec<_> = (0..8u64)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for i in 0..200u64 {
                        let claims = (0..2u64)
                            .map(|k| json!({ "resourceType": "Claim", "id": format!("k{t}-{i}-{k}"), "patient": { "reference": "Patient/p" }, "text": { "div": noise(t * 1_000_000 + i * 10 + k) } }))
                            .collect();
                        store.create_all(claims, None).unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        let wal = std::fs::metadata(dir.path().join("db.sqlite-wal")).unwrap().len();
        assert!(wal < 32 << 20, "the WAL grew to {} MiB", wal >> 20);
        assert!(store.read("Claim", "k7-199-1").unwrap().is_some());
    }

    /// A store written before the clustered search table keeps its search rows.
    #[test]
    fn old_search_rows_are_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(
                "CREATE TABLE resource (type TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
                     last_updated TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (type, id, version));
                 CREATE TABLE search_index (type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL, value TEXT NOT NULL);
                 INSERT INTO resource VALUES ('Claim', 'k1', 1, '2026-01-01T00:00:00.000Z',
                     '{\"resourceType\":\"Claim\",\"id\":\"k1\",\"patient\":{\"reference\":\"Patient/p9\"}}');
                 INSERT INTO search_index VALUES ('Claim', 'k1', 'patient', 'Patient/p9');
                 INSERT INTO resource VALUES ('Condition', 'c1', 1, '2026-01-01T00:00:00.000Z',
                     '{\"resourceType\":\"Condition\",\"id\":\"c1\",\"code\":{\"coding\":[{\"system\":\"http://x/icd\",\"code\":\"I10\"}]}}');
                 INSERT INTO resource VALUES ('Condition', 'c1', 2, '2026-01-02T00:00:00.000Z',
                     '{\"resourceType\":\"Condition\",\"id\":\"c1\",\"note\":\"v2\",\"code\":{\"coding\":[{\"system\":\"http://x/icd\",\"code\":\"I10\"}]}}');
                 INSERT INTO search_index VALUES ('Condition', 'c1', 'code', 'I10');
                 INSERT INTO search_index VALUES ('Condition', 'c1', 'code', 'http://x/icd|I10');",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let (hits, _) = store.search("Claim", &[("patient".into(), "Patient/p9".into())], 10, 0).unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0]["id"], "k1");
        // Two rows per coding became one, and both forms of the search still find it.
        // Only the newer of the two stored versions is current (schema 3).
        for code in ["I10", "http://x/icd|I10"] {
            let (hits, total) = store.search("Condition", &[("code".into(), code.into())], 10, 0).unwrap();
            assert_eq!((hits.len(), total), (1, 1), "{code}");
            assert_eq!(hits[0]["note"], "v2");
        }
        drop(store);
        let c = Connection::open(&path).unwrap();
        let rows: Vec<String> = c.prepare("SELECT value FROM search_param WHERE param = 'code'").unwrap().query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
        assert_eq!(rows, ["I10|http://x/icd"]);
        // Opened again: nothing migrates twice.
        drop(c);
        let store = Store::open(&path).unwrap();
        let (hits, _) = store.search("Condition", &[("code".into(), "I10".into())], 10, 0).unwrap();
        assert_eq!(hits.len(), 1);
    }

    /// Compositions stored before they had search rows (schema 3) are found by record id,
    /// status and category once the store is opened by this version.
    #[test]
    fn compositions_stored_before_their_search_rows_are_indexed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let case = serde_json::json!({
            "resourceType": "Composition", "id": "case-1", "status": "final",
            "identifier": { "system": "urn:jointcoder:record-id", "value": "R-17" },
            "category": [{ "coding": [{ "system": "https://x/CodeSystem/workbench", "code": "coder-case" }] }]
        });
        Store::open(&path).unwrap().create_all(vec![case], None).unwrap();
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch("DELETE FROM search_param WHERE type = 'Composition'; PRAGMA user_version = 3;").unwrap();
        }
        let by = |store: &Store, param: &str, value: &str| store.search("Composition", &[(param.into(), value.into())], 10, 0).unwrap().1;
        let store = Store::open(&path).unwrap();
        assert_eq!(by(&store, "identifier", "urn:jointcoder:record-id|R-17"), 1);
        assert_eq!(by(&store, "identifier", "R-17"), 1);
        assert_eq!(by(&store, "category", "https://x/CodeSystem/workbench|coder-case"), 1);
        assert_eq!(by(&store, "status", "final"), 1);
        assert_eq!(by(&store, "status", "preliminary"), 0);
    }

    /// A Device with a derived id is stored once: later answers carry the stored one (its
    /// first `lastUpdated`), and a new version once it was changed.
    #[test]
    fn shared_devices_are_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let store = Store::open(&path).unwrap();
        let device = json!({ "resourceType": "Device", "id": "agent-x", "deviceName": [{ "name": "x", "type": "model-name" }] });
        let first = |store: &Store| -> Value {
            let Created::New { stored, bodies, .. } = store.create_all(vec![device.clone()], None).unwrap() else { panic!("create") };
            assert_eq!(parse(&bodies[0]).unwrap(), stored[0]);
            stored[0].clone()
        };
        let a = first(&store);
        std::thread::sleep(std::time::Duration::from_millis(5));
        let b = first(&store);
        let c = first(&store);
        assert_eq!(a["meta"], b["meta"]);
        assert_eq!(b, c);
        let mut changed = a.clone();
        changed["deviceName"][0]["name"] = json!("y");
        store.update("Device", "agent-x", changed, Some(1), "admin", |v| v.clone()).unwrap();
        let d = first(&store);
        assert_eq!(d["meta"]["versionId"], "2");
        assert_eq!(d["deviceName"][0]["name"], "y");
        drop(store);
        let rows: i64 = Connection::open(&path).unwrap().query_row("SELECT count(*) FROM resource WHERE type = 'Device'", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, 2, "version 1 and the update");
    }

    /// `code` searches as a FHIR token: a bare code in any system, `system|code` in that system
    /// only, `|code` without a system; a code is not matched by another it is a prefix of.
    #[test]
    fn token_search_by_code_and_system() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.sqlite")).unwrap();
        let condition = |id: &str, system: Option<&str>, code: &str| {
            let mut coding = json!({ "code": code });
            if let Some(s) = system {
                coding["system"] = json!(s);
            }
            json!({ "resourceType": "Condition", "id": id, "code": { "coding": [coding] } })
        };
        store
            .create_all(vec![condition("a", Some("http://a"), "I10"), condition("b", Some("http://b"), "I10"), condition("c", Some("http://a"), "I10.x"), condition("d", None, "I10")], None)
            .unwrap();
        let found = |value: &str| -> Vec<String> {
            let (hits, _) = store.search("Condition", &[("code".into(), value.into())], 10, 0).unwrap();
            let mut ids: Vec<String> = hits.iter().map(|h| h["id"].as_str().unwrap().to_owned()).collect();
            ids.sort();
            ids
        };
        assert_eq!(found("I10"), ["a", "b", "d"]);
        assert_eq!(found("http://a|I10"), ["a"]);
        assert_eq!(found("http://b|I10"), ["b"]);
        assert_eq!(found("|I10"), ["d"]);
        assert_eq!(found("I10.x"), ["c"]);
        assert!(found("I1").is_empty());
    }

    /// Bodies are stored compressed; bodies stored as text by older versions still read, and
    /// a damaged body is reported as such, not as a crash.
    #[test]
    fn bodies_are_compressed_and_old_text_bodies_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let store = Store::open(&path).unwrap();
        let claim = json!({ "resourceType": "Claim", "id": "k1", "patient": { "reference": "Patient/p1" }, "note": "x".repeat(2000) });
        store.create_one(claim).unwrap();
        drop(store);
        let c = Connection::open(&path).unwrap();
        let (kind, size): (String, i64) = c.query_row("SELECT typeof(body), length(body) FROM resource WHERE id = 'k1'", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        assert_eq!(kind, "blob");
        assert!(size < 500, "2 kB of JSON stored in {size} bytes");
        c.execute_batch(
            "INSERT INTO resource (type, id, version, last_updated, body) VALUES ('Claim', 'old', 1, '2026-01-01T00:00:00.000Z', '{\"resourceType\":\"Claim\",\"id\":\"old\"}');
             INSERT INTO resource (type, id, version, last_updated, body) VALUES ('Claim', 'bad', 1, '2026-01-01T00:00:00.000Z', x'0500000001');",
        )
        .unwrap();
        drop(c);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.read("Claim", "k1").unwrap().unwrap()["note"].as_str().unwrap().len(), 2000);
        assert_eq!(store.read("Claim", "old").unwrap().unwrap()["id"], "old");
        assert!(matches!(store.read("Claim", "bad"), Err(StoreError::Corrupt(_))));
    }
}
