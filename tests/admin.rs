//! The admin service (`proto/admin.proto`) as an operator uses it: the real
//! `packet-service admin` binary against a gateway with its embedded
//! backend — the list shows both players, a kick closes one (`kicked`) and
//! the other sees it removed, an announcement reaches both, a ban refuses
//! the next login, a wrong token is refused, irose players are reached in
//! their own ids and layouts — and against a standalone
//! backend shared by two gateways, where a kick and an announcement reach
//! a player on the other gateway.

mod util;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use packet_service::backend::admin_cli::with_token;
use packet_service::conn::wire::PacketIds;
use packet_service::pb::admin::{admin_client::AdminClient, ListPlayersRequest};
use packet_service::protocol::packet_type::{DialectId, PacketType};
use packet_service::protocol::packets::{
    Alive, AnnounceChat, LoginReply, LoginResult, RemoveObject,
};
use packet_service::protocol::CodecKind;
use packet_service::server::ServerHandle;
use util::flow::{enter_world, join, list, login_phase, recv_skipping, Player};
use util::process::Process;
use util::{start, test_config, Client};

/// What `packet-service admin` printed and how it exited.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `packet-service admin ARGS` against `addr`, with `token` (a file)
/// when given, and none of the environment's admin settings.
fn admin(addr: SocketAddr, token: Option<&Path>, args: &[&str]) -> Ran {
    let mut command = Command::new(env!("CARGO_BIN_EXE_packet-service"));
    command
        .arg("admin")
        .args(args)
        .args(["--admin-listen", &addr.to_string()])
        .env_remove("ADMIN_LISTEN")
        .env_remove("ADMIN_TOKEN_FILE")
        .env_remove("CONFIG_FILE")
        .stdin(Stdio::null());
    if let Some(token) = token {
        command.arg("--admin-token-file").arg(token);
    }
    let out = command.output().expect("run packet-service admin");
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `admin` that must succeed; its stdout.
#[track_caller]
fn admin_ok(addr: SocketAddr, token: Option<&Path>, args: &[&str]) -> String {
    let ran = admin(addr, token, args);
    assert_eq!(ran.code, Some(0), "admin {args:?}: {}", ran.stderr);
    ran.stdout
}

/// A file holding `token`, unique to this test process and call.
fn token_file(token: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!("ps-admin-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("token-{}", NEXT.fetch_add(1, Ordering::Relaxed)));
    std::fs::write(&path, format!("{token}\n")).expect("write the token");
    path
}

/// One series of a gateway's metrics.
fn metric(gw: &ServerHandle, series: &str) -> f64 {
    util::metric(&gw.metrics().encode(), series)
}

/// Checks `admin_actions_total` for each `(kind, result, count)`.
#[track_caller]
fn assert_actions(gw: &ServerHandle, expected: &[(&str, &str, f64)]) {
    for (kind, result, n) in expected {
        let series =
            format!("packet_service_admin_actions_total{{kind=\"{kind}\",result=\"{result}\"}}");
        assert_eq!(metric(gw, &series), *n, "{series}");
    }
}

/// Reads what the gateway still sends until it closes the connection;
/// fails if it stays open past the deadline.
#[track_caller]
fn read_until_closed(c: &mut Client) {
    for _ in 0..64 {
        if let Err(e) = c.try_recv() {
            assert!(!e.contains("timed out"), "still open: {e}");
            return;
        }
    }
    panic!("the connection kept sending instead of closing");
}

/// The next announcement a player's map connection receives.
#[track_caller]
fn announcement(p: &mut Player) -> AnnounceChat {
    recv_skipping(&mut p.map, PacketType::PAKSW_ANNOUNCE_CHAT)
        .decode()
        .expect("an announcement decodes")
}

/// The entity a player's map connection is told is gone.
#[track_caller]
fn removed(p: &mut Player) -> u16 {
    let r: RemoveObject = recv_skipping(&mut p.map, PacketType::PAKWC_REMOVE_OBJECT)
        .decode()
        .expect("REMOVE_OBJECT decodes");
    r.id
}

/// A gateway with the embedded backend, accounts created at first login,
/// these packet ids; and its admin address.
fn admin_gateway(ids: PacketIds) -> (ServerHandle, SocketAddr) {
    let mut config = test_config(CodecKind::Rose);
    config.auto_create_accounts = true;
    config.packet_ids = ids;
    let gw = start(config);
    let addr = gw.admin_addr().expect("the embedded backend serves admin");
    (gw, addr)
}

#[test]
fn an_operator_lists_kicks_announces_and_bans() {
    let (gw, addr) = admin_gateway(PacketIds::One(DialectId::Osirose));
    assert!(addr.ip().is_loopback());
    let mut alice = enter_world(gw.addr(), CodecKind::Rose, "alice", "Alice");
    let mut bobby = enter_world(gw.addr(), CodecKind::Rose, "bobby", "Bobby");

    // The list shows both, with account, character, map and gateway.
    let list = admin_ok(addr, None, &["players"]);
    let port = gw.addr().port().to_string();
    for (account, character) in [("alice", "Alice"), ("bobby", "Bobby")] {
        let line = list
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(character))
            .unwrap_or_else(|| panic!("{character} missing from\n{list}"));
        assert!(line.starts_with(account), "{line}");
        assert!(line.contains(&format!("127.0.0.1:{port}")), "{line}");
    }
    assert!(list.ends_with("2 players\n"), "{list}");

    // An announcement reaches both.
    let said = admin_ok(addr, None, &["announce", "restart", "in", "5", "minutes"]);
    assert_eq!(said, "announced to 2 players\n");
    for p in [&mut alice, &mut bobby] {
        let a = announcement(p);
        assert_eq!(
            (a.message.as_str(), a.name.as_str()),
            ("restart in 5 minutes", "server")
        );
    }
    // One map only: nobody is on map 77.
    assert_eq!(
        admin_ok(addr, None, &["announce", "hello", "--map", "77"]),
        "announced to 0 players\n"
    );

    // A kick closes Bobby as `kicked`; Alice sees him removed.
    assert_eq!(admin_ok(addr, None, &["kick", "bobby"]), "kicked Bobby\n");
    read_until_closed(&mut bobby.map);
    assert_eq!(removed(&mut alice), bobby.entity);
    util::wait_until("the kick counted as a close", || {
        metric(
            &gw,
            "packet_service_connections_closed_total{reason=\"kicked\"}",
        ) == 1.0
    });
    // Nobody by that name any more: refused, exit 1.
    let again = admin(addr, None, &["kick", "Bobby"]);
    assert_eq!(again.code, Some(1), "{}", again.stderr);
    assert!(again.stderr.contains("nobody named"), "{}", again.stderr);
    // Named by the account, the kick also stands for a join still loading;
    // a name that is no account says nothing of one.
    let account = admin(addr, None, &["kick", "bobby"]);
    assert_eq!(account.code, Some(1), "{}", account.stderr);
    assert!(
        account
            .stderr
            .contains("any join of the account still loading will be refused"),
        "{}",
        account.stderr
    );
    let nobody = admin(addr, None, &["kick", "zed"]);
    assert_eq!(nobody.code, Some(1), "{}", nobody.stderr);
    assert!(!nobody.stderr.contains("loading"), "{}", nobody.stderr);

    // A ban kicks Alice and refuses her next login.
    let banned = admin_ok(addr, None, &["ban", "alice"]);
    assert_eq!(banned, "banned \"alice\", kicked Alice\n");
    read_until_closed(&mut alice.map);
    let mut login = Client::connect(gw.addr(), CodecKind::Rose);
    login.accept();
    let refused: LoginReply = login.login("alice", "pw");
    assert_eq!(refused.result, LoginResult::NoRightToConnect as u8);
    assert!(admin_ok(addr, None, &["players"]).ends_with("0 players\n"));

    // Every call was counted by kind and result.
    assert_actions(
        &gw,
        &[
            ("list", "done", 2.0),
            ("announce", "done", 2.0),
            ("kick", "done", 1.0),
            ("kick", "not_found", 3.0),
            ("ban", "done", 1.0),
        ],
    );
}

/// A ban ends the account's session at character select too: no world
/// player to kick, so the gateway learns at the connection's next session
/// refresh (answered expired) and closes it as `session_expired`. A refresh
/// goes with the first ALIVE at least a refresh interval (60 s) after the
/// last, so the close comes at most that plus one ALIVE period after the
/// ban; here the first ALIVE after the ban is the connection's first
/// refresh.
#[test]
fn a_ban_closes_a_connection_at_character_select() {
    let (gw, addr) = admin_gateway(PacketIds::One(DialectId::Osirose));
    let at_select = |user: &str| {
        let session = login_phase(gw.addr(), CodecKind::Rose, user, "pw");
        let mut c = Client::connect(gw.addr(), CodecKind::Rose);
        assert_eq!(join(&mut c, session, "pw").result, 0, "{user} joins");
        assert!(list(&mut c).characters.is_empty());
        c
    };
    let mut carol = at_select("carol");
    let mut dave = at_select("dave");

    assert_eq!(
        admin_ok(addr, None, &["ban", "carol"]),
        "banned \"carol\" (not in the world)\n"
    );
    carol.send(&Alive);
    read_until_closed(&mut carol);
    util::wait_until("the close counted as an expired session", || {
        metric(
            &gw,
            "packet_service_connections_closed_total{reason=\"session_expired\"}",
        ) == 1.0
    });
    // The account not banned refreshes the same way and stays. A refresh
    // is fire-and-forget: wait for Dave's to come back before asking.
    let refreshes =
        "packet_service_rpc_duration_seconds_count{service=\"auth\",method=\"Refresh\"}";
    let before = metric(&gw, refreshes);
    dave.send(&Alive);
    util::wait_until("dave's refresh answered", || {
        metric(&gw, refreshes) >= before + 1.0
    });
    assert!(list(&mut dave).characters.is_empty(), "dave still served");
    assert_eq!(
        metric(
            &gw,
            "packet_service_connections_closed_total{reason=\"session_expired\"}",
        ),
        1.0
    );
}

#[test]
fn announcements_and_kicks_reach_both_client_families() {
    let (gw, addr) = admin_gateway(PacketIds::Auto);
    let mut oscar = enter_world(gw.addr(), CodecKind::Rose, "oscar", "Oscar");
    let mut irene = util::irose::enter_world(gw.addr(), CodecKind::Rose, "irene", "Irene");
    assert_eq!(
        admin_ok(addr, None, &["announce", "to", "all"]),
        "announced to 2 players\n"
    );
    assert_eq!(announcement(&mut oscar).message, "to all");
    let heard = recv_skipping(&mut irene.map, PacketType::PAKSW_ANNOUNCE_CHAT);
    assert_eq!(heard.id, 0x702, "the irose id of the announcement");
    let heard: AnnounceChat = heard.decode().expect("irose announcement decodes");
    assert_eq!(heard.message, "to all");
    // Irene kicked: Oscar, an osIROSE client, sees her removed.
    assert_eq!(admin_ok(addr, None, &["kick", "irene"]), "kicked Irene\n");
    read_until_closed(&mut irene.map);
    assert_eq!(removed(&mut oscar), irene.entity);
}

#[test]
fn the_admin_port_refuses_a_wrong_token() {
    let right = token_file("the-right-token");
    let mut config = test_config(CodecKind::Rose);
    config.admin_token_file = Some(right.clone());
    let gw = start(config);
    let addr = gw.admin_addr().expect("admin serves");

    let wrong = admin(addr, Some(&token_file("not-the-token")), &["players"]);
    assert_eq!(wrong.code, Some(4), "{}", wrong.stderr);
    assert!(
        wrong.stderr.contains("refused the token"),
        "{}",
        wrong.stderr
    );
    let none = admin(addr, None, &["announce", "hi"]);
    assert_eq!(none.code, Some(4), "{}", none.stderr);
    assert!(admin_ok(addr, Some(&right), &["players"]).ends_with("0 players\n"));

    // The generated client sees UNAUTHENTICATED for a wrong token.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let status = runtime.block_on(async {
        let mut client = AdminClient::connect(format!("http://{addr}"))
            .await
            .expect("connect");
        client
            .list_players(with_token(ListPlayersRequest {}, Some(b"the-right-tokeN")))
            .await
            .expect_err("a wrong token is refused")
    });
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert_actions(
        &gw,
        &[
            ("list", "unauthenticated", 2.0),
            ("announce", "unauthenticated", 1.0),
            ("list", "done", 1.0),
        ],
    );
}

