//! `SessionOptions::threads`: a run split across threads gives the one-thread outputs bit for
//! bit (real BlazeFace int8, short and full range, and f32, and a synthetic MobileNetV2 int8,
//! every tier this CPU has, 2 and 3 threads; the classifier split by output features). That the workers sleep between
//! runs: `session_workers_idle.rs`.

use outpost_kernels::Tier;
use outpost_models::Model;
use outpost_models::zoo::{MobileNetV2, synth_mobilenet_v2};
use outpost_runtime::{Session, SessionOptions};
use outpost_tests::model_file;

fn session(model: &Model, tier: Tier, threads: usize) -> Session {
    Session::new(
        model,
        SessionOptions {
            tier: Some(tier),
            threads,
        },
    )
    .unwrap()
}

/// Every output's bytes (int8, or f32 bit patterns) after one run on a deterministic input.
fn outputs(s: &mut Session, seed: usize) -> Vec<Vec<u32>> {
    let value = |i: usize| (i * 7 + seed * 13) % 256;
    if s.input_f32(0).is_ok() {
        for (i, v) in s.input_f32(0).unwrap().iter_mut().enumerate() {
            *v = value(i) as f32 / 128.0 - 1.0;
        }
    } else {
        for (i, v) in s.input_i8(0).unwrap().iter_mut().enumerate() {
            *v = value(i) as u8 as i8;
        }
    }
    s.run();
    (0..s.plan().outputs.len())
        .map(|i| match s.output_i8(i) {
            Some(v) => v.iter().map(|&x| x as u8 as u32).collect(),
            None => s
                .output_f32(i)
                .expect("int8 or f32")
                .iter()
                .map(|x| x.to_bits())
                .collect(),
        })
        .collect()
}

fn same_outputs_on_every_thread_count(model: &Model) {
    for tier in Tier::supported() {
        let mut one = session(model, tier, 1);
        for threads in [2, 3] {
            let mut many = session(model, tier, threads);
            assert!(many.split_steps() > 0, "{tier}: nothing split");
            for seed in 0..3 {
                assert_eq!(
                    outputs(&mut many, seed),
                    outputs(&mut one, seed),
                    "{tier}, {threads} threads, input {seed}"
                );
            }
        }
    }
}

/// Its depthwise convolutions head chains that take the residual adds (`skip + x`: the
/// chain's output as the add's second operand), the small 16 × 16 and 8 × 8 ones included.
#[test]
fn blazeface_int8_is_bit_exact_across_threads() {
    let model = Model::open(model_file("blazeface-short-int8.safetensors")).unwrap();
    for tier in Tier::supported() {
        let s = session(&model, tier, 2);
        let steps = &s.plan().steps;
        let chains: Vec<_> = (0..steps.len())
            .filter_map(|i| s.chain(i).filter(|c| c.start == i))
            .collect();
        assert!(chains.len() >= 10, "{tier}: {chains:?}");
        let with_add = chains
            .iter()
            .filter(|c| steps[(*c).clone()].iter().any(|st| st.op == "add"))
            .count();
        assert!(with_add >= 2, "{tier}: {with_add} chains take an add");
        let small_head = chains
            .iter()
            .any(|c| steps[c.start].macs < outpost_runtime::parallel::MIN_MACS);
        assert!(small_head, "{tier}: no chain with a small head");
    }
    same_outputs_on_every_thread_count(&model);
}

/// Its bilinear upsamplings (the feature pyramid's 12 → 24 → 48 steps) split by output
/// rows, each slice reading the whole input.
#[test]
fn blazeface_full_range_is_bit_exact_across_threads() {
    let model = Model::open(model_file("blazeface-full-int8.safetensors")).unwrap();
    for tier in Tier::supported() {
        let s = session(&model, tier, 2);
        let steps = &s.plan().steps;
        let resizes: Vec<usize> = (0..steps.len())
            .filter(|&i| steps[i].op == "resize")
            .collect();
        assert_eq!(resizes.len(), 3, "{tier}");
        // The 12 × 12 × 96 one writes 13.5 KiB, under the split threshold.
        let split = resizes.iter().filter(|&&i| s.is_split(i)).count();
        assert_eq!(split, 2, "{tier}: {split} of the resizes split");
    }
    same_outputs_on_every_thread_count(&model);
}

/// The f32 convolutions and depthwise convolutions split by rows.
#[test]
fn blazeface_f32_is_bit_exact_across_threads() {
    let model = Model::open(model_file("blazeface-short-f32.safetensors")).unwrap();
    same_outputs_on_every_thread_count(&model);
}

/// Its classifier (a fully connected layer of one row) splits by output features; its
/// depthwise and pointwise convolutions run in chains ([`Session::chain`]).
#[test]
fn mobilenet_v2_int8_is_bit_exact_across_threads() {
    let cfg = MobileNetV2 {
        width: 0.5,
        size: 128,
        ..Default::default()
    };
    let model = Model::from_bytes(synth_mobilenet_v2(&cfg).unwrap().build().unwrap()).unwrap();
    for tier in Tier::supported() {
        let s = session(&model, tier, 2);
        let fc = s
            .plan()
            .steps
            .iter()
            .position(|st| st.op == "fully_connected");
        let fc = fc.expect("MobileNetV2 ends in a fully connected layer");
        assert!(s.is_split(fc), "{tier}: the classifier runs on one thread");
        // An inverted residual block's depthwise convolution heads a chain with its project
        // convolution (and the next block's expand where there is one); in this small model
        // every split one does.
        let steps = &s.plan().steps;
        let mut chained = 0;
        for (i, st) in steps.iter().enumerate() {
            if st.op != "depthwise_conv2d" || !s.is_split(i) {
                continue;
            }
            let chain = s
                .chain(i)
                .unwrap_or_else(|| panic!("{tier}: {} unchained", st.node));
            assert_eq!(chain.start, i, "{tier}: {} heads its chain", st.node);
            assert!(chain.len() >= 2 && chain.len() <= 4, "{tier}: {chain:?}");
            assert!(chain.clone().skip(1).all(|f| s.is_split(f)));
            chained += 1;
        }
        assert!(chained >= 5, "{tier}: {chained} chains");
    }
    same_outputs_on_every_thread_count(&model);
}
