//! Quick single-shape timing without criterion (for iterating on kernels):
//! `cargo run --release -p outpost-kernels --example kbench [tier [filter]]` (`KBENCH_F32=1`:
//! with the `f32` requantization; filter `f32`: the f32 shapes alone); `kbench peak` (the
//! `vpdpbusd` and `vpmaddwd` int8 peaks) and `kbench broadcast` are probes of the CPU.

use outpost_kernels::{
    Activation, Conv2dParams, DepthwiseParams, KernelTable, Lines, PackedConv, PackedConvF32,
    PackedDepthwise, PackedDepthwiseF32, Tier,
};
use std::time::Instant;

use outpost_kernels::pseudo_random_i8 as bytes;

#[repr(C)]
struct Timespec {
    sec: i64,
    nsec: i64,
}

unsafe extern "C" {
    fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
}

/// This thread's CPU time in seconds (`CLOCK_THREAD_CPUTIME_ID`): the machine is shared, so
/// wall-clock time would count the time other processes hold the core.
fn thread_cpu() -> f64 {
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; clock 3 is CLOCK_THREAD_CPUTIME_ID on Linux.
    let rc = unsafe { clock_gettime(3, &mut ts) };
    assert_eq!(rc, 0);
    ts.sec as f64 + ts.nsec as f64 * 1e-9
}

/// Best-of-N GOPS of `f` doing `macs` multiply-accumulates.
fn gops(macs: u64, mut f: impl FnMut()) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..30 {
        let (t, c) = (Instant::now(), thread_cpu());
        for _ in 0..5 {
            f();
        }
        let secs = if std::env::var_os("KBENCH_WALL").is_some() {
            t.elapsed().as_secs_f64()
        } else {
            thread_cpu() - c
        };
        best = best.min(secs / 5.0);
    }
    2.0 * macs as f64 / best / 1e9
}

/// `kbench broadcast`: f32 multiply-adds per second with an explicit `vbroadcastss zmm, m32`
/// per input value against the broadcast in the multiply's memory operand (`{1to16}`), 8
/// values × 2 weight registers a step, all in L1 (why the AVX-512 f32 convolution uses the
/// second form).
#[cfg(target_arch = "x86_64")]
mod broadcast {
    use core::arch::x86_64::*;

    /// `steps` steps; returns a sum so that nothing is optimized away.
    #[target_feature(enable = "avx512f")]
    pub fn run(steps: usize, x: &[f32; 4096], embedded: bool) -> f32 {
        let w = [_mm512_set1_ps(1.0001), _mm512_set1_ps(0.9999)];
        let mut acc = [_mm512_setzero_ps(); 16];
        for i in 0..steps {
            let j = (i * 8) & 4095;
            for q in 0..8 {
                let p: *const f32 = &x[(j + q * 3) & 4095];
                let (m0, m1): (__m512, __m512);
                if embedded {
                    // SAFETY: reads the one f32 at `p` (a reference); no other memory or flags.
                    unsafe {
                        core::arch::asm!(
                            "vmulps {m0}, {w0}, dword ptr [{p}]{{1to16}}",
                            "vmulps {m1}, {w1}, dword ptr [{p}]{{1to16}}",
                            m0 = out(zmm_reg) m0, m1 = lateout(zmm_reg) m1,
                            w0 = in(zmm_reg) w[0], w1 = in(zmm_reg) w[1], p = in(reg) p,
                            options(pure, readonly, nostack, preserves_flags),
                        )
                    }
                } else {
                    // SAFETY: `p` comes from a reference.
                    let v = _mm512_set1_ps(unsafe { *p });
                    (m0, m1) = (_mm512_mul_ps(v, w[0]), _mm512_mul_ps(v, w[1]));
                }
                acc[2 * q] = _mm512_add_ps(acc[2 * q], m0);
                acc[2 * q + 1] = _mm512_add_ps(acc[2 * q + 1], m1);
            }
        }
        let sum = acc
            .iter()
            .fold(_mm512_setzero_ps(), |s, &a| _mm512_add_ps(s, a));
        _mm512_reduce_add_ps(sum)
    }
}

/// A peak probe: runs its work and returns the int8 operations done (`None`: not supported).
type Probe = fn(usize) -> Option<u64>;

