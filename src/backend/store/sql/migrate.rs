//! The schema versions, one list per engine (the SQL files live in
//! `migrations/sqlite` and `migrations/postgres`), and applying them at
//! open: each version once, in order, in its own transaction, recorded in
//! sqlx's `_sqlx_migrations` table (on PostgreSQL under an advisory lock,
//! so backends starting together migrate once). A database whose recorded
//! version is newer than the last one here was written by a newer binary:
//! it is refused before anything is changed ([`StoreError::TooNew`]).

use std::borrow::Cow;

use sqlx::migrate::{Migrate, Migration, MigrationType, Migrator};
use sqlx::AnyPool;

use crate::backend::store::{Engine, StoreError};

/// (version, description, SQL) of SQLite's schema versions.
const SQLITE: &[(i64, &str, &str)] = &[(
    1,
    "accounts, characters, inventory",
    include_str!("../../../../migrations/sqlite/0001_initial.sql"),
)];

/// (version, description, SQL) of PostgreSQL's schema versions.
const POSTGRES: &[(i64, &str, &str)] = &[(
    1,
    "accounts, characters, inventory, sessions",
    include_str!("../../../../migrations/postgres/0001_initial.sql"),
)];

/// The versions of an engine.
fn versions(engine: Engine) -> &'static [(i64, &'static str, &'static str)] {
    match engine {
        Engine::Postgres => POSTGRES,
        _ => SQLITE,
    }
}

/// The latest schema version this binary knows for `engine`.
pub fn latest(engine: Engine) -> i64 {
    versions(engine).last().map_or(0, |v| v.0)
}

/// sqlx's migrator over the versions of `engine`.
fn migrator(engine: Engine) -> Migrator {
    let migrations = versions(engine)
        .iter()
        .map(|&(version, description, sql)| {
            Migration::new(
                version,
                Cow::Borrowed(description),
                MigrationType::Simple,
                Cow::Borrowed(sql),
                false,
            )
        })
        .collect::<Vec<_>>();
    Migrator {
        migrations: Cow::Owned(migrations),
        ignore_missing: false,
        locking: true,
        no_tx: false,
    }
}

/// Refuses a newer database, then applies the missing versions.
pub async fn apply(pool: &AnyPool, engine: Engine) -> Result<(), StoreError> {
    let known = latest(engine);
    {
        let mut conn = pool.acquire().await?;
        conn.ensure_migrations_table().await?;
        let applied = conn.list_applied_migrations().await?;
        if let Some(found) = applied.iter().map(|m| m.version).max() {
            if found > known {
                return Err(StoreError::TooNew { found, known });
            }
        }
    }
    migrator(engine).run(pool).await?;
    Ok(())
}
