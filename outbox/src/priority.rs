//! The outbox's threads run below the pipeline: JPEG encoding, compression, commits and uploads
//! must not take a core from capture, inference or the publisher when the appliance is busy.
//!
//! Each background thread lowers itself when it starts (Linux scheduling attributes are per
//! thread). The sink (redaction, JPEG) and the writer (commits) go by default to `SCHED_IDLE`,
//! the policy for work that should only get CPU time nothing else wants — such a thread never
//! preempts a normal one on wake-up and is preempted by any normal thread at once. The uplink
//! takes the nice value only, so that uploads go on while the pipeline keeps every core busy. A nice value alone (`sched_idle = false`) still lets a waking outbox
//! thread take the core from the publisher in the middle of a callback (measured: publish-stage
//! p99 ≈ 4 ms at 30 fps; see BENCHMARKS.md, "Outbox").

/// The default nice value of the outbox's threads (0 = the pipeline's; 19 = the lowest).
pub const DEFAULT_NICE: i32 = 10;

/// How the outbox's threads are scheduled. The default leaves a thread as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Background {
    /// `SCHED_IDLE` (CPU only when no normal thread wants it).
    pub sched_idle: bool,
    /// Nice value when not `sched_idle` (0: leave the thread as it is).
    pub nice: i32,
}

/// Lower the calling thread as `bg` says. A failure (a sandbox that forbids it) is logged and
/// otherwise ignored: the outbox works the same, only less politely.
pub fn lower_this_thread(bg: Background) {
    if bg.sched_idle {
        match set_sched_idle() {
            Ok(()) => return,
            Err(e) => log::debug!("outbox: cannot put this thread under SCHED_IDLE: {e}"),
        }
    }
    if bg.nice == 0 {
        return;
    }
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), bg.nice) {
        log::debug!(
            "outbox: cannot set this thread's nice value to {}: {e}",
            bg.nice
        );
    }
}

#[cfg(target_os = "linux")]
fn set_sched_idle() -> std::io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid, initialised `sched_param` that outlives the call; pid 0 names
    // the calling thread; the call only reads `param`.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn set_sched_idle() -> std::io::Result<()> {
    Err(std::io::Error::other("SCHED_IDLE is Linux only"))
}

/// Whether the calling thread runs under `SCHED_IDLE` (for tests).
#[cfg(target_os = "linux")]
pub fn this_thread_sched_idle() -> bool {
    // SAFETY: plain syscall on the calling thread (pid 0), no pointers.
    unsafe { libc::sched_getscheduler(0) == libc::SCHED_IDLE }
}

/// This thread's nice value (for tests).
pub fn this_thread_nice() -> std::io::Result<i32> {
    let tid = rustix::thread::gettid();
    rustix::process::getpriority_process(Some(tid)).map_err(Into::into)
}
