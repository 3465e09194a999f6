//! Int8 kernel throughput per tier at MobileNetV2 shapes (and BlazeFace's for the adds).
//!
//! Throughput is in elements = multiply-accumulates, so `Gelem/s × 2` is GOPS (for the adds,
//! elements are outputs). Time is this
//! thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), not wall time: the bench machine is shared,
//! and wall time would count the slices other processes hold the core. `peak/vpdpbusd`
//! measures the core's int8 peak at the same moment (register-only `vpdpbusd zmm`, when the
//! CPU has AVX-512 VNNI), `peak/vpmaddwd` the AVX2 tier's (register-only `vpmaddwd ymm` and
//! `vpaddd`, as its GEMM multiplies).
//!
//! Run: `cargo bench -p outpost-benches --bench kernels -- --measurement-time 2 --warm-up-time 1`.

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use outpost_kernels::{
    Add16Quant, AddQuant, ChannelPadded, Conv2dParams, DepthwiseParams, KernelTable, Lines,
    PackedConv, PackedDepthwise, Tier,
};
use std::hint::black_box;

#[repr(C)]
struct Timespec {
    sec: i64,
    nsec: i64,
}

unsafe extern "C" {
    fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
}

/// This thread's CPU time in nanoseconds.
fn thread_cpu_ns() -> u64 {
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; clock 3 is CLOCK_THREAD_CPUTIME_ID on Linux.
    let rc = unsafe { clock_gettime(3, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    ts.sec as u64 * 1_000_000_000 + ts.nsec as u64
}

/// Criterion measurement: thread CPU time.
struct ThreadCpu;

struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (div, unit) = if typical < 1e3 {
            (1.0, "ns")
        } else if typical < 1e6 {
            (1e3, "µs")
        } else if typical < 1e9 {
            (1e6, "ms")
        } else {
            (1e9, "s")
        };
        values.iter_mut().for_each(|v| *v /= div);
        unit
    }

    fn scale_throughputs(
        &self,
        _typical: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        let n = match *throughput {
            Throughput::Elements(n)
            | Throughput::Bytes(n)
            | Throughput::BytesDecimal(n)
            | Throughput::Bits(n) => n,
            Throughput::ElementsAndBytes { elements, .. } => elements,
        } as f64;
        values.iter_mut().for_each(|v| *v = n / *v);
        "Gelem/s (CPU time)"
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

impl Measurement for ThreadCpu {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_ns()
    }

    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns() - start
    }

    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }

    fn zero(&self) -> u64 {
        0
    }

    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

use outpost_kernels::pseudo_random_i8 as bytes;

fn tables() -> Vec<KernelTable> {
    Tier::supported()
        .map(|t| KernelTable::for_tier(t).unwrap())
        .collect()
}

/// Every table with TFLite's fixed point requantization, then the SIMD ones with the `f32`
/// requantization (`"requantization": "f32"`).
fn tables_and_requantizations() -> Vec<(KernelTable, bool)> {
    let mut v: Vec<_> = tables().into_iter().map(|t| (t, false)).collect();
    v.extend(
        tables()
            .into_iter()
            .filter(|t| t.tier() != Tier::Generic)
            .map(|t| (t, true)),
    );
    v
}

/// The benchmark id's tier part: `avx512vnni`, or `avx512vnni-f32` with the `f32`
/// requantization.
fn tier_id(t: &KernelTable, f32_requant: bool) -> String {
    format!(
        "{}{}",
        t.tier().name(),
        if f32_requant { "-f32" } else { "" }
    )
}

/// A peak probe: runs its work and returns the int8 operations done (`None`: not supported).
type Probe = fn(usize) -> Option<u64>;

fn peak(c: &mut Criterion<ThreadCpu>) {
    const ITERS: usize = 100_000;
    let probes: [(&str, Probe); 2] = [
        ("vpdpbusd", outpost_kernels::probe_int8_peak),
        ("vpmaddwd", outpost_kernels::probe_avx2_int8_peak),
    ];
    for (name, probe) in probes {
        let Some(ops) = probe(ITERS) else {
            continue;
        };
        let mut group = c.benchmark_group("peak");
        group.sample_size(10);
        group.throughput(Throughput::Elements(ops / 2));
        group.bench_function(name, |b| b.iter(|| probe(black_box(ITERS))));
        group.finish();
    }
}

