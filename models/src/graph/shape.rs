//! Shape inference and multiply-accumulate counts per op.
//!
//! Each function takes the shapes of a node's inputs (`None` for an absent optional input) and
//! returns the output shape, or a sentence saying what is inconsistent.

use super::op::{Op, Padding};

/// Most dimensions a tensor may have.
pub const MAX_RANK: usize = 8;
/// Largest single dimension.
pub const MAX_DIM: usize = 1 << 31;

type Shapes<'a> = [Option<&'a [usize]>];

fn input<'a>(ins: &Shapes<'a>, i: usize, what: &str) -> Result<&'a [usize], String> {
    ins.get(i)
        .copied()
        .flatten()
        .ok_or_else(|| format!("missing input {i} ({what})"))
}

fn rank(shape: &[usize], r: usize, what: &str) -> Result<(), String> {
    if shape.len() == r {
        Ok(())
    } else {
        Err(format!("{what} must have rank {r}, has shape {shape:?}"))
    }
}

fn expect_count(ins: &Shapes<'_>, min: usize, max: usize) -> Result<(), String> {
    if ins.len() < min || ins.len() > max {
        Err(format!("takes {min}..={max} inputs, has {}", ins.len()))
    } else {
        Ok(())
    }
}

/// Output size of one spatial axis, and the padding before it.
pub fn conv_out(
    input: usize,
    k: usize,
    stride: usize,
    dilation: usize,
    padding: Padding,
    axis: usize,
) -> Result<(usize, usize), String> {
    if stride == 0 || dilation == 0 || k == 0 {
        return Err("stride, dilation and kernel must be ≥ 1".into());
    }
    let eff = (k - 1)
        .checked_mul(dilation)
        .and_then(|v| v.checked_add(1))
        .ok_or("kernel extent overflows")?;
    match padding {
        Padding::Same => {
            let out = input.div_ceil(stride);
            let needed = ((out.max(1) - 1) * stride + eff).saturating_sub(input);
            Ok((out, needed / 2))
        }
        Padding::Valid => {
            if input < eff {
                return Err(format!(
                    "kernel extent {eff} exceeds input size {input} with valid padding"
                ));
            }
            Ok(((input - eff) / stride + 1, 0))
        }
        Padding::Explicit(p) => {
            let (before, after) = if axis == 0 {
                (p[0], p[2])
            } else {
                (p[1], p[3])
            };
            let padded = input + before as usize + after as usize;
            if padded < eff {
                return Err(format!(
                    "kernel extent {eff} exceeds padded input size {padded}"
                ));
            }
            Ok(((padded - eff) / stride + 1, before as usize))
        }
    }
}

fn spatial(
    x: &[usize],
    k: [usize; 2],
    stride: [u32; 2],
    dilation: [u32; 2],
    padding: Padding,
) -> Result<[usize; 2], String> {
    let (oh, _) = conv_out(
        x[1],
        k[0],
        stride[0] as usize,
        dilation[0] as usize,
        padding,
        0,
    )?;
    let (ow, _) = conv_out(
        x[2],
        k[1],
        stride[1] as usize,
        dilation[1] as usize,
        padding,
        1,
    )?;
    Ok([oh, ow])
}

fn bias(ins: &Shapes<'_>, i: usize, channels: usize) -> Result<(), String> {
    match ins.get(i).copied().flatten() {
        None => Ok(()),
        Some(b) if b == [channels] => Ok(()),
        Some(b) => Err(format!("bias must have shape [{channels}], has {b:?}")),
    }
}

/// Numpy-style broadcast of two shapes.
pub fn broadcast(a: &[usize], b: &[usize]) -> Result<Vec<usize>, String> {
    let r = a.len().max(b.len());
    let mut out = vec![0; r];
    for i in 0..r {
        let da = if i + a.len() >= r {
            a[i + a.len() - r]
        } else {
            1
        };
        let db = if i + b.len() >= r {
            b[i + b.len() - r]
        } else {
            1
        };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return Err(format!("shapes {a:?} and {b:?} do not broadcast"));
        };
    }
    Ok(out)
}

fn norm_axis(axis: i32, rank: usize) -> Result<usize, String> {
    let r = rank as i64;
    let a = axis as i64;
    let a = if a < 0 { a + r } else { a };
    if (0..r).contains(&a) {
        Ok(a as usize)
    } else {
        Err(format!("axis {axis} out of range for rank {rank}"))
    }
}

