//! Long calls as MCP tasks: the `io.modelcontextprotocol/tasks` extension
//! (SEP-2663), the form of tasks rmcp 3.9 implements, offered at 2025-11-25
//! and 2026-07-28 alike to a client that declares it.
//!
//! Such a client's call that is still running after `[tasks] after_ms` is
//! answered with a task handle instead of being waited for: the call goes on
//! in the server, `tasks/get` tells how it stands (with its result once it
//! is done), and `tasks/cancel` stops it — the sandbox and the module's
//! requests in flight with it, as cancelling a call always does. A task and
//! its result are kept for `[tasks] keep_secs` from its creation (rmcp
//! keeps a finished one up to twice that). A task belongs to the client that
//! started it: to any other it does not exist, answered exactly like an id
//! that never was. The call itself runs through the one call path, so it is
//! masked, consented and audited like any other (a cancelled one is
//! recorded `cancelled`).
//!
//! The 2025-11-25 revision's own tasks (a `task` parameter on `tools/call`,
//! `tasks/result`, `tasks/list`) are not what rmcp implements; a client
//! speaking only those gets its calls answered as ordinary calls.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use rmcp::ErrorData;
use rmcp::model::{CallToolResponse, CreateTaskResult, GetTaskResult};
use rmcp::task_manager::{TaskExit, TaskManager, TaskOptions};
use tokio_util::sync::CancellationToken;

use crate::config::TaskSettings;

/// A call's answer, as a future the server can hand over to a task.
pub(super) type CallFuture =
    Pin<Box<dyn Future<Output = Result<CallToolResponse, ErrorData>> + Send>>;

/// The tasks of every session of the server, with who owns each.
pub struct CallTasks {
    settings: TaskSettings,
    manager: TaskManager,
    /// Task id → the client that started it.
    owners: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for CallTasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallTasks")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl CallTasks {
    pub fn new(settings: TaskSettings) -> CallTasks {
        CallTasks {
            settings,
            manager: TaskManager::new(),
            owners: Mutex::default(),
        }
    }

    /// Whether the server offers tasks at all.
    pub fn enabled(&self) -> bool {
        self.settings.enabled
    }

    /// Run `call` for `client`; if it is still running after `[tasks]
    /// after_ms`, make it a task of `client`'s and answer with its handle.
    /// `request` is the request's cancellation (the client gave up before a
    /// task was made); `stop` stops the call.
    pub(super) async fn run(
        &self,
        client: &str,
        request: &CancellationToken,
        stop: CancellationToken,
        mut call: CallFuture,
    ) -> Result<CallToolResponse, ErrorData> {
        tokio::select! {
            biased;
            done = &mut call => return done,
            () = request.cancelled() => {
                stop.cancel();
                return call.await;
            }
            () = tokio::time::sleep(self.settings.after) => {}
        }
        let options = TaskOptions::new()
            .with_ttl_ms(millis(self.settings.keep))
            .with_poll_interval_ms(millis(self.settings.poll_interval))
            .with_status_message("running");
        let task = self.manager.spawn(options, move |context| {
            Box::pin(async move {
                tokio::select! {
                    done = &mut call => match done {
                        Ok(CallToolResponse::Complete(result)) => Ok(result),
                        Ok(_) => Err(TaskExit::Error(ErrorData::internal_error(
                            "the call asked the client for input after it became a task; call it again",
                            None,
                        ))),
                        Err(error) => Err(TaskExit::Error(error)),
                    },
                    () = context.cancelled() => {
                        // Let the call path see the cancellation and record
                        // it before the task says it is over.
                        stop.cancel();
                        let _ = call.await;
                        Err(TaskExit::Cancelled)
                    }
                }
            })
        });
        self.forget_ended();
        tracing::info!(task = %task.task_id, client, "a long call became a task");
        self.owners_mut()
            .insert(task.task_id.clone(), client.to_owned());
        Ok(CallToolResponse::Task(CreateTaskResult::new(task)))
    }

    /// How `client`'s task `id` stands.
    pub fn get(&self, client: &str, id: &str) -> Result<GetTaskResult, ErrorData> {
        self.check_owner(client, id)?;
        let task = self.manager.get_task(id).map_err(|_| unknown(id))?;
        Ok(GetTaskResult::new(task))
    }

