//! Proxy worker threads: one single-threaded tokio runtime per core.
//!
//! A client connection, the upstream connections it uses and the tasks
//! between them all live on one thread, so a request never wakes a task on
//! another core (the cross-thread wake-ups of a work-stealing runtime cost
//! the proxy a quarter of its throughput and most of its tail latency).

use std::cell::Cell;
use std::sync::OnceLock;
use std::thread::JoinHandle;

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

thread_local! {
    // 0 on threads that are not proxy workers (the control runtime).
    static WORKER_SLOT: Cell<usize> = const { Cell::new(0) };
}

static SLOTS: OnceLock<usize> = OnceLock::new();

/// How many per-thread slots (workers plus one for other threads) shared
/// structures such as connection pools keep.
pub fn slot_count() -> usize {
    *SLOTS.get().unwrap_or(&1)
}

/// The calling thread's slot: its worker number, or 0.
pub fn current_slot() -> usize {
    WORKER_SLOT.with(Cell::get) % slot_count()
}

/// The running worker threads.
pub struct Workers {
    handles: Vec<Handle>,
    threads: Vec<JoinHandle<()>>,
    stop: CancellationToken,
}

impl Workers {
    /// Starts `count` workers (at least one).
    pub fn start(count: usize) -> std::io::Result<Workers> {
        let count = count.max(1);
        // The first call fixes the slot count for the process.
        let _ = SLOTS.set(count + 1);
        let stop = CancellationToken::new();
        let mut handles = Vec::with_capacity(count);
        let mut threads = Vec::with_capacity(count);
        for index in 0..count {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            handles.push(runtime.handle().clone());
            let stop = stop.clone();
            let thread = std::thread::Builder::new()
                .name(format!("baton-proxy-{index}"))
                .spawn(move || {
                    WORKER_SLOT.with(|slot| slot.set(index + 1));
                    runtime.block_on(stop.cancelled());
                })?;
            threads.push(thread);
        }
        Ok(Workers {
            handles,
            threads,
            stop,
        })
    }

    /// A handle to each worker's runtime.
    pub fn handles(&self) -> &[Handle] {
        &self.handles
    }

    /// Stops the workers (tasks still running are dropped) and joins them.
    pub fn stop(self) {
        self.stop.cancel();
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}
