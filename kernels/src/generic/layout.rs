//! Data movement: concat, pad, transpose (any element type; int8 operands must share one
//! scale and zero point, which the planner guarantees).

/// Concatenates inputs viewed as `[outer, inner_i]` into `[outer, Σ inner_i]`.
pub(crate) fn concat<T: Copy>(inputs: &[&[T]], outer: usize, out: &mut [T]) {
    let inner = |x: &[T]| x.len().checked_div(outer).unwrap_or(0);
    let total: usize = inputs.iter().map(|x| inner(x)).sum();
    for x in inputs {
        assert_eq!(
            x.len(),
            outer * inner(x),
            "concat: input length is not a multiple of outer"
        );
    }
    assert_eq!(out.len(), outer * total, "concat: output length");
    for o in 0..outer {
        let mut at = o * total;
        for x in inputs {
            let n = inner(x);
            out[at..at + n].copy_from_slice(&x[o * n..(o + 1) * n]);
            at += n;
        }
    }
}

/// The shape of `shape` padded by `pads`; panics unless `input` and `output` elements match
/// the two shapes.
pub(crate) fn padded_shape(
    input: usize,
    shape: [usize; 4],
    pads: [(usize, usize); 4],
    output: usize,
) -> [usize; 4] {
    let os: [usize; 4] = core::array::from_fn(|i| shape[i] + pads[i].0 + pads[i].1);
    assert_eq!(input, shape.iter().product::<usize>(), "pad: input length");
    assert_eq!(output, os.iter().product::<usize>(), "pad: output length");
    os
}

/// Pads a 4-D tensor `shape` by `pads[axis] = (before, after)` with `value`.
pub(crate) fn pad<T: Copy>(
    input: &[T],
    shape: [usize; 4],
    pads: [(usize, usize); 4],
    value: T,
    out: &mut [T],
) {
    let os = padded_shape(input.len(), shape, pads, out.len());
    out.fill(value);
    let row = shape[3];
    for n in 0..shape[0] {
        for h in 0..shape[1] {
            for w in 0..shape[2] {
                let src = ((n * shape[1] + h) * shape[2] + w) * row;
                let dst = (((n + pads[0].0) * os[1] + h + pads[1].0) * os[2] + w + pads[2].0)
                    * os[3]
                    + pads[3].0;
                out[dst..dst + row].copy_from_slice(&input[src..src + row]);
            }
        }
    }
}

/// Transposes a tensor of up to 4 dimensions: output axis `i` is input axis `perm[i]`.
pub(crate) fn transpose<T: Copy>(input: &[T], shape: &[usize], perm: &[usize], out: &mut [T]) {
    let rank = shape.len();
    assert!(
        rank <= 4 && perm.len() == rank,
        "transpose: rank must be <= 4 and match perm"
    );
    let mut seen = [false; 4];
    for &p in perm {
        assert!(
            p < rank && !seen[p],
            "transpose: {perm:?} is not a permutation"
        );
        seen[p] = true;
    }
    assert_eq!(
        input.len(),
        shape.iter().product::<usize>(),
        "transpose: input length"
    );
    assert_eq!(out.len(), input.len(), "transpose: output length");
    // Pad to 4-D with leading unit axes.
    let mut s = [1usize; 4];
    let mut pm = [0usize, 1, 2, 3];
    for i in 0..rank {
        s[4 - rank + i] = shape[i];
        pm[4 - rank + i] = perm[i] + 4 - rank;
    }
    let mut stride = [0usize; 4];
    let mut acc = 1;
    for i in (0..4).rev() {
        stride[i] = acc;
        acc *= s[i];
    }
    let os: [usize; 4] = core::array::from_fn(|i| s[pm[i]]);
    let is: [usize; 4] = core::array::from_fn(|i| stride[pm[i]]);
    let mut o = 0;
    for a in 0..os[0] {
        for b in 0..os[1] {
            for c in 0..os[2] {
                let base = a * is[0] + b * is[1] + c * is[2];
                let run = &mut out[o..o + os[3]];
                if is[3] == 1 {
                    // The innermost axis stays innermost (e.g. a depth-to-space interleave of
                    // pixels): whole runs of it move at once.
                    run.copy_from_slice(&input[base..base + os[3]]);
                } else {
                    for (d, v) in run.iter_mut().enumerate() {
                        *v = input[base + d * is[3]];
                    }
                }
                o += os[3];
            }
        }
    }
}

/// Copies a strided window of a tensor of up to 4 dimensions: output element `o` along axis
/// `i` is input element `begin[i] + o · stride[i]`; the output has shape `size`.
pub(crate) fn slice<T: Copy>(
    input: &[T],
    shape: &[usize],
    begin: &[usize],
    size: &[usize],
    stride: &[usize],
    out: &mut [T],
) {
    let rank = shape.len();
    assert!(
        rank <= 4 && begin.len() == rank && size.len() == rank && stride.len() == rank,
        "slice: rank must be <= 4 and match begin, size and stride"
    );
    assert_eq!(
        input.len(),
        shape.iter().product::<usize>(),
        "slice: input length"
    );
    assert_eq!(
        out.len(),
        size.iter().product::<usize>(),
        "slice: output length"
    );
    // Pad to 4-D with leading unit axes.
    let (mut s, mut b, mut n, mut st) = ([1usize; 4], [0usize; 4], [1usize; 4], [1usize; 4]);
    for i in 0..rank {
        let j = 4 - rank + i;
        (s[j], b[j], n[j], st[j]) = (shape[i], begin[i], size[i], stride[i]);
        assert!(
            n[j] == 0 || b[j] + (n[j] - 1) * st[j] < s[j],
            "slice: window exceeds axis {i}"
        );
    }
    let mut o = 0;
    for a in 0..n[0] {
        let ia = b[0] + a * st[0];
        for c in 0..n[1] {
            let ic = ia * s[1] + b[1] + c * st[1];
            for d in 0..n[2] {
                let row = (ic * s[2] + b[2] + d * st[2]) * s[3] + b[3];
                if st[3] == 1 {
                    out[o..o + n[3]].copy_from_slice(&input[row..row + n[3]]);
                    o += n[3];
                } else {
                    for e in 0..n[3] {
                        out[o] = input[row + e * st[3]];
                        o += 1;
                    }
                }
            }
        }
    }
}
