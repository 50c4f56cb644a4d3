//! Unit tests of the world's indexes, fan-out and removal announcements.
use super::*;
use crate::protocol::packets::RemoveObject;

fn player(session_id: u32, link: u64, entity_id: u16) -> Player {
    Player {
        session_id,
        link,
        user_id: session_id,
        char_id: u64::from(session_id),
        entity_id,
        name: format!("p{session_id}"),
        map: 1,
        x: 0.0,
        y: 0.0,
        hp: 1,
        mp: 1,
        on_map: false,
        family: Family::Osirose,
        look: Look::default(),
    }
}

#[test]
fn entity_ids_are_non_zero_unique_and_wrap() {
    let mut inner = WorldInner {
        next_entity: u16::MAX - 1,
        ..WorldInner::default()
    };
    inner.entities.insert(1, 99);
    assert_eq!(inner.allocate_entity(), Some(u16::MAX));
    inner.entities.insert(u16::MAX, 98);
    // Wraps past 0 and skips the taken 1.
    assert_eq!(inner.allocate_entity(), Some(2));
    for e in 1..=u16::MAX {
        inner.entities.insert(e, 0);
    }
    assert_eq!(inner.allocate_entity(), None);
}

#[test]
fn broadcasts_split_per_link_and_full_queues_drop() {
    let mut inner = WorldInner::default();
    let (tx1, mut rx1) = mpsc::channel(8);
    let (tx2, rx2) = mpsc::channel(1);
    inner.links.insert(1, tx1);
    inner.links.insert(2, tx2);
    for (s, link) in [(10, 1), (11, 1), (20, 2)] {
        inner.players.insert(s, player(s, link, s as u16));
    }
    inner.broadcast([10, 20, 11, 99], same(&RemoveObject { id: 5 }));
    let Ok(Ok(pb::Downstream {
        kind: Some(downstream::Kind::Packet(b)),
    })) = rx1.try_recv()
    else {
        panic!("link 1 got nothing");
    };
    assert_eq!(b.targets, [10, 11]);
    assert_eq!(b.payload, [5, 0]);
    assert!(rx1.try_recv().is_err(), "one message per link");
    assert_eq!(inner.dropped, 0);
    // Link 2's queue (capacity 1) is full now: the next one is dropped.
    inner.broadcast([20], same(&RemoveObject { id: 6 }));
    assert_eq!(inner.dropped, 1);
    drop(rx2);
}

#[test]
fn removal_is_announced_to_the_map_only() {
    let mut inner = WorldInner::default();
    let (tx, mut rx) = mpsc::channel(8);
    inner.links.insert(1, tx);
    for (s, e) in [(1, 11), (2, 12), (3, 13)] {
        inner.players.insert(s, player(s, 1, e));
        inner.entities.insert(e, s);
    }
    inner.players.get_mut(&3).unwrap().map = 2;
    inner.maps.entry(1).or_default().extend([1, 2]);
    inner.maps.entry(2).or_default().insert(3);
    let gone = inner.remove_player(1).unwrap();
    assert_eq!(gone.entity_id, 11);
    assert!(!inner.entities.contains_key(&11));
    let Ok(Ok(pb::Downstream {
        kind: Some(downstream::Kind::Packet(b)),
    })) = rx.try_recv()
    else {
        panic!("no announcement");
    };
    assert_eq!((b.targets, b.payload), (vec![2], vec![11, 0]));
    assert!(rx.try_recv().is_err());
}
