//! `outpost run` with the outbox as a sink: the real binary, the real BlazeFace int8 model, a
//! real redb outbox and a real Azurite. Checks that results and frames reach the outbox, that a
//! kept frame is redacted (the same model finds no face in the exported JPEG), that the uplink
//! uploads while the pipeline runs, and that a dead link changes nothing for the pipeline.

#[path = "../../outbox/tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use outpost_models::Model;
use outpost_runtime::preprocess::load_rgb;
use outpost_runtime::{Inference, SessionOptions};
use serde_json::Value;

fn models_dir() -> PathBuf {
    std::env::var_os("OUTPOST_MODELS")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.models"))
}

fn model() -> PathBuf {
    let m = models_dir().join("blazeface-short-int8.safetensors");
    assert!(
        m.exists(),
        "{} is missing: run `cargo run -p outpost -- fetch-models`",
        m.display()
    );
    m
}

fn image(stem: &str, ext: &str) -> PathBuf {
    let p = models_dir().join(format!("data/{stem}.{ext}"));
    assert!(
        p.exists(),
        "{} is missing: run `cargo run -p outpost -- fetch all`",
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

fn ok(o: &Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "exit {:?}\nstderr: {}\nstdout: {out}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// The `summary` object of `outpost run --json`.
fn summary(stdout: &str) -> Value {
    let last = stdout.lines().last().expect("output");
    serde_json::from_str::<Value>(last).expect("json")["summary"].clone()
}

/// A config with the astronaut (a face) and chelsea (none), `frames` frames in a loop. These tests
/// count every record, so the outbox's threads run at normal priority: under the default
/// `SCHED_IDLE` the sink gets no CPU while the other tests keep both cores busy, and drops (counted)
/// what it cannot take — right for an appliance, a flaky count here. The default is covered by
/// `outbox/tests/priority.rs` and `tools/tests/bench_pipeline.rs`.
fn config(dir: &Path, frames: u64, outbox_extra: &str) -> PathBuf {
    let text = format!(
        r#"
[[stream]]
name = "door"
images = [{a:?}, {c:?}]
model = {m:?}
fps = 100
loop = true
policy = "block:10000"
frames = {frames}

[redaction]
method = {{ kind = "blur", radius = 8 }}
margin = 0.1

[outbox]
path = "box/outbox.redb"
# As many sink buffers as frames: these tests check what reaches the outbox, and a sink
# slowed by a loaded machine (redaction, JPEG, uplink) must not drop frames here.
record = {{ results = true, frames = "detections", samples = false, queue = 64 }}
sched_idle = false
nice = 0
{outbox_extra}
"#,
        a = image("astronaut", "png"),
        c = image("chelsea", "png"),
        m = model(),
    );
    let p = dir.join("pipeline.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn status(db: &Path) -> Value {
    let o = outpost(&["outbox", "--db", db.to_str().unwrap(), "status", "--json"]);
    serde_json::from_str(&ok(&o)).expect("status json")
}

#[test]
fn results_and_redacted_frames_reach_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 4, "");
    let out = dir.path().join("out");
    let o = outpost(&[
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]);
    let s = summary(&ok(&o));
    let ob = &s["outbox"];
    // astronaut, chelsea, astronaut, chelsea: two frames with a face.
    assert_eq!(s["published"], 4, "{s}");
    assert_eq!(ob["offered"], 4, "{ob}");
    assert_eq!(ob["dropped"], 0, "{ob}");
    assert_eq!(ob["results"], 2, "{ob}");
    assert_eq!(ob["frames"], 2, "{ob}");
    assert_eq!(ob["errors"], 0, "{ob}");
    assert_eq!(ob["committed"], 4, "{ob}");
    assert_eq!(ob["backlog"], 4, "{ob}");
    assert!(
        ob["uploaded"].is_null(),
        "no azure section, no uplink: {ob}"
    );

    let db = dir.path().join("box/outbox.redb");
    let st = status(&db);
    assert_eq!(st["records"], 4, "{st}");

    // Export and look at what would leave the device.
    let exp = dir.path().join("export");
    ok(&outpost(&[
        "outbox",
        "--db",
        db.to_str().unwrap(),
        "export",
        exp.to_str().unwrap(),
    ]));
    let mut jpegs = Vec::new();
    let mut stack = vec![exp.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "jpg") {
                jpegs.push(p);
            }
        }
    }
    assert_eq!(jpegs.len(), 2, "two kept frames exported: {jpegs:?}");
    assert!(
        jpegs
            .iter()
            .all(|p| p.to_str().unwrap().contains("stream=door")),
        "partitioned by stream: {jpegs:?}"
    );

    // The face detector that found the face in the original finds none in the kept frames.
    let m = Model::open(model()).unwrap();
    let mut inf = Inference::new(&m, SessionOptions::default()).unwrap();
    let count = |inf: &mut Inference, p: &Path| {
        let img = load_rgb(p).unwrap();
        inf.run_image(&img.view()).unwrap();
        inf.decoded()
            .iter()
            .map(|d| d.detections().len())
            .sum::<usize>()
    };
    assert_eq!(count(&mut inf, &image("astronaut", "png")), 1);
    for j in &jpegs {
        let img = load_rgb(j).unwrap();
        assert_eq!((img.width, img.height), (512, 512));
        assert_eq!(count(&mut inf, j), 0, "{} still has a face", j.display());
    }
}

