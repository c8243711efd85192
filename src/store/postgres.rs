//! The PostgreSQL engine, for hospitals that run their own database: the same tables and
//! search rows as the SQLite engine, one transaction per request, and PostgreSQL's own
//! concurrency (row locks, unique keys) where SQLite needs group commit.
//!
//! The store's API is synchronous (request handlers call it from worker threads), sqlx is
//! async: the store owns a small runtime, hands each call to it and waits for the answer. That
//! works from any thread, including an async handler's, where `block_on` would panic.

use std::future::Future;

use serde_json::Value;
use sqlx::postgres::{PgPool, PgPoolOptions};

use super::{index_rows, parse, Conditional, Created, Feedback, Row, StoreError};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS resource (
    type TEXT NOT NULL, id TEXT NOT NULL, version BIGINT NOT NULL,
    last_updated TEXT COLLATE "C" NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (type, id, version));
CREATE TABLE IF NOT EXISTS search_param (
    type TEXT NOT NULL, param TEXT NOT NULL, value TEXT COLLATE "C" NOT NULL, id TEXT NOT NULL,
    PRIMARY KEY (type, param, value, id));
CREATE TABLE IF NOT EXISTS conditional (key TEXT PRIMARY KEY, body TEXT NOT NULL);
ALTER TABLE conditional ADD COLUMN IF NOT EXISTS digest TEXT NOT NULL DEFAULT '';
CREATE TABLE IF NOT EXISTS feedback (
    seq BIGSERIAL PRIMARY KEY, type TEXT NOT NULL, id TEXT NOT NULL,
    from_version BIGINT NOT NULL, to_version BIGINT NOT NULL,
    who TEXT NOT NULL, at TEXT NOT NULL, before TEXT NOT NULL, after TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL);
"#;

/// The schema version whose search rows this code writes (SQLite's `user_version` says the
/// same there); a database indexed by an older one has [`super::REINDEXED`] types indexed again.
const INDEX_VERSION: i64 = 4;

/// Whether each row is its resource's current version, with an index in search order over the
/// current rows (a search pages in the database). Added to older databases once, with the
/// flag set right on what they hold.
const CURRENT_FLAG: &str = r#"
ALTER TABLE resource ADD COLUMN current SMALLINT NOT NULL DEFAULT 1;
UPDATE resource SET current = 0 WHERE version < (SELECT MAX(version) FROM resource x WHERE x.type = resource.type AND x.id = resource.id);
CREATE INDEX IF NOT EXISTS resource_current ON resource (type, last_updated, id) WHERE current = 1;
"#;

/// Held while the schema is created, so that two servers starting at once do not race.
const SCHEMA_LOCK: i64 = 0x6a63_7374_6f72; // "jcstor"

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        StoreError::Postgres(e.to_string())
    }
}

const INSERT_SEARCH_ROWS: &str =
    "INSERT INTO search_param (type, param, value, id) SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[]) ON CONFLICT DO NOTHING";
const DELETE_SEARCH_ROWS: &str =
    "DELETE FROM search_param WHERE (type, param, value, id) IN (SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[]))";

/// Search rows as four parallel columns: a request's rows go in (or out) in one statement.
#[derive(Default)]
struct SearchRows {
    types: Vec<String>,
    params: Vec<String>,
    values: Vec<String>,
    ids: Vec<String>,
}

