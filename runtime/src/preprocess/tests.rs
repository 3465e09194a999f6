//! Preprocessing against a plain `f64` reference, the `image` crate, and bad inputs.

use outpost_hal::DType;
use outpost_kernels::quantize_f32;
use outpost_models::graph::{QuantParams, TensorDecl};
use outpost_models::spec::{ColorOrder, InputSpec, Layout, ResizeKind};
use proptest::prelude::*;

use super::color::{GRAY_WEIGHTS, yuv_to_rgb};
use super::*;

fn spec(color: ColorOrder, resize: ResizeKind, mean: &[f32], std: &[f32]) -> InputSpec {
    InputSpec {
        tensor: "image".into(),
        layout: Layout::Nhwc,
        color,
        resize,
        mean: mean.to_vec(),
        std: std.to_vec(),
    }
}

fn decl(w: usize, h: usize, c: usize, quant: Option<QuantParams>) -> TensorDecl {
    TensorDecl {
        name: "image".into(),
        shape: vec![1, h, w, c],
        dtype: if quant.is_some() {
            DType::I8
        } else {
            DType::F32
        },
        quant,
    }
}

fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 24) as u8
        })
        .collect()
}

const FORMATS: [PixelFormat; 5] = [
    PixelFormat::Rgb8,
    PixelFormat::Bgr8,
    PixelFormat::Gray8,
    PixelFormat::Nv12,
    PixelFormat::I420,
];

/// An owned frame with `extra` bytes of row padding.
fn frame(w: u32, h: u32, format: PixelFormat, extra: usize, seed: u64) -> (usize, Vec<u8>) {
    let stride = format.min_stride(w) + extra;
    let probe = ImageView {
        width: w,
        height: h,
        stride,
        format,
        data: &[],
    };
    let need = probe.required_len().unwrap();
    (stride, bytes(need, seed))
}

/// Each pixel as `f64` RGB, read the obvious way.
fn ref_pixels(v: &ImageView<'_>) -> Vec<[f64; 3]> {
    let (w, h, s, d) = (v.width as usize, v.height as usize, v.stride, v.data);
    let mut out = Vec::with_capacity(w * h);
    for y in 0..h {
        for x in 0..w {
            let rgb = match v.format {
                PixelFormat::Rgb8 => [d[y * s + 3 * x], d[y * s + 3 * x + 1], d[y * s + 3 * x + 2]],
                PixelFormat::Bgr8 => [d[y * s + 3 * x + 2], d[y * s + 3 * x + 1], d[y * s + 3 * x]],
                PixelFormat::Gray8 => [d[y * s + x]; 3],
                PixelFormat::Nv12 => {
                    let uv = s * h + (y / 2) * s + 2 * (x / 2);
                    yuv_to_rgb(d[y * s + x], d[uv], d[uv + 1])
                }
                PixelFormat::I420 => {
                    let cs = s.div_ceil(2);
                    let u = s * h + (y / 2) * cs + x / 2;
                    let v = s * h + cs * h.div_ceil(2) + (y / 2) * cs + x / 2;
                    yuv_to_rgb(d[y * s + x], d[u], d[v])
                }
            };
            out.push(rgb.map(f64::from));
        }
    }
    out
}

/// The Python reference's geometry: `(new_w, new_h, pad_x, pad_y)`.
fn ref_geometry(kind: ResizeKind, sw: usize, sh: usize, w: usize, h: usize) -> [usize; 4] {
    match kind {
        ResizeKind::Stretch => [sw, sh, 0, 0],
        ResizeKind::Letterbox => {
            let s = (sw as f64 / w as f64).min(sh as f64 / h as f64);
            let nw = ((w as f64 * s + 0.5).floor() as usize).clamp(1, sw);
            let nh = ((h as f64 * s + 0.5).floor() as usize).clamp(1, sh);
            [nw, nh, (sw - nw) / 2, (sh - nh) / 2]
        }
    }
}

