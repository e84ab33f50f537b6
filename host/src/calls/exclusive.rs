//! What a tool's `concurrency-safe` flag promises, kept: a tool without it
//! never runs beside another call of the same module for the same account,
//! whoever makes the calls (clients side by side, a plan's parallel steps).
//! Calls of tools with it share the way; one without it waits for the
//! others to finish, and they for it.
//!
//! The lock is fair (first come, first served), so a queue of exclusive
//! calls would hold back everyone behind it. To keep one client from
//! making another wait for its whole queue, each client has at most one
//! exclusive call per module and account in line or running; its others
//! wait at the client's own gate. Another client's call then waits for at
//! most the exclusive call running and one more per client ahead of it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{
    Mutex as AsyncMutex, OwnedMutexGuard, OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock,
};

/// A module's name and the account a call acts for (none for a module
/// without a service).
type ModuleAccount = (String, Option<String>);

/// A client's gate for one module and account.
type ClientGate = (String, ModuleAccount);

/// One lock per module and account, made on first use. (Modules times
/// accounts: a few dozen entries, kept for the server's life.)
#[derive(Debug, Default)]
pub(crate) struct ModuleLocks {
    locks: Mutex<HashMap<ModuleAccount, Arc<RwLock<()>>>>,
    /// Per client, module and account: the gate an exclusive call passes
    /// before it joins the module's line. (Clients are few and named.)
    gates: Mutex<HashMap<ClientGate, Arc<AsyncMutex<()>>>>,
}

/// The right to run, held for the call's run in the sandbox.
#[must_use]
pub(crate) enum Turn {
    Shared(#[allow(dead_code)] OwnedRwLockReadGuard<()>),
    Alone(
        #[allow(dead_code)] OwnedMutexGuard<()>,
        #[allow(dead_code)] OwnedRwLockWriteGuard<()>,
    ),
}

impl ModuleLocks {
    /// Wait until `client`'s call of `module` for `account` may run:
    /// beside others if `concurrency_safe`, else alone.
    pub async fn turn(
        &self,
        client: &str,
        module: &str,
        account: Option<&str>,
        concurrency_safe: bool,
    ) -> Turn {
        let key = (module.to_owned(), account.map(str::to_owned));
        let lock = Arc::clone(
            self.locks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(key.clone())
                .or_default(),
        );
        if concurrency_safe {
            return Turn::Shared(lock.read_owned().await);
        }
        let gate = Arc::clone(
            self.gates
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry((client.to_owned(), key))
                .or_default(),
        );
        let gate = gate.lock_owned().await;
        Turn::Alone(gate, lock.write_owned().await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn an_unsafe_call_waits_for_the_others_and_they_for_it() {
        let locks = Arc::new(ModuleLocks::default());
        let first = locks.turn("a", "github", Some("work"), true).await;
        let second = locks.turn("b", "github", Some("work"), true).await;
        // Another account, another module: not held up.
        let _other = locks.turn("a", "github", Some("home"), false).await;
        let _elsewhere = locks.turn("a", "notion", Some("work"), false).await;
        let waiting = {
            let locks = locks.clone();
            tokio::spawn(async move {
                let _alone = locks.turn("a", "github", Some("work"), false).await;
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "ran beside two shared calls");
        drop((first, second));
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("runs once they end")
            .unwrap();
    }

    #[tokio::test]
    async fn a_clients_queue_of_unsafe_calls_holds_another_client_back_by_one_call_at_most() {
        let locks = Arc::new(ModuleLocks::default());
        let running = locks.turn("greedy", "github", None, false).await;
        let mut queued = Vec::new();
        for _ in 0..5 {
            let locks = locks.clone();
            queued.push(tokio::spawn(async move {
                let _alone = locks.turn("greedy", "github", None, false).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let victim = {
            let locks = locks.clone();
            tokio::spawn(async move {
                let _shared = locks.turn("victim", "github", None, true).await;
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!victim.is_finished(), "ran beside an exclusive call");
        drop(running);
        tokio::time::timeout(Duration::from_millis(40), victim)
            .await
            .expect("the victim's call waited for more than the call running")
            .unwrap();
        assert!(
            queued.iter().filter(|q| q.is_finished()).count() <= 1,
            "the greedy client's queue went first"
        );
        for call in queued {
            call.await.unwrap();
        }
    }
}