impl SearchRows {
    fn of(ty: &str, id: &str, rows: Vec<(&'static str, String)>) -> SearchRows {
        let mut all = SearchRows::default();
        for (param, value) in rows {
            all.push(ty, param, value, id);
        }
        all
    }

    fn push(&mut self, ty: &str, param: &str, value: String, id: &str) {
        self.types.push(ty.to_owned());
        self.params.push(param.to_owned());
        self.values.push(value);
        self.ids.push(id.to_owned());
    }

    /// `sql` takes the columns as `$1`..`$4` text arrays.
    async fn run(self, tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, sql: &'static str) -> Result<(), StoreError> {
        sqlx::query(sql).bind(self.types).bind(self.params).bind(self.values).bind(self.ids).execute(&mut **tx).await?;
        Ok(())
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error().and_then(|d| d.code()).is_some_and(|c| c == "23505")
}

pub struct PostgresStore {
    pool: PgPool,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // Never blocks, so the store may be dropped anywhere, an async context included.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl PostgresStore {
    /// Connects (a pool of up to 16 connections) and creates the tables when missing.
    pub fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("store-postgres")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Postgres(format!("cannot start the store runtime: {e}")))?;
        let url = url.to_owned();
        let pool = runtime.block_on(async move {
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(std::time::Duration::from_secs(10))
                .connect(&url)
                .await
                // sqlx's message never carries the password.
                .map_err(|e| StoreError::Postgres(format!("cannot connect: {e}")))?;
            let mut tx = pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(SCHEMA_LOCK).execute(&mut *tx).await?;
            sqlx::raw_sql(SCHEMA).execute(&mut *tx).await?;
            let has_flag: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'resource' AND column_name = 'current')")
                .fetch_one(&mut *tx)
                .await?;
            if !has_flag {
                sqlx::raw_sql(CURRENT_FLAG).execute(&mut *tx).await?;
            }
            let indexed: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetch_one(&mut *tx).await?;
            for (_, ty) in super::REINDEXED.iter().filter(|(v, _)| indexed < *v) {
                let current: Vec<(String, String)> = sqlx::query_as("SELECT id, body FROM resource WHERE type = $1 AND current = 1").bind(*ty).fetch_all(&mut *tx).await?;
                let mut rows = SearchRows::default();
                for (id, body) in current {
                    for (param, value) in index_rows(&parse(&body)?) {
                        rows.push(ty, param, value, &id);
                    }
                }
                rows.run(&mut tx, INSERT_SEARCH_ROWS).await?;
            }
            if indexed < INDEX_VERSION {
                sqlx::query("DELETE FROM schema_version").execute(&mut *tx).await?;
                sqlx::query("INSERT INTO schema_version (version) VALUES ($1)").bind(INDEX_VERSION).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<_, StoreError>(pool)
        })?;
        Ok(PostgresStore { pool, runtime: Some(runtime) })
    }

