//! The store's tests — accounts, characters, sessions — run against every
//! engine: `memory`, SQLite (a fresh file) and PostgreSQL (a fresh schema
//! of `PACKET_SERVICE_TEST_DATABASE_URL`; see `tests/util/db.rs` for what
//! happens when it is not set). Plus what only a database can do: two
//! connections racing for one name, a reopened file keeping its rows, and
//! a schema newer than the binary refused.

mod util;

use std::time::Duration;

use packet_service::backend::accounts::{AccountError, LoginCheck, PasswordDigest, SeedPassword};
use packet_service::backend::characters::{CreateError, NewCharacter, NotFound};
use packet_service::backend::sessions::{JoinError, SessionError, Stage};
use packet_service::backend::store::{
    self, CharState, DatabaseUrl, Opened, Seed, StoreError, StoreOptions,
};
use packet_service::protocol::packets::DigestKind;
use util::db::TestDb;

/// The session TTL of the expiry scenario (short, so it runs quickly);
/// every other scenario uses [`LONG_TTL`] so that a slow machine never
/// expires its sessions midway.
const TTL: Duration = Duration::from_millis(1500);
const LONG_TTL: Duration = Duration::from_secs(600);

fn options() -> StoreOptions {
    options_with(LONG_TTL)
}

fn options_with(session_ttl: Duration) -> StoreOptions {
    StoreOptions {
        max_chars_per_account: 3,
        session_ttl,
    }
}

/// The TTL a scenario runs with.
fn ttl_for(scenario: &str) -> Duration {
    if scenario.contains("expire") {
        TTL
    } else {
        LONG_TTL
    }
}

fn sha(p: &str) -> PasswordDigest {
    PasswordDigest::of_plaintext(DigestKind::Sha256Hex, p)
}

fn md5(p: &str) -> PasswordDigest {
    PasswordDigest::of_plaintext(DigestKind::Md5Hex, p)
}

fn plain(p: &str) -> SeedPassword {
    SeedPassword::Plaintext(p.into())
}

fn new(name: &str) -> NewCharacter {
    NewCharacter {
        name: name.into(),
        race: 1,
        stone: 2,
        hair: 3,
        face: 4,
        zone: 0,
    }
}

/// Which engine a test runs on.
#[derive(Copy, Clone)]
enum Kind {
    Memory,
    Sqlite,
    Postgres,
}

/// Opens a fresh database of `kind`; `None` when PostgreSQL is not set up.
async fn fresh(kind: Kind, ttl: Duration) -> Option<(Option<TestDb>, Opened)> {
    let db = match kind {
        Kind::Memory => None,
        Kind::Sqlite => Some(TestDb::sqlite()),
        Kind::Postgres => Some(TestDb::postgres().await?),
    };
    let url = db.as_ref().map_or(DatabaseUrl::Memory, TestDb::url);
    let opened = store::open(&url, options_with(ttl))
        .await
        .expect("store opens");
    Some((db, opened))
}

/// One test per engine for each scenario below.
macro_rules! on_every_engine {
    ($($scenario:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                let (_db, o) = super::fresh(super::Kind::Memory, super::ttl_for(stringify!($scenario))).await.unwrap();
                super::$scenario(&o).await;
            })*
        }
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                let (_db, o) = super::fresh(super::Kind::Sqlite, super::ttl_for(stringify!($scenario))).await.unwrap();
                super::$scenario(&o).await;
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                if let Some((_db, o)) = super::fresh(super::Kind::Postgres, super::ttl_for(stringify!($scenario))).await {
                    super::$scenario(&o).await;
                }
            })*
        }
    };
}

on_every_engine!(
    users_log_in_with_either_digest,
    users_are_seeded_and_managed,
    accounts_are_found_by_name_and_named_by_id,
    characters_fill_slots_and_keep_names_unique,
    characters_are_deleted_and_saved,
    sessions_follow_the_stages,
    sessions_expire_and_are_replaced,
);

