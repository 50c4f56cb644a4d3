//! The embedded world under load, with real clients over TCP and the
//! default limits: a newcomer walking into 1,000 players in view is sent a
//! spawn per player in one burst, and is neither closed nor short of one;
//! a newcomer that does not read is still closed by `OUTPUT_LIMIT_BYTES`.
//! A join whose store reads are slow (a lock on PostgreSQL's characters
//! table) holds up no other player of its gateway.
//!
//! The crowd stands in the four corners of the newcomer's view (cells ten
//! apart from its cell in x and in y, the default view), so each bot sees
//! only its own corner's 250 and the newcomer sees all of them. Bots never
//! read after they have arrived: what they are sent later (a spawn and a
//! step per later arrival in their corner) fits in their sockets.

mod util;

use std::collections::BTreeSet;

use packet_service::config::Config;
use packet_service::protocol::packet_type::PacketType;
use packet_service::protocol::packets::*;
use packet_service::protocol::CodecKind;
use packet_service::server::ServerHandle;
use util::db::TestDb;
use util::flow::{char_phase, enter_world, login_phase, Player};
use util::{scrape, sha256_hex, start, test_config, wait_until, Client};

const CODEC: CodecKind = CodecKind::Plain;
/// The middle of the newcomer's cell, far from where characters start
/// (520000, 520000).
const SPOT: f32 = 570_500.0;
/// Ten cells of 1000 units: the default view's edge.
const EDGE: f32 = 10_000.0;
const CORNERS: [(f32, f32); 4] = [(-EDGE, -EDGE), (EDGE, -EDGE), (-EDGE, EDGE), (EDGE, EDGE)];
const PER_CORNER: usize = 250;

const SPAWNS_SENT: &str = "packet_service_packets_sent_total{type=\"PAKWC_PLAYER_CHAR\"}";
const OUTPUT_LIMIT: &str = "packet_service_connections_closed_total{reason=\"output_limit\"}";

/// Reads until the mover's own step arrives (spawns and removals may come
/// first); returns the players spawned meanwhile, and how many removed.
#[track_caller]
fn until_own_move(c: &mut Client, entity: u16, most: usize) -> (Vec<u16>, usize) {
    let (mut spawned, mut removed) = (Vec::new(), 0);
    for _ in 0..=most {
        let got = c.recv();
        match got.ptype {
            Some(PacketType::PAKWC_PLAYER_CHAR) => {
                let spawn = got.decode::<PlayerChar>().expect("PLAYER_CHAR decodes");
                spawned.push(spawn.id);
            }
            // Bots entering together at the start see each other go.
            Some(PacketType::PAKWC_REMOVE_OBJECT) => removed += 1,
            Some(PacketType::PAKWC_MOUSE_CMD) => {
                let moved = got
                    .decode::<MouseCmdBroadcast>()
                    .expect("MOUSE_CMD decodes");
                if moved.id == entity {
                    return (spawned, removed);
                }
            }
            _ => panic!("unexpected {} before the step", got.name()),
        }
    }
    panic!("no own step within {most} packets");
}

/// Reads what was queued for `c` until the gateway closes it.
#[track_caller]
fn closed_after_what_was_queued(c: &mut Client) {
    use std::io::{ErrorKind, Read};
    let mut chunk = [0u8; 64 * 1024];
    loop {
        match c.stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("expected a close, got {e}"),
        }
    }
}

/// 250 bots in each corner of the spot's view, entered four at a time;
/// their entity ids.
fn crowd(gw: &ServerHandle) -> (Vec<Player>, BTreeSet<u16>) {
    let addr = gw.addr();
    let corners: Vec<_> = CORNERS
        .iter()
        .enumerate()
        .map(|(c, &(dx, dy))| {
            std::thread::spawn(move || {
                (0..PER_CORNER)
                    .map(|i| {
                        let name = format!("Crowd{c}x{i}");
                        let mut p = enter_world(addr, CODEC, &name.to_lowercase(), &name);
                        p.walk(SPOT + dx, SPOT + dy);
                        let entity = p.entity;
                        until_own_move(&mut p.map, entity, 4 * PER_CORNER);
                        p
                    })
                    .collect::<Vec<Player>>()
            })
        })
        .collect();
    let bots: Vec<Player> = corners
        .into_iter()
        .flat_map(|t| t.join().expect("a corner's bots"))
        .collect();
    let ids = bots.iter().map(|p| p.entity).collect();
    (bots, ids)
}

