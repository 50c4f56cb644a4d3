//! Interest management: which players see each other. Every on-map player
//! sits in one square cell of its map's grid ([`ViewConfig::cell_size`]
//! map units, the cell holding its position); two players on one map see
//! each other when their cells are at most [`ViewConfig::radius_cells`]
//! apart in x and in y. With the defaults (1000-unit cells, 10 cells) that
//! is osIROSE's nearby test: 10,000 units (100 m) on a 1,000-unit grid.
//!
//! The grid is one ordered set of `(map, cell y, cell x, session)`, so the
//! players in view of a cell are `2 × radius + 1` range scans of rows:
//! what a movement costs grows with the players in view, not with the
//! players on the map. Spawns (PLAYER_CHAR in each family's layout) and
//! removals (REMOVE_OBJECT) are sent as players come into and go out of
//! view: on arriving on the map, on moving across cells, and on leaving.
//!
//! Invariant: a player is in the grid iff it is on the map, at the cell of
//! its `x`, `y`; while it is on the map its position changes only through
//! [`WorldInner::relocate`].

use std::collections::BTreeSet;

use super::bodies::{self, each};
use super::inner::{Player, WorldInner};
use crate::protocol::packets::Packet;

/// A cell of a map's grid: (x, y) in cells.
pub(super) type Cell = (i32, i32);

/// The grid's geometry (`WORLD_CELL_SIZE`, `WORLD_VIEW_CELLS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ViewConfig {
    /// Side of a cell, in map units (centimetres).
    pub cell_size: u32,
    /// How many cells away, in x and in y, a player still sees another.
    pub radius_cells: u32,
}

impl Default for ViewConfig {
    /// The settings table's defaults.
    fn default() -> ViewConfig {
        crate::backend::BackendConfig::default().view
    }
}

/// The on-map players of every map by cell.
#[derive(Debug)]
pub(super) struct Grid {
    cell_size: f32,
    radius: i32,
    /// `(map, cell y, cell x, session)`: rows of a map are contiguous.
    cells: BTreeSet<(u16, i32, i32, u32)>,
}

impl Grid {
    pub(super) fn new(config: ViewConfig) -> Grid {
        Grid {
            // Both are bounded by their settings' rules; a zero would only
            // come from code, and is taken as the smallest grid.
            cell_size: config.cell_size.max(1) as f32,
            radius: i32::try_from(config.radius_cells).unwrap_or(i32::MAX),
            cells: BTreeSet::new(),
        }
    }

    /// The cell holding a position. Any float maps to a cell (NaN to 0,
    /// beyond the range to the outermost cell), so peer positions are harmless.
    pub(super) fn cell_of(&self, x: f32, y: f32) -> Cell {
        let at = |v: f32| (v / self.cell_size).floor() as i32;
        (at(x), at(y))
    }

    /// Whether players in cells `a` and `b` see each other.
    pub(super) fn sees(&self, a: Cell, b: Cell) -> bool {
        a.0.abs_diff(b.0) <= self.radius.unsigned_abs()
            && a.1.abs_diff(b.1) <= self.radius.unsigned_abs()
    }

    pub(super) fn insert(&mut self, map: u16, cell: Cell, session: u32) {
        self.cells.insert((map, cell.1, cell.0, session));
    }

    pub(super) fn remove(&mut self, map: u16, cell: Cell, session: u32) {
        self.cells.remove(&(map, cell.1, cell.0, session));
    }

    /// The players (with their cells) in view of `cell` on `map`, those in
    /// `cell` included.
    pub(super) fn around(&self, map: u16, cell: Cell) -> Vec<(Cell, u32)> {
        let (x, y) = cell;
        let (x0, x1) = (x.saturating_sub(self.radius), x.saturating_add(self.radius));
        let (y0, y1) = (y.saturating_sub(self.radius), y.saturating_add(self.radius));
        let mut found = Vec::new();
        for row in y0..=y1 {
            let range = (map, row, x0, 0)..=(map, row, x1, u32::MAX);
            found.extend(self.cells.range(range).map(|&(_, cy, cx, s)| ((cx, cy), s)));
        }
        found
    }