async fn users_log_in_with_either_digest(o: &Opened) {
    let s = &o.store;
    assert_eq!(
        s.add_account("Admin", &plain("admin"), 1).await.unwrap(),
        Ok(1)
    );
    assert_eq!(
        s.add_account("ADMIN", &plain("x"), 1).await.unwrap(),
        Err(AccountError::Duplicate)
    );
    assert_eq!(
        s.add_account("two words", &plain("x"), 1).await.unwrap(),
        Err(AccountError::InvalidName)
    );
    let ok = LoginCheck::Ok {
        user_id: 1,
        access: 1,
        created: false,
    };
    assert_eq!(s.login("admin", &sha("admin"), false).await.unwrap(), ok);
    assert_eq!(s.login("aDmIn", &md5("admin"), false).await.unwrap(), ok);
    assert_eq!(
        s.login("admin", &sha("nope"), false).await.unwrap(),
        LoginCheck::InvalidPassword
    );
    assert_eq!(
        s.login("nobody", &sha("admin"), false).await.unwrap(),
        LoginCheck::UnknownAccount
    );
    // Auto-create keeps the digest sent, of that kind only.
    let created = s.login("newbie", &md5("pw"), true).await.unwrap();
    assert_eq!(
        created,
        LoginCheck::Ok {
            user_id: 2,
            access: 1,
            created: true
        }
    );
    assert!(matches!(
        s.login("NEWBIE", &md5("pw"), true).await.unwrap(),
        LoginCheck::Ok { created: false, .. }
    ));
    assert_eq!(
        s.login("newbie", &sha("pw"), true).await.unwrap(),
        LoginCheck::InvalidPassword
    );
    assert!(s.verify(2, &md5("pw")).await.unwrap());
    assert!(!s.verify(2, &md5("other")).await.unwrap());
    assert!(!s.verify(99, &md5("pw")).await.unwrap());
    assert_eq!(s.account_count().await.unwrap(), 2);
}

async fn users_are_seeded_and_managed(o: &Opened) {
    let s = &o.store;
    let seeds = [
        Seed {
            username: "gm".into(),
            password: plain("gmpw"),
            access: Some(9),
        },
        Seed {
            username: "hashed".into(),
            password: SeedPassword::Digest(sha("h")),
            access: None,
        },
    ];
    s.seed(&seeds).await.unwrap();
    assert!(matches!(
        s.login("gm", &sha("gmpw"), false).await.unwrap(),
        LoginCheck::Ok { access: 9, .. }
    ));
    assert_eq!(
        s.login("hashed", &md5("h"), false).await.unwrap(),
        LoginCheck::InvalidPassword,
        "only the SHA-256 digest is known"
    );
    // Seeding again updates the password; without an access level the
    // account keeps the one it has.
    assert!(s.set_access("GM", 7).await.unwrap());
    let reseed = [Seed {
        username: "GM".into(),
        password: plain("new"),
        access: None,
    }];
    s.seed(&reseed).await.unwrap();
    assert!(matches!(
        s.login("gm", &sha("new"), false).await.unwrap(),
        LoginCheck::Ok { access: 7, .. }
    ));
    assert_eq!(
        s.login("gm", &sha("gmpw"), false).await.unwrap(),
        LoginCheck::InvalidPassword
    );
    // A banned account: access 0.
    assert!(s.set_access("gm", 0).await.unwrap());
    assert_eq!(
        s.login("gm", &sha("new"), false).await.unwrap(),
        LoginCheck::NoRightToConnect
    );
    assert!(s.set_password("hashed", &plain("p2")).await.unwrap());
    assert!(matches!(
        s.login("hashed", &md5("p2"), false).await.unwrap(),
        LoginCheck::Ok { .. }
    ));
    assert!(!s.set_password("nobody", &plain("x")).await.unwrap());
    assert!(!s.set_access("nobody", 1).await.unwrap());
    s.create_character(2, &new("Hasher"))
        .await
        .unwrap()
        .unwrap();
    let list = s.accounts().await.unwrap();
    let summary: Vec<_> = list
        .iter()
        .map(|a| (a.user_id, a.username.as_str(), a.access, a.characters))
        .collect();
    assert_eq!(summary, [(1, "gm", 0, 0), (2, "hashed", 1, 1)]);
    assert!(s.delete_account("HASHED").await.unwrap());
    assert!(!s.delete_account("hashed").await.unwrap());
    assert!(
        s.characters(2).await.unwrap().is_empty(),
        "characters go too"
    );
    assert_eq!(s.accounts().await.unwrap().len(), 1);
}

