//! Where the pipeline's threads run and whether idle ones sleep: for appliances that give the
//! pipeline cores of its own.
//!
//! By default every thread may run anywhere and an idle thread parks (after a short spin when a
//! hand-off is imminent, [`super::Pipeline::set_spin`]). Waking a parked thread on another core
//! costs an inter-processor interrupt (on a virtual machine a VM exit too): several µs at the
//! median and tens in the tail, most of the pipeline's per-frame overhead. With
//! [`Placement::busy`] the inference threads and the publisher never sleep while the pipeline
//! runs: they poll their rings (yielding after each thousand polls, so that a thread woken on
//! their core runs at once), so a hand-off costs a cache-line transfer (under a µs). Each
//! busy thread keeps one core fully occupied, with or without frames; pinning them
//! ([`Placement::infer`], [`Placement::publish`]) keeps them on cores of their own and away
//! from each other.

use std::io;

use thiserror::Error;

use crate::affinity;

/// CPU placement and polling of the pipeline's threads ([`super::Pipeline::set_placement`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    /// Inference threads and the publisher poll their rings instead of sleeping while the
    /// pipeline runs (one core each, always busy).
    pub busy: bool,
    /// CPUs of the inference threads: model `i`'s thread runs on `infer[i % len]` (empty: any).
    pub infer: Vec<usize>,
    /// CPUs of the capture threads: stream `i`'s thread runs on `capture[i % len]` (empty: any).
    pub capture: Vec<usize>,
    /// The CPU of the publisher, the caller's thread during [`super::Pipeline::run`] (its
    /// earlier CPU set comes back when `run` returns); `None`: any.
    pub publish: Option<usize>,
}

/// A [`Placement`] names a CPU this process may not use.
#[derive(Debug, Error)]
pub enum PlacementError {
    /// The CPU is not in the calling thread's allowed set (offline, out of range, or excluded by
    /// `taskset` / a cgroup).
    #[error("{role} CPU {cpu} is not available to this process (available: {available})")]
    Unavailable {
        /// Which threads: "inference", "capture" or "publish".
        role: &'static str,
        /// The CPU asked for.
        cpu: usize,
        /// The allowed set, as a list (e.g. "0-3" or "0,2").
        available: String,
    },
    /// The platform cannot pin threads.
    #[error("cannot pin the pipeline's threads: {0}")]
    Unsupported(#[from] io::Error),
}

impl Placement {
    /// Checks every CPU named against the CPUs the calling thread may use.
    ///
    /// # Errors
    /// [`PlacementError::Unavailable`] for the first CPU outside the set;
    /// [`PlacementError::Unsupported`] if a CPU is named and the platform has no affinity.
    pub fn validate(&self) -> Result<(), PlacementError> {
        let named = self
            .infer
            .iter()
            .map(|&c| ("inference", c))
            .chain(self.capture.iter().map(|&c| ("capture", c)))
            .chain(self.publish.map(|c| ("publish", c)));
        let mut allowed: Option<Vec<usize>> = None;
        for (role, cpu) in named {
            let set = match &allowed {
                Some(s) => s,
                None => allowed.insert(affinity::current_thread_cpus()?),
            };
            if set.binary_search(&cpu).is_err() {
                return Err(PlacementError::Unavailable {
                    role,
                    cpu,
                    available: ranges(set),
                });
            }
        }
        Ok(())
    }

    /// The CPU of model `i`'s inference thread.
    pub(super) fn infer_cpu(&self, i: usize) -> Option<usize> {
        pick(&self.infer, i)
    }

    /// The CPU of stream `i`'s capture thread.
    pub(super) fn capture_cpu(&self, i: usize) -> Option<usize> {
        pick(&self.capture, i)
    }
}

fn pick(cpus: &[usize], i: usize) -> Option<usize> {
    (!cpus.is_empty()).then(|| cpus[i % cpus.len()])
}

/// Pins a pipeline thread at its start; a failure (a CPU gone offline since
/// [`Placement::validate`]) is logged and the thread runs unpinned.
pub(super) fn pin(thread: &str, cpu: Option<usize>) {
    if let Some(cpu) = cpu
        && let Err(e) = affinity::pin_current_thread(cpu)
    {
        log::warn!("{thread}: cannot pin to CPU {cpu}: {e}; running unpinned");
    }
}

/// Ascending CPU numbers as the kernel lists them: "0-3,6".
fn ranges(cpus: &[usize]) -> String {
    let mut out = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            cpus[i].to_string()
        } else {
            format!("{}-{}", cpus[i], cpus[j])
        });
        i = j + 1;
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_read_like_the_kernel_lists() {
        assert_eq!(ranges(&[0, 1, 2, 3, 6]), "0-3,6");
        assert_eq!(ranges(&[1]), "1");
        assert_eq!(ranges(&[0, 2, 4, 5]), "0,2,4-5");
        assert_eq!(ranges(&[]), "");
    }

    #[test]
    fn threads_take_cpus_round_robin() {
        let p = Placement {
            infer: vec![2, 3],
            ..Placement::default()
        };
        assert_eq!(p.infer_cpu(0), Some(2));
        assert_eq!(p.infer_cpu(3), Some(3));
        assert_eq!(p.capture_cpu(0), None);
    }

    #[test]
    fn a_cpu_outside_the_allowed_set_is_named() {
        let allowed = affinity::current_thread_cpus().unwrap();
        let missing = allowed.last().unwrap() + 1;
        let p = Placement {
            capture: vec![allowed[0], missing],
            ..Placement::default()
        };
        let e = p.validate().unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("capture CPU {missing} is not available")),
            "{e}"
        );
        assert!(
            e.ends_with(&format!("(available: {})", ranges(&allowed))),
            "{e}"
        );
        let ok = Placement {
            busy: true,
            infer: vec![allowed[0]],
            publish: Some(*allowed.last().unwrap()),
            ..Placement::default()
        };
        ok.validate().unwrap();
    }
}