    /// Stop `client`'s task `id`.
    pub fn cancel(&self, client: &str, id: &str) -> Result<(), ErrorData> {
        self.check_owner(client, id)?;
        self.manager.cancel_task(id).map_err(|_| unknown(id))?;
        tracing::info!(task = %id, client, "task cancelled by its client");
        Ok(())
    }

    /// Answer `input_responses` of `client`'s task `id`. MCPist's tasks
    /// never wait for input (consent is asked before a call can become
    /// one), so this only tells the client so.
    pub fn update(&self, client: &str, id: &str) -> Result<(), ErrorData> {
        self.check_owner(client, id)?;
        Err(ErrorData::invalid_params(
            format!("task {id} is not waiting for input"),
            None,
        ))
    }

    /// Another client's task is answered like one that does not exist.
    fn check_owner(&self, client: &str, id: &str) -> Result<(), ErrorData> {
        self.forget_ended();
        match self.owners_mut().get(id) {
            Some(owner) if owner == client => Ok(()),
            _ => Err(unknown(id)),
        }
    }

    /// Drop the owners of tasks the manager no longer keeps.
    fn forget_ended(&self) {
        let mut owners = self.owners_mut();
        owners.retain(|id, _| self.manager.get_task(id).is_ok());
    }

    fn owners_mut(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.owners.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn unknown(id: &str) -> ErrorData {
    ErrorData::invalid_params(format!("unknown task: {id}"), None)
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::{CallToolResult, ContentBlock, TaskStatus};
    use std::time::Duration;

    fn tasks(after_ms: u64) -> CallTasks {
        CallTasks::new(TaskSettings {
            enabled: true,
            after: Duration::from_millis(after_ms),
            keep: Duration::from_secs(60),
            poll_interval: Duration::from_millis(10),
        })
    }

    fn answer_after(ms: u64, stop: CancellationToken) -> CallFuture {
        Box::pin(async move {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(ms)) => {}
                () = stop.cancelled() => {}
            }
            Ok(CallToolResult::success(vec![ContentBlock::text("done")]).into())
        })
    }

    /// Client `a`'s call answering after `ms`, made a task; its id.
    async fn started(tasks: &CallTasks, ms: u64, stop: CancellationToken) -> String {
        let call = answer_after(ms, stop.clone());
        match tasks.run("a", &CancellationToken::new(), stop, call).await {
            Ok(CallToolResponse::Task(task)) => task.task.task_id,
            _ => panic!("expected a task"),
        }
    }

    #[tokio::test]
    async fn a_quick_call_is_answered_directly() {
        let tasks = tasks(1000);
        let stop = CancellationToken::new();
        let answer = tasks
            .run(
                "a",
                &CancellationToken::new(),
                stop.clone(),
                answer_after(1, stop),
            )
            .await
            .unwrap();
        assert!(matches!(answer, CallToolResponse::Complete(_)));
    }

    #[tokio::test]
    async fn a_long_call_becomes_its_clients_task_and_no_one_elses() {
        let tasks = tasks(5);
        let id = started(&tasks, 50, CancellationToken::new()).await;
        assert_eq!(
            tasks.get("a", &id).unwrap().task.task.status,
            TaskStatus::Working
        );
        let theirs = tasks.get("b", &id).unwrap_err();
        let never = tasks.get("b", "no-such-task").unwrap_err();
        assert_eq!(theirs.code, never.code);
        assert_eq!(
            theirs.message.replace(&id, "X"),
            never.message.replace("no-such-task", "X")
        );
        assert!(tasks.cancel("b", &id).is_err());
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            tasks.get("a", &id).unwrap().task.task.status,
            TaskStatus::Completed
        );
    }

    #[tokio::test]
    async fn cancelling_a_task_stops_its_call() {
        let tasks = tasks(5);
        let stop = CancellationToken::new();
        let id = started(&tasks, 60_000, stop.clone()).await;
        tasks.cancel("a", &id).unwrap();
        tokio::time::timeout(Duration::from_secs(5), stop.cancelled())
            .await
            .expect("the call is told to stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            tasks.get("a", &id).unwrap().task.task.status,
            TaskStatus::Cancelled
        );
    }
}