async fn accounts_are_found_by_name_and_named_by_id(o: &Opened) {
    let s = &o.store;
    for user in ["Alice", "bob"] {
        s.add_account(user, &plain("pw"), 1).await.unwrap().unwrap();
    }
    s.set_access("bob", 0).await.unwrap();
    s.create_character(1, &new("Raven")).await.unwrap().unwrap();
    let alice = s
        .account_by_name("ALICE")
        .await
        .unwrap()
        .expect("either case");
    assert_eq!(
        (
            alice.user_id,
            alice.username.as_str(),
            alice.access,
            alice.characters
        ),
        (1, "Alice", 1, 1)
    );
    let bob = s.account_by_name("bob").await.unwrap().expect("bob");
    assert_eq!((bob.user_id, bob.access, bob.characters), (2, 0, 0));
    assert_eq!(s.account_by_name("carol").await.unwrap(), None);
    // Unknown ids are left out, repeated ones named once, the answer is by id.
    let names = s.account_names(&[2, 99, 1, 2]).await.unwrap();
    assert_eq!(names, [(1, "Alice".to_owned()), (2, "bob".to_owned())]);
    assert!(s.account_names(&[]).await.unwrap().is_empty());
    // More ids than one query binds: every batch is asked.
    let many: Vec<u32> = (3..3 + store::ID_BATCH as u32 * 2).chain([1, 2]).collect();
    assert_eq!(s.account_names(&many).await.unwrap(), names);
    assert!(s.delete_account("alice").await.unwrap());
    assert_eq!(s.account_by_name("Alice").await.unwrap(), None);
    assert_eq!(
        s.account_names(&[1, 2]).await.unwrap(),
        [(2, "bob".to_owned())]
    );
}

async fn characters_fill_slots_and_keep_names_unique(o: &Opened) {
    let s = &o.store;
    for user in ["a", "b"] {
        s.add_account(user, &plain("pw"), 1).await.unwrap().unwrap();
    }
    let raven = s.create_character(1, &new("Raven")).await.unwrap().unwrap();
    let crow = NewCharacter {
        zone: 7,
        race: 0,
        ..new("Crow")
    };
    s.create_character(1, &crow).await.unwrap().unwrap();
    assert_eq!(
        s.create_character(2, &new("rAVEN")).await.unwrap(),
        Err(CreateError::NameTaken)
    );
    let bad = NewCharacter {
        face: 64,
        ..new("Bad")
    };
    assert_eq!(
        s.create_character(1, &bad).await.unwrap(),
        Err(CreateError::InvalidValue)
    );
    s.create_character(1, &new("Rook")).await.unwrap().unwrap();
    assert_eq!(
        s.create_character(1, &new("Jay")).await.unwrap(),
        Err(CreateError::TooManyChars)
    );
    let list = s.characters(1).await.unwrap();
    let names: Vec<_> = list.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["Raven", "Crow", "Rook"]);
    let r = &list[0];
    assert_eq!(r.char_id, raven);
    assert_eq!((r.race, r.stone, r.hair, r.face), (1, 2, 3, 4));
    assert_eq!((r.level, r.job, r.map), (1, 0, 1));
    assert_eq!((r.x, r.y), (520_000.0, 520_000.0));
    assert_eq!(r.items, [0, 29, 0, 0, 0, 0, 1, 0]);
    assert_eq!((r.hp, r.mp, r.stats.strength), (100, 50, 15));
    assert_eq!(list[1].map, 7);
    assert_eq!(s.character(1, raven).await.unwrap(), Ok(r.clone()));
    assert_eq!(s.character(2, raven).await.unwrap(), Err(NotFound));
    assert!(s.characters(2).await.unwrap().is_empty());
}

