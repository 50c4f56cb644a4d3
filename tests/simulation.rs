//! Seeded, deterministic simulation of the reactor's connection table
//! driving real [`Session`]s (style rule 12).
//!
//! The model mirrors `src/reactor/mod.rs` without sockets or threads: a
//! `Slab` of connections whose slots are reused with a fresh generation, the
//! session → `ConnRef` routing map for the world, the timer heap with lazy
//! invalidation, the close-then-reap order, and completions delivered only
//! to a slot whose generation still matches. Around it: a virtual clock, a
//! model of the backends (auth sessions and stages, characters, the world's
//! members) and a queue of jobs in flight. Random clients log in, select a
//! server, join, list, create, delete and select characters, talk in the
//! world, send ALIVE, garbage and unknown ids, close and reconnect, while
//! faults are injected: replies late (after the deadline), duplicated,
//! reordered, answering connections that closed (their slot taken by a new
//! one), a full job queue, lost world joins, world link drops and kicks.
//!
//! Checked at every step: the per-session invariants of `conn::check`; a
//! completion is applied only to the connection that asked (slot and
//! generation) and otherwise counted stale; no connection waits longer
//! than the RPC deadline; a reaped connection leaves no world route behind;
//! completions produced = applied + stale + still in flight. At the end,
//! after every connection closed: no route left and no player left in the
//! world, except those whose Leave a full job queue dropped (the reactor
//! drops and counts any job it cannot queue; for a Leave that strands the
//! player in the world until the link drops: a known gap, reported in the
//! summary line).
//!
//! `SIM_SEED=n` replays one seed, `SIM_SEEDS=n` runs more (default 300),
//! `SIM_STEPS=n` changes the steps per seed (default 2000). A failure
//! prints the seed and step.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::time::{Duration, Instant};

use slab::Slab;

use packet_service::conn::calls::{
    Call, ChannelEntry, CharSummary, DeleteReply, JoinServerReply, Liveness, LoginReply, Outcome,
    Reply, RpcError, SelectServerReply, ServerEntry, Stage,
};
use packet_service::conn::check::{self, Before, Checker};
use packet_service::conn::reason::CloseReason;
use packet_service::conn::state::{Action, Ctx, Disposition, Input, Phase, Session};
use packet_service::ids::{CharId, ConnRef, RequestId, SessionId, UserId};
use packet_service::protocol::packet_type::PacketType;
use packet_service::rpc::types::Completion;

/// splitmix64: tiny, seedable, good enough to pick actions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn millis(&mut self, max: u64) -> Duration {
        Duration::from_millis(self.below(max + 1))
    }
}

const MAX_CONNS: usize = 12;
const RPC_DEADLINE: Duration = Duration::from_secs(5);

struct Conn {
    conn_ref: ConnRef,
    session: Session,
    checker: Checker,
    closing: Option<CloseReason>,
    timer_at: Option<Instant>,
    /// Request ids this connection issued (calls and notifies).
    issued: HashSet<u32>,
}

struct InFlight {
    due: Instant,
    completion: Completion,
}

/// What the auth service knows of a session.
#[derive(Clone, Copy)]
struct AuthSession {
    user: u32,
    stage: Stage,
}

#[derive(Default)]
struct Counts {
    produced: u64,
    applied: u64,
    stale: u64,
    joined_produced: u64,
    joined_delivered: u64,
    closed: u64,
    in_world: u64,
    lost_leaves: u64,
}

struct Sim {
    rng: Rng,
    now: Instant,
    servers: Vec<ServerEntry>,
    conns: Slab<Conn>,
    next_generation: u32,
    /// World routing: session → connection (the reactor's `sessions`).
    routes: HashMap<SessionId, ConnRef>,
    timers: BinaryHeap<Reverse<(Instant, u32, u32)>>,
    inflight: Vec<InFlight>,
    auth: HashMap<u32, AuthSession>,
    /// Players the world believes are in (joined, not left).
    world: HashSet<SessionId>,
    world_up: bool,
    /// Sessions whose world Leave was dropped by a full job queue.
    lost_leaves: HashSet<SessionId>,
    counts: Counts,
}

/// The reactor's defaults, no rate limit.
fn ctx(servers: &[ServerEntry]) -> Ctx<'_> {
    Ctx {
        rpc_deadline: RPC_DEADLINE,
        packet_burst: 400,
        ..check::test_ctx(servers, 0)
    }
}

