//! How often this machine takes a CPU away from a thread that never sleeps: the floor under
//! any cross-thread hand-off latency, whatever the code does.
//!
//! A thread pinned to each CPU in turn reads the clock in a tight loop for `--secs`; every gap
//! between two reads of at least 1 µs is time the thread did not run (an interrupt, the
//! scheduler tick, another task, or on a virtual machine the hypervisor). A frame handed to a
//! busy-polling consumer at a random moment waits out such a gap with a probability of about the
//! fraction of time lost, so a hand-off p99 below a gap's length needs that fraction under 1 %.
//!
//! ```text
//! cargo run --release -p outpost-benches --bin cpu_gaps -- --secs 3
//! ```
//! (BENCHMARKS.md, "Pipeline overhead".)

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;

/// Gaps in a busy thread's running time, per CPU.
#[derive(Parser)]
#[command(about, long_about = None)]
struct Args {
    /// Seconds of spinning per CPU.
    #[arg(long, default_value_t = 3.0)]
    secs: f64,
    /// CPUs to measure (default: every CPU this process may use).
    #[arg(long, value_delimiter = ',')]
    cpus: Vec<usize>,
}

/// Lower bounds of the reported gap classes, µs.
const CLASSES: [u64; 7] = [1, 2, 5, 10, 20, 50, 100];

fn main() -> ExitCode {
    let args = Args::parse();
    if !(args.secs > 0.0 && args.secs <= 3600.0) {
        eprintln!("error: --secs {}: give a duration in (0, 3600]", args.secs);
        return ExitCode::from(2);
    }
    let cpus = if args.cpus.is_empty() {
        match outpost_runtime::affinity::current_thread_cpus() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: cannot list this process's CPUs: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        args.cpus
    };
    let secs = Duration::from_secs_f64(args.secs);
    println!(
        "cpu  gaps/s ≥1µs {}  time lost  longest",
        CLASSES[1..]
            .iter()
            .map(|c| format!("≥{c}µs"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    for cpu in cpus {
        let r = std::thread::spawn(move || {
            outpost_runtime::affinity::pin_current_thread(cpu)?;
            Ok::<_, std::io::Error>(spin(secs))
        })
        .join();
        match r {
            Ok(Ok(g)) => {
                let per_s = |n: u64| n as f64 / g.elapsed.as_secs_f64();
                println!(
                    "{cpu:>3}  {:>11.0} {}  {:>8.3} %  {:>6.1} µs",
                    per_s(g.counts[0]),
                    g.counts[1..]
                        .iter()
                        .map(|&n| format!("{:>5.0}", per_s(n)))
                        .collect::<Vec<_>>()
                        .join(" "),
                    g.lost.as_secs_f64() / g.elapsed.as_secs_f64() * 100.0,
                    g.longest.as_secs_f64() * 1e6
                );
            }
            Ok(Err(e)) => {
                eprintln!("error: CPU {cpu}: cannot pin a thread to it: {e}");
                return ExitCode::from(2);
            }
            Err(_) => return ExitCode::FAILURE,
        }
    }
    ExitCode::SUCCESS
}

struct Gaps {
    counts: [u64; CLASSES.len()],
    lost: Duration,
    longest: Duration,
    elapsed: Duration,
}

fn spin(secs: Duration) -> Gaps {
    let start = Instant::now();
    let end = start + secs;
    let mut g = Gaps {
        counts: [0; CLASSES.len()],
        lost: Duration::ZERO,
        longest: Duration::ZERO,
        elapsed: Duration::ZERO,
    };
    let mut last = start;
    while last < end {
        let now = Instant::now();
        let gap = now - last;
        if gap >= Duration::from_micros(1) {
            g.lost += gap;
            g.longest = g.longest.max(gap);
            let us = gap.as_micros() as u64;
            for (n, &c) in g.counts.iter_mut().zip(&CLASSES) {
                *n += u64::from(us >= c);
            }
        }
        last = now;
    }
    g.elapsed = start.elapsed();
    g
}
