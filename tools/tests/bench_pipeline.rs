//! `outpost bench --pipeline`: the real binary, the real BlazeFace int8 model, a two-stream
//! config. Checks the options, the JSON keys and that frames add up (not timing values).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn models_dir() -> PathBuf {
    std::env::var_os("OUTPOST_MODELS")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.models"))
}

fn need(p: PathBuf) -> PathBuf {
    assert!(
        p.exists(),
        "{} is missing: run `cargo run -p outpost -- fetch-models`",
        p.display()
    );
    p
}

fn outpost(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_outpost"))
        .env("OUTPOST_MODELS", models_dir())
        .args(args)
        .output()
        .expect("run outpost")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A config with two streams sharing BlazeFace: one `latest` at a high rate, one `block` slow
/// enough (40 ms apart) that its frames find the model free even in a debug build on a loaded
/// 2-core CI machine, so the overhead figures have frames to measure.
fn config(dir: &Path) -> PathBuf {
    let model = need(models_dir().join("blazeface-short-int8.safetensors"));
    let astronaut = need(models_dir().join("data/astronaut.png"));
    let coffee = need(models_dir().join("data/coffee.png"));
    let text = format!(
        "[[stream]]\nname = \"fast\"\nimages = [{a:?}, {c:?}]\nmodel = {m:?}\nfps = 2000\n\
         policy = \"latest\"\n\n[[stream]]\nname = \"steady\"\nimages = [{c:?}]\nmodel = {m:?}\n\
         fps = 25\npolicy = \"block:5000\"\nframes = 25\n",
        a = astronaut.display().to_string(),
        c = coffee.display().to_string(),
        m = model.display().to_string(),
    );
    let path = dir.join("bench.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `outpost bench --pipeline CFG --frames N --warmup 5 --runs R --json`, parsed.
fn bench_json(cfg: &Path, frames: &str, runs: &str) -> Value {
    let o = outpost(&[
        "bench",
        "--pipeline",
        cfg.to_str().unwrap(),
        "--frames",
        frames,
        "--warmup",
        "5",
        "--runs",
        runs,
        "--json",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}\n{out}", stderr(&o));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn num(v: &Value, key: &str) -> f64 {
    v.get(key)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no number `{key}` in {v}"))
}

#[test]
fn bench_pipeline_json_adds_up() {
    let _shared = ALONE.read().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let v = bench_json(&cfg, "40", "10");
    let out = v.to_string();
    assert!(
        num(&v, "measured_frames") > 0.0,
        "no frame found its model free (all waited): {out}"
    );
    for key in [
        "p50_ms",
        "p90_ms",
        "p99_ms",
        "max_ms",
        "overhead_p50_us",
        "overhead_p99_us",
        "overhead_vs_alone_p50_us",
        "handoff_p50_us",
        "handoff_p99_us",
        "allocs_per_frame",
        "fps",
        "frames",
    ] {
        assert!(v[key].is_number(), "`{key}` is not a number: {}", v[key]);
    }
    let streams = v["streams"].as_array().expect("streams");
    assert_eq!(streams.len(), 2);
    assert_eq!(streams[0]["name"], "fast");
    assert_eq!(streams[1]["name"], "steady");
    // --frames for the first stream; the second's own `frames` key wins.
    assert_eq!(num(&streams[0], "captured"), 40.0);
    assert_eq!(num(&streams[1], "captured"), 25.0);
    let mut frames = 0.0;
    let mut measured = 0.0;
    for s in streams {
        let dropped: f64 = s["dropped"]
            .as_object()
            .expect("dropped by reason")
            .values()
            .map(|d| d.as_f64().unwrap())
            .sum();
        assert_eq!(dropped, num(s, "dropped_total"), "{s}");
        assert_eq!(num(s, "captured"), num(s, "inferred") + dropped, "{s}");
        assert_eq!(num(s, "published"), num(s, "inferred"), "{s}");
        assert_eq!(num(s, "frames"), num(s, "published"), "{s}");
        assert_eq!(
            s["stages"]["total"]["count"].as_f64(),
            Some(num(s, "frames"))
        );
        assert_eq!(
            s["stages"]["capture"]["count"].as_f64(),
            Some(num(s, "captured"))
        );
        assert!(s["stages"]["infer"]["p50_us"].is_number(), "{s}");
        frames += num(s, "frames");
        measured += num(s, "measured_frames") + num(s, "waited_frames");
    }
    // `block` never drops here (the deadline is 5 s).
    assert_eq!(num(&streams[1], "dropped_total"), 0.0);
    assert_eq!(num(&streams[1], "frames"), 25.0);
    assert_eq!(num(&v, "frames"), frames);
    assert_eq!(v["streams"].as_array().unwrap().len(), 2);
    // Every frame after warm-up is measured or counted as having waited.
    assert_eq!(measured, frames - num(&v, "warmup_frames"));
    assert_eq!(
        num(&v, "captured"),
        num(&streams[0], "captured") + num(&streams[1], "captured")
    );
}

/// The first and the last CPU this process may run on (`Cpus_allowed_list`, e.g. "0-3,6").
fn first_and_last_cpu() -> (usize, usize) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim();
    let first = list.split([',', '-']).next().unwrap().parse().unwrap();
    let last = list.rsplit([',', '-']).next().unwrap().parse().unwrap();
    (first, last)
}

/// Busy threads take whole cores: the busy test runs alone, not beside this file's other
/// pipelines (whose timing assertions it would disturb).
static ALONE: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// `[pipeline] busy` with every thread placed: frames add up as without it, under `block`.
#[test]
fn bench_pipeline_busy_and_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let model = need(models_dir().join("blazeface-short-int8.safetensors"));
    let coffee = need(models_dir().join("data/coffee.png"));
    let _alone = ALONE.write().unwrap_or_else(|e| e.into_inner());
    // As docs/runtime.md advises: the busy inference thread on a core of its own where there
    // is a second one, the capture thread beside the publisher.
    let (io, infer) = first_and_last_cpu();
    let text = format!(
        "[pipeline]\nbusy = true\ninfer_cpus = [{infer}]\ncapture_cpus = [{io}]\n\
         publish_cpu = {io}\n\n[[stream]]\nname = \"cam\"\nimages = [{c:?}]\nmodel = {m:?}\n\
         fps = 100\npolicy = \"block:5000\"\n",
        c = coffee.display().to_string(),
        m = model.display().to_string(),
    );
    let cfg = dir.path().join("busy.toml");
    std::fs::write(&cfg, text).unwrap();
    let v = bench_json(&cfg, "30", "5");
    assert_eq!(num(&v, "frames"), 30.0, "{v}");
    let s = &v["streams"][0];
    assert_eq!(num(s, "captured"), 30.0, "{s}");
    assert_eq!(num(s, "dropped_total"), 0.0, "{s}");
    assert_eq!(num(s, "published"), 30.0, "{s}");
}

#[test]
fn bench_needs_model_or_pipeline_not_both() {
    let o = outpost(&["bench"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--model"), "{}", stderr(&o));
    let o = outpost(&["bench", "--model", "a.safetensors", "--pipeline", "b.toml"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot be used with"), "{}", stderr(&o));
    let o = outpost(&["bench", "--model", "a.safetensors", "--frames", "5"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = outpost(&["bench", "--help"]);
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(help.contains("overhead_vs_alone"), "{help}");
}

/// A config's `[outbox]` runs in the bench as in `outpost run`: every published frame is offered,
/// what the record policy keeps is committed, and a dead uplink only counts failures.
#[test]
fn bench_pipeline_runs_the_outbox() {
    let _shared = ALONE.read().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let model = need(models_dir().join("blazeface-short-int8.safetensors"));
    let astronaut = need(models_dir().join("data/astronaut.png"));
    let coffee = need(models_dir().join("data/coffee.png"));
    // Port 9 (discard) on loopback: nothing listens, every upload is refused and retried.
    let text = format!(
        "[[stream]]\nname = \"door\"\nimages = [{a:?}, {c:?}]\nmodel = {m:?}\nfps = 100\n\
         policy = \"block:5000\"\n\n[redaction]\nmethod = {{ kind = \"blur\", radius = 8 }}\n\n\
         [outbox]\npath = \"box/outbox.redb\"\n\
         record = {{ results = true, frames = \"detections\", samples = false }}\n\
         azure = {{ emulator = \"http://127.0.0.1:9\", container = \"frames\" }}\n\
         uplink = {{ poll_ms = 20, backoff_initial_ms = 10, backoff_max_ms = 50, \
         request_timeout_ms = 500 }}\n",
        a = astronaut.display().to_string(),
        c = coffee.display().to_string(),
        m = model.display().to_string(),
    );
    let cfg = dir.path().join("bench.toml");
    std::fs::write(&cfg, text).unwrap();
    let v = bench_json(&cfg, "30", "5");
    assert_eq!(num(&v, "frames"), 30.0, "{v}");
    let ob = &v["outbox"];
    assert!(ob.is_object(), "no outbox object: {v}");
    assert_eq!(num(ob, "offered"), 30.0, "{ob}");
    assert_eq!(num(ob, "errors"), 0.0, "{ob}");
    // Results and a (redacted) frame for each frame with a detection (the astronaut).
    let kept = num(ob, "results") + num(ob, "frames") + num(ob, "samples");
    assert!(num(ob, "results") > 0.0 && num(ob, "frames") > 0.0, "{ob}");
    // Whatever the sink kept is committed unless the writer's own queue was full (counted).
    assert_eq!(
        num(ob, "committed") + num(ob, "writer_dropped"),
        kept,
        "{ob}"
    );
    assert_eq!(num(ob, "uploaded"), 0.0, "{ob}");
    assert_eq!(
        num(ob, "backlog"),
        num(ob, "committed"),
        "nothing lost, nothing uploaded: {ob}"
    );
    assert!(dir.path().join("box/outbox.redb").exists());
}
