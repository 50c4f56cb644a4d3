//! The embedded world's series (`world_messages_dropped_total`,
//! `world_players`, `world_visibility_packets_total`,
//! `world_held_messages_refused_total`, `world_joins_cancelled_total`,
//! `world_link_loading_full_total`): the world keeps
//! plain counters under its own lock, and [`WorldSeries::export`] copies
//! them into the collectors, once a second from a task of the runtime, so
//! the world's hot paths touch no collector.

use prometheus::{IntCounter, IntGaugeVec};

use super::Metrics;
use crate::backend::world::{WorldState, WorldStats};

/// The collectors the embedded world's counters go to, and what was
/// exported last.
pub struct WorldSeries {
    dropped: IntCounter,
    players: IntGaugeVec,
    spawns: IntCounter,
    removals: IntCounter,
    held_refused: IntCounter,
    joins_cancelled: IntCounter,
    loading_full: IntCounter,
    /// The counters at the last export.
    seen: WorldStats,
    /// The map labels set at the last export.
    maps: Vec<String>,
}

impl WorldSeries {
    /// The world's series of `metrics`.
    pub fn new(metrics: &Metrics) -> WorldSeries {
        WorldSeries {
            dropped: metrics.world_dropped.clone(),
            players: metrics.world_players.clone(),
            spawns: metrics.world_visibility.with_label_values(&["spawn"]),
            removals: metrics.world_visibility.with_label_values(&["remove"]),
            held_refused: metrics.world_held_refused.clone(),
            joins_cancelled: metrics.world_joins_cancelled.clone(),
            loading_full: metrics.world_loading_full.clone(),
            seen: WorldStats::default(),
            maps: Vec::new(),
        }
    }

    /// Adds what the world counted since the last call and sets the players
    /// per map; a map that has no players left loses its series, so the
    /// labels are the maps in play.
    pub fn export(&mut self, world: &WorldState) {
        let now = world.stats();
        self.dropped
            .inc_by(now.dropped.saturating_sub(self.seen.dropped));
        self.spawns
            .inc_by(now.spawns.saturating_sub(self.seen.spawns));
        self.removals
            .inc_by(now.removals.saturating_sub(self.seen.removals));
        self.held_refused.inc_by(
            now.refused_while_loading
                .saturating_sub(self.seen.refused_while_loading),
        );
        self.joins_cancelled.inc_by(
            now.joins_cancelled
                .saturating_sub(self.seen.joins_cancelled),
        );
        self.loading_full
            .inc_by(now.loading_full.saturating_sub(self.seen.loading_full));
        self.seen = now;
        let maps: Vec<(String, usize)> = world
            .players_per_map()
            .into_iter()
            .map(|(map, n)| (map.to_string(), n))
            .collect();
        for old in &self.maps {
            if !maps.iter().any(|(m, _)| m == old) {
                let _ = self.players.remove_label_values(&[old]);
            }
        }
        for (map, n) in &maps {
            self.players
                .with_label_values(&[map])
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
        self.maps = maps.into_iter().map(|(m, _)| m).collect();
    }
}