async fn characters_are_deleted_and_saved(o: &Opened) {
    let s = &o.store;
    s.add_account("a", &plain("pw"), 1).await.unwrap().unwrap();
    let ids: Vec<u64> = {
        let mut ids = Vec::new();
        for name in ["One", "Two", "Three"] {
            ids.push(s.create_character(1, &new(name)).await.unwrap().unwrap());
        }
        ids
    };
    assert_eq!(s.delete_character(2, ids[0]).await.unwrap(), Err(NotFound));
    assert_eq!(
        s.delete_character(1, ids[0]).await.unwrap(),
        Ok("One".to_owned())
    );
    assert_eq!(s.delete_character(1, ids[0]).await.unwrap(), Err(NotFound));
    let names: Vec<_> = s
        .characters(1)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["Two", "Three"], "later slots move up");
    // The name and the slot are free again; ids are not reused.
    let again = s.create_character(1, &new("one")).await.unwrap().unwrap();
    assert!(!ids.contains(&again));
    let state = CharState {
        char_id: ids[1],
        map: 4,
        x: 1234.5,
        y: 678.25,
        hp: 77,
        mp: 33,
    };
    let gone = CharState {
        char_id: ids[0],
        ..state
    };
    s.save_characters(&[state, gone]).await.unwrap();
    let c = s.character(1, ids[1]).await.unwrap().unwrap();
    assert_eq!((c.map, c.x, c.y, c.hp, c.mp), (4, 1234.5, 678.25, 77, 33));
}

/// Accounts 1 ("a", access `access`) and 2 ("b"), whose sessions the
/// tests open.
async fn two_accounts(o: &Opened, access: u32) {
    for (name, access) in [("a", access), ("b", 1)] {
        let added = o.store.add_account(name, &plain("pw"), access).await;
        added.unwrap().unwrap();
    }
}

async fn sessions_follow_the_stages(o: &Opened) {
    two_accounts(o, 2).await;
    let s = &o.sessions;
    let id = s.create(1, 2, &sha("pw")).await.unwrap();
    assert_ne!(id, 0);
    let info = s.join(id, &sha("pw")).await.unwrap().unwrap();
    assert_eq!(
        (info.user_id, info.access, info.stage),
        (1, 2, Stage::LoggedIn)
    );
    assert_eq!(
        s.join(id, &sha("other")).await.unwrap(),
        Err(JoinError::InvalidPassword)
    );
    assert_eq!(
        s.join(id, &md5("pw")).await.unwrap(),
        Err(JoinError::InvalidPassword)
    );
    assert_eq!(
        s.join(id.wrapping_add(1), &sha("pw")).await.unwrap(),
        Err(JoinError::InvalidPassword)
    );
    assert_eq!(
        s.select_char(id, 1, 10).await.unwrap(),
        Err(SessionError::WrongStage)
    );
    s.select_server(id).await.unwrap().unwrap();
    assert_eq!(s.get(id).await.unwrap().unwrap().stage, Stage::CharSelect);
    assert_eq!(
        s.select_char(id, 2, 10).await.unwrap(),
        Err(SessionError::WrongUser)
    );
    s.select_char(id, 1, 10).await.unwrap().unwrap();
    let info = s.join(id, &sha("pw")).await.unwrap().unwrap();
    assert_eq!((info.stage, info.char_id), (Stage::Map, Some(10)));
    assert_eq!(
        s.select_server(id).await.unwrap(),
        Err(SessionError::WrongStage)
    );
    s.back_to_char_select(id).await.unwrap().unwrap();
    let view = s.get(id).await.unwrap().unwrap();
    assert_eq!((view.stage, view.char_id), (Stage::CharSelect, None));
    assert_eq!(s.remove(id).await.unwrap(), Some(1));
    assert_eq!(s.remove(id).await.unwrap(), None);
    assert_eq!(s.get(id).await.unwrap(), Err(SessionError::Unknown));
    // An account's session ends by its user id too (a ban), whatever its
    // stage; the other account's stays.
    let a = s.create(1, 2, &sha("pw")).await.unwrap();
    let b = s.create(2, 1, &sha("pw")).await.unwrap();
    s.select_server(a).await.unwrap().unwrap();
    assert_eq!(s.remove_account(1).await.unwrap(), Some(a));
    assert_eq!(s.remove_account(1).await.unwrap(), None);
    assert_eq!(s.get(a).await.unwrap(), Err(SessionError::Unknown));
    assert!(!s.refresh(a).await.unwrap(), "its refresh is refused");
    assert!(s.refresh(b).await.unwrap());
}