type Step = Result<(), String>;

impl Sim {
    fn new(seed: u64) -> Sim {
        let t0 = Instant::now();
        Sim {
            rng: Rng(seed),
            now: t0,
            servers: vec![ServerEntry {
                id: 1,
                name: "Athena".into(),
                test: false,
                channels: vec![ChannelEntry {
                    id: 1,
                    name: "one".into(),
                    low_age: 0,
                    high_age: 99,
                    capacity_percent: 10,
                }],
            }],
            conns: Slab::new(),
            next_generation: 0,
            routes: HashMap::new(),
            timers: BinaryHeap::new(),
            inflight: Vec::new(),
            auth: HashMap::new(),
            world: HashSet::new(),
            world_up: true,
            lost_leaves: HashSet::new(),
            counts: Counts::default(),
        }
    }

    // ---- the reactor model ----------------------------------------------

    fn accept(&mut self) -> Step {
        if self.conns.len() >= MAX_CONNS {
            return Ok(());
        }
        self.next_generation = self.next_generation.wrapping_add(1);
        let entry = self.conns.vacant_entry();
        let conn_ref = ConnRef {
            index: entry.key() as u32,
            generation: self.next_generation,
        };
        let peer = ([10, 0, 0, 1], 4000 + entry.key() as u16).into();
        entry.insert(Conn {
            conn_ref,
            session: Session::new(peer, self.now, 400),
            checker: Checker::new(),
            closing: None,
            timer_at: None,
            issued: HashSet::new(),
        });
        self.schedule(conn_ref.index as usize);
        Ok(())
    }

    /// One input to one live connection, with its actions carried out.
    fn handle(&mut self, idx: usize, input: Input<'_>) -> Result<Disposition, String> {
        let servers = std::mem::take(&mut self.servers);
        let result = self.handle_with(idx, input, &servers);
        self.servers = servers;
        result
    }

    fn handle_with(
        &mut self,
        idx: usize,
        input: Input<'_>,
        servers: &[ServerEntry],
    ) -> Result<Disposition, String> {
        let c = ctx(servers);
        let now = self.now;
        let conn = &mut self.conns[idx];
        let before = Before::of(&conn.session, &c);
        let mut actions = Vec::new();
        let d = conn.session.handle(&c, input, now, &mut actions);
        conn.checker
            .step(&before, &conn.session, &c, &input, now, &actions, d)?;
        if let (Input::Completion { request, .. }, Disposition::Applied) = (input, d) {
            if !conn.issued.contains(&request.0) {
                return Err(format!("{} applied a request it never made", conn.conn_ref));
            }
        }
        self.apply(idx, actions)?;
        self.schedule(idx);
        Ok(d)
    }

    /// The reactor's `Env::apply`.
    fn apply(&mut self, idx: usize, mut actions: Vec<Action>) -> Step {
        let servers = std::mem::take(&mut self.servers);
        let mut i = 0;
        while i < actions.len() {
            let action = std::mem::replace(&mut actions[i], Action::Echo);
            i += 1;
            let conn_ref = self.conns[idx].conn_ref;
            match action {
                Action::Call(request, call) => {
                    self.conns[idx].issued.insert(request.0);
                    if self.rng.chance(2) {
                        // Job queue full: the reactor answers at once.
                        let busy = Err(RpcError::Busy);
                        let input = Input::Completion {
                            request,
                            result: &busy,
                        };
                        let c = ctx(&servers);
                        let conn = &mut self.conns[idx];
                        let before = Before::of(&conn.session, &c);
                        let mut more = Vec::new();
                        let d = conn.session.handle(&c, input, self.now, &mut more);
                        conn.checker.step(
                            &before,
                            &conn.session,
                            &c,
                            &input,
                            self.now,
                            &more,
                            d,
                        )?;
                        actions.extend(more);
                    } else {
                        self.submit(conn_ref, request, call);
                    }
                }
                Action::Notify(request, call) => {
                    self.conns[idx].issued.insert(request.0);
                    self.notify(conn_ref, request, call);
                }
                Action::BindSession(s) => {
                    self.routes.insert(s, conn_ref);
                }
                Action::UnbindSession(s) => {
                    if self.routes.get(&s) == Some(&conn_ref) {
                        self.routes.remove(&s);
                    }
                }
                Action::Close(reason) => {
                    let conn = &mut self.conns[idx];
                    conn.closing.get_or_insert(reason);
                }
                Action::Send(_) | Action::Echo | Action::ProtocolError(_) => {}
            }
        }
        self.servers = servers;
        Ok(())
    }

