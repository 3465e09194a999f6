//! Fixed windows of sample rows with a hop, filled one row at a time: the windowing every
//! sample source shares (MQTT readings, audio samples, CSV rows). Allocates only in
//! [`Windower::new`].

/// A ring of the last `frames` rows of `channels` values; says when a window is due.
///
/// Window `k` covers rows `[k·hop, k·hop + frames)` of everything pushed since the last
/// [`Windower::reset`]: the first is due once `frames` rows are in, then one every `hop` rows
/// (`hop < frames`: overlapping windows; `hop > frames`: rows between windows are skipped).
#[derive(Debug)]
pub struct Windower {
    ring: Box<[f32]>,
    frames: usize,
    channels: usize,
    hop: usize,
    /// Row of the ring the next push writes (the oldest row once full).
    head: usize,
    /// Rows still to push before the next window is due.
    due: usize,
}

impl Windower {
    /// Windows of `frames × channels` values every `hop` rows (each at least 1).
    pub fn new(frames: usize, channels: usize, hop: usize) -> Self {
        let (frames, channels, hop) = (frames.max(1), channels.max(1), hop.max(1));
        Windower {
            ring: vec![0.0; frames * channels].into_boxed_slice(),
            frames,
            channels,
            hop,
            head: 0,
            due: frames,
        }
    }

    /// Rows per window.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Values per row.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Rows between the starts of consecutive windows.
    pub fn hop(&self) -> usize {
        self.hop
    }

    /// Forget every row pushed: the next window starts with the next row (after a gap in the
    /// data, so that no window straddles it).
    pub fn reset(&mut self) {
        self.head = 0;
        self.due = self.frames;
    }

    /// Add one row (`row` holds exactly [`Windower::channels`] values; extra ones are ignored,
    /// missing ones read as 0). True when a window is due: take it with [`Windower::take`]
    /// before the next push.
    pub fn push(&mut self, row: &[f32]) -> bool {
        let c = self.channels;
        let dst = &mut self.ring[self.head * c..(self.head + 1) * c];
        let n = row.len().min(c);
        dst[..n].copy_from_slice(&row[..n]);
        dst[n..].fill(0.0);
        self.head = (self.head + 1) % self.frames;
        self.due -= 1;
        self.due == 0
    }

    /// Copy the window of the last [`Windower::frames`] rows, oldest first, into `out`
    /// (`frames × channels` values), and start counting towards the next one.
    pub fn take(&mut self, out: &mut [f32]) {
        let split = self.head * self.channels;
        let (newer, older) = self.ring.split_at(split);
        out[..older.len()].copy_from_slice(older);
        out[older.len()..older.len() + newer.len()].copy_from_slice(newer);
        self.due = self.hop;
    }
}

#[cfg(test)]
mod tests {
    use super::Windower;

    /// Rows `0, 1, 2, …` of one channel: windows are runs of consecutive numbers.
    fn windows(frames: usize, hop: usize, rows: usize) -> Vec<Vec<f32>> {
        let mut w = Windower::new(frames, 1, hop);
        let mut out = Vec::new();
        for r in 0..rows {
            if w.push(&[r as f32]) {
                let mut win = vec![0.0; frames];
                w.take(&mut win);
                out.push(win);
            }
        }
        out
    }

    #[test]
    fn disjoint_overlapping_and_skipping_windows() {
        assert_eq!(
            windows(3, 3, 10),
            vec![vec![0., 1., 2.], vec![3., 4., 5.], vec![6., 7., 8.]]
        );
        assert_eq!(
            windows(4, 2, 9),
            vec![
                vec![0., 1., 2., 3.],
                vec![2., 3., 4., 5.],
                vec![4., 5., 6., 7.]
            ]
        );
        assert_eq!(
            windows(2, 5, 13),
            vec![vec![0., 1.], vec![5., 6.], vec![10., 11.]]
        );
    }

    #[test]
    fn rows_keep_their_channels_and_reset_starts_over() {
        let mut w = Windower::new(2, 3, 2);
        assert!(!w.push(&[1., 2., 3.]));
        w.reset();
        assert!(!w.push(&[4., 5., 6.]));
        assert!(w.push(&[7., 8.]));
        let mut out = [9.0; 6];
        w.take(&mut out);
        assert_eq!(out, [4., 5., 6., 7., 8., 0.]);
    }
}
