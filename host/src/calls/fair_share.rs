//! The sandbox pool, shared fairly between clients. Without it, one client
//! with a hundred slow calls holds every slot and every other client waits
//! behind it (its calls masked or not: waiting costs nothing to ask for).
//!
//! Two rules, both work-conserving (a free slot is never left idle while
//! someone waits for it):
//!
//! - A client may hold at most three quarters of the pool, so the rest is
//!   always there for the others.
//! - When a slot frees, it goes to the waiting client that holds the fewest
//!   slots (the longest waiting first among equals), not to whoever asked
//!   first.
//!
//! A waiter that gives up (its call cancelled) leaves the queue; a slot
//! handed to it just as it left comes back at once.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

pub(crate) struct FairShare {
    /// Slots a single client may hold.
    per_client: usize,
    state: Mutex<State>,
}

struct State {
    free: usize,
    held: HashMap<String, usize>,
    waiting: VecDeque<Waiter>,
}

struct Waiter {
    client: String,
    grant: oneshot::Sender<Turn>,
}

/// One slot, held until dropped.
pub(crate) struct Turn {
    share: Arc<FairShare>,
    client: String,
    /// False while it is being handed over under the lock, so that a failed
    /// hand-over does not release it twice.
    armed: bool,
}

impl Drop for Turn {
    fn drop(&mut self) {
        if self.armed {
            self.share.release(&self.client);
        }
    }
}

impl FairShare {
    pub fn new(capacity: usize) -> Arc<FairShare> {
        let capacity = capacity.max(1);
        Arc::new(FairShare {
            per_client: (capacity - capacity / 4).max(1),
            state: Mutex::new(State {
                free: capacity,
                held: HashMap::new(),
                waiting: VecDeque::new(),
            }),
        })
    }

    /// A slot for `client`, when its turn comes. Cancel-safe: dropping the
    /// future leaves the queue.
    pub async fn turn(self: &Arc<Self>, client: &str) -> Turn {
        let granted = {
            let mut state = self.lock();
            let held = state.held.get(client).copied().unwrap_or(0);
            if state.free > 0 && held < self.per_client && !state.is_waiting(held) {
                state.free -= 1;
                *state.held.entry(client.to_owned()).or_default() += 1;
                return self.turn_for(client);
            }
            let (grant, granted) = oneshot::channel();
            state.waiting.push_back(Waiter {
                client: client.to_owned(),
                grant,
            });
            granted
        };
        // The sender lives in the queue until a slot is handed over, and
        // the queue lives as long as `self`.
        granted
            .await
            .expect("a waiter is granted before it is dropped")
    }

    fn turn_for(self: &Arc<Self>, client: &str) -> Turn {
        Turn {
            share: self.clone(),
            client: client.to_owned(),
            armed: true,
        }
    }

    fn release(self: &Arc<Self>, client: &str) {
        let mut state = self.lock();
        if let Some(held) = state.held.get_mut(client) {
            *held -= 1;
            if *held == 0 {
                state.held.remove(client);
            }
        }
        state.free += 1;
        // Hand the slot to the neediest waiter still there.
        while let Some(index) = state.neediest(self.per_client) {
            let waiter = state.waiting.remove(index).expect("index from the queue");
            state.free -= 1;
            *state.held.entry(waiter.client.clone()).or_default() += 1;
            match waiter.grant.send(self.turn_for(&waiter.client)) {
                Ok(()) => return,
                Err(mut turn) => {
                    // It gave up: take the slot back and try the next.
                    turn.armed = false;
                    state.free += 1;
                    if let Some(held) = state.held.get_mut(&waiter.client) {
                        *held -= 1;
                        if *held == 0 {
                            state.held.remove(&waiter.client);
                        }
                    }
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    /// Whether a client holding `held` slots should queue behind a waiter
    /// that holds fewer (or as many and came first).
    fn is_waiting(&self, held: usize) -> bool {
        self.waiting
            .iter()
            .any(|w| self.held.get(&w.client).copied().unwrap_or(0) <= held)
    }

    /// The waiter that holds the fewest slots and is under the per-client
    /// limit, the longest waiting among equals.
    fn neediest(&self, per_client: usize) -> Option<usize> {
        self.waiting
            .iter()
            .enumerate()
            .map(|(i, w)| (self.held.get(&w.client).copied().unwrap_or(0), i))
            .filter(|(held, _)| *held < per_client)
            .min()
            .map(|(_, i)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn pending<T>(future: &mut (impl Future<Output = T> + Unpin)) -> bool {
        tokio::time::timeout(Duration::from_millis(20), future)
            .await
            .is_err()
    }

    #[tokio::test]
    async fn one_client_cannot_hold_the_whole_pool() {
        let share = FairShare::new(4);
        let mut greedy = Vec::new();
        for _ in 0..3 {
            greedy.push(share.turn("greedy").await);
        }
        // Its fourth call waits although a slot is free...
        let mut fourth = Box::pin(share.turn("greedy"));
        assert!(pending(&mut fourth).await);
        // ...which another client gets at once.
        let victim = share.turn("victim").await;
        // The victim being done frees a slot, but greedy is at its limit:
        // its fourth call goes on only when one of its own ends.
        drop(victim);
        assert!(pending(&mut fourth).await);
        greedy.pop();
        let fourth = fourth.await;
        drop(fourth);
        drop(greedy);
        assert_eq!(share.lock().free, 4);
    }

    #[tokio::test]
    async fn a_freed_slot_goes_to_the_client_holding_fewest() {
        let share = FairShare::new(4);
        let mut held = vec![];
        for _ in 0..3 {
            held.push(share.turn("greedy").await);
        }
        let other = share.turn("other").await;
        // Pool full: greedy queues first, then a third client.
        let mut greedy_more = Box::pin(share.turn("greedy"));
        assert!(pending(&mut greedy_more).await);
        let mut newcomer = Box::pin(share.turn("newcomer"));
        assert!(pending(&mut newcomer).await);
        // A greedy slot frees: the newcomer (holding none) gets it, though
        // greedy asked first.
        held.pop();
        let newcomer = newcomer.await;
        assert!(pending(&mut greedy_more).await);
        drop((other, newcomer, held));
        drop(greedy_more.await);
        assert_eq!(share.lock().free, 4);
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_leaves_no_slot_behind() {
        let share = FairShare::new(1);
        let only = share.turn("a").await;
        let mut gives_up = Box::pin(share.turn("b"));
        assert!(pending(&mut gives_up).await);
        drop(gives_up);
        drop(only);
        let again = share.turn("c").await;
        drop(again);
        let state = share.lock();
        assert_eq!(
            (state.free, state.held.len(), state.waiting.len()),
            (1, 0, 0)
        );
    }
}