    /// The players in view of `cell` that are not in view of `other`.
    pub(super) fn seen_only_from(&self, map: u16, cell: Cell, other: Cell) -> Vec<u32> {
        self.around(map, cell)
            .into_iter()
            .filter(|&(c, _)| !self.sees(other, c))
            .map(|(_, s)| s)
            .collect()
    }

    /// Players in the grid, for checks.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.cells.len()
    }
}

impl WorldInner {
    /// The on-map players in view of the position (`map`, `x`, `y`), a
    /// player standing there included.
    pub(super) fn in_view(&self, map: u16, x: f32, y: f32) -> Vec<u32> {
        let cell = self.grid.cell_of(x, y);
        self.grid
            .around(map, cell)
            .into_iter()
            .map(|(_, s)| s)
            .collect()
    }

    /// Puts a player that came onto its map in the grid: the players in
    /// view are shown it, and it is shown each of them.
    pub(super) fn enter_view(&mut self, session: u32) {
        let Some(p) = self.players.get(&session) else {
            return;
        };
        let (map, cell) = (p.map, self.grid.cell_of(p.x, p.y));
        let others = self.in_view(map, p.x, p.y);
        self.grid.insert(map, cell, session);
        self.show(session, &others);
    }

    /// Takes a player leaving its map out of the grid, telling nobody.
    pub(super) fn leave_grid(&mut self, p: &Player) {
        if p.on_map {
            let cell = self.grid.cell_of(p.x, p.y);
            self.grid.remove(p.map, cell, p.session_id);
        }
    }

    /// Tells the players that saw a player taken out of the grid that it
    /// is gone.
    pub(super) fn announce_removal(&mut self, p: &Player) {
        if !p.on_map {
            return;
        }
        let others = self.in_view(p.map, p.x, p.y);
        self.removals += others.len() as u64;
        let (osirose, irose) = bodies::removal(p.entity_id);
        self.broadcast(others, each(&osirose, &irose));
    }

    /// Moves a player to (`x`, `y`). On the map, crossing into another cell
    /// spawns it for the players that now see it (and them for it) and
    /// removes it for those that no longer do (and them for it).
    pub(super) fn relocate(&mut self, session: u32, x: f32, y: f32) {
        let Some(p) = self.players.get_mut(&session) else {
            return;
        };
        let (map, before) = (p.map, (p.x, p.y));
        (p.x, p.y, p.dirty) = (x, y, true);
        if !p.on_map {
            return;
        }
        let (old, new) = (
            self.grid.cell_of(before.0, before.1),
            self.grid.cell_of(x, y),
        );
        if old == new {
            return;
        }
        self.grid.remove(map, old, session);
        let gone = self.grid.seen_only_from(map, old, new);
        let came = self.grid.seen_only_from(map, new, old);
        self.grid.insert(map, new, session);
        self.hide(session, &gone);
        self.show(session, &came);
    }

    /// `session` and each of `others` are shown one another.
    fn show(&mut self, session: u32, others: &[u32]) {
        self.spawns += self.exchange(session, others, bodies::spawn_of);
    }

    /// `session` and each of `others` stop seeing one another.
    fn hide(&mut self, session: u32, others: &[u32]) {
        self.removals += self.exchange(session, others, |p| bodies::removal(p.entity_id));
    }