fn main() {
    #[cfg(target_arch = "x86_64")]
    if std::env::args().nth(1).as_deref() == Some("broadcast") {
        assert!(is_x86_feature_detected!("avx512f"), "needs AVX-512");
        let x = [0.5f32; 4096];
        let steps = 20_000_000;
        for embedded in [false, true, false, true] {
            let c = thread_cpu();
            // SAFETY: AVX-512 F is present (asserted).
            let r = unsafe { broadcast::run(steps, &x, embedded) };
            let secs = thread_cpu() - c;
            let form = if embedded {
                "embedded {1to16}"
            } else {
                "vbroadcastss"
            };
            let rate = (steps * 8 * 2 * 16) as f64 / secs / 1e9;
            println!("{form}: {rate:.1} G f32 multiply-adds/s ({r})");
        }
        return;
    }
    if std::env::args().nth(1).as_deref() == Some("peak") {
        let iters = 10_000_000;
        let probes: [(&str, Probe); 2] = [
            ("vpdpbusd zmm", outpost_kernels::probe_int8_peak),
            (
                "vpmaddwd ymm (avx2 tier)",
                outpost_kernels::probe_avx2_int8_peak,
            ),
        ];
        for (name, probe) in probes {
            let (mut best, mut ops) = (f64::MAX, None);
            for _ in 0..5 {
                let c = thread_cpu();
                ops = probe(iters);
                best = best.min(thread_cpu() - c);
            }
            match ops {
                Some(ops) => println!("{name} peak: {:.0} GOPS", ops as f64 / best / 1e9),
                None => println!("{name} peak: not supported by this CPU"),
            }
        }
        return;
    }
    let tier = std::env::args()
        .nth(1)
        .map_or(Tier::best(), |s| Tier::parse(&s).unwrap());
    let t = KernelTable::for_tier(tier).unwrap();
    let only = std::env::args().nth(2).unwrap_or_default();
    // `KBENCH_F32=1`: the f32 requantization instead of TFLite's fixed point form.
    let f32_requant = std::env::var_os("KBENCH_F32").is_some();
    for (h, w, ic, oc) in [
        (112, 112, 32, 16),
        (112, 112, 16, 96),
        (56, 56, 24, 144),
        (28, 28, 32, 192),
        (14, 14, 96, 576),
        (7, 7, 320, 1280),
        (56, 56, 144, 24),
        (28, 28, 192, 32),
        (14, 14, 576, 96),
        (7, 7, 960, 160),
        (1, 1, 1280, 1000),
        (32, 32, 32, 36),
        (32, 32, 28, 32),
        (64, 64, 24, 24),
        (16, 16, 48, 56),
    ] {
        if !format!("pw{h}x{w}x{ic}").contains(&only) {
            continue;
        }
        let mut p = Conv2dParams::simple(h, w, ic, oc, 1, 1);
        p.requant_f32 = f32_requant;
        let packed = PackedConv::new(
            tier,
            &p,
            &bytes(p.weight_len(), 1),
            None,
            0.05,
            &[0.002],
            0.1,
        );
        let input = Lines::copy_of(&bytes(p.input_len(), 2));
        let mut out = Lines::zeroed(p.output_len());
        let mut scratch = Lines::zeroed(packed.scratch_bytes());
        let g = gops(p.macs(), || {
            t.conv2d_i8(
                &packed,
                input.view(p.input_len()),
                out.view_mut(p.output_len()),
                scratch.bytes_mut(),
            )
        });
        println!("{tier} pointwise {h}x{w}x{ic}->{oc}: {g:.1} GOPS");
    }
    for (size, ic, oc, k) in [(224, 3, 32, 3), (128, 3, 24, 5)] {
        if !format!("conv{size}k{k}").contains(&only) {
            continue;
        }
        let mut p = Conv2dParams::simple(size, size, ic, oc, k, k);
        (p.stride_h, p.stride_w) = (2, 2);
        (p.out_h, p.out_w) = (size / 2, size / 2);
        let pad = ((size / 2 - 1) * 2 + k).saturating_sub(size) / 2;
        (p.pad_top, p.pad_left) = (pad, pad);
        p.requant_f32 = f32_requant;
        let packed = PackedConv::new(
            tier,
            &p,
            &bytes(p.weight_len(), 5),
            None,
            0.05,
            &[0.002],
            0.1,
        );
        let input = Lines::copy_of(&bytes(p.input_len(), 6));
        let mut out = Lines::zeroed(p.output_len());
        let mut scratch = Lines::zeroed(packed.scratch_bytes());
        let g = gops(p.macs(), || {
            t.conv2d_i8(
                &packed,
                input.view(p.input_len()),
                out.view_mut(p.output_len()),
                scratch.bytes_mut(),
            )
        });
        println!("{tier} conv {size}x{size}x{ic}->{oc} k{k}s2: {g:.1} GOPS");
    }
    for (h, w, c, s, k) in [
        (112, 112, 32, 1, 3),
        (112, 112, 96, 2, 3),
        (64, 64, 24, 1, 3),
        (56, 56, 144, 1, 3),
        (56, 56, 144, 2, 3),
        (14, 14, 576, 1, 3),
        // 5×5 layers (the second depthwise fast path).
        (64, 64, 24, 1, 5),
        (64, 64, 24, 2, 5),
        (32, 32, 36, 1, 5),
        (16, 16, 64, 1, 5),
        (32, 32, 32, 1, 3),
        (32, 32, 36, 1, 3),
        (32, 32, 42, 2, 3),
        (96, 96, 8, 1, 3),
        (48, 48, 12, 1, 3),
    ] {
        if !format!("dw{h}x{w}x{c}k{k}").contains(&only) {
            continue;
        }
        let mut p = DepthwiseParams::same(h, w, c, k, s);
        p.requant_f32 = f32_requant;
        let packed = PackedDepthwise::new(
            tier,
            &p,
            &bytes(p.weight_len(), 3),
            None,
            0.05,
            &[0.002],
            0.1,
        );
        let input = Lines::copy_of(&bytes(p.input_len(), 4));
        let mut out = Lines::zeroed(p.output_len());
        let mut scratch = Lines::zeroed(packed.scratch_bytes());
        let g = gops(p.macs(), || {
            t.depthwise_i8(
                &packed,
                input.view(p.input_len()),
                out.view_mut(p.output_len()),
                scratch.bytes_mut(),
            )
        });
        println!("{tier} depthwise{k}x{k} {h}x{w}x{c}s{s}: {g:.1} GOPS");
    }
    f32_shapes(&t, tier, &only);
}

