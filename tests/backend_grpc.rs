//! The embedded backend over real gRPC on loopback: every service through its
//! generated client. Stream messages are awaited with deadlines, never sleeps.

use std::net::SocketAddr;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tonic::transport::Channel;

mod util;

use packet_service::backend::{BackendConfig, EmbeddedBackend};
use packet_service::pb::auth::{self as auth, auth_client::AuthClient};
use packet_service::pb::character::{self as ch, character_client::CharacterClient};
use packet_service::pb::world::{self as world, downstream, upstream};
use packet_service::protocol::packet_type::{DialectId, PacketType};
use packet_service::protocol::packets::{
    ChangeMapReply, ChangeMapReq, MouseCmd, MouseCmdBroadcast, NormalChat, NormalChatBroadcast,
    Packet, RemoveObject, SelectCharReply, ShoutChat, ShoutChatBroadcast, WhisperChat,
    WhisperChatReply,
};
use util::link::Link;

/// How long any single expected message or reply may take.
const DEADLINE: Duration = Duration::from_secs(10);

fn sha256_hex(p: &str) -> Vec<u8> {
    Sha256::digest(p.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .into_bytes()
}

fn md5_hex_of_admin() -> Vec<u8> {
    b"21232f297a57a5a743894a0e4a801fc3".to_vec()
}

fn config() -> BackendConfig {
    BackendConfig {
        accounts: vec![
            ("admin".into(), "admin".into()),
            ("bob".into(), "bobpw".into()),
            ("carol".into(), "carolpw".into()),
        ],
        max_chars_per_account: 2,
        server_name: "Test".into(),
        ..BackendConfig::default()
    }
}

async fn start(config: BackendConfig) -> EmbeddedBackend {
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    EmbeddedBackend::start(config, listen).await.unwrap()
}

async fn channel(backend: &EmbeddedBackend) -> Channel {
    Channel::from_shared(format!("http://{}", backend.addr()))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn login_req(user: &str, digest: Vec<u8>, kind: auth::DigestKind) -> auth::LoginRequest {
    auth::LoginRequest {
        username: user.into(),
        digest,
        digest_kind: kind.into(),
        peer: "127.0.0.1:5555".into(),
    }
}

async fn login(a: &mut AuthClient<Channel>, user: &str, pw: &str) -> auth::LoginReply {
    a.login(login_req(user, sha256_hex(pw), auth::DigestKind::Sha256Hex))
        .await
        .unwrap()
        .into_inner()
}

async fn join(a: &mut AuthClient<Channel>, session_id: u32, pw: &str) -> auth::JoinServerReply {
    a.join_server(auth::JoinServerRequest {
        session_id,
        digest: sha256_hex(pw),
        digest_kind: auth::DigestKind::Sha256Hex.into(),
        peer: "127.0.0.1:5556".into(),
    })
    .await
    .unwrap()
    .into_inner()
}

async fn select_server(a: &mut AuthClient<Channel>, session_id: u32, channel_id: u32) -> i32 {
    select_on(a, session_id, 1, channel_id).await.result
}

/// A server select of `server_id` and `channel_id`: the whole reply.
async fn select_on(
    a: &mut AuthClient<Channel>,
    session_id: u32,
    server_id: u32,
    channel_id: u32,
) -> auth::SelectServerReply {
    a.select_server(auth::SelectServerRequest {
        session_id,
        server_id,
        channel_id,
    })
    .await
    .unwrap()
    .into_inner()
}

async fn create(c: &mut CharacterClient<Channel>, user_id: u32, name: &str) -> ch::CreateReply {
    c.create(ch::CreateRequest {
        user_id,
        name: name.into(),
        race: 1,
        stone: 1,
        hair: 2,
        face: 3,
        weapon: 0,
        zone: 0,
    })
    .await
    .unwrap()
    .into_inner()
}

async fn select_char(
    c: &mut CharacterClient<Channel>,
    user_id: u32,
    session_id: u32,
    char_id: u64,
) -> i32 {
    c.select(ch::SelectRequest {
        user_id,
        session_id,
        char_id,
    })
    .await
    .unwrap()
    .into_inner()
    .result
}

#[tokio::test]
async fn backend_login_results() {
    let backend = start(config()).await;
    let mut a = AuthClient::new(channel(&backend).await);

    let ok = login(&mut a, "admin", "admin").await;
    assert_eq!(ok.result, auth::LoginResult::Ok as i32);
    assert_eq!((ok.user_id, ok.access), (1, 1));
    assert_ne!(ok.session_id, 0);
    assert_eq!(ok.servers.len(), 1);
    assert_eq!((ok.servers[0].id, ok.servers[0].name.as_str()), (1, "Test"));
    assert_eq!(ok.servers[0].channels.len(), 1);
    assert_eq!(ok.servers[0].channels[0].id, 1);

    // MD5 in upper case, user name in another case.
    let md5 = a
        .login(login_req(
            "ADMIN",
            md5_hex_of_admin().to_ascii_uppercase(),
            auth::DigestKind::Md5Hex,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(md5.result, auth::LoginResult::Ok as i32);

    let wrong = login(&mut a, "admin", "nope").await;
    assert_eq!(wrong.result, auth::LoginResult::InvalidPassword as i32);
    assert_eq!((wrong.session_id, wrong.servers.len()), (0, 0));
    let unknown = login(&mut a, "mallory", "admin").await;
    assert_eq!(unknown.result, auth::LoginResult::UnknownAccount as i32);

    let unspecified = a
        .login(login_req(
            "admin",
            sha256_hex("admin"),
            auth::DigestKind::Unspecified,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unspecified.result, auth::LoginResult::Failed as i32);
    let bad_len = a
        .login(login_req(
            "admin",
            md5_hex_of_admin(),
            auth::DigestKind::Sha256Hex,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(bad_len.result, auth::LoginResult::Failed as i32);

    let list = a
        .list_servers(auth::ListServersRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.servers, ok.servers);
    backend.shutdown().await;
}

/// A file in the temp dir, removed when dropped.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!("{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[tokio::test]
async fn backend_accounts_file() {
    let file = TempFile::new(
        "accounts-ok.txt",
        &format!(
            "# test accounts\nGM gmpw 9\nbanned pw 0\nhashed sha256:{}\n",
            String::from_utf8(sha256_hex("hashedpw")).unwrap()
        ),
    );
    let backend = start(BackendConfig {
        accounts_file: Some(file.0.clone()),
        ..BackendConfig::default()
    })
    .await;
    let mut a = AuthClient::new(channel(&backend).await);
    let gm = login(&mut a, "gm", "gmpw").await;
    assert_eq!((gm.result, gm.access), (auth::LoginResult::Ok as i32, 9));
    assert_eq!(
        login(&mut a, "banned", "pw").await.result,
        auth::LoginResult::NoRightToConnect as i32
    );
    assert_eq!(login(&mut a, "hashed", "hashedpw").await.result, 0);
    let md5 = a
        .login(login_req(
            "hashed",
            md5_hex_of_admin(),
            auth::DigestKind::Md5Hex,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        md5.result,
        auth::LoginResult::InvalidPassword as i32,
        "only the SHA-256 digest is known"
    );
    backend.shutdown().await;
}

#[tokio::test]
async fn backend_start_errors_name_file_and_line() {
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let file = TempFile::new("accounts-bad.txt", "ok pw\n\nbroken\n");
    let err = EmbeddedBackend::start(
        BackendConfig {
            accounts_file: Some(file.0.clone()),
            ..BackendConfig::default()
        },
        listen,
    )
    .await
    .err()
    .expect("a bad accounts file must fail the start");
    assert!(
        err.to_string()
            .starts_with(&format!("{}:3: ", file.0.display())),
        "{err}"
    );
    let missing = EmbeddedBackend::start(
        BackendConfig {
            accounts_file: Some("/nonexistent/accounts.txt".into()),
            ..BackendConfig::default()
        },
        listen,
    )
    .await
    .err()
    .expect("a missing accounts file must fail the start");
    assert!(missing.to_string().contains("/nonexistent/accounts.txt"));
    let dup = EmbeddedBackend::start(
        BackendConfig {
            accounts: vec![("a".into(), "x".into()), ("A".into(), "y".into())],
            ..BackendConfig::default()
        },
        listen,
    )
    .await
    .err()
    .expect("duplicate seed accounts must fail the start");
    assert!(dup.to_string().contains("\"A\""), "{dup}");

    // Binding an address that is taken fails with the address named.
    let taken = std::net::TcpListener::bind(listen).unwrap();
    let addr = taken.local_addr().unwrap();
    let bind = EmbeddedBackend::start(BackendConfig::default(), addr)
        .await
        .err()
        .expect("binding a taken port must fail");
    assert!(bind.to_string().contains(&addr.to_string()), "{bind}");
}

#[tokio::test]
async fn backend_auto_create() {
    let backend = start(BackendConfig {
        auto_create: true,
        ..BackendConfig::default()
    })
    .await;
    let mut a = AuthClient::new(channel(&backend).await);
    let first = login(&mut a, "newbie", "secret").await;
    assert_eq!(first.result, auth::LoginResult::Ok as i32);
    assert_eq!(first.user_id, 1);
    let again = login(&mut a, "Newbie", "secret").await;
    assert_eq!((again.result, again.user_id), (0, 1));
    let wrong = login(&mut a, "newbie", "other").await;
    assert_eq!(wrong.result, auth::LoginResult::InvalidPassword as i32);
    backend.shutdown().await;
}

#[tokio::test]
async fn backend_sessions_select_join_refresh_logout() {
    let backend = start(config()).await;
    let mut a = AuthClient::new(channel(&backend).await);
    let s = login(&mut a, "admin", "admin").await.session_id;

    assert_eq!(
        select_server(&mut a, s, 2).await,
        auth::SelectServerResult::InvalidChannel as i32
    );
    let bad_server = select_on(&mut a, s, 9, 1).await;
    assert_eq!(bad_server.result, auth::SelectServerResult::Failed as i32);
    assert_eq!(
        select_server(&mut a, s.wrapping_add(1), 1).await,
        auth::SelectServerResult::Failed as i32
    );
    let selected = select_on(&mut a, s, 1, 1).await;
    assert_eq!(
        (selected.result, selected.session_id),
        (auth::SelectServerResult::Ok as i32, s)
    );

    let joined = join(&mut a, s, "admin").await;
    assert_eq!(joined.result, auth::JoinResult::Ok as i32);
    assert_eq!(joined.user_id, 1);
    assert_eq!(joined.stage, auth::Stage::CharSelect as i32);
    assert_eq!(
        join(&mut a, s, "wrong").await.result,
        auth::JoinResult::InvalidPassword as i32
    );
    assert_eq!(
        join(&mut a, s ^ 0x5a5a_5a5a, "admin").await.result,
        auth::JoinResult::InvalidPassword as i32
    );
    // The login was SHA-256: an MD5 digest of the same password is refused.
    let md5 = a
        .join_server(auth::JoinServerRequest {
            session_id: s,
            digest: md5_hex_of_admin(),
            digest_kind: auth::DigestKind::Md5Hex.into(),
            peer: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(md5.result, auth::JoinResult::InvalidPassword as i32);

    let refresh = |session_id| auth::RefreshRequest { session_id };
    assert!(a.refresh(refresh(s)).await.unwrap().into_inner().ok);
    assert!(!a.refresh(refresh(s ^ 1)).await.unwrap().into_inner().ok);

    // A second login replaces the first session.
    let s2 = login(&mut a, "admin", "admin").await.session_id;
    assert_ne!(s2, s);
    assert_eq!(
        join(&mut a, s, "admin").await.result,
        auth::JoinResult::InvalidPassword as i32
    );
    assert_eq!(
        join(&mut a, s2, "admin").await.stage,
        auth::Stage::LoggedIn as i32
    );

    a.logout(auth::LogoutRequest {
        session_id: s2,
        reason: auth::LogoutReason::Logout.into(),
    })
    .await
    .unwrap();
    assert_eq!(
        join(&mut a, s2, "admin").await.result,
        auth::JoinResult::InvalidPassword as i32
    );
    assert!(!a.refresh(refresh(s2)).await.unwrap().into_inner().ok);
    backend.shutdown().await;
}

#[tokio::test]
async fn backend_expired_session_times_out() {
    // A zero TTL: every session has expired by its first lookup.
    let backend = start(BackendConfig {
        session_ttl: Duration::ZERO,
        ..config()
    })
    .await;
    let mut a = AuthClient::new(channel(&backend).await);
    let s = login(&mut a, "admin", "admin").await.session_id;
    assert_eq!(
        join(&mut a, s, "admin").await.result,
        auth::JoinResult::TimeOut as i32
    );
    backend.shutdown().await;
}

#[tokio::test]
async fn backend_characters() {
    let backend = start(config()).await;
    let ch_channel = channel(&backend).await;
    let mut a = AuthClient::new(ch_channel.clone());
    let mut c = CharacterClient::new(ch_channel);
    let admin = login(&mut a, "admin", "admin").await;
    let bob = login(&mut a, "bob", "bobpw").await;

    let raven = create(&mut c, admin.user_id, "Raven").await;
    assert_eq!(raven.result, ch::CreateResult::Ok as i32);
    assert_ne!(raven.char_id, 0);
    assert_eq!(
        create(&mut c, bob.user_id, "rAVEN").await.result,
        ch::CreateResult::NameTaken as i32
    );
    let bad = c
        .create(ch::CreateRequest {
            user_id: admin.user_id,
            name: "Odd".into(),
            race: 7,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(bad.result, ch::CreateResult::InvalidValue as i32);
    let crow = create(&mut c, admin.user_id, "Crow").await;
    assert_eq!(crow.result, ch::CreateResult::Ok as i32);
    assert_eq!(
        create(&mut c, admin.user_id, "Third").await.result,
        ch::CreateResult::TooManyChars as i32
    );

    let list = c
        .list(ch::ListRequest {
            user_id: admin.user_id,
        })
        .await
        .unwrap()
        .into_inner()
        .characters;
    let names: Vec<&str> = list.iter().map(|x| x.name.as_str()).collect();
    assert_eq!(names, ["Raven", "Crow"]);
    assert_eq!(
        (list[0].race, list[0].level, list[0].face, list[0].hair),
        (1, 1, 3, 2)
    );
    assert_eq!(list[0].equipped_items, [0, 29, 0, 0, 0, 0, 1, 0]);

    // Delete: only the owner's characters.
    let del = |user_id, char_id| ch::DeleteRequest {
        user_id,
        char_id,
        delete: true,
    };
    let not_mine = c
        .delete(del(bob.user_id, crow.char_id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(not_mine.result, ch::DeleteResult::NotFound as i32);
    let deleted = c
        .delete(del(admin.user_id, crow.char_id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            deleted.result,
            deleted.remaining_secs,
            deleted.name.as_str()
        ),
        (ch::DeleteResult::Ok as i32, 0, "Crow")
    );
    let list = c
        .list(ch::ListRequest {
            user_id: admin.user_id,
        })
        .await
        .unwrap()
        .into_inner()
        .characters;
    assert_eq!(list.len(), 1);

    // Select: the character must be the user's, the session too, and the
    // server must have been selected.
    let s = admin.session_id;
    assert_eq!(
        select_char(&mut c, admin.user_id, s, raven.char_id).await,
        ch::SelectResult::Failed as i32,
        "no server selected yet"
    );
    assert_eq!(select_server(&mut a, s, 1).await, 0);
    assert_eq!(
        select_char(&mut c, bob.user_id, bob.session_id, raven.char_id).await,
        ch::SelectResult::NotFound as i32
    );
    assert_eq!(
        select_char(&mut c, admin.user_id, bob.session_id, raven.char_id).await,
        ch::SelectResult::Failed as i32
    );
    assert_eq!(
        select_char(&mut c, admin.user_id, s, crow.char_id).await,
        ch::SelectResult::NotFound as i32
    );
    assert_eq!(
        select_char(&mut c, admin.user_id, s, raven.char_id).await,
        ch::SelectResult::Ok as i32
    );
    let joined = join(&mut a, s, "admin").await;
    assert_eq!(
        (joined.stage, joined.char_id),
        (auth::Stage::Map as i32, raven.char_id)
    );
    backend.shutdown().await;
}

// ---- World ------------------------------------------------------------------

/// A player whose session reached stage MAP.
#[derive(Clone, Copy, Debug)]
struct Ready {
    session_id: u32,
    user_id: u32,
    char_id: u64,
}

async fn ready_player(ch: &Channel, user: &str, pw: &str, char_name: &str) -> Ready {
    let mut a = AuthClient::new(ch.clone());
    let mut c = CharacterClient::new(ch.clone());
    let login = login(&mut a, user, pw).await;
    assert_eq!(login.result, 0);
    assert_eq!(select_server(&mut a, login.session_id, 1).await, 0);
    let created = create(&mut c, login.user_id, char_name).await;
    assert_eq!(created.result, 0);
    assert_eq!(
        select_char(&mut c, login.user_id, login.session_id, created.char_id).await,
        0
    );
    Ready {
        session_id: login.session_id,
        user_id: login.user_id,
        char_id: created.char_id,
    }
}

impl Link {
    /// The next message, which must be a broadcast of `P`; returns the
    /// sorted targets and the decoded packet. Spawns (PLAYER_CHAR, sent as
    /// players come into view; tests/world.rs checks them) are skipped.
    async fn expect<P: Packet>(&mut self) -> (Vec<u32>, P) {
        let spawn = DialectId::Osirose
            .dialect()
            .wire_id(PacketType::PAKWC_PLAYER_CHAR)
            .map(u32::from);
        let mut next = self.next().await;
        while matches!(&next, downstream::Kind::Packet(b) if Some(b.r#type) == spawn) {
            next = self.next().await;
        }
        match next {
            downstream::Kind::Packet(b) => {
                let want = DialectId::Osirose.dialect().wire_id(P::TYPE).unwrap();
                assert_eq!(b.r#type, u32::from(want), "expected {}", P::TYPE);
                let mut targets = b.targets;
                targets.sort_unstable();
                (targets, P::decode(&b.payload).unwrap())
            }
            other => panic!("expected {}, got {other:?}", P::TYPE),
        }
    }

    /// Joins `p`; returns its entity id after checking the join burst.
    async fn join(&mut self, p: Ready, char_name: &str) -> u16 {
        self.send(upstream::Kind::Join(world::Join {
            session_id: p.session_id,
            user_id: p.user_id,
            char_id: p.char_id,
            join_id: 0,
            layout: world::Layout::Osirose.into(),
        }))
        .await;
        let joined = match self.next().await {
            downstream::Kind::Joined(j) => j,
            other => panic!("expected Joined, got {other:?}"),
        };
        assert_eq!(joined.session_id, p.session_id);
        assert_eq!(joined.result, world::JoinResult::Ok as i32);
        let entity = u16::try_from(joined.entity_id).unwrap();
        assert_ne!(entity, 0);
        let burst = [
            PacketType::PAKWC_SELECT_CHAR_REPLY,
            PacketType::PAKWC_INVENTORY_DATA,
            PacketType::PAKWC_QUEST_DATA,
            PacketType::PAKWC_BILLING_MESSAGE,
        ];
        for t in burst {
            let downstream::Kind::Packet(b) = self.next().await else {
                panic!("expected {t}");
            };
            let id = DialectId::Osirose.dialect().wire_id(t).unwrap();
            assert_eq!(b.r#type, u32::from(id), "expected {t}");
            assert_eq!(b.targets, [p.session_id]);
            if t == PacketType::PAKWC_SELECT_CHAR_REPLY {
                let reply = SelectCharReply::decode(&b.payload).unwrap();
                assert_eq!(reply.name, char_name);
                assert_eq!((reply.map, reply.x, reply.y), (1, 520_000.0, 520_000.0));
                assert_eq!(reply.equipped_items, [0, 29, 0, 0, 0, 0, 1, 0]);
                assert!(reply.hp > 0 && reply.mp > 0);
                assert_eq!(
                    (reply.level, reply.race, reply.face, reply.hair),
                    (1, 1, 3, 2)
                );
            }
        }
        self.packet(p.session_id, &ChangeMapReq::default()).await;
        let (targets, reply) = self.expect::<ChangeMapReply>().await;
        assert_eq!(targets, [p.session_id]);
        assert_eq!(reply.object_index, entity);
        assert!(reply.hp > 0);
        entity
    }
}

fn sorted(mut v: Vec<u32>) -> Vec<u32> {
    v.sort_unstable();
    v
}

#[tokio::test]
async fn backend_world_chat_movement_and_leaving() {
    let backend = start(config()).await;
    let ch = channel(&backend).await;
    let alice = ready_player(&ch, "admin", "admin", "Alice").await;
    let bob = ready_player(&ch, "bob", "bobpw", "Bobby").await;
    let carol = ready_player(&ch, "carol", "carolpw", "Carol").await;

    let mut gw1 = Link::open(&ch).await;
    let mut gw2 = Link::open(&ch).await;

    // A join that does not match the session's character is refused.
    gw1.send(upstream::Kind::Join(world::Join {
        session_id: alice.session_id,
        user_id: alice.user_id,
        char_id: alice.char_id + 100,
        join_id: 0,
        layout: world::Layout::Osirose.into(),
    }))
    .await;
    match gw1.next().await {
        downstream::Kind::Joined(j) => assert_eq!(j.result, world::JoinResult::Failed as i32),
        other => panic!("expected Joined, got {other:?}"),
    }

    let ea = gw1.join(alice, "Alice").await;
    let eb = gw1.join(bob, "Bobby").await;
    let ec = gw2.join(carol, "Carol").await;
    assert!(ea != eb && eb != ec && ea != ec);
    assert_eq!(backend.world_stats().players, 3);
    assert_eq!(backend.world_stats().links, 2);

    // Normal chat: one broadcast per link, with that link's targets.
    gw1.packet(
        alice.session_id,
        &NormalChat {
            message: "hi".into(),
        },
    )
    .await;
    let (targets, chat) = gw1.expect::<NormalChatBroadcast>().await;
    assert_eq!(targets, sorted(vec![alice.session_id, bob.session_id]));
    assert_eq!((chat.char_id, chat.message.as_str()), (ea, "hi"));
    let (targets, chat) = gw2.expect::<NormalChatBroadcast>().await;
    assert_eq!(targets, [carol.session_id]);
    assert_eq!(chat.char_id, ea);

    // Whisper: only the named player (any case); unknown names vanish.
    gw1.packet(
        alice.session_id,
        &WhisperChat {
            target: "nobody".into(),
            message: "lost".into(),
        },
    )
    .await;
    gw1.packet(
        alice.session_id,
        &WhisperChat {
            target: "bobby".into(),
            message: "psst".into(),
        },
    )
    .await;
    let (targets, w) = gw1.expect::<WhisperChatReply>().await;
    assert_eq!(targets, [bob.session_id]);
    assert_eq!((w.sender.as_str(), w.message.as_str()), ("Alice", "psst"));
    gw2.packet(
        carol.session_id,
        &WhisperChat {
            target: "Alice".into(),
            message: "across".into(),
        },
    )
    .await;
    let (targets, w) = gw1.expect::<WhisperChatReply>().await;
    assert_eq!(targets, [alice.session_id]);
    assert_eq!(w.sender, "Carol");

    // Shout and movement reach the whole map, sender included.
    gw2.packet(
        carol.session_id,
        &ShoutChat {
            message: "hey".into(),
        },
    )
    .await;
    let (targets, s) = gw1.expect::<ShoutChatBroadcast>().await;
    assert_eq!(targets, sorted(vec![alice.session_id, bob.session_id]));
    assert_eq!((s.sender.as_str(), s.message.as_str()), ("Carol", "hey"));
    let (targets, _) = gw2.expect::<ShoutChatBroadcast>().await;
    assert_eq!(targets, [carol.session_id]);

    gw1.packet(
        bob.session_id,
        &MouseCmd {
            target_id: 0,
            x: 521_000.0,
            y: 519_000.0,
            z: 7,
        },
    )
    .await;
    let (targets, m) = gw1.expect::<MouseCmdBroadcast>().await;
    assert_eq!(targets, sorted(vec![alice.session_id, bob.session_id]));
    assert_eq!(
        m,
        MouseCmdBroadcast {
            id: eb,
            target_id: 0,
            distance: 0,
            x: 521_000.0,
            y: 519_000.0,
            z: 0
        }
    );
    let (targets, _) = gw2.expect::<MouseCmdBroadcast>().await;
    assert_eq!(targets, [carol.session_id]);

    // An undecodable body is ignored and counted; a link cannot speak for
    // another link's players.
    gw1.raw(
        alice.session_id,
        PacketType::PAKCS_NORMAL_CHAT,
        b"no nul".to_vec(),
    )
    .await;
    gw1.packet(
        carol.session_id,
        &NormalChat {
            message: "spoof".into(),
        },
    )
    .await;

    // Bob leaves: the others on the map are told.
    gw1.send(upstream::Kind::Leave(world::Leave {
        session_id: bob.session_id,
        reason: world::LeaveReason::ChangeChar.into(),
        join_id: 0,
    }))
    .await;
    let (targets, r) = gw1.expect::<RemoveObject>().await;
    assert_eq!((targets, r.id), (vec![alice.session_id], eb));
    let (targets, r) = gw2.expect::<RemoveObject>().await;
    assert_eq!((targets, r.id), (vec![carol.session_id], eb));
    assert_eq!(backend.world_stats().undecodable, 1);
    // CHANGE_CHAR sent Bob's session back to character select.
    let mut a = AuthClient::new(ch.clone());
    let bob_join = join(&mut a, bob.session_id, "bobpw").await;
    assert_eq!(
        (bob_join.stage, bob_join.char_id),
        (auth::Stage::CharSelect as i32, 0)
    );

    // Gateway 2 goes away: its player is removed and the others are told.
    drop(gw2);
    let (targets, r) = gw1.expect::<RemoveObject>().await;
    assert_eq!((targets, r.id), (vec![alice.session_id], ec));
    let stats = backend.world_stats();
    assert_eq!((stats.players, stats.links, stats.dropped), (1, 1, 0));

    // Shutdown ends the remaining link.
    backend.shutdown().await;
    let end = tokio::time::timeout(DEADLINE, gw1.down.message())
        .await
        .expect("link still open after shutdown");
    assert!(!matches!(end, Ok(Some(_))), "unexpected message {end:?}");
}
