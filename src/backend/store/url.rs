//! The `--database` / `DATABASE_URL` value: which engine, and where.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where the embedded backend keeps its data.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `memory`: nothing persisted.
    Memory,
    /// `sqlite:PATH`: one file, relative to the working directory unless
    /// absolute; created (with its directory) on first start.
    Sqlite(PathBuf),
    /// `postgres://…` or `postgresql://…`, kept as given.
    Postgres(String),
}

impl DatabaseUrl {
    /// Parses the setting's text; `None` when it names no engine.
    pub fn parse(raw: &str) -> Option<DatabaseUrl> {
        if raw == "memory" {
            return Some(DatabaseUrl::Memory);
        }
        if let Some(path) = raw.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            let ok = !path.is_empty() && !path.contains('\0') && !path.starts_with(":memory:");
            return ok.then(|| DatabaseUrl::Sqlite(PathBuf::from(path)));
        }
        let lower = raw.to_ascii_lowercase();
        let rest = lower
            .strip_prefix("postgres://")
            .or_else(|| lower.strip_prefix("postgresql://"))?;
        let ok = !rest.is_empty() && !raw.chars().any(|c| c.is_whitespace() || c.is_control());
        ok.then(|| DatabaseUrl::Postgres(raw.to_owned()))
    }

    /// What the setting accepts, for `--help` and error lines.
    pub const EXPECTED: &'static str =
        "memory, sqlite:PATH or postgres://USER:PASSWORD@HOST[:PORT]/DATABASE";

    /// The engine it names.
    pub fn engine(&self) -> super::Engine {
        match self {
            DatabaseUrl::Memory => super::Engine::Memory,
            DatabaseUrl::Sqlite(_) => super::Engine::Sqlite,
            DatabaseUrl::Postgres(_) => super::Engine::Postgres,
        }
    }

    /// The URL sqlx connects to: for SQLite the path percent-encoded where
    /// the URL syntax needs it, opened read-write and created if missing.
    pub(super) fn connect_url(&self) -> String {
        match self {
            DatabaseUrl::Memory => "sqlite::memory:".to_owned(),
            DatabaseUrl::Sqlite(path) => format!("sqlite:{}?mode=rwc", encode_path(path)),
            DatabaseUrl::Postgres(url) => url.clone(),
        }
    }
}

/// Escapes the characters that end or escape a path in a URL.
fn encode_path(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3F"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
}

/// Shows the URL with any password replaced by `***` (logs, `Debug`, errors).
impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Memory => f.write_str("memory"),
            DatabaseUrl::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            DatabaseUrl::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// `scheme://user:***@host/…` for `scheme://user:password@host/…`; a
/// `password=` query parameter is masked the same way.
pub fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_engine() {
        assert_eq!(DatabaseUrl::parse("memory"), Some(DatabaseUrl::Memory));
        assert_eq!(
            DatabaseUrl::parse("sqlite:data/packet-service.db"),
            Some(DatabaseUrl::Sqlite("data/packet-service.db".into()))
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///var/lib/ps.db"),
            Some(DatabaseUrl::Sqlite("/var/lib/ps.db".into()))
        );
        assert!(matches!(
            DatabaseUrl::parse("postgres://u:p@127.0.0.1/db"),
            Some(DatabaseUrl::Postgres(_))
        ));
        assert!(DatabaseUrl::parse("PostgreSQL://h/db").is_some());
        for bad in [
            "",
            "mysql://h/db",
            "sqlite:",
            "sqlite::memory:",
            "postgres://",
            "x",
        ] {
            assert_eq!(DatabaseUrl::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn passwords_never_show() {
        let url = DatabaseUrl::parse("postgres://ps:s3cret@db:5432/ps?sslmode=require").unwrap();
        assert_eq!(
            url.to_string(),
            "postgres://ps:***@db:5432/ps?sslmode=require"
        );
        assert!(!format!("{url:?}").contains("s3cret"));
        assert_eq!(
            redact("postgres://db/ps?user=ps&password=s3cret"),
            "postgres://db/ps?user=ps&password=***"
        );
        assert_eq!(redact("postgres://ps@db/ps"), "postgres://ps@db/ps");
    }

    #[test]
    fn sqlite_paths_are_escaped_for_the_url() {
        let url = DatabaseUrl::Sqlite("a?b#c%d.db".into());
        assert_eq!(url.connect_url(), "sqlite:a%3Fb%23c%25d.db?mode=rwc");
    }
}