fn pointwise(c: &mut Criterion<ThreadCpu>) {
    let shapes = [
        (64, 64, 24, 24),
        // BlazeFace's: channel counts that end in a partial block of 8.
        (64, 64, 24, 28),
        (32, 32, 32, 36),
        (56, 56, 24, 144),
        (28, 28, 32, 192),
        (14, 14, 96, 576),
        (7, 7, 320, 1280),
        (112, 112, 16, 96),
        (28, 28, 192, 32),
        (7, 7, 960, 160),
    ];
    let mut group = c.benchmark_group("pointwise_i8");
    group.sample_size(10);
    for (h, w, ic, oc) in shapes {
        let mut p = Conv2dParams::simple(h, w, ic, oc, 1, 1);
        p.input_zp = -3;
        p.output_zp = 5;
        let weights = bytes(p.weight_len(), 1);
        let bias: Vec<i32> = (0..oc as i32).map(|i| i * 37 - 2000).collect();
        let scales: Vec<f32> = (0..oc).map(|i| 0.002 + 0.0001 * (i % 7) as f32).collect();
        // Activations and scratch on cache lines, as the session\'s arena places them.
        let input = Lines::copy_of(&bytes(p.input_len(), 2));
        let mut output = Lines::zeroed(p.output_len());
        group.throughput(Throughput::Elements(p.macs()));
        for (t, f32_requant) in tables_and_requantizations() {
            p.requant_f32 = f32_requant;
            let packed = PackedConv::new(t.tier(), &p, &weights, Some(&bias), 0.05, &scales, 0.1);
            let mut scratch = Lines::zeroed(packed.scratch_bytes());
            let id = BenchmarkId::new(tier_id(&t, f32_requant), format!("{h}x{w}x{ic}->{oc}"));
            group.bench_function(id, |b| {
                b.iter(|| {
                    t.conv2d_i8(
                        &packed,
                        black_box(input.view(p.input_len())),
                        output.view_mut(p.output_len()),
                        scratch.bytes_mut(),
                    )
                })
            });
        }
    }
    group.finish();
}

/// Full convolutions: BlazeFace's first layer (128×128×3 → 24, 5×5, stride 2, TFLite "same"
/// padding) and MobileNetV2's (224×224×3 → 32, 3×3, stride 2).
fn conv(c: &mut Criterion<ThreadCpu>) {
    let shapes = [(128, 3, 24, 5), (224, 3, 32, 3)];
    let mut group = c.benchmark_group("conv_i8");
    group.sample_size(10);
    for (size, ic, oc, k) in shapes {
        let mut p = Conv2dParams::simple(size, size, ic, oc, k, k);
        (p.stride_h, p.stride_w) = (2, 2);
        (p.out_h, p.out_w) = (size / 2, size / 2);
        let pad = ((size / 2 - 1) * 2 + k).saturating_sub(size) / 2;
        (p.pad_top, p.pad_left) = (pad, pad);
        p.input_zp = -3;
        p.output_zp = 5;
        let weights = bytes(p.weight_len(), 7);
        let bias: Vec<i32> = (0..oc as i32).map(|i| i * 37 - 2000).collect();
        let scales: Vec<f32> = (0..oc).map(|i| 0.002 + 0.0001 * (i % 7) as f32).collect();
        // Activations and scratch on cache lines, as the session\'s arena places them.
        let input = Lines::copy_of(&bytes(p.input_len(), 8));
        let mut output = Lines::zeroed(p.output_len());
        group.throughput(Throughput::Elements(p.macs()));
        for (t, f32_requant) in tables_and_requantizations() {
            p.requant_f32 = f32_requant;
            let packed = PackedConv::new(t.tier(), &p, &weights, Some(&bias), 0.05, &scales, 0.1);
            let mut scratch = Lines::zeroed(packed.scratch_bytes());
            let id = BenchmarkId::new(
                tier_id(&t, f32_requant),
                format!("{size}x{size}x{ic}->{oc}k{k}s2"),
            );
            group.bench_function(id, |b| {
                b.iter(|| {
                    t.conv2d_i8(
                        &packed,
                        black_box(input.view(p.input_len())),
                        output.view_mut(p.output_len()),
                        scratch.bytes_mut(),
                    )
                })
            });
        }
    }
    group.finish();
}

/// Depthwise 3×3 at MobileNetV2's shapes, then BlazeFace's (few channels, large images).
fn depthwise3x3(c: &mut Criterion<ThreadCpu>) {
    let shapes = [
        (112, 112, 96, 2),
        (56, 56, 144, 1),
        (14, 14, 576, 1),
        (64, 64, 24, 1),
        (64, 64, 28, 2),
        (16, 16, 88, 1),
    ];
    depthwise(c, "depthwise3x3_i8", 3, &shapes);
}

