//! A link's order around loading joins: on a current-thread runtime a
//! join's task runs only when the loop waits for it, so what arrives
//! "while it loads" is exact.

use std::time::Duration;

use tokio::sync::mpsc;

use super::*;
use crate::backend::accounts::{LoginCheck, PasswordDigest};
use crate::backend::characters::NewCharacter;
use crate::backend::store::{self, DatabaseUrl, StoreOptions};
use crate::backend::{BackendConfig, Shared};
use crate::pb::world::downstream;
use crate::protocol::packet_type::{DialectId, PacketType};
use crate::protocol::packets::{DigestKind, Packet, WhisperChat, WhisperChatReply};

const LINK: u64 = 1;

/// A world over a memory store with one link, and a session in stage MAP
/// with its Join.
async fn world() -> (
    Arc<WorldState>,
    mpsc::Receiver<Result<pb::Downstream, tonic::Status>>,
    pb::Join,
) {
    let options = StoreOptions {
        max_chars_per_account: 2,
        session_ttl: Duration::from_secs(600),
    };
    let opened = store::open(&DatabaseUrl::Memory, options).await.unwrap();
    let digest = PasswordDigest::of_plaintext(DigestKind::Sha256Hex, "pw");
    let LoginCheck::Ok { user_id, .. } = opened.store.login("alice", &digest, true).await.unwrap()
    else {
        panic!("auto-created");
    };
    let new = NewCharacter {
        name: "Alice".into(),
        race: 1,
        stone: 1,
        hair: 2,
        face: 3,
        zone: 0,
    };
    let char_id = opened
        .store
        .create_character(user_id, &new)
        .await
        .unwrap()
        .unwrap();
    let s = &opened.sessions;
    let session_id = s.create(user_id, 1, &digest).await.unwrap();
    s.select_server(session_id).await.unwrap().unwrap();
    s.select_char(session_id, user_id, char_id)
        .await
        .unwrap()
        .unwrap();
    let shared = Arc::new(Shared {
        config: BackendConfig::default(),
        store: opened.store,
        sessions: opened.sessions,
    });
    let state = Arc::new(WorldState::new(shared));
    let (tx, rx) = mpsc::channel(256);
    lock(&state.inner).links.insert(LINK, tx);
    let join = pb::Join {
        session_id,
        user_id,
        char_id,
        join_id: 7,
        layout: pb::Layout::Osirose.into(),
    };
    (state, rx, join)
}

fn up(kind: upstream::Kind) -> pb::Upstream {
    pb::Upstream { kind: Some(kind) }
}

/// A Join as the gateway forwards it.
fn join(j: pb::Join) -> pb::Upstream {
    up(upstream::Kind::Join(j))
}

/// A Leave of `join_id` of `session_id`, its connection gone.
fn disconnect(session_id: u32, join_id: u64) -> pb::Upstream {
    up(upstream::Kind::Leave(pb::Leave {
        session_id,
        join_id,
        reason: pb::LeaveReason::Disconnect.into(),
    }))
}

/// Waits for the next join's reads and applies it.
async fn settle(state: &Arc<WorldState>, loading: &mut Loading) {
    let done = loading.next().await;
    state.loaded(loading, done).await;
}

/// A whisper from `session` to itself, as the gateway forwards it.
fn whisper(session_id: u32, message: &str) -> pb::Upstream {
    let chat = WhisperChat {
        target: "alice".into(),
        message: message.into(),
    };
    let dialect = DialectId::Osirose.dialect();
    let bytes = crate::protocol::packets::packet_to_vec(dialect, &chat).unwrap();
    let r#type = dialect.wire_id(WhisperChat::TYPE).unwrap().into();
    up(upstream::Kind::Packet(pb::Packet {
        session_id,
        r#type,
        payload: bytes[6..].to_vec(),
    }))
}

/// The stream id of a whisper to its target.
fn whisper_id() -> Option<u32> {
    DialectId::Osirose
        .dialect()
        .wire_id(PacketType::PAKWC_WHISPER_CHAT)
        .map(u32::from)
}