    /// Sends `others` what `about` says of `session` (one broadcast) and
    /// `session` what it says of each of them; how many packets that is.
    fn exchange<O: Packet, I: Packet>(
        &mut self,
        session: u32,
        others: &[u32],
        about: impl Fn(&Player) -> (O, I),
    ) -> u64 {
        let Some(p) = self.players.get(&session).filter(|_| !others.is_empty()) else {
            return 0;
        };
        let (osirose, irose) = about(p);
        self.broadcast(others.iter().copied(), each(&osirose, &irose));
        let theirs: Vec<(O, I)> = others
            .iter()
            .filter_map(|s| self.players.get(s))
            .map(&about)
            .collect();
        for (osirose, irose) in &theirs {
            self.broadcast([session], each(osirose, irose));
        }
        (others.len() + theirs.len()) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> Grid {
        Grid::new(ViewConfig {
            cell_size: 1000,
            radius_cells: 2,
        })
    }

    #[test]
    fn cells_floor_and_never_panic() {
        let g = grid();
        assert_eq!(g.cell_of(0.0, 999.9), (0, 0));
        assert_eq!(g.cell_of(-0.5, 1000.0), (-1, 1));
        assert_eq!(g.cell_of(f32::NAN, f32::INFINITY), (0, i32::MAX));
        assert_eq!(g.cell_of(f32::NEG_INFINITY, -1e30), (i32::MIN, i32::MIN));
    }

    #[test]
    fn around_is_the_square_of_cells_on_one_map() {
        let mut g = grid();
        g.insert(1, (0, 0), 10);
        g.insert(1, (2, -2), 11);
        g.insert(1, (3, 0), 12);
        g.insert(2, (0, 0), 13);
        g.insert(1, (i32::MAX, i32::MAX), 14);
        let mut seen: Vec<u32> = g.around(1, (0, 0)).into_iter().map(|(_, s)| s).collect();
        seen.sort_unstable();
        assert_eq!(seen, [10, 11]);
        assert!(g.sees((0, 0), (2, -2)) && !g.sees((0, 0), (3, 0)));
        assert_eq!(
            g.around(1, (i32::MAX, i32::MAX)),
            [((i32::MAX, i32::MAX), 14)]
        );
        g.remove(1, (0, 0), 10);
        assert_eq!(g.len(), 4);
    }

    #[test]
    fn crossing_cells_removes_and_spawns_both_ways() {
        use crate::pb::world::{self as pb, downstream};
        let mut inner = WorldInner::new(ViewConfig {
            cell_size: 1000,
            radius_cells: 2,
        });
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        inner.links.insert(1, tx);
        for (s, x) in [(1, 0.0), (2, 500.0), (3, 10_000.0)] {
            let mut p = super::super::inner::tests::player(s, 1, 10 + s as u16);
            (p.x, p.on_map) = (x, true);
            inner.players.insert(s, p);
            inner.maps.entry(1).or_default().insert(s);
            inner.enter_view(s);
        }
        assert_eq!(
            (inner.spawns, inner.removals),
            (2, 0),
            "1 and 2 see each other"
        );
        while rx.try_recv().is_ok() {}

        inner.relocate(2, 9_000.0, 0.0);
        assert_eq!((inner.spawns, inner.removals), (4, 2));
        let mut sent = Vec::new();
        while let Ok(Ok(pb::Downstream {
            kind: Some(downstream::Kind::Packet(b)),
        })) = rx.try_recv()
        {
            sent.push((b.targets, b.payload.len()));
        }
        // 1 loses 2 and 2 loses 1 (REMOVE_OBJECT: 2 bytes), then 3 is
        // shown 2 and 2 is shown 3 (PLAYER_CHAR).
        assert_eq!(sent.len(), 4, "{sent:?}");
        assert_eq!((&sent[0].0, sent[0].1), (&vec![1], 2));
        assert_eq!((&sent[1].0, sent[1].1), (&vec![2], 2));
        assert_eq!(sent[2].0, [3]);
        assert_eq!(sent[3].0, [2]);
        let mut seen = inner.in_view(1, 9_000.0, 0.0);
        seen.sort_unstable();
        assert_eq!(seen, [2, 3]);
        assert_eq!(inner.in_view(1, 0.0, 0.0), [1]);
        assert_eq!(inner.players[&2].x, 9_000.0);
    }
}