/// Pseudo-random floats in [-1, 1).
fn floats(n: usize, seed: u32) -> Vec<f32> {
    bytes(n, seed).iter().map(|&b| b as f32 / 128.0).collect()
}

/// BlazeFace's f32 shapes (`f32` in the filter picks them alone).
fn f32_shapes(t: &KernelTable, tier: Tier, only: &str) {
    for (size, ic, oc, k, s) in [
        (128, 3, 24, 5, 2),
        (64, 24, 24, 1, 1),
        (64, 24, 28, 1, 1),
        (32, 32, 32, 1, 1),
        (16, 48, 64, 1, 1),
        (8, 96, 96, 1, 1),
    ] {
        if !format!("f32conv{size}x{ic}k{k}").contains(only) {
            continue;
        }
        let mut p = Conv2dParams::simple(size, size, ic, oc, k, k);
        (p.stride_h, p.stride_w) = (s, s);
        (p.out_h, p.out_w) = (size / s, size / s);
        let pad = ((size / s - 1) * s + k).saturating_sub(size) / 2;
        (p.pad_top, p.pad_left) = (pad, pad);
        let packed = PackedConvF32::new(&p, &floats(p.weight_len(), 7), None, Activation::Relu);
        let input = Lines::copy_of(&floats(p.input_len(), 8));
        let mut out = Lines::zeroed(4 * p.output_len());
        let g = gops(p.macs(), || {
            t.conv2d_f32(
                &packed,
                input.view(p.input_len()),
                out.view_mut(p.output_len()),
            )
        });
        println!("{tier} f32 conv {size}x{size}x{ic}->{oc} k{k}s{s}: {g:.1} GOPS");
    }
    for (size, c, k, s) in [
        (64, 24, 3, 1),
        (64, 28, 3, 1),
        (64, 32, 3, 2),
        (16, 64, 3, 1),
        // CenterFace at 512×512 (activations far larger than L2).
        (256, 32, 3, 1),
        (256, 96, 3, 2),
        (128, 144, 3, 1),
    ] {
        if !format!("f32dw{size}x{c}k{k}").contains(only) {
            continue;
        }
        let p = DepthwiseParams::same(size, size, c, k, s);
        let packed =
            PackedDepthwiseF32::new(&p, &floats(p.weight_len(), 9), None, Activation::None);
        let input = Lines::copy_of(&floats(p.input_len(), 10));
        let mut out = Lines::zeroed(4 * p.output_len());
        let g = gops(p.macs(), || {
            t.depthwise_f32(
                &packed,
                input.view(p.input_len()),
                out.view_mut(p.output_len()),
            )
        });
        println!("{tier} f32 depthwise {size}x{size}x{c} k{k}s{s}: {g:.1} GOPS");
    }
}
