//! CPU affinity for latency-critical threads.
//!
//! On a machine where threads that hand work to each other sit on different cores, every
//! hand-off to a sleeping thread costs a cross-core wake-up (an inter-processor interrupt; on a
//! virtual machine, a VM exit too): tens of µs at the tail on the 2-vCPU VMs of
//! `BENCHMARKS.md`. Putting such threads on one core trades parallelism for that latency: the
//! IPC server's I/O thread can be pinned with [`crate::ipc::ServerConfig::io_cpu`], any other
//! thread (a publisher, a client) with [`pin_current_thread`].

use std::io;

/// Restricts the calling thread to CPU `cpu` (as numbered by the kernel, `0..nproc`).
///
/// # Errors
/// The CPU number is out of range, offline or outside this process's allowed set, or the
/// platform has no thread affinity (non-Linux).
#[cfg(target_os = "linux")]
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("CPU {cpu} is out of range"),
        ));
    }
    // SAFETY: `cpu_set_t` is plain bits: all zeros is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: cpu < CPU_SETSIZE (checked), so CPU_SET stays inside the set.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: the set is initialised and its size is passed; pid 0 is the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// See the Linux version: always an error here.
#[cfg(not(target_os = "linux"))]
pub fn pin_current_thread(_cpu: usize) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "thread CPU affinity is only supported on Linux",
    ))
}
