//! Arena planning: place every activation buffer at an offset in one arena so that buffers
//! alive at the same time never overlap.
//!
//! **Algorithm** (greedy by size, as in TFLite's arena planner): each buffer has a lifetime
//! `[first, last]` in step indices (a graph input is born at step 0, a graph output lives to the
//! end). Buffers are placed largest first; each goes to the lowest aligned offset that does not
//! overlap any already placed buffer whose lifetime intersects its own. This is not optimal
//! (the problem is NP-hard) but is within a few percent of the lower bound on the networks we
//! run. **Lower bound**: the largest total size of buffers alive at any one step — no placement
//! can use less. [`ArenaPlan::ratio`] reports arena / lower bound; `outpost inspect` prints it.

/// One buffer to place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    /// Bytes.
    pub size: usize,
    /// First step at which it is written (or read, for graph inputs).
    pub first: usize,
    /// Last step at which it is read.
    pub last: usize,
}

/// The result of planning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArenaPlan {
    /// Offset of each buffer, in input order.
    pub offsets: Vec<usize>,
    /// Arena size in bytes.
    pub size: usize,
    /// The peak of simultaneously live bytes.
    pub lower_bound: usize,
}

impl ArenaPlan {
    /// Arena size over the lower bound (1.0 is optimal).
    pub fn ratio(&self) -> f64 {
        if self.lower_bound == 0 {
            1.0
        } else {
            self.size as f64 / self.lower_bound as f64
        }
    }
}

fn align_up(v: usize, align: usize) -> usize {
    v.div_ceil(align) * align
}

/// Place `buffers` with every offset a multiple of `align`.
pub fn plan(buffers: &[Interval], align: usize) -> ArenaPlan {
    let steps = buffers.iter().map(|b| b.last + 1).max().unwrap_or(0);
    let mut live = vec![0usize; steps];
    for b in buffers {
        for s in &mut live[b.first..=b.last] {
            *s += align_up(b.size, align);
        }
    }
    let lower_bound = live.iter().copied().max().unwrap_or(0);

    let mut order: Vec<usize> = (0..buffers.len()).collect();
    order.sort_by(|&a, &b| {
        buffers[b]
            .size
            .cmp(&buffers[a].size)
            .then(buffers[a].first.cmp(&buffers[b].first))
    });
    let mut offsets = vec![0usize; buffers.len()];
    let mut placed: Vec<usize> = Vec::with_capacity(buffers.len());
    let mut size = 0;
    for &i in &order {
        let b = buffers[i];
        // Occupied ranges of placed buffers whose lifetimes intersect b's, sorted by offset.
        let mut busy: Vec<(usize, usize)> = placed
            .iter()
            .filter(|&&j| buffers[j].first <= b.last && b.first <= buffers[j].last)
            .map(|&j| (offsets[j], offsets[j] + buffers[j].size))
            .collect();
        busy.sort_unstable();
        let mut candidate = 0;
        for (start, end) in busy {
            if candidate + b.size <= start {
                break;
            }
            candidate = candidate.max(align_up(end, align));
        }
        offsets[i] = candidate;
        size = size.max(candidate + b.size);
        placed.push(i);
    }
    ArenaPlan {
        offsets,
        size: align_up(size, align),
        lower_bound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn chain_reuses_memory() {
        // a → b → c → d, each read only by the next: two buffers suffice.
        let bufs: Vec<Interval> = (0..4)
            .map(|i| Interval {
                size: 100,
                first: i,
                last: i + 1,
            })
            .collect();
        let p = plan(&bufs, 64);
        assert_eq!(p.lower_bound, 256);
        assert_eq!(p.size, 256);
        assert_eq!(p.ratio(), 1.0);
    }

    proptest! {
        #[test]
        fn live_buffers_never_overlap(raw in prop::collection::vec((1usize..5000, 0usize..20, 0usize..6), 1..40)) {
            let bufs: Vec<Interval> = raw.iter().map(|&(size, first, len)| Interval { size, first, last: first + len }).collect();
            let p = plan(&bufs, 64);
            prop_assert!(p.size >= p.lower_bound);
            for (i, a) in bufs.iter().enumerate() {
                prop_assert_eq!(p.offsets[i] % 64, 0);
                prop_assert!(p.offsets[i] + a.size <= p.size);
                for (j, b) in bufs.iter().enumerate().skip(i + 1) {
                    let alive_together = a.first <= b.last && b.first <= a.last;
                    let disjoint = p.offsets[i] + a.size <= p.offsets[j] || p.offsets[j] + b.size <= p.offsets[i];
                    prop_assert!(!alive_together || disjoint, "buffers {} and {} overlap", i, j);
                }
            }
        }
    }
}
