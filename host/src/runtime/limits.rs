//! Per-call resource limits.

use std::time::Duration;

/// What one call of a module may use. Exceeding any limit fails that call
/// only; the host and other calls carry on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory of the instance, in bytes.
    pub memory_bytes: u64,
    /// CPU time the guest may spend running WebAssembly, enforced by epoch
    /// interruption (so measured in epoch ticks of the engine's ticker).
    pub cpu_time: Duration,
    /// Wall-clock time for the whole call, including time the guest spends
    /// waiting on the host (e.g. on an HTTP request or a sleep).
    pub wall_time: Duration,
    /// Bytes of content and structured result the call may return.
    pub output_bytes: usize,
    /// Calls that may run at once. Each running call holds one slot of the
    /// runtime's instance pool; further calls wait for a slot to free up.
    pub concurrent_calls: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 << 20,
            cpu_time: Duration::from_secs(5),
            wall_time: Duration::from_secs(30),
            output_bytes: 1 << 20,
            concurrent_calls: 64,
        }
    }
}

/// Elements a module's table may hold (tables hold function references; a
/// module needs a few thousand at most). Also the size of each table slot in
/// the instance pool.
pub(crate) const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Enforces `Limits::memory_bytes` and remembers whether it refused a
/// request, so that the resulting trap can be reported as what it was.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    pub max_bytes: usize,
    pub refused: bool,
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.refused = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}