#[test]
fn a_service_that_is_not_there_exits_3() {
    let nobody = util::free_addr();
    let ran = admin(nobody, None, &["players"]);
    assert_eq!(ran.code, Some(3), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("cannot reach the admin service"),
        "{}",
        ran.stderr
    );
    assert!(ran.stdout.is_empty());
}

#[test]
fn an_admin_port_off_loopback_needs_a_token_file() {
    let mut config = test_config(CodecKind::Rose);
    config.admin_listen = "0.0.0.0:0".parse().expect("addr");
    let err = packet_service::server::Server::build(config)
        .err()
        .expect("refused without a token file")
        .to_string();
    assert!(err.contains("not on loopback"), "{err}");
    assert!(err.contains("--admin-token-file"), "{err}");
    assert!(!err.contains('\n'), "{err}");
}

#[test]
fn the_standalone_backend_refuses_an_exposed_admin_port_in_one_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_packet-service"))
        .args(["backend", "--backend-listen", "127.0.0.1:0"])
        .args(["--database", "memory", "--admin-listen", "0.0.0.0:0"])
        .env_remove("ADMIN_TOKEN_FILE")
        .env_remove("CONFIG_FILE")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .output()
        .expect("run the backend");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let refusals: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("not on loopback"))
        .collect();
    assert_eq!(refusals.len(), 1, "{stderr}");
    assert!(refusals[0].contains("--admin-token-file"), "{stderr}");
}