#[test]
fn a_newcomer_among_a_thousand_in_view_gets_every_spawn_and_one_that_does_not_read_is_closed() {
    let mut config = test_config(CODEC);
    config.auto_create_accounts = true;
    config.metrics_enabled = true;
    // The whispers that fill the deaf newcomer's queue.
    config.chat_per_sec = 0;
    config.chat_max_bytes = 2000;
    // Every client comes from 127.0.0.1, two connections a bot, and the
    // whisperer sends as fast as it can: limits of what clients send,
    // not of what they are sent.
    config.max_connections_per_ip = 0;
    config.max_packets_per_sec = 0;
    assert_eq!(config.output_limit, Config::defaults().output_limit);
    assert_eq!(config.output_limit, 256 * 1024, "the default limit");
    let gw = start(config);
    let (bots, ids) = crowd(&gw);
    assert_eq!(ids.len(), 4 * PER_CORNER);

    // One burst of 1,000 spawns, then its own step: every one arrives. The
    // newcomer reads through a small receive buffer, and only once the
    // gateway has queued the whole burst (its spawn to the crowd too): the
    // burst waits in the gateway, not in the kernel.
    let mut newcomer = enter_world(gw.addr(), CODEC, "newcomer", "Newcomer");
    socket2::SockRef::from(&newcomer.map.stream)
        .set_recv_buffer_size(4096)
        .expect("SO_RCVBUF");
    let queued = || scrape(&gw, SPAWNS_SENT);
    let before = queued();
    newcomer.walk(SPOT, SPOT);
    let burst = before + 2.0 * ids.len() as f64;
    wait_until("the burst to be queued (or its newcomer closed)", || {
        queued() >= burst || scrape(&gw, OUTPUT_LIMIT) > 0.0
    });
    let entity = newcomer.entity;
    let (spawned, removed) = until_own_move(&mut newcomer.map, entity, 2 * ids.len());
    assert_eq!(removed, 0);
    assert_eq!(spawned.len(), ids.len(), "one spawn per player in view");
    assert_eq!(spawned.into_iter().collect::<BTreeSet<u16>>(), ids);
    assert_eq!(scrape(&gw, OUTPUT_LIMIT), 0.0, "nobody was closed");

    // A newcomer that never reads arrives the same way, then is whispered
    // to until its queue passes the limit: it alone is closed.
    let mut deaf = enter_world(gw.addr(), CODEC, "deaf", "Deaf");
    deaf.walk(SPOT, SPOT);
    let line = "x".repeat(1000);
    let mut said = 0;
    while scrape(&gw, OUTPUT_LIMIT) < 1.0 {
        for _ in 0..50 {
            newcomer.map.send(&WhisperChat {
                target: "Deaf".into(),
                message: line.clone(),
            });
            said += 1;
        }
        // The whisperer's own traffic is read, so that it is not the one
        // that stops reading.
        newcomer.map.send(&WhisperChat {
            target: "Newcomer".into(),
            message: "barrier".into(),
        });
        loop {
            let got = newcomer.map.recv();
            if got.ptype == Some(PacketType::PAKWC_WHISPER_CHAT) {
                break;
            }
        }
        assert!(said < 40_000, "the deaf newcomer was never closed");
    }
    closed_after_what_was_queued(&mut deaf.map);
    wait_until("the close to be counted once", || {
        scrape(&gw, OUTPUT_LIMIT) == 1.0
    });
    // The reader is still served.
    newcomer.map.send(&WhisperChat {
        target: "Newcomer".into(),
        message: "still here".into(),
    });
    let heard = loop {
        let got = newcomer.map.recv();
        if got.ptype == Some(PacketType::PAKWC_WHISPER_CHAT) {
            break got.decode::<WhisperChatReply>().expect("whisper decodes");
        }
    };
    assert_eq!(heard.message, "still here");
    drop(bots);
}