/// What the link was sent so far: `Joined` results and packet counts.
fn sent(rx: &mut mpsc::Receiver<Result<pb::Downstream, tonic::Status>>) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(Ok(pb::Downstream { kind: Some(kind) })) = rx.try_recv() {
        out.push(match kind {
            downstream::Kind::Joined(j) => format!("joined {}", j.result),
            downstream::Kind::Packet(b) => match WhisperChatReply::decode(&b.payload) {
                Ok(w) if Some(b.r#type) == whisper_id() => format!("whisper {}", w.message),
                _ => format!("packet {:#x}", b.r#type),
            },
            downstream::Kind::Kick(_) => "kick".into(),
        });
    }
    out
}

#[tokio::test]
async fn packets_of_a_loading_join_follow_it_and_are_bounded() {
    let (state, mut rx, join) = world().await;
    let session = join.session_id;
    let mut loading = Loading::new(LINK);
    state
        .dispatch(&mut loading, up(upstream::Kind::Join(join)))
        .await;
    for i in 0..HELD_MAX + 3 {
        state
            .dispatch(&mut loading, whisper(session, &format!("{i}")))
            .await;
    }
    // Nothing applied yet: the join has not loaded.
    assert!(sent(&mut rx).is_empty());
    assert_eq!(state.stats().refused_while_loading, 3);
    assert_eq!(state.stats().players, 0);
    let done = loading.next().await;
    state.loaded(&mut loading, done).await;
    let out = sent(&mut rx);
    assert_eq!(out[0], format!("joined {}", i32::from(pb::JoinResult::Ok)));
    // The join burst (four packets), then every held whisper, in order.
    assert_eq!(out.len(), 1 + 4 + HELD_MAX, "{out:?}");
    let whispers: Vec<String> = (0..HELD_MAX).map(|i| format!("whisper {i}")).collect();
    assert_eq!(out[5..], whispers[..]);
    assert_eq!(state.stats().players, 1);
    assert!(!loading.is_busy());
}

#[tokio::test]
async fn a_leave_of_a_loading_join_cancels_it() {
    let (state, mut rx, join) = world().await;
    let (session, join_id) = (join.session_id, join.join_id);
    let mut loading = Loading::new(LINK);
    state
        .dispatch(&mut loading, up(upstream::Kind::Join(join)))
        .await;
    state
        .dispatch(&mut loading, whisper(session, "dropped"))
        .await;
    let leave = pb::Leave {
        session_id: session,
        join_id,
        reason: pb::LeaveReason::ChangeChar.into(),
    };
    state
        .dispatch(&mut loading, up(upstream::Kind::Leave(leave)))
        .await;
    // The session joins again before the first join loaded: it waits.
    let again = pb::Join {
        join_id: join_id + 1,
        ..join
    };
    state
        .dispatch(&mut loading, up(upstream::Kind::Join(again)))
        .await;
    let done = loading.next().await;
    state.loaded(&mut loading, done).await;
    assert_eq!(state.stats().joins_cancelled, 1);
    assert_eq!(state.stats().players, 0, "the cancelled join never entered");
    assert!(sent(&mut rx).is_empty(), "nothing sent for it");
    // The change of character took the session back to character select,
    // so the join that waited behind it is refused.
    let done = loading.next().await;
    state.loaded(&mut loading, done).await;
    let failed = format!("joined {}", i32::from(pb::JoinResult::Failed));
    assert_eq!(sent(&mut rx), [failed]);
    assert_eq!(state.stats().players, 0);
}

#[tokio::test]
async fn a_join_loading_when_its_account_is_kicked_does_not_enter() {
    let (state, mut rx, join) = world().await;
    let mut loading = Loading::new(LINK);
    state.dispatch(&mut loading, self::join(join)).await;
    // A ban kicks the account while the join's reads are under way: nobody
    // of it is in the world yet.
    let kicked = state
        .kick(super::super::admin::Target::User(join.user_id), "banned")
        .await;
    assert!(kicked.is_empty());
    settle(&state, &mut loading).await;
    let failed = format!("joined {}", i32::from(pb::JoinResult::Failed));
    assert_eq!(sent(&mut rx), [failed]);
    assert_eq!(state.stats().players, 0, "it did not enter after the kick");
    assert_eq!(state.stats().joins_cancelled, 1);
    // A join that starts after the kick is judged by its session alone
    // (here still valid: the test kicked without ending it).
    let again = pb::Join {
        join_id: join.join_id + 1,
        ..join
    };
    state.dispatch(&mut loading, self::join(again)).await;
    settle(&state, &mut loading).await;
    let out = sent(&mut rx);
    assert_eq!(out[0], format!("joined {}", i32::from(pb::JoinResult::Ok)));
    assert_eq!(state.stats().players, 1);
}

#[tokio::test]
async fn a_cancel_keeps_a_held_join_and_an_older_players_leave() {
    let (state, mut rx, first) = world().await;
    let session = first.session_id;
    let ok = format!("joined {}", i32::from(pb::JoinResult::Ok));
    let mut loading = Loading::new(LINK);
    state.dispatch(&mut loading, join(first)).await;
    settle(&state, &mut loading).await;
    assert_eq!(sent(&mut rx)[0], ok);
    assert_eq!(state.stats().players, 1);
    // The session joins again while its first player is in the world;
    // the first player's Leave, a packet and the cancel of the new join
    // come while it loads, then a third join, also held.
    let second = pb::Join {
        join_id: first.join_id + 1,
        ..first
    };
    state.dispatch(&mut loading, join(second)).await;
    let leave = |join_id| disconnect(session, join_id);
    state.dispatch(&mut loading, leave(first.join_id)).await;
    state
        .dispatch(&mut loading, whisper(session, "dropped"))
        .await;
    state.dispatch(&mut loading, leave(second.join_id)).await;
    let third = pb::Join {
        join_id: first.join_id + 2,
        ..first
    };
    state.dispatch(&mut loading, join(third)).await;
    settle(&state, &mut loading).await;
    assert_eq!(state.stats().joins_cancelled, 1);
    assert_eq!(state.stats().players, 0, "the older player left");
    let out = sent(&mut rx);
    assert!(out.is_empty(), "{out:?}");
    // The third join loads and is answered.
    assert!(loading.is_busy());
    settle(&state, &mut loading).await;
    assert_eq!(sent(&mut rx)[0], ok);
    assert_eq!(state.stats().players, 1);
}

#[tokio::test]
async fn a_leave_is_held_past_the_bound() {
    let (state, mut rx, first) = world().await;
    let session = first.session_id;
    let mut loading = Loading::new(LINK);
    state.dispatch(&mut loading, join(first)).await;
    settle(&state, &mut loading).await;
    assert_eq!(state.stats().players, 1);
    // A new join of the session that will fail (no such character).
    let second = pb::Join {
        join_id: first.join_id + 1,
        char_id: first.char_id + 100,
        ..first
    };
    state.dispatch(&mut loading, join(second)).await;
    for i in 0..HELD_MAX {
        state
            .dispatch(&mut loading, whisper(session, &format!("{i}")))
            .await;
    }
    let older = disconnect(session, first.join_id);
    state.dispatch(&mut loading, older).await;
    assert_eq!(state.stats().refused_while_loading, 0);
    settle(&state, &mut loading).await;
    // The second join failed; the first player left by its held Leave.
    assert_eq!(state.stats().players, 0, "no ghost of the first player");
    let failed = format!("joined {}", i32::from(pb::JoinResult::Failed));
    assert!(sent(&mut rx).contains(&failed));
}

#[tokio::test]
async fn a_link_at_its_limit_of_loading_joins_is_counted() {
    let (state, _rx, first) = world().await;
    let mut loading = Loading::new(LINK);
    for i in 0..LOADING_MAX {
        let other = pb::Join {
            session_id: first.session_id + 1 + u32::try_from(i).unwrap(),
            ..first
        };
        assert!(!loading.is_full());
        state.dispatch(&mut loading, join(other)).await;
    }
    assert!(loading.is_full());
    assert_eq!(state.stats().loading_full, 1);
    settle(&state, &mut loading).await;
    assert!(!loading.is_full());
}

#[tokio::test]
async fn a_link_that_ends_drops_the_joins_still_loading() {
    let (state, mut rx, join) = world().await;
    let mut loading = Loading::new(LINK);
    state
        .dispatch(&mut loading, up(upstream::Kind::Join(join)))
        .await;
    assert!(loading.is_busy());
    drop(loading);
    state.drop_link(LINK).await;
    tokio::task::yield_now().await;
    assert!(sent(&mut rx).is_empty());
    assert_eq!(state.stats().players, 0);
}
