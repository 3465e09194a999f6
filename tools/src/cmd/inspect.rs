//! `outpost inspect`: what a model file contains.

use std::path::{Path, PathBuf};

use outpost_models::graph::QuantParams;
use outpost_models::spec::Decoder;
use outpost_models::zoo::{MobileNetV2, synth_mobilenet_v2};
use outpost_models::{Model, ModelSummary};
use outpost_runtime::Plan;
use outpost_runtime::kernels::Tier;

use crate::exit::{CmdResult, Failure};
use crate::fmt::{bytes, count};

/// Arguments of `outpost inspect`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  outpost inspect model.safetensors\n  outpost inspect model.safetensors --json | jq .totals\n  outpost inspect --example\n\nExit status: 0 on success, 2 when the file is missing or not a valid Outpost model."
)]
pub struct Args {
    /// The model file (.safetensors, Outpost format v1).
    #[arg(required_unless_present = "example")]
    pub model: Option<PathBuf>,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Inspect a built-in example instead: MobileNetV2 1.0 224×224 int8 with synthetic weights.
    #[arg(long, conflicts_with = "model")]
    pub example: bool,
}

/// Run the command.
pub fn run(args: Args) -> CmdResult {
    let _example_dir;
    let path = match (&args.model, args.example) {
        (Some(p), _) => p.clone(),
        (None, _) => {
            let dir = tempfile::tempdir()
                .map_err(|e| Failure::other(format!("cannot create a temporary directory: {e}")))?;
            let path = dir.path().join("mobilenet_v2-1.0-224-int8.safetensors");
            synth_mobilenet_v2(&MobileNetV2::default())
                .and_then(|b| b.write(&path))
                .map_err(|e| Failure::other(format!("cannot write the example model: {e}")))?;
            if !args.json {
                println!(
                    "example: synthetic MobileNetV2 written to {} (`outpost synth` makes your own)\n",
                    path.display()
                );
            }
            _example_dir = dir;
            path
        }
    };
    let model = load(&path)?;
    let summary = ModelSummary::of(&model);
    let plan = plan_summary(&model);
    if args.json {
        let mut v = serde_json::to_value(&summary).map_err(|e| Failure::other(e.to_string()))?;
        v["plan"] = serde_json::to_value(&plan).map_err(|e| Failure::other(e.to_string()))?;
        println!(
            "{}",
            serde_json::to_string_pretty(&v).map_err(|e| Failure::other(e.to_string()))?
        );
    } else {
        print_text(&path, &summary);
        print_plan(&plan);
    }
    Ok(())
}

/// What the CPU plan of a model needs, or why it cannot be planned.
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
enum PlanSummary {
    Ok {
        tier: String,
        steps: usize,
        arena_bytes: usize,
        arena_lower_bound_bytes: usize,
        arena_ratio: f64,
        scratch_bytes: usize,
        working_memory_bytes: usize,
    },
    Err {
        plan_error: String,
    },
}

fn plan_summary(model: &Model) -> PlanSummary {
    let tier = match Tier::from_env() {
        Ok(t) => t,
        Err(e) => {
            return PlanSummary::Err {
                plan_error: e.to_string(),
            };
        }
    };
    match Plan::new(model, tier) {
        Ok(p) => PlanSummary::Ok {
            tier: tier.to_string(),
            steps: p.steps.len(),
            arena_bytes: p.arena.size,
            arena_lower_bound_bytes: p.arena.lower_bound,
            arena_ratio: p.arena.ratio(),
            scratch_bytes: p.scratch_bytes,
            working_memory_bytes: p.arena.size + p.scratch_bytes,
        },
        Err(e) => PlanSummary::Err {
            plan_error: e.to_string(),
        },
    }
}

fn print_plan(p: &PlanSummary) {
    match p {
        PlanSummary::Ok {
            tier,
            arena_bytes,
            arena_lower_bound_bytes,
            arena_ratio,
            scratch_bytes,
            working_memory_bytes,
            ..
        } => {
            println!(
                "memory      arena {} ({:.2}× the lower bound {} of simultaneously live activations), scratch {}",
                bytes(*arena_bytes as u64),
                arena_ratio,
                bytes(*arena_lower_bound_bytes as u64),
                bytes(*scratch_bytes as u64)
            );
            println!(
                "plan        CPU {tier} kernels; working memory per session {}",
                bytes(*working_memory_bytes as u64)
            );
        }
        PlanSummary::Err { plan_error } => {
            println!("plan        cannot run on the CPU backend: {plan_error}")
        }
    }
}

/// Open a model, turning any failure into a one-line, exit-status-2 error.
pub fn load(path: &Path) -> Result<Model, Failure> {
    Model::open(path).map_err(|e| Failure::input(format!("{}: {e}", path.display())))
}

fn quant(q: &Option<QuantParams>) -> String {
    q.map(|q| format!("scale {:.6} zp {}", q.scale, q.zero_point))
        .unwrap_or_default()
}