/// A transaction holding `LOCK TABLE characters` on a test database, on a
/// thread of its own: every read of a character waits until it ends.
struct CharactersLocked {
    ask: std::sync::mpsc::Sender<Option<std::sync::mpsc::Sender<i64>>>,
    thread: std::thread::JoinHandle<()>,
}

impl CharactersLocked {
    fn take(db: &TestDb) -> CharactersLocked {
        use sqlx::Connection;
        let url = db.url_text();
        let (ask, asked) = std::sync::mpsc::channel::<Option<std::sync::mpsc::Sender<i64>>>();
        let (locked, is_locked) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
                let mut tx = conn.begin().await.expect("begin");
                sqlx::query("LOCK TABLE characters IN ACCESS EXCLUSIVE MODE")
                    .execute(&mut *tx)
                    .await
                    .expect("lock");
                locked.send(()).expect("test waits");
                // Each request: how many reads wait for the lock (a read
                // asks for ACCESS SHARE, a periodic save for more); `None`:
                // release.
                while let Ok(Some(reply)) = asked.recv() {
                    let waiting: i64 = sqlx::query_scalar(
                        "SELECT count(*) FROM pg_locks \
                         WHERE NOT granted AND relation = 'characters'::regclass \
                         AND mode = 'AccessShareLock'",
                    )
                    .fetch_one(&mut *tx)
                    .await
                    .expect("pg_locks");
                    let _ = reply.send(waiting);
                }
                tx.commit().await.expect("commit");
            });
        });
        is_locked.recv().expect("the lock is taken");
        CharactersLocked { ask, thread }
    }

    /// Reads waiting for the lock.
    fn waiting(&self) -> i64 {
        let (reply, answer) = std::sync::mpsc::channel();
        self.ask.send(Some(reply)).expect("lock thread");
        answer.recv().expect("lock thread answers")
    }

    fn release(self) {
        self.ask.send(None).expect("lock thread");
        self.thread.join().expect("lock thread");
    }
}

#[test]
fn a_join_waiting_on_the_store_holds_up_no_other_player_of_its_gateway() {
    let Some(db) = TestDb::postgres_blocking() else {
        return;
    };
    let mut config = test_config(CODEC);
    config.auto_create_accounts = true;
    config.chat_per_sec = 0;
    config.database = db.url();
    let gw = start(config);
    let mut bobby = enter_world(gw.addr(), CODEC, "prompt-b", "Bobby");
    let session = login_phase(gw.addr(), CODEC, "held-a", "pw");
    let _alice_char = char_phase(gw.addr(), CODEC, session, "Alice");

    // Alice's join reads her character behind the lock.
    let lock = CharactersLocked::take(&db);
    let mut alice = Client::connect(gw.addr(), CODEC);
    assert_eq!(alice.accept().result, AcceptReply::ACCEPTED);
    alice.send(&JoinServerReq {
        session_id: session,
        digest: sha256_hex("pw"),
    });
    wait_until("Alice's join to wait on the store", || lock.waiting() == 1);

    // Bobby, on the same gateway and so the same world link, walks and
    // chats meanwhile and is answered while Alice's join still waits.
    bobby.walk(520_100.0, 520_000.0);
    let entity = bobby.entity;
    assert_eq!(until_own_move(&mut bobby.map, entity, 0), (vec![], 0));
    bobby.map.send(&NormalChat {
        message: "anyone?".into(),
    });
    let heard: NormalChatBroadcast = bobby.map.recv_as();
    assert_eq!((heard.char_id, heard.message.as_str()), (entity, "anyone?"));
    assert_eq!(lock.waiting(), 1, "Alice's join was still waiting");

    // Once the store answers, Alice enters: the reply, then the burst.
    lock.release();
    let joined: JoinServerReply = alice.recv_as();
    assert_eq!(joined.result, 0);
    assert_ne!(joined.id, 0);
    let reply: SelectCharReply = alice.recv_as();
    assert_eq!(reply.name, "Alice");
}