/// Infer the output shape of `op` from its input shapes.
pub fn infer(op: &Op, ins: &Shapes<'_>) -> Result<Vec<usize>, String> {
    match op {
        Op::Conv2d(a) => {
            expect_count(ins, 2, 3)?;
            let x = input(ins, 0, "input")?;
            let w = input(ins, 1, "weight")?;
            rank(x, 4, "input")?;
            rank(w, 4, "weight [O,KH,KW,C/groups]")?;
            let g = a.groups as usize;
            if g == 0 || x[3] % g != 0 || w[0] % g != 0 {
                return Err(format!(
                    "groups {g} must divide input channels {} and output channels {}",
                    x[3], w[0]
                ));
            }
            if w[3] != x[3] / g {
                return Err(format!(
                    "weight has {} input channels per group, input has {} / {g}",
                    w[3], x[3]
                ));
            }
            bias(ins, 2, w[0])?;
            let [oh, ow] = spatial(x, [w[1], w[2]], a.stride, a.dilation, a.padding)?;
            Ok(vec![x[0], oh, ow, w[0]])
        }
        Op::DepthwiseConv2d(a) => {
            expect_count(ins, 2, 3)?;
            let x = input(ins, 0, "input")?;
            let w = input(ins, 1, "weight")?;
            rank(x, 4, "input")?;
            rank(w, 4, "weight [1,KH,KW,C·multiplier]")?;
            let m = a.depth_multiplier as usize;
            if m == 0 {
                return Err("attribute depth_multiplier must be ≥ 1".into());
            }
            let oc = x[3].checked_mul(m).ok_or("channel count overflows")?;
            if w[0] != 1 || w[3] != oc {
                return Err(format!("weight must have shape [1,KH,KW,{oc}], has {w:?}"));
            }
            bias(ins, 2, oc)?;
            let [oh, ow] = spatial(x, [w[1], w[2]], a.stride, a.dilation, a.padding)?;
            Ok(vec![x[0], oh, ow, oc])
        }
        Op::FullyConnected(_) => {
            expect_count(ins, 2, 3)?;
            let x = input(ins, 0, "input")?;
            let w = input(ins, 1, "weight")?;
            rank(w, 2, "weight [O,I]")?;
            match x.last() {
                Some(&i) if i == w[1] => {}
                _ => {
                    return Err(format!(
                        "input {x:?} must end in the weight's input size {}",
                        w[1]
                    ));
                }
            }
            bias(ins, 2, w[0])?;
            let mut out = x.to_vec();
            *out.last_mut().expect("non-empty") = w[0];
            Ok(out)
        }
        Op::Add(_) | Op::Mul(_) => {
            expect_count(ins, 2, 2)?;
            broadcast(input(ins, 0, "a")?, input(ins, 1, "b")?)
        }
        Op::Concat(a) => {
            if ins.is_empty() {
                return Err("takes at least one input".into());
            }
            let first = input(ins, 0, "first")?;
            let axis = norm_axis(a.axis, first.len())?;
            let mut out = first.to_vec();
            for i in 1..ins.len() {
                let s = input(ins, i, "input")?;
                if s.len() != first.len()
                    || s.iter()
                        .enumerate()
                        .any(|(d, &v)| d != axis && v != first[d])
                {
                    return Err(format!(
                        "input {i} shape {s:?} does not match {first:?} outside axis {axis}"
                    ));
                }
                out[axis] = out[axis]
                    .checked_add(s[axis])
                    .ok_or("concat size overflows")?;
            }
            Ok(out)
        }
        Op::Pad(a) => {
            expect_count(ins, 1, 1)?;
            let x = input(ins, 0, "input")?;
            if a.pads.len() != x.len() {
                return Err(format!(
                    "attribute pads has {} pairs for rank {}",
                    a.pads.len(),
                    x.len()
                ));
            }
            Ok(x.iter()
                .zip(&a.pads)
                .map(|(&d, p)| d + p[0] as usize + p[1] as usize)
                .collect())
        }
        Op::MaxPool2d(a) | Op::AvgPool2d(a) => {
            expect_count(ins, 1, 1)?;
            let x = input(ins, 0, "input")?;
            rank(x, 4, "input")?;
            let k = [a.kernel[0] as usize, a.kernel[1] as usize];
            let [oh, ow] = spatial(x, k, a.stride(), [1, 1], a.padding)?;
            Ok(vec![x[0], oh, ow, x[3]])
        }
        Op::Mean(a) => {
            expect_count(ins, 1, 1)?;
            let x = input(ins, 0, "input")?;
            let mut axes = Vec::with_capacity(a.axes.len());
            for &ax in &a.axes {
                let n = norm_axis(ax, x.len())?;
                if axes.contains(&n) {
                    return Err(format!("axis {ax} repeated in axes"));
                }
                axes.push(n);
            }
            if axes.is_empty() {
                return Err("attribute axes must name at least one axis".into());
            }
            Ok(x.iter()
                .enumerate()
                .filter_map(|(d, &v)| match (axes.contains(&d), a.keep_dims) {
                    (false, _) => Some(v),
                    (true, true) => Some(1),
                    (true, false) => None,
                })
                .collect())
        }
        Op::Resize(a) => {
            expect_count(ins, 1, 1)?;
            let x = input(ins, 0, "input")?;
            rank(x, 4, "input")?;
            if a.size[0] == 0 || a.size[1] == 0 {
                return Err("attribute size must be ≥ 1".into());
            }
            if a.align_corners && a.half_pixel_centers {
                return Err(
                    "attributes align_corners and half_pixel_centers exclude each other".into(),
                );
            }
            Ok(vec![x[0], a.size[0] as usize, a.size[1] as usize, x[3]])
        }
        Op::Reshape(a) => {
            expect_count(ins, 1, 1)?;
            let x = input(ins, 0, "input")?;
            let total: usize = x.iter().product();
            let mut known = 1usize;
            let mut hole = None;
            for (i, &d) in a.shape.iter().enumerate() {
                match d {
                    -1 if hole.is_none() => hole = Some(i),
                    d if d >= 0 => {
                        known = known
                            .checked_mul(d as usize)
                            .ok_or("reshape size overflows")?
                    }
                    _ => return Err(format!("attribute shape {:?} is invalid", a.shape)),
                }
            }
            let mut out: Vec<usize> = a.shape.iter().map(|&d| d.max(0) as usize).collect();
            if let Some(h) = hole {
                if known == 0 || !total.is_multiple_of(known) {
                    return Err(format!("cannot reshape {x:?} into {:?}", a.shape));
                }
                out[h] = total / known;
            } else if known != total {
                return Err(format!(
                    "cannot reshape {x:?} ({total} elements) into {:?}",
                    a.shape
                ));
            }
            Ok(out)
        }
        Op::Transpose(a) => {
            expect_count(ins, 1, 1)?;
            let x = input(ins, 0, "input")?;
            let mut seen = vec![false; x.len()];
            if a.perm.len() != x.len() {
                return Err(format!(
                    "attribute perm {:?} is not a permutation of rank {}",
                    a.perm,
                    x.len()
                ));
            }
            for &p in &a.perm {
                match seen.get_mut(p as usize) {
                    Some(s) if !*s => *s = true,
                    _ => return Err(format!("attribute perm {:?} is not a permutation", a.perm)),
                }
            }
            Ok(a.perm.iter().map(|&p| x[p as usize]).collect())
        }
        Op::Slice(a) => {
            expect_count(ins, 1, 1)?;
            let x = input(ins, 0, "input")?;
            if a.begin.len() != x.len() || a.size.len() != x.len() {
                return Err(format!(
                    "attributes begin {:?} and size {:?} must have rank {}",
                    a.begin,
                    a.size,
                    x.len()
                ));
            }
            for (axis, &dim) in x.iter().enumerate() {
                let (b, n, s) = (
                    a.begin[axis] as usize,
                    a.size[axis] as usize,
                    a.stride_of(axis),
                );
                if s == 0 || n == 0 || b + (n - 1) * s >= dim {
                    return Err(format!(
                        "slice begin {b}, size {n}, stride {s} exceeds axis {axis} of {x:?}"
                    ));
                }
            }
            Ok(a.size.iter().map(|&d| d as usize).collect())
        }
        Op::Softmax(a) => {
            expect_count(ins, 1, 1)?;
            if !(a.beta.is_finite() && a.beta > 0.0) {
                return Err(format!(
                    "attribute beta must be finite and > 0, is {}",
                    a.beta
                ));
            }
            Ok(input(ins, 0, "input")?.to_vec())
        }
        Op::Relu
        | Op::Relu6
        | Op::HardSwish
        | Op::Logistic
        | Op::Tanh
        | Op::Quantize
        | Op::Dequantize => {
            expect_count(ins, 1, 1)?;
            Ok(input(ins, 0, "input")?.to_vec())
        }
    }
}