fn shape(s: &[usize]) -> String {
    format!(
        "[{}]",
        s.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("×")
    )
}

fn decoder(d: &Decoder) -> String {
    match d {
        Decoder::Ssd {
            strides,
            score_threshold,
            iou_threshold,
            nms,
            ..
        } => {
            format!(
                "ssd strides {strides:?}, score ≥ {score_threshold}, {nms:?} NMS at IoU {iou_threshold}"
            )
        }
        Decoder::Centernet {
            stride,
            score_threshold,
            ..
        } => format!("centernet stride {stride}, score ≥ {score_threshold}"),
        Decoder::Classification { top_k, activation } => {
            format!("classification top-{top_k} ({activation:?})")
        }
        Decoder::Raw => "raw tensors".into(),
        Decoder::Wakeword {
            wake_word,
            probability_cutoff,
            sliding_window,
            ..
        } => format!(
            "wake word {wake_word:?}: mean of {sliding_window} probabilities > {probability_cutoff}"
        ),
    }
}

fn print_text(path: &Path, s: &ModelSummary) {
    let name = s.name.as_deref().unwrap_or("(unnamed)");
    let version = s
        .version
        .as_deref()
        .map(|v| format!(" version {v}"))
        .unwrap_or_default();
    println!("model       {name}{version}");
    println!(
        "file        {} ({}, {})",
        path.display(),
        bytes(s.file_bytes),
        if s.mapped {
            "memory-mapped"
        } else {
            "in memory"
        }
    );
    println!("format      outpost v{}", s.format_version);
    if s.copied_misaligned.is_empty() {
        println!("weights     zero-copy (every tensor aligned in the file)");
    } else {
        println!(
            "weights     copied (misaligned in the file): {}",
            s.copied_misaligned.join(", ")
        );
    }
    if let Some(p) = &s.provenance {
        let mut parts = Vec::new();
        if let Some(v) = &p.source {
            parts.push(format!("source {v}"));
        }
        if let Some(v) = &p.source_sha256 {
            parts.push(format!("sha256 {v}"));
        }
        if let Some(v) = &p.converter {
            parts.push(format!("by {v}"));
        }
        if let Some(c) = &p.calibration {
            parts.push(format!(
                "calibration {} ({})",
                c.set.as_deref().unwrap_or("?"),
                c.mode.as_deref().unwrap_or("?")
            ));
        }
        println!("provenance  {}", parts.join("; "));
    }
    for (i, t) in s.inputs.iter().enumerate() {
        let spec = s.input_specs.iter().find(|sp| sp.tensor == t.name);
        let spec = spec
            .map(|sp| {
                format!(
                    "  {:?} {:?} {:?} mean {:?} std {:?}",
                    sp.layout, sp.color, sp.resize, sp.mean, sp.std
                )
                .to_lowercase()
            })
            .unwrap_or_default();
        println!(
            "{}  {} {} {} {}{spec}",
            if i == 0 { "inputs    " } else { "          " },
            t.name,
            shape(&t.shape),
            t.dtype,
            quant(&t.quant)
        );
    }
    for (i, t) in s.outputs.iter().enumerate() {
        let dec = s
            .output_specs
            .iter()
            .find(|sp| sp.tensors.contains(&t.name))
            .map(|sp| format!("  → {}", decoder(&sp.decoder)));
        println!(
            "{}  {} {} {} {}{}",
            if i == 0 { "outputs   " } else { "          " },
            t.name,
            shape(&t.shape),
            t.dtype,
            quant(&t.quant),
            dec.unwrap_or_default()
        );
    }
    if s.labels > 0 {
        println!("labels      {}", s.labels);
    }
    println!();
    let w_node = s.ops.iter().map(|o| o.node.len()).max().unwrap_or(4).max(4);
    let w_op = s.ops.iter().map(|o| o.op.len()).max().unwrap_or(2).max(2);
    println!(
        "{:>4}  {:<w_node$}  {:<w_op$}  {:<18}  {:<28}  {:>10}  {:>10}",
        "#", "node", "op", "output", "dtype / quant", "MACs", "weights"
    );
    for (i, o) in s.ops.iter().enumerate() {
        println!(
            "{:>4}  {:<w_node$}  {:<w_op$}  {:<18}  {:<28}  {:>10}  {:>10}",
            i,
            o.node,
            o.op,
            shape(&o.output_shape),
            format!("{} {}", o.dtype, quant(&o.quant)),
            count(o.macs),
            if o.weight_bytes > 0 {
                bytes(o.weight_bytes)
            } else {
                String::new()
            }
        );
    }
    println!();
    println!(
        "totals      {} MACs per run, {} of weights, {} ops, {} of activations before reuse",
        count(s.totals.macs),
        bytes(s.totals.weight_bytes),
        s.totals.nodes,
        bytes(s.totals.activation_bytes)
    );
}