    /// Runs `work` on the store's runtime and waits for its answer.
    fn run<T: Send + 'static>(&self, work: impl Future<Output = Result<T, StoreError>> + Send + 'static) -> Result<T, StoreError> {
        let runtime = self.runtime.as_ref().ok_or_else(|| StoreError::Postgres("the store is shut down".into()))?;
        let (answer, answered) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let _ = answer.send(work.await);
        });
        answered.recv().map_err(|_| StoreError::Postgres("the store task stopped".into()))?
    }

    /// See [`super::Store::create_all`]. A conditional key is claimed first: a second request
    /// with the same key waits on the first one's row lock, then finds its answer.
    pub fn create_all(&self, resources: Vec<Value>, conditional: Option<Conditional>) -> Result<Created, StoreError> {
        let now = crate::ids::now_rfc3339();
        let rows = resources.into_iter().map(|r| Row::stamp(r, &now)).collect::<Result<Vec<_>, _>>()?;
        let pool = self.pool.clone();
        // The key is read across awaits; the answer builder is only moved (it is not Sync).
        let (key, build) = conditional.map(|c| ((c.key, c.digest), c.build)).unzip();
        self.run(async move {
            let mut tx = pool.begin().await?;
            if let Some((key, digest)) = &key {
                let claimed = sqlx::query("INSERT INTO conditional (key, digest, body) VALUES ($1, $2, '') ON CONFLICT (key) DO NOTHING")
                    .bind(key)
                    .bind(digest)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if claimed == 0 {
                    let (stored, body): (String, String) = sqlx::query_as("SELECT digest, body FROM conditional WHERE key = $1").bind(key).fetch_one(&mut *tx).await?;
                    return Ok(Created::Existing(super::remembered(&stored, digest, &body)?));
                }
            }
            let mut stored = Vec::with_capacity(rows.len());
            let mut bodies = Vec::with_capacity(rows.len());
            let mut search_rows = SearchRows::default();
            for row in rows {
                // Shared resources with derived ids (the agents' Devices) are stored once.
                let conflict = if row.ty == "Device" { " ON CONFLICT DO NOTHING" } else { "" };
                let inserted = sqlx::query(&format!("INSERT INTO resource (type, id, version, last_updated, body) VALUES ($1, $2, 1, $3, $4){conflict}"))
                    .bind(&row.ty)
                    .bind(&row.id)
                    .bind(&now)
                    .bind(&row.body)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if inserted == 0 {
                    let body: String = sqlx::query_scalar("SELECT body FROM resource WHERE type = $1 AND id = $2 ORDER BY version DESC LIMIT 1")
                        .bind(&row.ty)
                        .bind(&row.id)
                        .fetch_one(&mut *tx)
                        .await?;
                    stored.push(parse(&body)?);
                    bodies.push(body);
                    continue;
                }
                for (param, value) in &row.index {
                    search_rows.push(&row.ty, param, value.clone(), &row.id);
                }
                stored.push(row.resource);
                bodies.push(row.body);
            }
            search_rows.run(&mut tx, INSERT_SEARCH_ROWS).await?;
            let response = match (key, build) {
                (Some((key, _)), Some(build)) => {
                    let body = build(&stored);
                    sqlx::query("UPDATE conditional SET body = $2 WHERE key = $1").bind(key).bind(body.to_string()).execute(&mut *tx).await?;
                    Some(body)
                }
                _ => None,
            };
            tx.commit().await?;
            Ok(Created::New { stored, bodies, response })
        })
    }

    /// Committed before it returns: the audit trail stays read-your-writes without the SQLite
    /// engine's queue.
    pub fn create_later(&self, resources: Vec<Value>) -> Result<(), StoreError> {
        self.create_all(resources, None).map(drop)
    }

    pub fn update(&self, ty: &str, id: &str, mut resource: Value, if_match: Option<i64>, who: &str, summary: fn(&Value) -> Value) -> Result<Value, StoreError> {
        let (ty, id, who) = (ty.to_owned(), id.to_owned(), who.to_owned());
        let pool = self.pool.clone();
        self.run(async move {
            let mut tx = pool.begin().await?;
            // Locks the current version: concurrent reviews of one resource take turns.
            let current: Option<(i64, String)> =
                sqlx::query_as("SELECT version, body FROM resource WHERE type = $1 AND id = $2 ORDER BY version DESC LIMIT 1 FOR UPDATE")
                    .bind(&ty)
                    .bind(&id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some((version, body)) = current else { return Err(StoreError::NotFound(format!("{ty}/{id}"))) };
            let before = parse(&body)?;
            let (next, now) = super::next_version(&ty, &id, version, if_match, &before, &mut resource)?;
            sqlx::query("UPDATE resource SET current = 0 WHERE type = $1 AND id = $2 AND version = $3").bind(&ty).bind(&id).bind(version).execute(&mut *tx).await?;
            let inserted = sqlx::query("INSERT INTO resource (type, id, version, last_updated, body) VALUES ($1, $2, $3, $4, $5)")
                .bind(&ty)
                .bind(&id)
                .bind(next)
                .bind(&now)
                .bind(resource.to_string())
                .execute(&mut *tx)
                .await;
            match inserted {
                Err(e) if is_unique_violation(&e) => return Err(StoreError::Conflict(format!("{ty}/{id} changed meanwhile"))),
                other => other?,
            };
            SearchRows::of(&ty, &id, index_rows(&before)).run(&mut tx, DELETE_SEARCH_ROWS).await?;
            SearchRows::of(&ty, &id, index_rows(&resource)).run(&mut tx, INSERT_SEARCH_ROWS).await?;
            sqlx::query("INSERT INTO feedback (type, id, from_version, to_version, who, at, before, after) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                .bind(&ty)
                .bind(&id)
                .bind(version)
                .bind(next)
                .bind(&who)
                .bind(&now)
                .bind(summary(&before).to_string())
                .bind(summary(&resource).to_string())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(resource)
        })
    }

    pub fn feedback(&self) -> Result<Vec<Feedback>, StoreError> {
        let pool = self.pool.clone();
        self.run(async move {
            let rows: Vec<(String, String, i64, i64, String, String, String, String)> =
                sqlx::query_as("SELECT type, id, from_version, to_version, who, at, before, after FROM feedback ORDER BY seq").fetch_all(&pool).await?;
            rows.into_iter()
                .map(|(resource_type, id, from_version, to_version, who, when, before, after)| {
                    Ok(Feedback { resource_type, id, from_version, to_version, who, when, before: parse(&before)?, after: parse(&after)? })
                })
                .collect()
        })
    }

    pub fn conditional(&self, key: &str, digest: &str) -> Result<Option<Value>, StoreError> {
        let pool = self.pool.clone();
        let key = key.to_owned();
        let known: Option<(String, String)> =
            self.run(async move { Ok(sqlx::query_as("SELECT digest, body FROM conditional WHERE key = $1").bind(key).fetch_optional(&pool).await?) })?;
        known.map(|(stored, body)| super::remembered(&stored, digest, &body)).transpose()
    }

    pub fn read(&self, ty: &str, id: &str) -> Result<Option<Value>, StoreError> {
        self.one_body("SELECT body FROM resource WHERE type = $1 AND id = $2 ORDER BY version DESC LIMIT 1", vec![ty.to_owned(), id.to_owned()])
    }

    pub fn vread(&self, ty: &str, id: &str, version: i64) -> Result<Option<Value>, StoreError> {
        self.one_body(
            "SELECT body FROM resource WHERE type = $1 AND id = $2 AND version = CAST($3 AS BIGINT)",
            vec![ty.to_owned(), id.to_owned(), version.to_string()],
        )
    }

    pub fn history(&self, ty: &str, id: &str) -> Result<Vec<Value>, StoreError> {
        let bodies = self.bodies("SELECT body FROM resource WHERE type = $1 AND id = $2 ORDER BY version DESC".into(), vec![ty.to_owned(), id.to_owned()])?;
        bodies.iter().map(|b| parse(b)).collect()
    }

    pub fn search(&self, ty: &str, filters: &[(String, String)], count: usize, offset: usize, newest_first: bool) -> Result<(Vec<Value>, usize), StoreError> {
        let sql = super::search_sql(ty, filters, count, offset, newest_first, |n| format!("${n}"));
        let pool = self.pool.clone();
        let (total, bodies): (i64, Vec<String>) = self.run(async move {
            let mut count = sqlx::query_scalar(&sql.count);
            let mut page = sqlx::query_scalar(&sql.page);
            for a in &sql.args {
                count = count.bind(a);
                page = page.bind(a);
            }
            let total: i64 = count.fetch_one(&pool).await?;
            Ok((total, page.fetch_all(&pool).await?))
        })?;
        let page = bodies.iter().map(|b| parse(b)).collect::<Result<Vec<_>, _>>()?;
        Ok((page, total as usize))
    }

    /// The first body a query with text arguments finds, parsed.
    fn one_body(&self, sql: &'static str, args: Vec<String>) -> Result<Option<Value>, StoreError> {
        let pool = self.pool.clone();
        let body: Option<String> = self.run(async move {
            let mut q = sqlx::query_scalar(sql);
            for a in args {
                q = q.bind(a);
            }
            Ok(q.fetch_optional(&pool).await?)
        })?;
        body.map(|b| parse(&b)).transpose()
    }

    /// Every body a query with text arguments finds, as text.
    fn bodies(&self, sql: String, args: Vec<String>) -> Result<Vec<String>, StoreError> {
        let pool = self.pool.clone();
        self.run(async move {
            let mut q = sqlx::query_scalar(&sql);
            for a in args {
                q = q.bind(a);
            }
            Ok(q.fetch_all(&pool).await?)
        })
    }
}