#[test]
fn uplink_uploads_during_the_run_and_drain_sends_the_rest() {
    let az = common::Azurite::start();
    az.create_container("frames");
    let dir = tempfile::tempdir().unwrap();
    let azure = format!(
        "azure = {{ emulator = {:?}, container = \"frames\" }}\nuplink = {{ device = \"test-rig\", poll_ms = 50, backoff_initial_ms = 20 }}",
        az.url()
    );
    let cfg = config(dir.path(), 60, &azure);
    let out = dir.path().join("out");
    let o = outpost(&[
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]);
    let s = summary(&ok(&o));
    let ob = &s["outbox"];
    assert_eq!(s["published"], 60, "{s}");
    assert_eq!(ob["dropped"], 0, "{ob}");
    assert_eq!(ob["committed"], 60, "30 results and 30 frames: {ob}");
    let uploaded = ob["uploaded"].as_u64().expect("uplink counters");
    assert!(
        uploaded > 0,
        "the uplink uploaded while the pipeline ran: {ob}"
    );
    assert_eq!(
        uploaded + ob["backlog"].as_u64().unwrap(),
        60,
        "every committed record is uploaded or waiting: {ob}"
    );

    // What is left goes with `outpost outbox drain`.
    let db = dir.path().join("box/outbox.redb");
    let settings = dir.path().join("outbox.json");
    std::fs::write(
        &settings,
        serde_json::json!({
            "path": db,
            "azure": {"emulator": az.url(), "container": "frames"},
            "uplink": {"device": "test-rig"},
        })
        .to_string(),
    )
    .unwrap();
    ok(&outpost(&[
        "outbox",
        "--config",
        settings.to_str().unwrap(),
        "drain",
        "--timeout",
        "60",
    ]));
    let st = status(&db);
    assert_eq!(st["records"], 0, "nothing left behind: {st}");
    assert_eq!(st["uploaded_records"], 60, "{st}");
}

#[test]
fn a_dead_link_does_not_touch_the_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens there: every upload fails and is retried with backoff.
    let azure = format!(
        "azure = {{ emulator = \"http://127.0.0.1:{}\", container = \"frames\" }}\nuplink = {{ poll_ms = 20, backoff_initial_ms = 10, backoff_max_ms = 50, request_timeout_ms = 500 }}",
        common::free_port()
    );
    let cfg = config(dir.path(), 40, &azure);
    let out = dir.path().join("out");
    let o = outpost(&[
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]);
    let s = summary(&ok(&o));
    let ob = &s["outbox"];
    assert_eq!(s["captured"], 40, "{s}");
    assert_eq!(s["published"], 40, "{s}");
    assert_eq!(s["dropped_total"], 0, "{s}");
    assert_eq!(ob["committed"], 40, "{ob}");
    assert_eq!(ob["uploaded"], 0, "{ob}");
    assert!(
        ob["upload_failures"].as_u64().unwrap() > 0,
        "the dead link was tried and counted: {ob}"
    );
    assert_eq!(ob["backlog"], 40, "everything kept for later: {ob}");
}
