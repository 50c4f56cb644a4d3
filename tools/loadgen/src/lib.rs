//! packet-service-loadgen: a load generator and benchmark suite for the
//! packet-service gateway, speaking its protocol (both codecs) through the
//! gateway's own protocol library, plus Redis inline `PING` as a baseline.
//!
//! # Design
//!
//! The client must be cheap: it shares the machine's cores with the server
//! it measures. Every scenario therefore runs all of its connections on one
//! thread, in one `mio` event loop ([`net`]): sockets registered once,
//! edge-triggered, reads drained until `WouldBlock`, replies batched into
//! one `write` per connection per pass. Each scenario is bounded in time and
//! in count and stops by itself; targets must be loopback addresses.
//!
//! | module | what it does |
//! |---|---|
//! | [`net`] | the event loop: connect, read, write, close |
//! | [`wire`] | packets in either codec, STRESS, Redis `PING` |
//! | [`stats`] | hdrhistogram latencies, `/proc` CPU and RSS, progress line |
//! | [`results`] | a run's figures, the table, the JSON results file |
//! | [`echo`] | round trips: N connections × pipeline depth P (closed loop) or a fixed rate (open loop) |
//! | [`bots`] | the login → char → map sequence as per-bot state machines |
//! | [`login`] | B login flows, C in flight |
//! | [`idle`] | N idle connections, server RSS per connection |
//! | [`fanout`] | M bots on one map, K chatting, stepped to saturation |
//! | [`pubsub`] | the same on Redis: M SUBSCRIBE and K PUBLISH clients |
//! | [`saturate`] | the stepper both use: highest sustained deliveries/s, CPU, p99 |
//! | [`mock`] | auth/character/world with a fixed latency (tonic on loopback) |
//! | [`gateway`] | a gateway started by the loadgen (child process or thread) |
//! | [`storm`] | N existing players log in at once after a restart, to the map |
//! | [`limits`] | the gateway's limit counters (/metrics) before and after a run |
//! | [`isolation`] | echo p99 alone vs while logins wait on a slow backend |
//! | [`soak`] | many connections, mixed traffic, minutes: RSS, fds and buffer pool over time |
//! | [`walk`] | M bots moving: all in one cell, then walking a large map; cost per delivery, players in view |
//! | [`report`] | figures vs baselines and targets; the latency SVG |
//! | [`verdict`] | whether a run measured anything (else a non-zero exit) |
//!
//! Benchmarks are benchmarks: nothing here asserts a time.

pub mod bots;
pub mod echo;
pub mod fanout;
pub mod gateway;
pub mod idle;
pub mod isolation;
pub mod limits;
pub mod login;
pub mod mock;
pub mod net;
pub mod pubsub;
pub mod report;
pub mod results;
pub mod saturate;
pub mod soak;
pub mod stats;
pub mod storm;
pub mod verdict;
pub mod walk;
pub mod wire;