async fn sessions_expire_and_are_replaced(o: &Opened) {
    two_accounts(o, 1).await;
    let s = &o.sessions;
    let first = s.create(1, 1, &sha("pw")).await.unwrap();
    let second = s.create(1, 1, &sha("pw")).await.unwrap();
    assert_ne!(first, second);
    assert_eq!(
        s.join(first, &sha("pw")).await.unwrap(),
        Err(JoinError::InvalidPassword),
        "a new login replaces the old session"
    );
    assert!(s.join(second, &sha("pw")).await.unwrap().is_ok());
    let other = s.create(2, 1, &sha("pw")).await.unwrap();
    // Refreshed half-way, `second` outlives `other`.
    tokio::time::sleep(TTL / 2).await;
    assert!(s.refresh(second).await.unwrap());
    tokio::time::sleep(TTL * 2 / 3).await;
    assert!(s.join(second, &sha("pw")).await.unwrap().is_ok());
    assert_eq!(
        s.join(other, &sha("pw")).await.unwrap(),
        Err(JoinError::TimeOut)
    );
    assert_eq!(
        s.join(other, &sha("pw")).await.unwrap(),
        Err(JoinError::InvalidPassword),
        "removed on that lookup"
    );
    assert!(!s.refresh(other).await.unwrap());
    tokio::time::sleep(TTL).await;
    assert_eq!(s.purge_expired(Duration::ZERO).await.unwrap(), 1);
    assert_eq!(s.get(second).await.unwrap(), Err(SessionError::Unknown));
}

