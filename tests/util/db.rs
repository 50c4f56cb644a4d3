//! Databases for the persistence tests: a fresh SQLite file in a temporary
//! directory, or a fresh schema in the PostgreSQL database named by
//! `PACKET_SERVICE_TEST_DATABASE_URL` (`.ci/run` starts one and exports
//! it). Without that variable the PostgreSQL tests say so in one line and
//! pass, except under CI (`CI` set), where they fail: there they must run.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use packet_service::backend::store::DatabaseUrl;

/// The variable naming the test PostgreSQL database.
pub const PG_ENV: &str = "PACKET_SERVICE_TEST_DATABASE_URL";

static NEXT: AtomicU32 = AtomicU32::new(0);

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A test database, removed when dropped.
pub enum TestDb {
    /// A SQLite file in its own directory.
    Sqlite(PathBuf),
    /// A schema of the test PostgreSQL database.
    Postgres {
        /// The server's URL.
        base: String,
        /// The schema the URL selects.
        schema: String,
    },
}

impl TestDb {
    /// A SQLite file that does not exist yet (its directory neither).
    pub fn sqlite() -> TestDb {
        let dir = std::env::temp_dir().join(unique("ps-db"));
        TestDb::Sqlite(dir.join("data").join("test.db"))
    }

    /// A fresh schema in the test PostgreSQL database, or `None` (after one
    /// line saying so) when none is configured; under CI a missing
    /// database fails the test.
    pub async fn postgres() -> Option<TestDb> {
        let base = match std::env::var(PG_ENV) {
            Ok(url) if !url.is_empty() => url,
            _ => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "{PG_ENV} is not set under CI: the PostgreSQL tests must run there"
                );
                eprintln!("PostgreSQL test skipped: {PG_ENV} is not set");
                return None;
            }
        };
        sqlx::any::install_default_drivers();
        let schema = unique("t");
        let pool = sqlx::AnyPool::connect(&base)
            .await
            .expect("test PostgreSQL reachable");
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&pool)
            .await
            .expect("create schema");
        pool.close().await;
        Some(TestDb::Postgres { base, schema })
    }

    /// The `--database` URL of this database.
    pub fn url(&self) -> DatabaseUrl {
        DatabaseUrl::parse(&self.url_text()).expect("valid test URL")
    }

    /// The same, as the setting's text.
    pub fn url_text(&self) -> String {
        match self {
            TestDb::Sqlite(path) => format!("sqlite:{}", path.display()),
            TestDb::Postgres { base, schema } => {
                let sep = if base.contains('?') { '&' } else { '?' };
                format!("{base}{sep}options=-c%20search_path%3D{schema}")
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match self {
            TestDb::Sqlite(path) => {
                if let Some(dir) = path.parent().and_then(|d| d.parent()) {
                    let _ = std::fs::remove_dir_all(dir);
                }
            }
            TestDb::Postgres { base, schema } => {
                let (base, schema) = (base.clone(), schema.clone());
                // A runtime of its own: drop may run inside or outside one.
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .ok()?;
                    rt.block_on(async {
                        let pool = sqlx::AnyPool::connect(&base).await.ok()?;
                        let drop = format!("DROP SCHEMA {schema} CASCADE");
                        let _ = sqlx::query(&drop).execute(&pool).await;
                        pool.close().await;
                        Some(())
                    })
                })
                .join();
            }
        }
    }
}
