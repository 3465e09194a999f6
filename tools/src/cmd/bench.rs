//! `outpost bench`: latency and memory of one model on this machine (`--model`), or of a whole
//! pipeline from a `outpost run --config` file (`--pipeline`, see [`pipeline`]).

mod pipeline;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use outpost_runtime::{Session, SessionOptions};
use serde::Serialize;

use crate::alloc_count::{allocations, peak_rss_bytes};
use crate::cmd::inspect::load;
use crate::exit::{CmdResult, Failure};
use crate::fmt::{bytes, count};

/// Arguments of `outpost bench`.
#[derive(Debug, clap::Args)]
#[command(
    group(clap::ArgGroup::new("what").required(true).args(["model", "pipeline"])),
    after_help = concat!(
        "With --model, the input is filled with deterministic pseudo-random values; latency does not depend on them.\nKernel tier: set OUTPOST_KERNELS=generic|avx2|avx512vnni to force one (default: the best this CPU has).\n\n",
        "With --pipeline CONFIG, the streams of CONFIG (the TOML `outpost run --config` reads) run through the pipeline with a publish callback that writes no files (no --out copies, no socket); a config's [outbox] table does run, as in `outpost run` (sink thread, JPEG encoding, commits, the uplink if configured), so its cost to the pipeline shows, and the JSON gains an `outbox` object with `outpost run --json`'s keys. Streams loop unless they say `loop = false` and capture --frames frames each; frames published before --warmup are left out of the overhead, hand-off and allocation figures (the per-stage percentiles cover every frame). Reported per stream and overall: frames, fps, end-to-end latency (capture start to the end of the publish callback) p50/p90/p99/max, each stage's p50/p99, drops by reason, heap allocations per frame after warm-up (all threads), and two measures of the pipeline's overhead excluding the model:\n",
        "  overhead          per frame: (start of the publish callback - end of capture) - (preprocess + inference with decoding, as the pipeline timed them for that frame), over the frames that did not wait behind another frame (the inference thread was idle when the frame was queued). What is left: the two ring hand-offs with their wake-ups, mapping results to source pixels, counters.\n",
        "  overhead_vs_alone median of (start of the publish callback - end of capture) over the same frames minus the median of the same model's preprocess + inference + decoding run alone in this process after the pipeline, on copies of frames the pipeline saw during warm-up. A difference of medians; it also counts what the pipeline makes slower (e.g. a frame written by another core).\n",
        "  handoff           capture -> inference ring hand-off of those frames (push to pop, including waking a parked thread); publish_handoff: inference -> publisher.\n",
        "JSON keys include frames, fps, p50_ms, p90_ms, p99_ms, max_ms, overhead_p50_us, overhead_p99_us, overhead_vs_alone_p50_us, handoff_p50_us, handoff_p99_us, allocs_per_frame, dropped, and streams (one object per stream with the same figures and its stages).",
        "\n\nExamples:\n  outpost synth mobilenet_v2 --int8 -o mnv2.safetensors\n  outpost bench --model mnv2.safetensors --runs 500 --profile\n  OUTPOST_KERNELS=avx2 outpost bench --model mnv2.safetensors --json\n  outpost bench --pipeline cameras.toml --frames 2000 --json"
    )
)]
pub struct Args {
    /// The model file (one model alone, inputs filled by hand).
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,
    /// A pipeline: the TOML file `outpost run --config` reads. Runs its streams with a publish
    /// callback that writes no files (only [outbox] runs) and reports latency, per-stage times, drops, allocations and
    /// the pipeline's overhead excluding the model (see below).
    #[arg(long, value_name = "CONFIG")]
    pub pipeline: Option<PathBuf>,
    /// With --pipeline: frames captured per stream (a stream's own `frames` key wins).
    #[arg(long, value_name = "N", default_value_t = 1000, requires = "pipeline")]
    pub frames: u64,
    /// Threads per run (intra-op parallelism: large convolutions split by output rows, the
    /// calling thread counted; results bit-exact with 1).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Timed runs (with --pipeline: runs of each model alone, for the comparison).
    #[arg(long, default_value_t = 200)]
    pub runs: usize,
    /// Untimed runs first (caches, branch predictors, CPU frequency). With --pipeline: frames
    /// published before measuring (at least 1).
    #[arg(long, default_value_t = 20)]
    pub warmup: usize,
    /// Add a per-op time table (--model only). With --threads above 1, a chain (a
    /// depthwise convolution and the pointwise convolutions after it, each thread running its
    /// slice of all of them in one job) is one row, op `chain`, its nodes joined by " > ".
    #[arg(long, conflicts_with = "pipeline")]
    pub profile: bool,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct OpTime {
    node: String,
    op: String,
    macs: u64,
    mean_us: f64,
    share: f64,
    gops: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    model: String,
    tier: String,
    threads: usize,
    runs: usize,
    min_ms: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    mean_ms: f64,
    fps: f64,
    gops: f64,
    macs: u64,
    allocs_per_run: f64,
    arena_bytes: usize,
    arena_lower_bound_bytes: usize,
    scratch_bytes: usize,
    peak_rss_bytes: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    profile: Vec<OpTime>,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1e3
}

/// Run the command.
pub fn run(args: Args) -> CmdResult {
    if !(1..=outpost_runtime::pool::MAX_THREADS).contains(&args.threads) {
        return Err(Failure::input(format!(
            "--threads {}: give 1 to {} (1: the calling thread only)",
            args.threads,
            outpost_runtime::pool::MAX_THREADS
        )));
    }
    if args.runs == 0 {
        return Err(Failure::input("--runs must be at least 1"));
    }
    let model_path = match (&args.model, &args.pipeline) {
        (Some(m), None) => m.clone(),
        (None, Some(config)) => return pipeline::run(config, &args),
        _ => {
            return Err(Failure::input(
                "give one of --model FILE or --pipeline CONFIG",
            ));
        }
    };
    let model = load(&model_path)?;
    let mut session = Session::new(
        &model,
        SessionOptions {
            threads: args.threads,
            ..SessionOptions::default()
        },
    )
    .map_err(|e| Failure::input(format!("{}: {e}", model_path.display())))?;
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    // Fill every input once (inputs are consumed by a run, so refill before each run from a
    // saved copy; the copy is part of what a real pipeline does too).
    let n_inputs = session.plan().inputs.len();
    let mut saved: Vec<Vec<u8>> = Vec::with_capacity(n_inputs);
    for i in 0..n_inputs {
        if let Ok(buf) = session.input_i8(i) {
            buf.iter_mut().for_each(|v| *v = next() as i8);
            saved.push(bytemuck_i8(buf).to_vec());
        } else if let Ok(buf) = session.input_f32(i) {
            buf.iter_mut()
                .for_each(|v| *v = (next() % 2000) as f32 / 1000.0 - 1.0);
            saved.push(buf.iter().flat_map(|v| v.to_le_bytes()).collect());
        }
    }
    let refill = |s: &mut Session| {
        for (i, data) in saved.iter().enumerate() {
            if let Ok(buf) = s.input_i8(i) {
                for (d, &v) in buf.iter_mut().zip(data) {
                    *d = v as i8;
                }
            } else if let Ok(buf) = s.input_f32(i) {
                for (d, c) in buf.iter_mut().zip(data.chunks_exact(4)) {
                    *d = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                }
            }
        }
    };

    let steps = session.plan().steps.len();
    let mut op_times = vec![Duration::ZERO; steps];
    let total = args.warmup + args.runs;
    let mut times = Vec::with_capacity(args.runs);
    let progress = !args.json && total >= 1000;
    let mut allocs = 0u64;
    for r in 0..total {
        refill(&mut session);
        let a0 = allocations();
        let t = Instant::now();
        if args.profile && r >= args.warmup {
            session.run_profiled(&mut op_times);
        } else {
            session.run();
        }
        let dt = t.elapsed();
        if r >= args.warmup {
            allocs += allocations() - a0;
            times.push(dt);
        }
        if progress && r % 500 == 0 {
            eprint!("\rrun {r}/{total}");
        }
    }
    if progress {
        eprintln!("\r{:20}", "");
    }
    let mut sorted = times.clone();
    sorted.sort_unstable();
    let mean = times.iter().sum::<Duration>().as_secs_f64() / times.len() as f64;
    let plan = session.plan();
    let macs = plan.macs();
    let profile_total: f64 = op_times.iter().map(Duration::as_secs_f64).sum();
    let profile = if args.profile {
        let op_time = |node: String, op: String, macs: u64, t: Duration| {
            let mean_s = t.as_secs_f64() / args.runs as f64;
            OpTime {
                node,
                op,
                macs,
                mean_us: mean_s * 1e6,
                share: if profile_total > 0.0 {
                    t.as_secs_f64() / profile_total
                } else {
                    0.0
                },
                gops: if mean_s > 0.0 {
                    2.0 * macs as f64 / mean_s / 1e9
                } else {
                    0.0
                },
            }
        };
        let mut rows = Vec::with_capacity(plan.steps.len());
        let mut i = 0;
        while i < plan.steps.len() {
            // A chain of steps runs as one job: one row, its steps' names joined by " > ".
            let run = session.chain(i).unwrap_or(i..i + 1);
            let steps = &plan.steps[run.clone()];
            let (node, op) = if steps.len() > 1 {
                let names: Vec<&str> = steps.iter().map(|s| s.node.as_str()).collect();
                (names.join(" > "), "chain".to_string())
            } else {
                (steps[0].node.clone(), steps[0].op.to_string())
            };
            let macs = steps.iter().map(|s| s.macs).sum();
            rows.push(op_time(node, op, macs, op_times[i]));
            i = run.end;
        }
        rows
    } else {
        Vec::new()
    };
    let p50 = percentile(&sorted, 0.5);
    let report = Report {
        model: model_path.display().to_string(),
        tier: session.tier().to_string(),
        threads: args.threads,
        runs: args.runs,
        min_ms: sorted[0].as_secs_f64() * 1e3,
        p50_ms: p50,
        p90_ms: percentile(&sorted, 0.9),
        p99_ms: percentile(&sorted, 0.99),
        max_ms: sorted[sorted.len() - 1].as_secs_f64() * 1e3,
        mean_ms: mean * 1e3,
        fps: 1.0 / mean,
        gops: 2.0 * macs as f64 / (p50 / 1e3) / 1e9,
        macs,
        allocs_per_run: allocs as f64 / args.runs as f64,
        arena_bytes: plan.arena.size,
        arena_lower_bound_bytes: plan.arena.lower_bound,
        scratch_bytes: session.scratch_bytes(),
        peak_rss_bytes: peak_rss_bytes().unwrap_or(0),
        profile,
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| Failure::other(e.to_string()))?
        );
    } else {
        print_text(&report);
    }
    Ok(())
}