/// Multiply-accumulates (or element operations for ops without products) of one run.
pub fn macs(op: &Op, ins: &Shapes<'_>, out: &[usize]) -> u64 {
    let n_out: u64 = out.iter().map(|&d| d as u64).product();
    let dim = |i: usize, d: usize| {
        ins.get(i)
            .copied()
            .flatten()
            .and_then(|s| s.get(d).copied())
            .unwrap_or(0) as u64
    };
    let n_in: u64 = ins
        .first()
        .copied()
        .flatten()
        .map(|s| s.iter().map(|&d| d as u64).product())
        .unwrap_or(0);
    match op {
        Op::Conv2d(_) => n_out * dim(1, 1) * dim(1, 2) * dim(1, 3),
        Op::DepthwiseConv2d(_) => n_out * dim(1, 1) * dim(1, 2),
        Op::FullyConnected(_) => n_out * dim(1, 1),
        Op::MaxPool2d(a) | Op::AvgPool2d(a) => n_out * a.kernel[0] as u64 * a.kernel[1] as u64,
        Op::Mean(_) | Op::Softmax(_) => n_in,
        Op::Add(_) | Op::Mul(_) => n_out,
        Op::Resize(r) if r.mode == super::op::ResizeMode::Bilinear => n_out * 4,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::op::*;

    fn conv(stride: u32, padding: Padding) -> Op {
        Op::Conv2d(ConvAttrs {
            stride: [stride, stride],
            dilation: [1, 1],
            padding,
            groups: 1,
            activation: Activation::None,
            requantization: Default::default(),
        })
    }

    #[test]
    fn conv_shapes_follow_tflite() {
        let x = [1, 224, 224, 3];
        let w = [32, 3, 3, 3];
        assert_eq!(
            infer(&conv(2, Padding::Same), &[Some(&x), Some(&w), None]).unwrap(),
            vec![1, 112, 112, 32]
        );
        assert_eq!(
            infer(&conv(2, Padding::Valid), &[Some(&x), Some(&w)]).unwrap(),
            vec![1, 111, 111, 32]
        );
        assert_eq!(
            infer(
                &conv(2, Padding::Explicit([0, 0, 1, 1])),
                &[Some(&x), Some(&w)]
            )
            .unwrap(),
            vec![1, 112, 112, 32]
        );
        let out = infer(&conv(1, Padding::Same), &[Some(&x), Some(&w)]).unwrap();
        assert_eq!(
            macs(&conv(1, Padding::Same), &[Some(&x), Some(&w)], &out),
            224 * 224 * 32 * 27
        );
        assert!(infer(&conv(1, Padding::Same), &[Some(&x), Some(&[32, 3, 3, 4])]).is_err());
        assert!(infer(&conv(0, Padding::Same), &[Some(&x), Some(&w)]).is_err());
    }

    #[test]
    fn reshape_transpose_mean_broadcast() {
        let r = Op::Reshape(ReshapeAttrs { shape: vec![1, -1] });
        assert_eq!(infer(&r, &[Some(&[1, 7, 7, 2])]).unwrap(), vec![1, 98]);
        let t = Op::Transpose(TransposeAttrs {
            perm: vec![0, 3, 1, 2],
        });
        assert_eq!(infer(&t, &[Some(&[1, 2, 3, 4])]).unwrap(), vec![1, 4, 2, 3]);
        let bad = Op::Transpose(TransposeAttrs {
            perm: vec![0, 0, 1, 2],
        });
        assert!(infer(&bad, &[Some(&[1, 2, 3, 4])]).is_err());
        let m = Op::Mean(MeanAttrs {
            axes: vec![1, 2],
            keep_dims: false,
        });
        assert_eq!(infer(&m, &[Some(&[1, 7, 7, 1280])]).unwrap(), vec![1, 1280]);
        assert_eq!(broadcast(&[1, 4, 4, 8], &[8]).unwrap(), vec![1, 4, 4, 8]);
        assert!(broadcast(&[1, 4, 4, 8], &[3]).is_err());
    }
}
