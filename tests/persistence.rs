//! Persistence end to end: a real client through a real gateway keeps its
//! account and character across a restart; `kill -9` of a backend in the
//! middle of creates and saves leaves a consistent database; two backend
//! processes on one PostgreSQL serve each other's sessions.

mod util;

use std::net::SocketAddr;
use std::time::Duration;

use packet_service::pb::auth::{self as auth, auth_client::AuthClient};
use packet_service::pb::character::{self as ch, character_client::CharacterClient};
use packet_service::pb::world::{self as world, downstream, upstream};
use packet_service::protocol::packet_type::PacketType;
use packet_service::protocol::packets::{
    MouseCmd, MouseCmdBroadcast, SelectCharReply, SelectCharReq, SwitchServer,
};
use packet_service::protocol::CodecKind;
use tonic::transport::Channel;
use util::db::TestDb;
use util::link::Link;
use util::process::Process;
use util::{flow, sha256_hex, start, test_config, Client};

const CODEC: CodecKind = CodecKind::Plain;

#[test]
fn accounts_and_characters_survive_a_gateway_restart() {
    let db = TestDb::sqlite();
    let mut config = test_config(CODEC);
    config.database = db.url();
    config.auto_create_accounts = true;
    let gateway = start(config.clone());
    let addr = gateway.addr();
    let mut player = flow::enter_world(addr, CODEC, "keeper", "Keeper");
    player.map.send(&MouseCmd {
        target_id: 0,
        x: 5_100.5,
        y: 6_200.25,
        z: 0,
    });
    let moved: MouseCmdBroadcast =
        flow::recv_skipping(&mut player.map, PacketType::PAKWC_MOUSE_CMD)
            .decode()
            .expect("broadcast decodes");
    assert_eq!((moved.x, moved.y), (5_100.5, 6_200.25));
    drop(player);
    gateway.stop().expect("gateway stops");

    // Again, without auto-create: the account is in the file now.
    config.auto_create_accounts = false;
    let gateway = start(config);
    let addr = gateway.addr();
    let mut wrong = Client::connect(addr, CODEC);
    wrong.accept();
    assert_ne!(
        wrong.login("keeper", "not-pw").result,
        0,
        "wrong password refused"
    );
    let session_id = flow::login_phase(addr, CODEC, "keeper", "pw");
    let mut chars = Client::connect(addr, CODEC);
    assert_eq!(flow::join(&mut chars, session_id, "pw").result, 0);
    let list = flow::list(&mut chars);
    assert_eq!(list.characters.len(), 1);
    assert_eq!(list.characters[0].name, "Keeper");
    chars.send(&SelectCharReq {
        slot: 0,
        run_mode: 0,
        ride_mode: 0,
        name: "Keeper".into(),
    });
    let _: SwitchServer = chars.recv_as();
    let mut map = Client::connect(addr, CODEC);
    assert_eq!(flow::join(&mut map, session_id, "pw").result, 0);
    let selected: SelectCharReply = map.recv_as();
    assert_eq!(selected.name, "Keeper");
    assert_eq!(
        (selected.map, selected.x, selected.y),
        (1, 5_100.5, 6_200.25),
        "the character re-enters where it left"
    );
    gateway.stop().expect("gateway stops");
}

// ---- backend processes --------------------------------------------------------

/// A `packet-service backend` process, killed (SIGKILL) when dropped.
struct BackendProcess {
    proc: Process,
    addr: SocketAddr,
}

impl BackendProcess {
    fn start(database: &str, extra: &[&str]) -> BackendProcess {
        let addr = util::free_addr();
        let args: Vec<&str> = ["--database", database, "--auto-create-accounts"]
            .iter()
            .chain(extra)
            .copied()
            .collect();
        let proc = Process::backend_with(addr, &args);
        BackendProcess { proc, addr }
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .expect("url")
            .connect()
            .await
            .expect("connect to the backend")
    }

    fn kill_9(&mut self) {
        self.proc.kill();
    }
}

