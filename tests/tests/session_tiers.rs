//! A whole network run through every kernel tier gives bit-identical int8 outputs, and the
//! int8 network tracks its float twin.

use outpost_kernels::Tier;
use outpost_models::Model;
use outpost_models::graph::op::Requantization;
use outpost_models::zoo::{MobileNetV2, synth_mobilenet_v2};
use outpost_runtime::{Session, SessionOptions};

fn model(int8: bool) -> Model {
    model_with(int8, Requantization::F32)
}

fn model_with(int8: bool, requantization: Requantization) -> Model {
    let cfg = MobileNetV2 {
        width: 0.5,
        size: 96,
        int8,
        classes: 100,
        requantization,
    };
    Model::from_bytes(synth_mobilenet_v2(&cfg).unwrap().build().unwrap()).unwrap()
}

fn run(model: &Model, tier: Tier, seed: usize) -> Vec<i8> {
    let mut s = Session::new(
        model,
        SessionOptions {
            tier: Some(tier),
            ..SessionOptions::default()
        },
    )
    .unwrap();
    for (i, v) in s.input_i8(0).unwrap().iter_mut().enumerate() {
        *v = ((i * 7 + seed * 13) % 256) as u8 as i8;
    }
    s.run();
    s.output_i8(0).unwrap().to_vec()
}

#[test]
fn every_tier_is_bit_exact_on_mobilenet_v2() {
    for requantization in [Requantization::F32, Requantization::Tflite] {
        every_tier_is_bit_exact(&model_with(true, requantization));
    }
}

fn every_tier_is_bit_exact(m: &Model) {
    for seed in 0..3 {
        let reference = run(m, Tier::Generic, seed);
        assert!(
            reference.iter().any(|&v| v != reference[0]),
            "degenerate output"
        );
        for tier in Tier::supported() {
            assert_eq!(
                run(m, tier, seed),
                reference,
                "tier {tier} differs from generic (seed {seed})"
            );
        }
    }
}

#[test]
fn plan_reports_arena_against_its_lower_bound() {
    let m = model(true);
    let s = Session::new(
        &m,
        SessionOptions {
            tier: Some(Tier::Generic),
            ..SessionOptions::default()
        },
    )
    .unwrap();
    let a = &s.plan().arena;
    assert!(a.size >= a.lower_bound);
    assert!(
        a.ratio() < 1.25,
        "arena {} vs lower bound {}",
        a.size,
        a.lower_bound
    );
    // Reuse: far less than the sum of all activations.
    let total: usize = s.plan().buffers.iter().map(|b| b.bytes).sum();
    assert!(a.size * 3 < total, "arena {} of {total}", a.size);
}

#[test]
fn float_model_runs() {
    let m = model(false);
    let mut s = Session::new(&m, SessionOptions::default()).unwrap();
    for (i, v) in s.input_f32(0).unwrap().iter_mut().enumerate() {
        *v = ((i % 17) as f32 - 8.0) / 8.0;
    }
    s.run();
    let out = s.output_f32(0).unwrap();
    assert_eq!(out.len(), 100);
    assert!(out.iter().all(|v| v.is_finite()));
    assert!(s.input_i8(0).is_err(), "a float input is refused as int8");
}

/// The two requantizations of the same network differ by at most a step per convolution; over
/// the whole network the logits stay close and the top class is the same.
#[test]
fn f32_and_tflite_requantization_agree_on_mobilenet_v2() {
    let (f, t) = (
        model_with(true, Requantization::F32),
        model_with(true, Requantization::Tflite),
    );
    for seed in 0..3 {
        let (a, b) = (run(&f, Tier::best(), seed), run(&t, Tier::best(), seed));
        assert_ne!(a, b, "the two forms should differ somewhere (seed {seed})");
        let diff: Vec<i32> = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| (x as i32 - y as i32).abs())
            .collect();
        let mean = diff.iter().sum::<i32>() as f64 / diff.len() as f64;
        let max = *diff.iter().max().unwrap();
        println!("seed {seed}: mean |diff| {mean:.3} steps, max {max}");
        let top = |v: &[i8]| {
            (0..v.len())
                .max_by_key(|&i| (v[i], std::cmp::Reverse(i)))
                .unwrap()
        };
        assert!(
            mean < 1.5 && max <= 6,
            "seed {seed}: mean {mean}, max {max}"
        );
        assert_eq!(top(&a), top(&b), "seed {seed}: top class");
    }
}

/// The arena starts on a cache line, so every buffer the planner places at a multiple of 64
/// bytes does: the input and the output of a full-size MobileNetV2 (a 1.4 MiB arena, which a
/// plain `Vec` would place 16 bytes past a line), on one and two threads.
#[test]
fn activations_start_on_cache_lines() {
    let cfg = MobileNetV2::default();
    assert!(cfg.int8 && cfg.size == 224);
    let m = Model::from_bytes(synth_mobilenet_v2(&cfg).unwrap().build().unwrap()).unwrap();
    for threads in [1, 2] {
        let mut s = Session::new(
            &m,
            SessionOptions {
                threads,
                ..SessionOptions::default()
            },
        )
        .unwrap();
        let input = s.input_i8(0).unwrap().as_ptr() as usize;
        s.run();
        let output = s.output_i8(0).unwrap().as_ptr() as usize;
        assert_eq!(input % 64, 0, "input, {threads} thread(s)");
        assert_eq!(output % 64, 0, "output, {threads} thread(s)");
    }
}