    /// The reactor's `Env::schedule`.
    fn schedule(&mut self, idx: usize) {
        let servers = std::mem::take(&mut self.servers);
        let conn = &mut self.conns[idx];
        if conn.closing.is_none() {
            if let Some(at) = conn.session.next_deadline(&ctx(&servers)) {
                if conn.timer_at.is_none_or(|t| at < t) {
                    conn.timer_at = Some(at);
                    self.timers
                        .push(Reverse((at, conn.conn_ref.index, conn.conn_ref.generation)));
                }
            }
        }
        self.servers = servers;
    }

    /// The reactor's `deliver`: only to the same slot and generation.
    /// Returns how the input was taken (`Stale` also for a slot gone).
    fn deliver(&mut self, conn_ref: ConnRef, input: Input<'_>) -> Result<Disposition, String> {
        let idx = conn_ref.index as usize;
        match self.conns.get(idx) {
            Some(conn) if conn.conn_ref == conn_ref && conn.closing.is_none() => {}
            _ => return Ok(Disposition::Stale),
        }
        self.handle(idx, input)
    }

    /// A completion from the queue: counted as applied or stale.
    fn land(&mut self, conn_ref: ConnRef, input: Input<'_>) -> Step {
        match self.deliver(conn_ref, input)? {
            Disposition::Stale => self.counts.stale += 1,
            Disposition::Applied => self.counts.applied += 1,
        }
        Ok(())
    }

    /// The reactor's `complete` for the completions now due, in random order.
    fn complete(&mut self) -> Step {
        let now = self.now;
        let mut due = Vec::new();
        let mut i = 0;
        while i < self.inflight.len() {
            if self.inflight[i].due <= now {
                due.push(self.inflight.swap_remove(i));
            } else {
                i += 1;
            }
        }
        // Reordered: shuffle what arrives in one pass.
        for i in (1..due.len()).rev() {
            let j = self.rng.below(i as u64 + 1) as usize;
            due.swap(i, j);
        }
        for job in due {
            match job.completion {
                Completion::Rpc {
                    conn,
                    request,
                    result,
                } => {
                    let input = Input::Completion {
                        request,
                        result: &result,
                    };
                    self.land(conn, input)?;
                }
                Completion::Joined {
                    session,
                    ok,
                    entity_id,
                } => {
                    self.counts.joined_delivered += 1;
                    if let Some(&conn) = self.routes.get(&session) {
                        self.land(conn, Input::Joined { ok, entity_id })?;
                    } else {
                        self.counts.stale += 1;
                    }
                }
                other => return Err(format!("unexpected {other:?}")),
            }
        }
        Ok(())
    }

    /// The reactor's `expire_timers`.
    fn expire_timers(&mut self) -> Step {
        let mut fired = 0;
        while let Some(&Reverse((at, index, generation))) = self.timers.peek() {
            if at > self.now {
                break;
            }
            self.timers.pop();
            fired += 1;
            if fired > 10_000 {
                return Err("timers keep firing at the same instant".into());
            }
            let idx = index as usize;
            match self.conns.get_mut(idx) {
                Some(c) if c.conn_ref.generation == generation && c.timer_at == Some(at) => {
                    c.timer_at = None;
                }
                _ => continue,
            }
            if self.conns[idx].closing.is_some() {
                continue;
            }
            self.handle(idx, Input::Tick)?;
        }
        Ok(())
    }

