//! Getting written lines onto the disk: `fdatasync` shared between callers.
//!
//! With `fsync = "always"` each append waits until its line is on the disk,
//! but appends that come together share one `fdatasync` (group commit): the
//! first to wait flushes everything written so far, and the others, whose
//! lines that flush covered, return without a flush of their own. With
//! `fsync = "interval"` (the default) nobody waits: a thread of the log
//! flushes what was written at most [`INTERVAL`] later, or at once when
//! [`BATCH`] lines wait, so a crash of mcpist loses nothing (lines are
//! written at once) and a power loss at most the last interval.

use std::fs::File;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a written line may wait for its flush in `interval` mode.
pub const INTERVAL: Duration = Duration::from_millis(10);
/// Lines waiting that make the flush thread flush at once.
const BATCH: u64 = 64;

/// The lines written and flushed so far, by sequence number.
#[derive(Debug, Default)]
struct Progress {
    written: u64,
    flushed: u64,
    /// A flush is running (its caller flushes up to the `written` it saw).
    flushing: bool,
    /// Why the last flush failed, until one succeeds.
    failure: Option<String>,
    /// The log is closing: the thread flushes once more and ends.
    closing: bool,
}

/// Shared by the log and, in `interval` mode, its flush thread.
pub(super) struct Flusher {
    /// A handle on the log's file: `fdatasync` flushes the file, whichever
    /// handle asks.
    file: File,
    progress: Mutex<Progress>,
    /// A flush ended.
    flushed: Condvar,
    /// Lines are waiting, or the log closes (for the flush thread).
    wake: Condvar,
}

impl Flusher {
    pub(super) fn new(file: File, written: u64) -> Arc<Flusher> {
        Arc::new(Flusher {
            file,
            progress: Mutex::new(Progress {
                written,
                flushed: written,
                ..Progress::default()
            }),
            flushed: Condvar::new(),
            wake: Condvar::new(),
        })
    }

    fn progress(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Line `seq` is written (lines are written in order).
    pub(super) fn written(&self, seq: u64) {
        let mut progress = self.progress();
        progress.written = progress.written.max(seq);
        if progress.written - progress.flushed >= BATCH {
            self.wake.notify_one();
        }
    }

    /// Why the last flush failed, if none has succeeded since.
    pub(super) fn failure(&self) -> Option<String> {
        self.progress().failure.clone()
    }

    /// Return once line `seq` is on the disk: flushed by this caller, with
    /// every line written before it, or by another whose flush covered it.
    pub(super) fn flush_through(&self, seq: u64) -> std::io::Result<()> {
        let mut progress = self.progress();
        loop {
            if progress.flushed >= seq {
                return Ok(());
            }
            if progress.flushing {
                progress = self
                    .flushed
                    .wait(progress)
                    .unwrap_or_else(|e| e.into_inner());
                continue;
            }
            progress = self.flush(progress)?;
        }
    }

    /// Flush everything written so far, without the lock while the disk
    /// works; returns the lock again.
    fn flush<'a>(
        &'a self,
        mut progress: MutexGuard<'a, Progress>,
    ) -> std::io::Result<MutexGuard<'a, Progress>> {
        let target = progress.written;
        progress.flushing = true;
        drop(progress);
        let result = self.file.sync_data();
        let mut progress = self.progress();
        progress.flushing = false;
        self.flushed.notify_all();
        match result {
            Ok(()) => {
                progress.flushed = progress.flushed.max(target);
                progress.failure = None;
                Ok(progress)
            }
            Err(error) => {
                progress.failure = Some(error.to_string());
                Err(error)
            }
        }
    }

    /// Flush what was written, every [`INTERVAL`] or when [`BATCH`] lines
    /// wait, until the log closes (then once more).
    pub(super) fn start_interval(self: &Arc<Flusher>) -> JoinHandle<()> {
        let flusher = self.clone();
        std::thread::Builder::new()
            .name("mcpist-audit-flush".into())
            .spawn(move || flusher.run_interval())
            .expect("cannot start the audit log's flush thread")
    }

    fn run_interval(&self) {
        let mut progress = self.progress();
        loop {
            let closing = progress.closing;
            if progress.written > progress.flushed && !progress.flushing {
                progress = match self.flush(progress) {
                    Ok(progress) => progress,
                    Err(error) => {
                        tracing::error!("cannot flush the audit log to the disk: {error}");
                        self.progress()
                    }
                };
            }
            if closing {
                return;
            }
            progress = self
                .wake
                .wait_timeout(progress, INTERVAL)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Stop the flush thread after a last flush.
    pub(super) fn close(&self) {
        self.progress().closing = true;
        self.wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flusher() -> (tempfile::TempDir, Arc<Flusher>) {
        let dir = tempfile::tempdir().unwrap();
        let file = File::create(dir.path().join("log")).unwrap();
        (dir, Flusher::new(file, 0))
    }

    #[test]
    fn waiting_callers_share_a_flush_and_each_returns_once_its_line_is_flushed() {
        let (_dir, flusher) = flusher();
        let callers: Vec<_> = (1..=8)
            .map(|seq| {
                flusher.written(seq);
                let flusher = flusher.clone();
                std::thread::spawn(move || flusher.flush_through(seq))
            })
            .collect();
        for caller in callers {
            caller.join().unwrap().unwrap();
        }
        let progress = flusher.progress();
        assert_eq!(progress.flushed, 8);
        assert!(!progress.flushing);
    }

    #[test]
    fn the_interval_thread_flushes_what_was_written_and_once_more_when_closing() {
        let (_dir, flusher) = flusher();
        let thread = flusher.start_interval();
        flusher.written(3);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while flusher.progress().flushed < 3 {
            assert!(std::time::Instant::now() < deadline, "never flushed");
            std::thread::sleep(Duration::from_millis(1));
        }
        flusher.written(4);
        flusher.close();
        thread.join().unwrap();
        assert_eq!(flusher.progress().flushed, 4);
    }
}
