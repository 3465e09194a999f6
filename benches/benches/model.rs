//! End-to-end model latency: MobileNetV2-1.0 224×224 int8 (synthetic weights), one
//! `Session::run` per iteration, for every kernel tier this CPU supports.
//!
//! `cargo bench -p outpost-benches --bench model`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use outpost_kernels::Tier;
use outpost_models::Model;
use outpost_models::zoo::{MobileNetV2, synth_mobilenet_v2};
use outpost_runtime::{Session, SessionOptions};

fn mobilenet_v2(c: &mut Criterion) {
    let bytes = synth_mobilenet_v2(&MobileNetV2::default())
        .expect("synth")
        .build()
        .expect("build");
    let model = Model::from_bytes(bytes).expect("valid model");
    let mut group = c.benchmark_group("mobilenet_v2_1.0_224_int8");
    group.sample_size(30);
    for tier in Tier::supported().filter(|t| *t != Tier::Generic) {
        let mut session = Session::new(
            &model,
            SessionOptions {
                tier: Some(tier),
                ..SessionOptions::default()
            },
        )
        .expect("plan");
        group.throughput(Throughput::Elements(session.plan().macs()));
        let input: Vec<i8> = (0..session.input_i8(0).expect("input").len())
            .map(|i| (i * 31 % 251) as i8)
            .collect();
        group.bench_function(tier.to_string(), |b| {
            b.iter(|| {
                session.input_i8(0).expect("input").copy_from_slice(&input);
                session.run();
                std::hint::black_box(session.output_i8(0).expect("output")[0])
            })
        });
    }
    group.finish();
}

criterion_group!(benches, mobilenet_v2);
criterion_main!(benches);