    /// The reactor's `reap`: `on_close`, its notifies and unbinds, slot freed.
    fn reap(&mut self) -> Step {
        let closing: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.closing.is_some())
            .map(|(i, _)| i)
            .collect();
        for idx in closing {
            let mut conn = self.conns.remove(idx);
            let mut actions = Vec::new();
            conn.session.on_close(&mut actions);
            conn.checker.closed(&actions)?;
            for action in actions {
                match action {
                    Action::Notify(request, call) => self.notify(conn.conn_ref, request, call),
                    Action::UnbindSession(s) => {
                        if self.routes.get(&s) == Some(&conn.conn_ref) {
                            self.routes.remove(&s);
                        }
                    }
                    other => return Err(format!("on_close pushed {other:?}")),
                }
            }
            self.counts.closed += 1;
            if let Some((s, _)) = self.routes.iter().find(|(_, r)| **r == conn.conn_ref) {
                return Err(format!(
                    "{} reaped in {} ({:?}) but session {} still routes to it",
                    conn.conn_ref,
                    conn.session.phase().name(),
                    conn.closing,
                    s.0
                ));
            }
        }
        Ok(())
    }

    // ---- the backends -------------------------------------------------------

    /// Latency of a backend answer: mostly in time, sometimes after the deadline.
    fn latency(&mut self) -> Duration {
        if self.rng.chance(15) {
            RPC_DEADLINE + self.rng.millis(3_000)
        } else {
            self.rng.millis(1_500)
        }
    }

    fn push(&mut self, delay: Duration, completion: Completion) {
        let due = self.now + delay;
        if matches!(completion, Completion::Joined { .. }) {
            self.counts.joined_produced += 1;
        } else {
            self.counts.produced += 1;
        }
        self.inflight.push(InFlight { due, completion });
    }

    fn submit(&mut self, conn: ConnRef, request: RequestId, call: Call) {
        let result = self.answer(&call);
        let delay = self.latency();
        if self.rng.chance(5) {
            // Duplicated by a retrying transport.
            let again = self.latency();
            self.push(
                again,
                Completion::Rpc {
                    conn,
                    request,
                    result: result.clone(),
                },
            );
        }
        self.push(
            delay,
            Completion::Rpc {
                conn,
                request,
                result,
            },
        );
    }

    fn answer(&mut self, call: &Call) -> Result<Reply, RpcError> {
        if self.rng.chance(4) {
            return Err(RpcError::Unavailable);
        }
        let ok = self.rng.chance(85);
        let verdict = |refused: u8| {
            if ok {
                Outcome::Ok
            } else {
                Outcome::Refused(refused)
            }
        };
        Ok(match call {
            Call::Login { .. } => {
                let session_id = (self.rng.next() as u32) | 1;
                let user = self.rng.below(50) as u32 + 1;
                if ok {
                    self.auth.insert(
                        session_id,
                        AuthSession {
                            user,
                            stage: Stage::LoggedIn,
                        },
                    );
                }
                Reply::Login(LoginReply {
                    outcome: verdict(3),
                    user: UserId(user),
                    access: 1,
                    session: SessionId(session_id),
                    servers: self.servers.clone(),
                })
            }
            Call::SelectServer { session, .. } => {
                let known = self.auth.get_mut(&session.0);
                let ok = ok && known.is_some();
                if let (true, Some(s)) = (ok, known) {
                    s.stage = Stage::CharSelect;
                }
                Reply::SelectServer(SelectServerReply {
                    outcome: if ok { Outcome::Ok } else { Outcome::Refused(1) },
                    session: Some(*session),
                })
            }
            Call::JoinServer { session, .. } => match self.auth.get(&session.0) {
                Some(s) if ok => Reply::JoinServer(JoinServerReply {
                    outcome: Outcome::Ok,
                    user: UserId(s.user),
                    stage: s.stage,
                    char_id: CharId(u64::from(s.user) * 10),
                }),
                _ => Reply::JoinServer(JoinServerReply {
                    outcome: Outcome::Refused(3),
                    user: UserId(0),
                    stage: Stage::LoggedIn,
                    char_id: CharId(0),
                }),
            },
            Call::ListChars { user } => Reply::ListChars(
                (0..self.rng.below(4))
                    .map(|i| CharSummary {
                        char_id: CharId(u64::from(user.0) * 10 + i),
                        name: format!("char{i}"),
                        race: 0,
                        level: 1,
                        job: 0,
                        remain_secs_until_delete: 0,
                        face: 0,
                        hair: 0,
                        equipped_items: Vec::new(),
                    })
                    .collect(),
            ),
            Call::CreateChar { .. } => {
                // The service assigns the new character an id (which the
                // gateway never reads): draw it all the same.
                self.rng.next();
                Reply::CreateChar(verdict(2))
            }
            Call::DeleteChar { .. } => Reply::DeleteChar(DeleteReply {
                outcome: verdict(2),
                remaining_secs: 3600,
            }),
            Call::SelectChar { session, .. } => {
                if let (true, Some(s)) = (ok, self.auth.get_mut(&session.0)) {
                    s.stage = Stage::Map;
                }
                Reply::SelectChar(verdict(1))
            }
            Call::Refresh { session } => Reply::Refresh(if self.auth.contains_key(&session.0) {
                Liveness::Alive
            } else {
                Liveness::Expired
            }),
            Call::Logout { .. } => Reply::Logout,
            Call::WorldJoin { .. } | Call::WorldPacket { .. } | Call::WorldLeave { .. } => {
                Reply::Logout
            }
        })
    }

    /// Fire-and-forget calls, as the dispatcher and the world link treat them.
    fn notify(&mut self, conn: ConnRef, request: RequestId, call: Call) {
        if self.rng.chance(2) {
            // Queue full: the reactor drops the job (counted). A lost Leave
            // leaves the player in the world until the link drops: a known
            // gap, kept apart from the ghosts checked at the end.
            if let Call::WorldLeave { session, .. } = &call {
                self.counts.lost_leaves += 1;
                self.lost_leaves.insert(*session);
            }
            // Queue full: the reactor refuses a join at once.
            if let Call::WorldJoin { session, .. } = call {
                self.push(
                    Duration::ZERO,
                    Completion::Joined {
                        session,
                        ok: false,
                        entity_id: 0,
                    },
                );
            }
            return;
        }
        match call {
            Call::Refresh { session } => {
                // Only a refused refresh is reported back.
                if self.rng.chance(3) {
                    self.auth.remove(&session.0);
                }
                if !self.auth.contains_key(&session.0) {
                    let delay = self.latency();
                    self.push(
                        delay,
                        Completion::Rpc {
                            conn,
                            request,
                            result: Ok(Reply::Refresh(Liveness::Expired)),
                        },
                    );
                }
            }
            Call::Logout { session, .. } => {
                self.auth.remove(&session.0);
            }
            Call::WorldJoin { session, .. } => {
                if !self.world_up {
                    self.push(
                        Duration::ZERO,
                        Completion::Joined {
                            session,
                            ok: false,
                            entity_id: 0,
                        },
                    );
                } else if self.rng.chance(92) {
                    let ok = self.rng.chance(90);
                    if ok {
                        self.world.insert(session);
                    }
                    let delay = self.latency();
                    let entity_id = self.rng.below(1000) as u32;
                    self.push(
                        delay,
                        Completion::Joined {
                            session,
                            ok,
                            entity_id,
                        },
                    );
                } // else: the join is lost; the gateway's deadline ends it.
            }
            Call::WorldLeave { session, .. } => {
                self.world.remove(&session);
            }
            Call::WorldPacket { .. } => {}
            other => {
                let result = self.answer(&other);
                let delay = self.latency();
                self.push(
                    delay,
                    Completion::Rpc {
                        conn,
                        request,
                        result,
                    },
                );
            }
        }
    }

    // ---- the clients --------------------------------------------------------

    fn random_conn(&mut self) -> Option<usize> {
        let live: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.closing.is_none())
            .map(|(i, _)| i)
            .collect();
        if live.is_empty() {
            return None;
        }
        Some(live[self.rng.below(live.len() as u64) as usize])
    }

    /// A session id to join with: mostly one the auth service knows, past
    /// the login stage when there is one; sometimes a made-up one.
    fn known_session(&mut self) -> u32 {
        if self.auth.is_empty() || self.rng.chance(10) {
            return self.rng.next() as u32;
        }
        // HashMap order is not seeded: pick from a sorted list.
        let mut ids: Vec<(bool, u32)> = self
            .auth
            .iter()
            .map(|(id, s)| (s.stage != Stage::LoggedIn, *id))
            .collect();
        ids.sort_unstable();
        let advanced = ids.iter().filter(|(a, _)| *a).count();
        if advanced > 0 && self.rng.chance(80) {
            let n = self.rng.below(advanced as u64) as usize;
            return ids[ids.len() - advanced + n].1;
        }
        ids[self.rng.below(ids.len() as u64) as usize].1
    }

    /// What a client in this phase plausibly sends next (packet pick, a, bytes).
    fn client_packet(&mut self, idx: usize) -> (PacketType, Vec<u8>) {
        let phase = self.conns[idx].session.phase().clone();
        let a = self.rng.next() as u32;
        let pick = match phase {
            Phase::New => match self.rng.below(10) {
                0 => 0,
                1..=3 => 2,
                _ => {
                    let sid = self.known_session();
                    return check::client_packet(3, sid, b"");
                }
            },
            Phase::LoggedIn { .. } => [4, 5, 5][self.rng.below(3) as usize],
            Phase::CharSelect(_) => [6, 7, 8, 9, 9][self.rng.below(5) as usize],
            Phase::InWorld { .. } => [10, 10, 14, 11, 12][self.rng.below(5) as usize],
            _ => 1,
        };
        let name = format!("name{}", a % 7);
        check::client_packet(pick, a, name.as_bytes())
    }

    fn client_step(&mut self) -> Step {
        let Some(idx) = self.random_conn() else {
            return self.accept();
        };
        let waiting = self.conns[idx].session.phase().is_waiting();
        let roll = self.rng.below(100);
        let (ptype, body): (PacketType, Vec<u8>) = match roll {
            // Garbage: any client type, random bytes.
            0..=3 => {
                let types = check::client_types();
                let t = types[self.rng.below(types.len() as u64) as usize];
                let len = self.rng.below(24) as usize;
                (t, (0..len).map(|_| self.rng.next() as u8).collect())
            }
            4 => {
                if waiting {
                    return Ok(());
                }
                let id = 0x7F0 + self.rng.below(15) as u16;
                self.handle(idx, Input::Unknown { id })?;
                return Ok(());
            }
            5..=14 => (PacketType::PAKCS_ALIVE, Vec::new()),
            _ => self.client_packet(idx),
        };
        // While a backend call is pending the reactor decodes only ALIVE.
        if waiting && ptype != PacketType::PAKCS_ALIVE {
            return Ok(());
        }
        self.handle(idx, Input::Packet { ptype, body: &body })?;
        Ok(())
    }

    fn world_event(&mut self) -> Step {
        if self.rng.chance(50) {
            // A kick for a routed session (or an unknown one).
            let mut routed: Vec<(SessionId, ConnRef)> =
                self.routes.iter().map(|(s, c)| (*s, *c)).collect();
            routed.sort_unstable_by_key(|(s, _)| *s);
            if let Some(&(s, conn)) = routed.get(self.rng.below(routed.len() as u64 + 1) as usize) {
                self.world.remove(&s);
                self.deliver(conn, Input::Kicked)?;
            }
        } else if self.world_up {
            // The link drops: the world forgets everyone; bound players are told.
            self.world_up = false;
            self.world.clear();
            self.lost_leaves.clear();
            let mut bound: Vec<ConnRef> = self.routes.values().copied().collect();
            bound.sort_unstable_by_key(|c| (c.index, c.generation));
            for conn in bound {
                self.deliver(conn, Input::WorldDown)?;
            }
        } else {
            self.world_up = true;
        }
        Ok(())
    }

    fn advance(&mut self) -> Step {
        let dt = match self.rng.below(100) {
            0..=69 => self.rng.millis(1_000),
            70..=97 => self.rng.millis(8_000),
            _ => self.rng.millis(400_000),
        };
        self.now += dt;
        Ok(())
    }

    /// One pass: one random event, then completions, timers and reaping in
    /// the reactor's order, then the invariants.
    fn pass(&mut self) -> Step {
        match self.rng.below(100) {
            0..=7 => self.accept()?,
            8..=59 => self.client_step()?,
            60..=84 => self.advance()?,
            85..=89 => {
                if let Some(idx) = self.random_conn() {
                    self.conns[idx].closing = Some(CloseReason::PeerClosed);
                }
            }
            90..=92 => self.world_event()?,
            _ => {
                // A burst from one client.
                for _ in 0..4 {
                    self.client_step()?;
                }
            }
        }
        self.complete()?;
        self.expire_timers()?;
        self.reap()?;
        self.check()
    }

    fn check(&mut self) -> Step {
        let c = self.produced_check();
        c?;
        for (_, conn) in self.conns.iter_mut() {
            if conn.closing.is_some() {
                continue;
            }
            // Timers ran this pass: whatever was due has been settled.
            if let Some((request, deadline)) = conn.session.pending_request() {
                if deadline <= self.now {
                    return Err(format!(
                        "{} still waits in {} for {request:?}, {:?} past its deadline",
                        conn.conn_ref,
                        conn.session.phase().name(),
                        self.now - deadline
                    ));
                }
            }
            if matches!(conn.session.phase(), Phase::InWorld { .. }) {
                self.counts.in_world += 1;
            }
        }
        for (s, r) in &self.routes {
            match self.conns.get(r.index as usize) {
                Some(c) if c.conn_ref == *r => {}
                _ => return Err(format!("session {} routes to {r}, which is gone", s.0)),
            }
        }
        Ok(())
    }

    fn produced_check(&self) -> Step {
        let rpc_inflight = self
            .inflight
            .iter()
            .filter(|j| matches!(j.completion, Completion::Rpc { .. }))
            .count() as u64;
        let joined_inflight = self.inflight.len() as u64 - rpc_inflight;
        let c = &self.counts;
        if c.produced + c.joined_produced != c.applied + c.stale + rpc_inflight + joined_inflight
            || c.joined_produced != c.joined_delivered + joined_inflight
        {
            return Err(format!(
                "counts do not add up: produced {} + joined {} vs applied {} + stale {} + in flight {}",
                c.produced,
                c.joined_produced,
                c.applied,
                c.stale,
                self.inflight.len()
            ));
        }
        Ok(())
    }

    /// Every client goes; everything in flight lands; nothing is left over.
    fn finish(&mut self) -> Step {
        let live: Vec<usize> = self.conns.iter().map(|(i, _)| i).collect();
        for idx in live {
            self.conns[idx]
                .closing
                .get_or_insert(CloseReason::PeerClosed);
        }
        self.reap()?;
        self.now += RPC_DEADLINE * 4;
        self.complete()?;
        self.expire_timers()?;
        self.check()?;
        if !self.inflight.is_empty() {
            return Err(format!("{} completions never landed", self.inflight.len()));
        }
        if !self.routes.is_empty() {
            return Err(format!("{} world routes left", self.routes.len()));
        }
        let mut ghosts: Vec<u32> = self
            .world
            .iter()
            .filter(|s| !self.lost_leaves.contains(s))
            .map(|s| s.0)
            .collect();
        ghosts.sort_unstable();
        if !ghosts.is_empty() {
            return Err(format!("players left in the world: {ghosts:?}"));
        }
        Ok(())
    }
}