fn login_req(user: &str, pw: &str) -> auth::LoginRequest {
    auth::LoginRequest {
        username: user.into(),
        digest: sha256_hex(pw),
        digest_kind: auth::DigestKind::Sha256Hex.into(),
        peer: "127.0.0.1:1".into(),
    }
}

fn create_req(user_id: u32, name: &str) -> ch::CreateRequest {
    ch::CreateRequest {
        user_id,
        name: name.into(),
        race: 0,
        stone: 1,
        hair: 2,
        face: 3,
        weapon: 0,
        zone: 0,
    }
}

/// The Joined answer for a join (skipping other traffic).
async fn joined_world(link: &mut Link) -> world::Joined {
    loop {
        if let downstream::Kind::Joined(j) = link.next().await {
            return j;
        }
    }
}

/// Joins the world on `link` with a selected character; the join must
/// succeed.
async fn join_world(link: &mut Link, session_id: u32, user_id: u32, char_id: u64) {
    link.send(upstream::Kind::Join(world::Join {
        session_id,
        user_id,
        char_id,
        join_id: 0,
        layout: world::Layout::Osirose.into(),
    }))
    .await;
    assert_eq!(
        joined_world(link).await.result,
        world::JoinResult::Ok as i32
    );
}

/// Logs in (auto-created), selects the server, creates and selects a
/// character; the (session, user, character).
async fn ready(ch: &Channel, user: &str, name: &str) -> (u32, u32, u64) {
    let mut a = AuthClient::new(ch.clone());
    let mut c = CharacterClient::new(ch.clone());
    let login = a
        .login(login_req(user, "pw"))
        .await
        .expect("login")
        .into_inner();
    assert_eq!(login.result, 0, "login of {user}");
    let select = auth::SelectServerRequest {
        session_id: login.session_id,
        server_id: 1,
        channel_id: 1,
    };
    assert_eq!(
        a.select_server(select)
            .await
            .expect("select")
            .into_inner()
            .result,
        0
    );
    let created = c
        .create(create_req(login.user_id, name))
        .await
        .expect("create")
        .into_inner();
    assert_eq!(created.result, 0, "create {name}");
    let select = ch::SelectRequest {
        user_id: login.user_id,
        session_id: login.session_id,
        char_id: created.char_id,
    };
    assert_eq!(
        c.select(select).await.expect("select").into_inner().result,
        0
    );
    (login.session_id, login.user_id, created.char_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_creates_and_saves_leaves_a_consistent_database() {
    let db = TestDb::sqlite();
    let url = db.url_text();
    let mut backend = BackendProcess::start(&url, &["--save-interval", "1", "--max-chars", "32"]);
    let channel = backend.channel().await;
    let (session_id, user_id, char_id) = ready(&channel, "walker", "Walker").await;
    let mut link = Link::open(&channel).await;
    join_world(&mut link, session_id, user_id, char_id).await;
    // Walk and create characters concurrently; kill -9 while both run.
    let walker = tokio::spawn(async move {
        for step in 1..=100_000u32 {
            let cmd = MouseCmd {
                target_id: 0,
                x: step as f32,
                y: step as f32,
                z: 0,
            };
            if link.up.is_closed() {
                return;
            }
            link.packet(session_id, &cmd).await;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    let creator = {
        let channel = channel.clone();
        tokio::spawn(async move {
            let mut c = CharacterClient::new(channel.clone());
            let mut a = AuthClient::new(channel);
            for i in 0..100_000u32 {
                let user = format!("maker{}", i / 20);
                let Ok(login) = a.login(login_req(&user, "pw")).await else {
                    return;
                };
                let req = create_req(login.into_inner().user_id, &format!("M{i}"));
                if c.create(req).await.is_err() {
                    return;
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    backend.kill_9();
    walker.abort();
    let _ = creator.await;

    // Reopening applies no change, and every invariant holds.
    sqlx::any::install_default_drivers();
    let reopened = BackendProcess::start(&url, &[]);
    drop(reopened);
    let pool = sqlx::AnyPool::connect(&url).await.expect("open the file");
    let check: (String,) = sqlx::query_as("PRAGMA integrity_check")
        .fetch_one(&pool)
        .await
        .expect("integrity check");
    assert_eq!(check.0, "ok");
    let orphans: (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM inventory WHERE character_id NOT IN (SELECT id FROM characters)",
    )
    .fetch_one(&pool)
    .await
    .expect("orphans");
    assert_eq!(orphans.0, 0, "no inventory without its character");
    let half_made: (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM characters c WHERE \
         (SELECT COUNT(*) FROM inventory i WHERE i.character_id = c.id) != 2",
    )
    .fetch_one(&pool)
    .await
    .expect("inventories");
    assert_eq!(half_made.0, 0, "every character has its starting equipment");
    let gaps: (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM (SELECT account_id, COUNT(*) AS n, MAX(slot) AS top \
         FROM characters GROUP BY account_id) WHERE top != n - 1",
    )
    .fetch_one(&pool)
    .await
    .expect("slots");
    assert_eq!(gaps.0, 0, "slots are 0..n-1 per account");
    let made: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM characters")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert!(
        made.0 > 1,
        "creates ran before the kill ({} characters)",
        made.0
    );
    let walked: (f64, f64) = sqlx::query_as("SELECT x, y FROM characters WHERE name = 'Walker'")
        .fetch_one(&pool)
        .await
        .expect("walker");
    assert!(
        walked.0 == walked.1 && walked.0 >= 1.0 && walked.0.fract() == 0.0,
        "the periodic save stored one of the positions sent: {walked:?}"
    );
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_backends_on_one_postgres_serve_each_others_sessions() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let url = db.url_text();
    let a = BackendProcess::start(&url, &[]);
    let b = BackendProcess::start(&url, &[]);
    let (ca, cb) = (a.channel().await, b.channel().await);
    // Login through A; every later step through B.
    let login = AuthClient::new(ca.clone())
        .login(login_req("roamer", "pw"))
        .await
        .expect("login")
        .into_inner();
    assert_eq!(login.result, 0);
    let mut auth_b = AuthClient::new(cb.clone());
    let join = |digest: Vec<u8>| auth::JoinServerRequest {
        session_id: login.session_id,
        digest,
        digest_kind: auth::DigestKind::Sha256Hex.into(),
        peer: "127.0.0.1:2".into(),
    };
    let joined = auth_b
        .join_server(join(sha256_hex("pw")))
        .await
        .expect("join")
        .into_inner();
    assert_eq!(
        (joined.result, joined.user_id),
        (0, login.user_id),
        "joinable through B"
    );
    let wrong = auth_b
        .join_server(join(sha256_hex("nope")))
        .await
        .expect("join")
        .into_inner();
    assert_eq!(wrong.result, auth::JoinResult::InvalidPassword as i32);
    let select = auth::SelectServerRequest {
        session_id: login.session_id,
        server_id: 1,
        channel_id: 1,
    };
    assert_eq!(
        auth_b
            .select_server(select)
            .await
            .expect("select")
            .into_inner()
            .result,
        0
    );
    let mut chars_b = CharacterClient::new(cb.clone());
    let created = chars_b
        .create(create_req(login.user_id, "Roamer"))
        .await
        .expect("create")
        .into_inner();
    assert_eq!(created.result, 0);
    let select = ch::SelectRequest {
        user_id: login.user_id,
        session_id: login.session_id,
        char_id: created.char_id,
    };
    // Selected through A, entered through B's world.
    let selected = CharacterClient::new(ca.clone())
        .select(select)
        .await
        .expect("select")
        .into_inner();
    assert_eq!(selected.result, 0);
    let mut link = Link::open(&cb).await;
    join_world(&mut link, login.session_id, login.user_id, created.char_id).await;
    // A logout through B ends the session for A too.
    auth_b
        .logout(auth::LogoutRequest {
            session_id: login.session_id,
            reason: auth::LogoutReason::Logout.into(),
        })
        .await
        .expect("logout");
    let after = AuthClient::new(ca)
        .join_server(join(sha256_hex("pw")))
        .await
        .expect("join")
        .into_inner();
    assert_eq!(after.result, auth::JoinResult::InvalidPassword as i32);
}
