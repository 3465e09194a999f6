//! CPU affinity for latency-critical threads.
//!
//! On a machine where threads that hand work to each other sit on different cores, every
//! hand-off to a sleeping thread costs a cross-core wake-up (an inter-processor interrupt; on a
//! virtual machine, a VM exit too): tens of µs at the tail on the 2-vCPU VMs of
//! `BENCHMARKS.md`. Putting such threads on one core trades parallelism for that latency: the
//! IPC server's I/O thread can be pinned with [`crate::ipc::ServerConfig::io_cpu`], the
//! pipeline's threads with [`crate::pipeline::Placement`], any other thread (a publisher, a
//! client) with [`pin_current_thread`].

use std::io;

/// Restricts the calling thread to CPU `cpu` (as numbered by the kernel, `0..nproc`).
///
/// # Errors
/// The CPU number is out of range, offline or outside this process's allowed set, or the
/// platform has no thread affinity (non-Linux).
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    imp::pin(cpu)
}

/// The CPUs the calling thread may run on, ascending.
///
/// # Errors
/// The platform has no thread affinity (non-Linux), or the kernel refused the query.
pub fn current_thread_cpus() -> io::Result<Vec<usize>> {
    imp::allowed().map(|set| imp::cpus(&set))
}

/// The calling thread pinned to one CPU until this is dropped, when its earlier CPU set comes
/// back (for a thread that is lent, like the caller's thread during
/// [`crate::pipeline::Pipeline::run`]).
#[derive(Debug)]
pub struct PinnedScope {
    before: imp::Set,
}

impl PinnedScope {
    /// Pins the calling thread to `cpu` (see [`pin_current_thread`]).
    ///
    /// # Errors
    /// As [`pin_current_thread`]; the thread's CPU set is then unchanged.
    pub fn new(cpu: usize) -> io::Result<Self> {
        let before = imp::allowed()?;
        imp::pin(cpu)?;
        Ok(PinnedScope { before })
    }
}

impl Drop for PinnedScope {
    fn drop(&mut self) {
        if let Err(e) = imp::set(&self.before) {
            log::warn!("could not restore the thread's CPU set: {e}");
        }
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use std::io;

    pub(super) type Set = libc::cpu_set_t;

    fn empty() -> Set {
        // SAFETY: `cpu_set_t` is plain bits: all zeros is the empty set.
        unsafe { std::mem::zeroed() }
    }

    pub(super) fn pin(cpu: usize) -> io::Result<()> {
        if cpu >= libc::CPU_SETSIZE as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("CPU {cpu} is out of range"),
            ));
        }
        let mut one = empty();
        // SAFETY: cpu < CPU_SETSIZE (checked), so CPU_SET stays inside the set.
        unsafe { libc::CPU_SET(cpu, &mut one) };
        set(&one)
    }

    pub(super) fn set(s: &Set) -> io::Result<()> {
        // SAFETY: the set is initialised and its size is passed; pid 0 is the calling thread.
        let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(s), s) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    pub(super) fn allowed() -> io::Result<Set> {
        let mut s = empty();
        // SAFETY: the kernel writes at most `size_of_val(&s)` bytes into `s`; pid 0 is the
        // calling thread.
        let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&s), &mut s) };
        if rc == 0 {
            Ok(s)
        } else {
            Err(io::Error::last_os_error())
        }
    }

    pub(super) fn cpus(s: &Set) -> Vec<usize> {
        (0..libc::CPU_SETSIZE as usize)
            // SAFETY: every index is below CPU_SETSIZE, inside the set.
            .filter(|&c| unsafe { libc::CPU_ISSET(c, s) })
            .collect()
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::io;

    #[derive(Debug)]
    pub(super) struct Set;

    fn unsupported() -> io::Error {
        io::Error::new(
            io::ErrorKind::Unsupported,
            "thread CPU affinity is only supported on Linux",
        )
    }

    pub(super) fn pin(_cpu: usize) -> io::Result<()> {
        Err(unsupported())
    }

    pub(super) fn set(_s: &Set) -> io::Result<()> {
        Err(unsupported())
    }

    pub(super) fn allowed() -> io::Result<Set> {
        Err(unsupported())
    }

    pub(super) fn cpus(_s: &Set) -> Vec<usize> {
        Vec::new()
    }
}