fn run(seed: u64, steps: usize) -> Result<Counts, String> {
    let mut sim = Sim::new(seed);
    for step in 0..steps {
        sim.pass().map_err(|e| format!("step {step}: {e}"))?;
    }
    sim.finish().map_err(|e| format!("finish: {e}"))?;
    Ok(sim.counts)
}

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn seeded_simulation() {
    let steps = env("SIM_STEPS").unwrap_or(2_000) as usize;
    let seeds: Vec<u64> = match env("SIM_SEED") {
        Some(seed) => vec![seed],
        None => (0..env("SIM_SEEDS").unwrap_or(300)).collect(),
    };
    let mut total = Counts::default();
    let mut failures = Vec::new();
    for &seed in &seeds {
        match run(seed, steps) {
            Ok(c) => {
                total.applied += c.applied;
                total.stale += c.stale;
                total.closed += c.closed;
                total.in_world += c.in_world;
                total.lost_leaves += c.lost_leaves;
            }
            Err(e) => {
                eprintln!("seed {seed} failed: {e}\n  replay: SIM_SEED={seed} cargo test --test simulation");
                failures.push(seed);
            }
        }
    }
    eprintln!(
        "{} seeds x {steps} steps: {} completions applied, {} stale, {} connections closed, \
         {} in-world connection-steps, {} world leaves dropped by a full queue",
        seeds.len(),
        total.applied,
        total.stale,
        total.closed,
        total.in_world,
        total.lost_leaves
    );
    assert!(failures.is_empty(), "failing seeds: {failures:?}");
    // The model must reach the deep states, or it tests little.
    assert!(
        seeds.len() < 20 || total.in_world > 0,
        "no client ever reached the world"
    );
}