fn bytemuck_i8(v: &[i8]) -> Vec<u8> {
    v.iter().map(|&x| x as u8).collect()
}

fn print_text(r: &Report) {
    println!("model        {}", r.model);
    println!(
        "kernels      {} tier, {} thread{}",
        r.tier,
        r.threads,
        if r.threads == 1 { "" } else { "s" }
    );
    println!(
        "latency      min {:.3} ms  p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  max {:.3} ms  ({} runs)",
        r.min_ms, r.p50_ms, r.p90_ms, r.p99_ms, r.max_ms, r.runs
    );
    println!(
        "throughput   {:.1} frames/s, {:.1} GOPS at p50 ({} MACs per frame)",
        r.fps,
        r.gops,
        count(r.macs)
    );
    println!(
        "memory       arena {} (lower bound {}), scratch {}, peak RSS {}",
        bytes(r.arena_bytes as u64),
        bytes(r.arena_lower_bound_bytes as u64),
        bytes(r.scratch_bytes as u64),
        bytes(r.peak_rss_bytes)
    );
    println!("allocations  {} per run", r.allocs_per_run);
    if !r.profile.is_empty() {
        println!();
        let w = r.profile.iter().map(|o| o.node.len()).max().unwrap_or(4);
        println!(
            "{:<w$}  {:<16}  {:>10}  {:>9}  {:>6}  {:>7}",
            "node", "op", "MACs", "µs", "share", "GOPS"
        );
        for o in &r.profile {
            println!(
                "{:<w$}  {:<16}  {:>10}  {:>9.1}  {:>5.1}%  {:>7.1}",
                o.node,
                o.op,
                count(o.macs),
                o.mean_us,
                o.share * 100.0,
                o.gops
            );
        }
        let mut by_op: Vec<(String, f64)> = Vec::new();
        for o in &r.profile {
            match by_op.iter_mut().find(|(k, _)| *k == o.op) {
                Some((_, v)) => *v += o.share,
                None => by_op.push((o.op.clone(), o.share)),
            }
        }
        by_op.sort_by(|a, b| b.1.total_cmp(&a.1));
        let summary: Vec<String> = by_op
            .iter()
            .map(|(k, v)| format!("{k} {:.0}%", v * 100.0))
            .collect();
        println!("\nby op: {}", summary.join(", "));
    }
}
