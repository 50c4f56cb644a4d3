//! Write-behind saving of characters in play: the world queues what it
//! knows of a character (on leave, on disconnect, and every
//! `SAVE_INTERVAL_SECS` for those that moved) without waiting, and one task
//! writes the queue to the store in transactions of at most
//! [`SAVE_BATCH`] characters.
//!
//! A queued state stays in the queue until the transaction holding it has
//! committed, and a newer state of the same character replaces it. So a
//! reader that looks at the queue *before* reading the store sees the
//! newest state either way: found in the queue, or already committed when
//! it was not there. The queue holds at most one entry per character in
//! play (and those that just left), so it is bounded by the players.
//! A failed write keeps everything queued and is retried after
//! [`RETRY_AFTER`]; the backend flushes the queue on shutdown.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify};

use crate::backend::store::memory::lock;
use crate::backend::store::{CharState, Store, StoreError};

/// Most characters saved in one transaction.
pub const SAVE_BATCH: usize = 500;
/// Wait before a failed save is tried again.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The queue of states to save and the task that writes it.
pub struct Saver {
    store: Arc<dyn Store>,
    /// Per character: its newest unsaved state and the version it was
    /// queued with.
    pending: Mutex<Pending>,
    wake: Notify,
}

#[derive(Default)]
struct Pending {
    states: HashMap<u64, (CharState, u64)>,
    next_version: u64,
}

impl Saver {
    /// An empty queue over `store`.
    pub fn new(store: Arc<dyn Store>) -> Saver {
        Saver {
            store,
            pending: Mutex::new(Pending::default()),
            wake: Notify::new(),
        }
    }

    /// Queues states (replacing older ones of the same characters).
    pub fn queue(&self, states: impl IntoIterator<Item = CharState>) {
        let mut pending = lock(&self.pending);
        let before = pending.next_version;
        for state in states {
            pending.next_version += 1;
            let version = pending.next_version;
            pending.states.insert(state.char_id, (state, version));
        }
        if pending.next_version != before {
            drop(pending);
            self.wake.notify_one();
        }
    }

    /// The newest unsaved state of a character, if any.
    pub fn latest(&self, char_id: u64) -> Option<CharState> {
        lock(&self.pending).states.get(&char_id).map(|(s, _)| *s)
    }

    /// Number of states waiting.
    pub fn len(&self) -> usize {
        lock(&self.pending).states.len()
    }

    /// Writes everything queued now; how many states were written.
    pub async fn flush(&self) -> Result<usize, StoreError> {
        let batch: Vec<(CharState, u64)> = lock(&self.pending).states.values().copied().collect();
        for chunk in batch.chunks(SAVE_BATCH) {
            let states: Vec<CharState> = chunk.iter().map(|(s, _)| *s).collect();
            self.store.save_characters(&states).await?;
            let mut pending = lock(&self.pending);
            for (state, version) in chunk {
                if pending.states.get(&state.char_id).map(|e| e.1) == Some(*version) {
                    pending.states.remove(&state.char_id);
                }
            }
        }
        Ok(batch.len())
    }

    /// Writes the queue whenever something is queued, until `stopped`;
    /// then writes what is left (the caller queued the last players first).
    pub async fn run(self: Arc<Self>, mut stopped: watch::Receiver<bool>) {
        loop {
            let stop = tokio::select! {
                _ = self.wake.notified() => false,
                _ = stopped.wait_for(|&s| s) => true,
            };
            loop {
                match self.flush().await {
                    Ok(n) if n > 0 => log::debug!("saved {n} characters"),
                    Ok(_) => {}
                    Err(e) if stop => {
                        log::error!(
                            "characters not saved at shutdown ({} left): {e}",
                            self.len()
                        );
                        return;
                    }
                    Err(e) => {
                        log::error!("saving characters failed, retrying: {e}");
                        tokio::time::sleep(RETRY_AFTER).await;
                        continue;
                    }
                }
                break;
            }
            if stop {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::characters::NewCharacter;
    use crate::backend::store::memory::MemoryStore;

    fn state(char_id: u64, x: f32) -> CharState {
        CharState {
            char_id,
            map: 2,
            x,
            y: x,
            hp: 9,
            mp: 8,
        }
    }

    #[tokio::test]
    async fn newest_state_wins_and_is_gone_once_written() {
        let store = Arc::new(MemoryStore::new(5));
        let new = NewCharacter {
            name: "a".into(),
            ..NewCharacter::default()
        };
        let id = store.create_character(1, &new).await.unwrap().unwrap();
        let saver = Saver::new(store.clone());
        saver.queue([state(id, 1.0)]);
        saver.queue([state(id, 2.0), state(99, 5.0)]);
        assert_eq!(saver.latest(id), Some(state(id, 2.0)));
        assert_eq!(saver.len(), 2);
        assert_eq!(saver.flush().await.unwrap(), 2);
        assert_eq!(saver.len(), 0);
        let c = store.character(1, id).await.unwrap().unwrap();
        assert_eq!((c.map, c.x, c.hp, c.mp), (2, 2.0, 9, 8));
    }
}