/// Depthwise 5×5 (MobileNetV3 and EfficientNet use them).
fn depthwise5x5(c: &mut Criterion<ThreadCpu>) {
    depthwise(
        c,
        "depthwise5x5_i8",
        5,
        &[(28, 28, 72, 1), (14, 14, 120, 1)],
    );
}

fn depthwise(
    c: &mut Criterion<ThreadCpu>,
    name: &str,
    k: usize,
    shapes: &[(usize, usize, usize, usize)],
) {
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    for &(h, w, ch, stride) in shapes {
        let mut p = DepthwiseParams::same(h, w, ch, k, stride);
        p.input_zp = -3;
        p.output_zp = 5;
        let weights = bytes(p.weight_len(), 3);
        let bias: Vec<i32> = (0..ch as i32).map(|i| i * 37 - 2000).collect();
        let scales: Vec<f32> = (0..ch).map(|i| 0.002 + 0.0001 * (i % 7) as f32).collect();
        // Activations and scratch on cache lines, as the session\'s arena places them.
        let input = Lines::copy_of(&bytes(p.input_len(), 4));
        let mut output = Lines::zeroed(p.output_len());
        group.throughput(Throughput::Elements(p.macs()));
        for (t, f32_requant) in tables_and_requantizations() {
            p.requant_f32 = f32_requant;
            let packed =
                PackedDepthwise::new(t.tier(), &p, &weights, Some(&bias), 0.05, &scales, 0.1);
            let mut scratch = Lines::zeroed(packed.scratch_bytes());
            let id = BenchmarkId::new(tier_id(&t, f32_requant), format!("{h}x{w}x{ch}s{stride}"));
            group.bench_function(id, |b| {
                b.iter(|| {
                    t.depthwise_i8(
                        &packed,
                        black_box(input.view(p.input_len())),
                        output.view_mut(p.output_len()),
                        scratch.bytes_mut(),
                    )
                })
            });
        }
    }
    group.finish();
}

/// Residual adds at BlazeFace's shapes (64×64×28, 32×32×36 and 16×16×88, relu fused, scales
/// like its calibrated ones): TFLite's arithmetic (`tflite`) against 16-bit multipliers
/// (`int16`), and the 16-bit add with the second operand channel-padded as BlazeFace's are
/// (`int16-padded`: from 24, 32 and 80 channels).
fn add(c: &mut Criterion<ThreadCpu>) {
    let shapes = [(64, 64, 28, 24), (32, 32, 36, 32), (16, 16, 88, 80)];
    let mut group = c.benchmark_group("add_i8");
    group.sample_size(10);
    let (s1, z1, s2, z2, so, zo) = (0.071, -9, 0.043, 4, 0.082, -128);
    let tflite = AddQuant::new(s1, z1, s2, z2, so, zo, -128, 127);
    let int16 = Add16Quant::new(s1, z1, s2, z2, so, zo, -128, 127).expect("representable");
    for (h, w, ch, b_ch) in shapes {
        let n = h * w * ch;
        let (a, b) = (bytes(n, 5), bytes(n, 6));
        let pad = ChannelPadded {
            channels: ch,
            b_channels: b_ch,
            fill: z2 as i8,
        };
        let b_narrow = bytes(h * w * b_ch, 7);
        let mut out = vec![0i8; n];
        group.throughput(Throughput::Elements(n as u64));
        for t in tables() {
            let id = |kind: &str| BenchmarkId::new(t.tier().name(), format!("{h}x{w}x{ch}/{kind}"));
            group.bench_function(id("tflite"), |bch| {
                bch.iter(|| t.add_i8(&tflite, black_box(&a), black_box(&b), &mut out))
            });
            group.bench_function(id("int16"), |bch| {
                bch.iter(|| t.add16_i8(&int16, black_box(&a), black_box(&b), &mut out))
            });
            group.bench_function(id("int16-padded"), |bch| {
                bch.iter(|| {
                    t.add16_i8_padded(&int16, &pad, black_box(&a), black_box(&b_narrow), &mut out)
                })
            });
        }
    }
    group.finish();
}

fn config() -> Criterion<ThreadCpu> {
    Criterion::default().with_measurement(ThreadCpu)
}

criterion_group! {
    name = benches;
    config = config();
    targets = peak, pointwise, conv, depthwise3x3, depthwise5x5, add
}
criterion_main!(benches);