fn ref_taps(n_in: usize, n_out: usize, d: usize) -> (usize, usize, f64) {
    let scale = n_out as f64 / n_in as f64;
    let s = ((d as f64 + 0.5) / scale - 0.5).clamp(0.0, (n_in - 1) as f64);
    let i0 = s.floor() as usize;
    (i0, (i0 + 1).min(n_in - 1), s - i0 as f64)
}

/// A straightforward `f64` model of the whole preprocessing.
#[allow(clippy::too_many_arguments)]
fn reference(
    v: &ImageView<'_>,
    sw: usize,
    sh: usize,
    kind: ResizeKind,
    color: ColorOrder,
    mean: &[f32; 3],
    std: &[f32; 3],
) -> Vec<f64> {
    let (w, h) = (v.width as usize, v.height as usize);
    let px = ref_pixels(v);
    let chans: Vec<Vec<f64>> = match color {
        ColorOrder::Rgb => (0..3).map(|c| px.iter().map(|p| p[c]).collect()).collect(),
        ColorOrder::Bgr => (0..3)
            .rev()
            .map(|c| px.iter().map(|p| p[c]).collect())
            .collect(),
        _ => {
            let g = GRAY_WEIGHTS.map(f64::from);
            vec![
                px.iter()
                    .map(|p| g[0] * p[0] + g[1] * p[1] + g[2] * p[2])
                    .collect(),
            ]
        }
    };
    let [nw, nh, padx, pady] = ref_geometry(kind, sw, sh, w, h);
    let mut out = Vec::with_capacity(sw * sh * chans.len());
    for oy in 0..sh {
        for ox in 0..sw {
            for (c, ch) in chans.iter().enumerate() {
                let inside = (pady..pady + nh).contains(&oy) && (padx..padx + nw).contains(&ox);
                let val = if inside {
                    let (y0, y1, fy) = ref_taps(h, nh, oy - pady);
                    let (x0, x1, fx) = ref_taps(w, nw, ox - padx);
                    let top = (1.0 - fy) * ch[y0 * w + x0] + fy * ch[y1 * w + x0];
                    let bot = (1.0 - fy) * ch[y0 * w + x1] + fy * ch[y1 * w + x1];
                    (1.0 - fx) * top + fx * bot
                } else {
                    0.0
                };
                out.push((val - f64::from(mean[c])) / f64::from(std[c]));
            }
        }
    }
    out
}

fn colors() -> impl Strategy<Value = ColorOrder> {
    prop_oneof![
        Just(ColorOrder::Rgb),
        Just(ColorOrder::Bgr),
        Just(ColorOrder::Gray)
    ]
}

fn kinds() -> impl Strategy<Value = ResizeKind> {
    prop_oneof![Just(ResizeKind::Stretch), Just(ResizeKind::Letterbox)]
}