/// A gateway whose three services are the standalone backend at `backend`.
fn gateway_of(backend: SocketAddr) -> ServerHandle {
    let mut config = test_config(CodecKind::Rose);
    let url = format!("http://{backend}");
    config.auth_url = Some(vec![url.clone()]);
    config.character_url = Some(vec![url.clone()]);
    config.world_url = Some(url);
    start(config)
}

#[test]
fn kicks_and_announcements_reach_players_on_every_gateway_of_the_world() {
    let listen = util::free_addr();
    let backend = Process::backend(listen, "memory");
    let addr = backend.addr_after("admin service on ", "(");
    let (gw1, gw2) = (gateway_of(listen), gateway_of(listen));
    assert_eq!(gw1.admin_addr(), None, "no embedded backend, no admin port");
    let mut alice = enter_world(gw1.addr(), CodecKind::Rose, "alice", "Alice");
    let mut bobby = enter_world(gw2.addr(), CodecKind::Rose, "bobby", "Bobby");

    // Each is listed with the gateway it came through.
    let list = admin_ok(addr, None, &["players"]);
    for (character, gw) in [("Alice", &gw1), ("Bobby", &gw2)] {
        let line = list
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(character))
            .unwrap_or_else(|| panic!("{character} missing from\n{list}"));
        let gateway = format!("127.0.0.1:{} ", gw.addr().port());
        assert!(line.contains(&gateway), "{line} names {gateway}");
    }

    assert_eq!(
        admin_ok(addr, None, &["announce", "maintenance", "soon"]),
        "announced to 2 players\n"
    );
    for p in [&mut alice, &mut bobby] {
        assert_eq!(announcement(p).message, "maintenance soon");
    }

    // Bobby, on the second gateway, is kicked; Alice on the first sees it.
    assert_eq!(admin_ok(addr, None, &["kick", "Bobby"]), "kicked Bobby\n");
    read_until_closed(&mut bobby.map);
    assert_eq!(removed(&mut alice), bobby.entity);
    util::wait_until("gateway 2 to count the kick", || {
        metric(
            &gw2,
            "packet_service_connections_closed_total{reason=\"kicked\"}",
        ) == 1.0
    });
    assert_eq!(
        metric(
            &gw1,
            "packet_service_connections_closed_total{reason=\"kicked\"}"
        ),
        0.0
    );
}