/// Two stores on one database race to create the same name: one wins, the
/// other is told NAME_TAKEN, and the account gets one character.
async fn race_for_a_name(db: &TestDb) {
    let roomy = StoreOptions {
        max_chars_per_account: 32,
        ..options()
    };
    let a = store::open(&db.url(), roomy).await.unwrap();
    let b = store::open(&db.url(), roomy).await.unwrap();
    a.store
        .add_account("a", &plain("pw"), 1)
        .await
        .unwrap()
        .unwrap();
    a.store
        .add_account("b", &plain("pw"), 1)
        .await
        .unwrap()
        .unwrap();
    for round in 0..10 {
        let twin = new(&format!("Twin{round}"));
        let (x, y) = tokio::join!(
            a.store.create_character(1, &twin),
            b.store.create_character(2, &twin),
        );
        let mut results = [x.unwrap(), y.unwrap()];
        results.sort_by_key(|r| r.is_err());
        assert!(results[0].is_ok(), "{results:?}");
        assert_eq!(results[1], Err(CreateError::NameTaken), "{results:?}");
    }
    let total =
        a.store.characters(1).await.unwrap().len() + a.store.characters(2).await.unwrap().len();
    assert_eq!(total, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_concurrent_creates_of_one_name() {
    race_for_a_name(&TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_creates_of_one_name() {
    if let Some(db) = TestDb::postgres().await {
        race_for_a_name(&db).await;
    }
}

/// A database migrated by a newer binary is refused, with one line.
async fn refuses_a_newer_schema(db: &TestDb) {
    let opened = store::open(&db.url(), options()).await.unwrap();
    opened
        .store
        .add_account("keep", &plain("pw"), 1)
        .await
        .unwrap()
        .unwrap();
    drop(opened);
    sqlx::any::install_default_drivers();
    let url = match &db.url() {
        DatabaseUrl::Sqlite(path) => format!("sqlite:{}", path.display()),
        _ => db.url_text(),
    };
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (999, 'from the future', TRUE, $1, 0)",
    )
    .bind(vec![0u8; 48])
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let err = match store::open(&db.url(), options()).await {
        Err(e) => e,
        Ok(_) => panic!("a newer schema must be refused"),
    };
    assert!(
        matches!(
            err,
            StoreError::TooNew {
                found: 999,
                known: 1
            }
        ),
        "{err}"
    );
    let line = err.to_string();
    assert!(!line.contains('\n'));
    assert!(line.contains("newer than this binary"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_refuses_a_newer_schema() {
    refuses_a_newer_schema(&TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_refuses_a_newer_schema() {
    if let Some(db) = TestDb::postgres().await {
        refuses_a_newer_schema(&db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_file_keeps_its_rows_across_opens() {
    let db = TestDb::sqlite();
    {
        let o = store::open(&db.url(), options()).await.unwrap();
        o.store
            .add_account("keep", &plain("pw"), 3)
            .await
            .unwrap()
            .unwrap();
        let id = o
            .store
            .create_character(1, &new("Kept"))
            .await
            .unwrap()
            .unwrap();
        let state = CharState {
            char_id: id,
            map: 2,
            x: 5.0,
            y: 6.0,
            hp: 1,
            mp: 2,
        };
        o.store.save_characters(&[state]).await.unwrap();
    }
    let o = store::open(&db.url(), options()).await.unwrap();
    assert!(matches!(
        o.store.login("keep", &sha("pw"), false).await.unwrap(),
        LoginCheck::Ok { access: 3, .. }
    ));
    let c = &o.store.characters(1).await.unwrap()[0];
    assert_eq!((c.name.as_str(), c.map, c.x, c.y), ("Kept", 2, 5.0, 6.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_are_stored_only_as_argon2id_hashes() {
    let db = TestDb::sqlite();
    let o = store::open(&db.url(), options()).await.unwrap();
    o.store
        .add_account("a", &plain("admin"), 1)
        .await
        .unwrap()
        .unwrap();
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url_text()).await.unwrap();
    let row: (String, String) = sqlx::query_as("SELECT sha256_hash, md5_hash FROM accounts")
        .fetch_one(&pool)
        .await
        .unwrap();
    for phc in [&row.0, &row.1] {
        assert!(phc.starts_with("$argon2id$"), "{phc}");
    }
    let sha_hex = String::from_utf8(
        b"8c6976e5b5410415bde908bd4dee15dfb167a9c873fc4bb8a81f6f2ab448a918".to_vec(),
    )
    .unwrap();
    assert!(!row.0.contains(&sha_hex) && !row.1.contains("21232f297a57a5a7"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_refreshes_write_at_most_once_per_interval() {
    use packet_service::backend::store::sql::{PgSessions, SqlStore};
    use packet_service::backend::store::{Sessions, Store};
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let store = std::sync::Arc::new(SqlStore::open(&db.url(), 5).await.unwrap());
    store
        .add_account("a", &plain("pw"), 1)
        .await
        .unwrap()
        .unwrap();
    // A gap of 2 s: far longer than the 20 refreshes take on a loaded box.
    let ttl = Duration::from_secs(20);
    let sessions = PgSessions::new(store.clone(), ttl);
    let id = sessions.create(1, 1, &sha("pw")).await.unwrap();
    // Right after login the stored expiry is fresh: ALIVE after ALIVE
    // writes nothing.
    for _ in 0..20 {
        assert!(sessions.refresh(id).await.unwrap());
    }
    assert_eq!(sessions.refresh_writes(), 0);
    // A tenth of the TTL later one refresh writes, the next ones do not.
    tokio::time::sleep(ttl / 10 + Duration::from_millis(200)).await;
    for _ in 0..20 {
        assert!(sessions.refresh(id).await.unwrap());
    }
    assert_eq!(sessions.refresh_writes(), 1);
    assert!(!sessions.refresh(id.wrapping_add(1)).await.unwrap());
}