#[allow(clippy::too_many_arguments)]
fn check_against_reference(
    w: u32,
    h: u32,
    format: PixelFormat,
    extra: usize,
    seed: u64,
    sw: usize,
    sh: usize,
    kind: ResizeKind,
    color: ColorOrder,
    mean: [f32; 3],
    std: [f32; 3],
    q: QuantParams,
) -> std::result::Result<(), TestCaseError> {
    let c = if color == ColorOrder::Gray { 1 } else { 3 };
    let (stride, data) = frame(w, h, format, extra, seed);
    let img = ImageView::new(w, h, stride, format, &data).unwrap();
    let sp = spec(color, kind, &mean[..c], &std[..c]);
    let mut pf = Preprocessor::from_spec(&sp, &decl(sw, sh, c, None)).unwrap();
    let mut got = vec![f32::NAN; sw * sh * c];
    let lb = pf.run_f32(&img, &mut got).unwrap();
    let want = reference(&img, sw, sh, kind, color, &mean, &std);
    let [nw, nh, px, py] = ref_geometry(kind, sw, sh, w as usize, h as usize);
    prop_assert_eq!(
        [lb.resized_w, lb.resized_h],
        [nw as u32, nh as u32],
        "geometry"
    );
    prop_assert_eq!([lb.pad_x, lb.pad_y], [px as f32, py as f32]);
    for (i, (g, r)) in got.iter().zip(&want).enumerate() {
        prop_assert!(
            (f64::from(*g) - r).abs() <= 1e-4,
            "value {i}: got {g}, reference {r} ({w}×{h} {format:?} → {sw}×{sh} {kind:?} {color:?})"
        );
    }
    // The i8 path is exactly the quantization of the f32 one.
    let mut pq = Preprocessor::from_spec(&sp, &decl(sw, sh, c, Some(q))).unwrap();
    let mut qs = vec![0i8; got.len()];
    prop_assert_eq!(pq.run_i8(&img, &mut qs).unwrap(), lb);
    for (qv, g) in qs.iter().zip(&got) {
        prop_assert_eq!(*qv, quantize_f32(*g, q.scale, q.zero_point));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn matches_f64_reference(
        w in 1u32..40, h in 1u32..40, fi in 0usize..5, extra in 0usize..4, seed: u64,
        sw in 1usize..30, sh in 1usize..30, kind in kinds(), color in colors(),
        mean in prop::array::uniform3(0.0f32..255.0), std in prop::array::uniform3(1.0f32..128.0),
        scale in 0.001f32..0.1, zp in -128i32..128,
    ) {
        check_against_reference(
            w, h, FORMATS[fi], extra, seed, sw, sh, kind, color, mean, std,
            QuantParams { scale, zero_point: zp },
        )?;
    }

    #[test]
    fn upscale_matches_image_crate_triangle(
        w in 1u32..24, h in 1u32..24, fx in 1u32..5, fy in 1u32..5, dx in 0u32..7, dy in 0u32..7,
        seed: u64,
    ) {
        // Triangle is bilinear with half-pixel centres when upscaling; it rounds to u8.
        let (nw, nh) = (w * fx + dx, h * fy + dy);
        let data = bytes((w * h * 3) as usize, seed);
        let src = ::image::RgbImage::from_raw(w, h, data.clone()).unwrap();
        let theirs = ::image::imageops::resize(&src, nw, nh, ::image::imageops::FilterType::Triangle);
        let sp = spec(ColorOrder::Rgb, ResizeKind::Stretch, &[], &[]);
        let mut pf = Preprocessor::from_spec(&sp, &decl(nw as usize, nh as usize, 3, None)).unwrap();
        let mut got = vec![0.0f32; (nw * nh * 3) as usize];
        let img = ImageView::packed(w, h, PixelFormat::Rgb8, &data).unwrap();
        pf.run_f32(&img, &mut got).unwrap();
        for (i, (g, t)) in got.iter().zip(theirs.as_raw()).enumerate() {
            prop_assert!((g.round() - f32::from(*t)).abs() <= 1.0, "value {i}: {g} vs {t}");
        }
    }

    #[test]
    fn to_source_round_trips(
        w in 1u32..2000, h in 1u32..2000, sw in 1u32..512, sh in 1u32..512, kind in kinds(),
        x in 0.0f32..1.0, y in 0.0f32..1.0,
    ) {
        let lb = Letterbox::compute(kind, sw, sh, w, h);
        let (sx, sy) = (x * w as f32, y * h as f32);
        let (nx, ny) = lb.from_source(sx, sy);
        let (bx, by) = lb.to_source(nx, ny);
        let tol = 1e-3 * (w.max(h) as f32).max(1.0);
        prop_assert!((bx - sx).abs() <= tol && (by - sy).abs() <= tol, "{sx},{sy} → {bx},{by}");
        // The picture's corners map to the frame's corners (within the rounding of its size).
        let x0 = lb.pad_x / sw as f32;
        let x1 = (lb.pad_x + lb.resized_w as f32) / sw as f32;
        let y0 = lb.pad_y / sh as f32;
        let y1 = (lb.pad_y + lb.resized_h as f32) / sh as f32;
        let b = lb.box_to_source([x0, y0, x1, y1]);
        prop_assert!(b[0].abs() < 1e-3 && b[1].abs() < 1e-3);
        prop_assert!((b[2] - w as f32).abs() <= 0.5 / lb.scale_x + 1e-3 * w as f32);
        prop_assert!((b[3] - h as f32).abs() <= 0.5 / lb.scale_y + 1e-3 * h as f32);
        // Clamped to the frame.
        let c = lb.box_to_source([-1.0, -1.0, 2.0, 2.0]);
        prop_assert_eq!(c, [0.0, 0.0, w as f32, h as f32]);
    }

    #[test]
    fn arbitrary_views_never_panic(
        w in 0u32..70, h in 0u32..70, stride in 0usize..250, len in 0usize..20_000, fi in 0usize..5,
        seed: u64,
    ) {
        let data = bytes(len, seed);
        let view = ImageView { width: w, height: h, stride, format: FORMATS[fi], data: &data };
        let sp = spec(ColorOrder::Rgb, ResizeKind::Letterbox, &[127.5], &[127.5]);
        let q = QuantParams { scale: 1.0 / 128.0, zero_point: 0 };
        let mut pf = Preprocessor::from_spec(&sp, &decl(16, 12, 3, Some(q))).unwrap();
        let mut out = vec![0i8; 16 * 12 * 3];
        prop_assert_eq!(pf.run_i8(&view, &mut out).is_ok(), view.validate().is_ok());
    }
}

#[test]
fn larger_frames_match_reference() {
    let q = QuantParams {
        scale: 1.0 / 128.0,
        zero_point: 0,
    };
    let cases = [
        (
            640,
            480,
            PixelFormat::Nv12,
            128,
            128,
            ResizeKind::Letterbox,
            ColorOrder::Rgb,
        ),
        (
            512,
            512,
            PixelFormat::Rgb8,
            128,
            128,
            ResizeKind::Letterbox,
            ColorOrder::Rgb,
        ),
        (
            451,
            300,
            PixelFormat::Rgb8,
            128,
            128,
            ResizeKind::Letterbox,
            ColorOrder::Rgb,
        ),
        (
            37,
            53,
            PixelFormat::Bgr8,
            192,
            192,
            ResizeKind::Letterbox,
            ColorOrder::Bgr,
        ),
        (
            300,
            451,
            PixelFormat::I420,
            96,
            64,
            ResizeKind::Stretch,
            ColorOrder::Gray,
        ),
        (
            101,
            77,
            PixelFormat::Gray8,
            224,
            160,
            ResizeKind::Stretch,
            ColorOrder::Rgb,
        ),
    ];
    for (i, (w, h, f, sw, sh, kind, color)) in cases.into_iter().enumerate() {
        check_against_reference(
            w, h, f, 7, i as u64, sw, sh, kind, color, [127.5; 3], [127.5; 3], q,
        )
        .unwrap();
    }
}

#[test]
fn letterbox_geometry_matches_python_reference() {
    // astronaut 512×512, chelsea 451×300 into 128; a half-way tie rounds up.
    let lb = Letterbox::compute(ResizeKind::Letterbox, 128, 128, 512, 512);
    assert_eq!(
        (lb.scale, lb.resized_w, lb.resized_h, lb.pad_x, lb.pad_y),
        (0.25, 128, 128, 0.0, 0.0)
    );
    let lb = Letterbox::compute(ResizeKind::Letterbox, 128, 128, 451, 300);
    assert_eq!(
        (lb.resized_w, lb.resized_h, lb.pad_x, lb.pad_y),
        (128, 85, 0.0, 21.0)
    );
    let lb = Letterbox::compute(ResizeKind::Letterbox, 128, 128, 256, 5);
    assert_eq!((lb.resized_w, lb.resized_h, lb.pad_y), (128, 3, 62.0));
    // A sliver still gets one row.
    let lb = Letterbox::compute(ResizeKind::Letterbox, 128, 128, 10_000, 1);
    assert_eq!((lb.resized_w, lb.resized_h), (128, 1));
    let lb = Letterbox::compute(ResizeKind::Stretch, 128, 96, 640, 480);
    assert_eq!((lb.scale_x, lb.scale_y, lb.pad_x), (0.2, 0.2, 0.0));
    assert_eq!(lb.to_source(0.5, 0.5), (320.0, 240.0));
}

#[test]
fn padding_is_normalised_black() {
    let sp = spec(ColorOrder::Rgb, ResizeKind::Letterbox, &[127.5], &[127.5]);
    let mut pf = Preprocessor::from_spec(&sp, &decl(8, 8, 3, None)).unwrap();
    let data = [255u8; 4 * 2 * 3];
    let img = ImageView::packed(4, 2, PixelFormat::Rgb8, &data).unwrap();
    let mut out = vec![0.0f32; 8 * 8 * 3];
    let lb = pf.run_f32(&img, &mut out).unwrap();
    assert_eq!((lb.resized_w, lb.resized_h, lb.pad_y), (8, 4, 2.0));
    for (i, v) in out.iter().enumerate() {
        let row = i / (8 * 3);
        let want = if (2..6).contains(&row) { 1.0 } else { -1.0 };
        assert_eq!(*v, want, "value {i}");
    }
}

#[test]
fn yuv_conversion_follows_the_formula() {
    let f = |y: f64, u: f64, v: f64| {
        let c = (y - 16.0) * 255.0 / 219.0;
        let (d, e) = (u - 128.0, v - 128.0);
        let k = 255.0 / 224.0;
        [
            c + 1.402 * k * e,
            c - 0.344136 * k * d - 0.714136 * k * e,
            c + 1.772 * k * d,
        ]
    };
    for y in 0..=255u8 {
        for u in 0..=255u8 {
            for v in 0..=255u8 {
                let got = yuv_to_rgb(y, u, v);
                let want = f(y.into(), u.into(), v.into());
                for c in 0..3 {
                    let w = want[c].clamp(0.0, 255.0);
                    let exact = (w + 0.5).floor();
                    let near_tie = (w - w.floor() - 0.5).abs() < 1e-3;
                    let g = f64::from(got[c]);
                    assert!(
                        g == exact || (near_tie && (g - w).abs() <= 0.5 + 1e-3),
                        "yuv {y},{u},{v} ch {c}: {g} vs {w}"
                    );
                }
            }
        }
    }
    assert_eq!(yuv_to_rgb(16, 128, 128), [0, 0, 0]);
    assert_eq!(yuv_to_rgb(235, 128, 128), [255, 255, 255]);
    assert_eq!(yuv_to_rgb(126, 128, 128), [128, 128, 128]);
    // BT.601 "red" (81, 90, 240) is 8-bit-rounded and lands one short of 255.
    assert_eq!(yuv_to_rgb(81, 90, 240), [254, 0, 0]);
}

#[test]
fn yuv_frames_equal_their_rgb_conversion() {
    let sp = spec(ColorOrder::Rgb, ResizeKind::Letterbox, &[127.5], &[127.5]);
    let mut pf = Preprocessor::from_spec(&sp, &decl(32, 24, 3, None)).unwrap();
    for format in [PixelFormat::Nv12, PixelFormat::I420] {
        for (w, h) in [(17, 9), (64, 48), (1, 1), (2, 3)] {
            let (stride, data) = frame(w, h, format, 3, u64::from(w * h));
            let yuv = ImageView::new(w, h, stride, format, &data).unwrap();
            let rgb: Vec<u8> = ref_pixels(&yuv)
                .iter()
                .flat_map(|p| p.map(|v| v as u8))
                .collect();
            let mut a = vec![0.0f32; 32 * 24 * 3];
            let mut b = a.clone();
            pf.run_f32(&yuv, &mut a).unwrap();
            pf.run_f32(
                &ImageView::packed(w, h, PixelFormat::Rgb8, &rgb).unwrap(),
                &mut b,
            )
            .unwrap();
            assert_eq!(a, b, "{format:?} {w}×{h}");
        }
    }
}

#[test]
fn fast_quantize_equals_kernels_quantize() {
    // Every 997th f32 bit pattern of |x| < 1e6 (ties, near-ties and the ±0.5 neighbours included),
    // NaN and, with zero point 0, the infinities.
    let q = |scale, zero_point| QuantParams { scale, zero_point };
    let mut xs: Vec<f32> = (0..u32::MAX / 997)
        .map(|i| f32::from_bits(i * 997))
        .filter(|x| x.abs() < 1e6)
        .collect();
    for k in -300..300 {
        let t = k as f32 + 0.5;
        xs.extend([t, t.next_down(), t.next_up(), k as f32]);
    }
    xs.push(f32::NAN);
    let mut out = vec![0i8; xs.len()];
    for p in [
        q(1.0, 0),
        q(1.0 / 128.0, -3),
        q(0.0235, 127),
        q(3.0, -128),
        q(1e-6, 5),
    ] {
        super::quantize_row(&xs, p, &mut out);
        for (x, o) in xs.iter().zip(&out) {
            assert_eq!(*o, quantize_f32(*x, p.scale, p.zero_point), "{x} {p:?}");
        }
    }
    let inf = [f32::INFINITY, f32::NEG_INFINITY, 3e38, -3e38];
    let mut o = [0i8; 4];
    super::quantize_row(&inf, q(0.001, 0), &mut o);
    assert_eq!(o, [127, -128, 127, -128]);
}

#[test]
fn bad_images_are_errors() {
    let d = [0u8; 300];
    let e = |w, h, s, f, n| ImageView::new(w, h, s, f, &d[..n]).unwrap_err();
    assert!(matches!(
        e(0, 4, 12, PixelFormat::Rgb8, 300),
        PreprocessError::ZeroSize { .. }
    ));
    assert!(matches!(
        e(4, 0, 12, PixelFormat::Rgb8, 300),
        PreprocessError::ZeroSize { .. }
    ));
    assert_eq!(
        e(4, 4, 11, PixelFormat::Rgb8, 300),
        PreprocessError::StrideTooSmall {
            stride: 11,
            min: 12
        }
    );
    assert_eq!(
        e(5, 2, 5, PixelFormat::Nv12, 300),
        PreprocessError::StrideTooSmall { stride: 5, min: 6 }
    );
    // The last row need not be padded; one byte less is too short.
    assert!(ImageView::new(4, 4, 16, PixelFormat::Rgb8, &d[..16 * 3 + 12]).is_ok());
    assert_eq!(
        e(4, 4, 16, PixelFormat::Rgb8, 16 * 3 + 11),
        PreprocessError::BufferTooSmall { len: 59, need: 60 }
    );
    // NV12 4×4: 16 Y + 2 rows of 4 UV; I420 5×3, stride 5: 15 Y + 2×3 U + 2×3 V.
    assert!(ImageView::new(4, 4, 4, PixelFormat::Nv12, &d[..24]).is_ok());
    assert!(matches!(
        e(4, 4, 4, PixelFormat::Nv12, 23),
        PreprocessError::BufferTooSmall { .. }
    ));
    assert!(ImageView::new(5, 3, 5, PixelFormat::I420, &d[..27]).is_ok());
    assert!(matches!(
        e(5, 3, 5, PixelFormat::I420, 26),
        PreprocessError::BufferTooSmall { .. }
    ));
    let huge = ImageView {
        width: u32::MAX,
        height: u32::MAX,
        stride: usize::MAX,
        format: PixelFormat::I420,
        data: &d,
    };
    assert!(matches!(
        huge.validate(),
        Err(PreprocessError::TooLarge { .. })
    ));
}

#[test]
fn bad_outputs_and_specs_are_errors() {
    let q = QuantParams {
        scale: 0.5,
        zero_point: 0,
    };
    let sp = spec(ColorOrder::Rgb, ResizeKind::Stretch, &[], &[]);
    let d = [0u8; 12];
    let img = ImageView::packed(2, 2, PixelFormat::Rgb8, &d).unwrap();
    let mut pf = Preprocessor::from_spec(&sp, &decl(4, 4, 3, Some(q))).unwrap();
    assert_eq!(
        pf.run_i8(&img, &mut [0; 47]).unwrap_err(),
        PreprocessError::OutputLength { len: 47, want: 48 }
    );
    assert!(matches!(
        pf.run_f32(&img, &mut [0.0; 48]).unwrap_err(),
        PreprocessError::WrongDtype { .. }
    ));
    let unsupported = |s: &InputSpec, t: &TensorDecl| {
        let e = Preprocessor::from_spec(s, t).unwrap_err();
        assert_eq!(e.kind(), outpost_hal::ErrorKind::Unsupported, "{e}");
    };
    unsupported(&sp, &decl(4, 4, 1, None));
    unsupported(
        &spec(ColorOrder::Gray, ResizeKind::Stretch, &[], &[]),
        &decl(4, 4, 3, None),
    );
    unsupported(
        &spec(ColorOrder::None, ResizeKind::Stretch, &[], &[]),
        &decl(4, 4, 3, None),
    );
    unsupported(
        &spec(ColorOrder::Rgb, ResizeKind::Stretch, &[1.0, 2.0], &[]),
        &decl(4, 4, 3, None),
    );
    unsupported(
        &spec(ColorOrder::Rgb, ResizeKind::Stretch, &[], &[0.0]),
        &decl(4, 4, 3, None),
    );
    let mut nc = sp.clone();
    nc.layout = Layout::Nc;
    unsupported(&nc, &decl(4, 4, 3, None));
    let mut no_q = decl(4, 4, 3, None);
    no_q.dtype = DType::I8;
    unsupported(&sp, &no_q);
    let mut u8_in = decl(4, 4, 3, Some(q));
    u8_in.dtype = DType::U8;
    unsupported(&sp, &u8_in);
    let mut batch = decl(4, 4, 3, None);
    batch.shape[0] = 2;
    unsupported(&sp, &batch);
}

#[test]
fn from_a_model_into_a_session() {
    use crate::{Session, SessionOptions};
    use outpost_models::Model;
    use outpost_models::zoo::{MobileNetV2, synth_mobilenet_v2};
    let cfg = MobileNetV2 {
        width: 0.35,
        size: 64,
        ..Default::default()
    };
    let model = Model::from_bytes(synth_mobilenet_v2(&cfg).unwrap().build().unwrap()).unwrap();
    let mut pf = Preprocessor::new(&model, 0).unwrap();
    assert_eq!(
        (pf.input_size(), pf.channels(), pf.dtype()),
        ((64, 64), 3, DType::I8)
    );
    assert_eq!(
        Preprocessor::new(&model, 1).unwrap_err(),
        PreprocessError::NoInput { index: 1, count: 1 }
    );
    let mut s = Session::new(&model, SessionOptions::default()).unwrap();
    let data = bytes(100 * 80 * 3, 5);
    let img = ImageView::packed(100, 80, PixelFormat::Rgb8, &data).unwrap();
    pf.run_i8(&img, s.input_i8(0).unwrap()).unwrap();
    s.run();
    assert_eq!(s.output_i8(0).unwrap().len(), 1000);
}

mod decode_files {
    use super::super::decode::{DecodeError, decode_rgb, load_rgb};
    use std::path::PathBuf;

    /// A scratch directory removed when the test ends.
    fn scratch() -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("outpost-preprocess-")
            .tempdir()
            .unwrap()
    }

    #[test]
    fn png_and_jpeg_load_as_rgb() {
        let dir = scratch();
        let tmp = |name: &str| -> PathBuf { dir.path().join(name) };
        let data = super::bytes(13 * 7 * 3, 9);
        let img = ::image::RgbImage::from_raw(13, 7, data.clone()).unwrap();
        let p = tmp("a.png");
        img.save(&p).unwrap();
        let got = load_rgb(&p).unwrap();
        assert_eq!((got.width, got.height, &got.data), (13, 7, &data));
        // RGBA drops alpha; gray is replicated.
        let rgba = ::image::RgbaImage::from_pixel(3, 2, ::image::Rgba([10, 20, 30, 40]));
        let p = tmp("rgba.png");
        rgba.save(&p).unwrap();
        assert_eq!(load_rgb(&p).unwrap().data, [10, 20, 30].repeat(6));
        let gray = ::image::GrayImage::from_pixel(2, 2, ::image::Luma([77]));
        let p = tmp("gray.png");
        gray.save(&p).unwrap();
        assert_eq!(load_rgb(&p).unwrap().data, vec![77; 12]);
        // JPEG, content-sniffed whatever the name says.
        let flat = ::image::RgbImage::from_pixel(16, 8, ::image::Rgb([200, 100, 50]));
        let p = tmp("flat.png.jpg");
        flat.save(&p).unwrap();
        let q = tmp("flat-named.png");
        std::fs::copy(&p, &q).unwrap();
        let got = load_rgb(&q).unwrap();
        assert_eq!((got.width, got.height), (16, 8));
        for (g, w) in got.data.iter().zip([200u8, 100, 50].iter().cycle()) {
            assert!(g.abs_diff(*w) <= 3, "{g} vs {w}");
        }
        assert!(got.view().validate().is_ok());
    }

    #[test]
    fn bad_files_are_typed_errors() {
        let dir = scratch();
        let tmp = |name: &str| -> PathBuf { dir.path().join(name) };
        assert!(matches!(
            load_rgb(&tmp("missing.png")).unwrap_err(),
            DecodeError::NotFound { .. }
        ));
        let p = tmp("text.png");
        std::fs::write(&p, b"hello, not an image").unwrap();
        let e = load_rgb(&p).unwrap_err();
        assert!(matches!(e, DecodeError::Unsupported { .. }), "{e:?}");
        // A GIF header: recognised, but not built in.
        assert!(matches!(
            decode_rgb(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;").unwrap_err(),
            DecodeError::Unsupported { .. }
        ));
        // A truncated PNG.
        let mut png = Vec::new();
        ::image::RgbImage::from_pixel(40, 40, ::image::Rgb([1, 2, 3]))
            .write_to(
                &mut std::io::Cursor::new(&mut png),
                ::image::ImageFormat::Png,
            )
            .unwrap();
        let e = decode_rgb(&png[..png.len() / 2]).unwrap_err();
        assert!(matches!(e, DecodeError::Corrupt { .. }), "{e:?}");
        // Garbage after a valid JPEG signature.
        let mut jpg = vec![0xFF, 0xD8, 0xFF, 0xE0];
        jpg.extend(super::bytes(200, 3));
        let e = decode_rgb(&jpg).unwrap_err();
        assert!(matches!(e, DecodeError::Corrupt { .. }), "{e:?}");
        assert_eq!(e.kind(), outpost_hal::ErrorKind::InvalidInput);
        // A directory.
        assert!(load_rgb(&std::env::temp_dir()).is_err());
    }
}

/// `cargo test --release -p outpost-runtime --lib preprocess::tests::timing -- --ignored --nocapture`
#[test]
#[ignore = "timing; run in release"]
fn timing_512_to_128_letterbox() {
    let q = QuantParams {
        scale: 1.0 / 128.0,
        zero_point: 0,
    };
    let sp = spec(ColorOrder::Rgb, ResizeKind::Letterbox, &[127.5], &[127.5]);
    let data = bytes(512 * 512 * 3, 1);
    let img = ImageView::packed(512, 512, PixelFormat::Rgb8, &data).unwrap();
    let yuv = bytes(640 * 480 * 3 / 2, 2);
    let nv12 = ImageView::packed(640, 480, PixelFormat::Nv12, &yuv).unwrap();
    for (what, img) in [("512x512 rgb", img), ("640x480 nv12", nv12)] {
        for (dt, quant) in [("f32", None), ("i8", Some(q))] {
            let mut pf = Preprocessor::from_spec(&sp, &decl(128, 128, 3, quant)).unwrap();
            let mut f = vec![0.0f32; 128 * 128 * 3];
            let mut i = vec![0i8; 128 * 128 * 3];
            let n = 2000;
            let mut best = f64::MAX;
            let t0 = std::time::Instant::now();
            for _ in 0..n {
                let t = std::time::Instant::now();
                match quant {
                    None => pf.run_f32(&img, &mut f).unwrap(),
                    Some(_) => pf.run_i8(&img, &mut i).unwrap(),
                };
                best = best.min(t.elapsed().as_secs_f64());
            }
            let mean = t0.elapsed().as_secs_f64() / f64::from(n);
            println!(
                "{what} → 128x128 letterbox {dt}: mean {:.1} µs, min {:.1} µs",
                mean * 1e6,
                best * 1e6
            );
        }
    }
}
