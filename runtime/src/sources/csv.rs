//! CSV replay (IMU logs and other sensor recordings) as a sample source.
//!
//! The file has a header line naming its columns, then one row of comma-separated values per
//! reading (blank lines and lines starting with `#` are skipped; header names may be quoted).
//! [`CsvSource`] takes the columns it is given by name, in that order, as the channels of each
//! reading; they must hold numbers in every row (other columns may hold anything without commas
//! in quotes). Readings are windowed like every sample source ([`Windower`]: `window` rows every
//! `hop`).
//!
//! Pacing: as fast as taken, at a fixed `rate` (rows per second), or by a timestamp column (in
//! seconds; each window is due when its last row's time, relative to the first row's, has
//! passed). Looping replays the file again and again, the windows running on across the wrap;
//! a looped timeline continues after the last row by the mean row interval.
//!
//! The whole file is parsed when opened; delivering a window allocates nothing.

use std::path::Path;
use std::time::{Duration, Instant};

use super::window::Windower;
use crate::pipeline::{FrameBuf, FrameMeta, Name, Source, SourceError, name};

/// How rows are paced.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Pace {
    /// As fast as the pipeline takes them.
    #[default]
    Unpaced,
    /// This many rows per second.
    Rate(f64),
    /// By this column's values, in seconds.
    Timestamps(String),
}

/// Rows of a CSV file as windows of samples. See the [module documentation](self).
#[derive(Debug)]
pub struct CsvSource {
    /// Row-major `rows × channels`.
    values: Vec<f32>,
    /// Seconds of each row from the first, when paced.
    times: Option<Vec<f64>>,
    /// Seconds from the first row of one pass to the first row of the next (paced).
    cycle: f64,
    rows: usize,
    windower: Windower,
    looping: bool,
    label: Name,
    /// Next row to push (across loops: `next % rows` is the row).
    next: u64,
    seq: u64,
    start: Option<Instant>,
}

fn bad(path: &Path, line: usize, msg: impl std::fmt::Display) -> SourceError {
    SourceError::Other(format!("{}:{line}: {msg}", path.display()))
}

fn unquote(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

impl CsvSource {
    /// Parse `path`, taking `columns` as the channels; windows of `window` rows every `hop`.
    pub fn open(
        path: &Path,
        columns: &[String],
        window: usize,
        hop: usize,
        pace: Pace,
    ) -> Result<Self, SourceError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SourceError::Other(format!("{}: {e}", path.display())))?;
        Self::parse(&text, path, columns, window, hop, pace)
    }

    /// Parse CSV text (`path` names it in errors).
    pub fn parse(
        text: &str,
        path: &Path,
        columns: &[String],
        window: usize,
        hop: usize,
        pace: Pace,
    ) -> Result<Self, SourceError> {
        if columns.is_empty() {
            return Err(bad(path, 0, "give at least one column"));
        }
        if window == 0 || hop == 0 {
            return Err(bad(path, 0, "window and hop must be at least 1 row"));
        }
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
        let (hline, header) = lines.next().ok_or_else(|| bad(path, 1, "no header line"))?;
        let names: Vec<&str> = header.split(',').map(unquote).collect();
        let find = |c: &str| {
            names.iter().position(|n| *n == c).ok_or_else(|| {
                bad(
                    path,
                    hline,
                    format!("no column `{c}` (the header has: {})", names.join(", ")),
                )
            })
        };
        let picks = columns
            .iter()
            .map(|c| find(c))
            .collect::<Result<Vec<_>, _>>()?;
        let time_col = match &pace {
            Pace::Timestamps(c) => Some(find(c)?),
            Pace::Rate(r) if !(r.is_finite() && *r > 0.0) => {
                return Err(bad(path, 0, format!("rate {r}: give a positive number")));
            }
            _ => None,
        };
        let mut values = Vec::new();
        let mut stamps = Vec::new();
        let mut fields: Vec<&str> = Vec::with_capacity(names.len());
        for (ln, line) in lines {
            fields.clear();
            fields.extend(line.split(','));
            let num = |col: usize| -> Result<f64, SourceError> {
                let f = fields.get(col).map(|f| unquote(f)).unwrap_or("");
                f.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| {
                        bad(
                            path,
                            ln,
                            format!("column `{}`: {f:?} is not a number", names[col]),
                        )
                    })
            };
            for &c in &picks {
                values.push(num(c)? as f32);
            }
            if let Some(t) = time_col {
                stamps.push(num(t)?);
            }
        }
        let rows = values.len() / columns.len();
        if rows == 0 {
            return Err(SourceError::Empty);
        }
        let (times, cycle) = match pace {
            Pace::Unpaced => (None, 0.0),
            Pace::Rate(r) => (
                Some((0..rows).map(|i| i as f64 / r).collect::<Vec<_>>()),
                rows as f64 / r,
            ),
            Pace::Timestamps(_) => {
                let t0 = stamps[0];
                let times: Vec<f64> = stamps.iter().map(|t| t - t0).collect();
                if let Some(i) = times.windows(2).position(|w| w[1] < w[0]) {
                    return Err(bad(path, 0, format!("timestamps go back at row {}", i + 2)));
                }
                let span = times[rows - 1];
                let gap = if rows > 1 {
                    span / (rows - 1) as f64
                } else {
                    0.0
                };
                (Some(times), span + gap)
            }
        };
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("csv");
        Ok(CsvSource {
            values,
            times,
            cycle,
            rows,
            windower: Windower::new(window, columns.len(), hop),
            looping: false,
            label: name(stem),
            next: 0,
            seq: 0,
            start: None,
        })
    }

    /// Replay again and again instead of ending.
    pub fn looping(mut self, looping: bool) -> Self {
        self.looping = looping;
        self
    }

    /// Readings (rows) in the file.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Seconds from the first row of the replay to global row `g` (across loops).
    fn time_of(&self, g: u64) -> Option<f64> {
        let times = self.times.as_ref()?;
        let pass = g / self.rows as u64;
        Some(pass as f64 * self.cycle + times[(g % self.rows as u64) as usize])
    }
}

impl Source for CsvSource {
    fn next_frame(&mut self, slot: &mut FrameBuf) -> Result<Option<FrameMeta>, SourceError> {
        let c = self.windower.channels();
        loop {
            if !self.looping && self.next >= self.rows as u64 {
                return Ok(None);
            }
            let r = (self.next % self.rows as u64) as usize;
            self.next += 1;
            if self.windower.push(&self.values[r * c..(r + 1) * c]) {
                self.start.get_or_insert_with(Instant::now);
                let w = &mut self.windower;
                w.take(slot.prepare_samples(w.frames(), c)?);
                let meta = FrameMeta {
                    seq: self.seq,
                    name: self.label.clone(),
                    index: self.seq as u32,
                };
                self.seq += 1;
                return Ok(Some(meta));
            }
        }
    }

    fn frame_capacity(&self) -> usize {
        self.windower.frames() * self.windower.channels() * 4
    }

    fn sample_window(&self) -> Option<(usize, usize)> {
        Some((self.windower.frames(), self.windower.channels()))
    }

    /// The next window is due when its last row's time (from the first window's) has passed.
    fn ready_at(&mut self) -> Option<Instant> {
        let start = self.start?;
        let first_last = self.windower.frames() as u64 - 1;
        let last = first_last + self.seq * self.windower.hop() as u64;
        let dt = self.time_of(last)? - self.time_of(first_last)?;
        start.checked_add(Duration::from_secs_f64(dt.max(0.0)))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{CsvSource, Pace};
    use crate::pipeline::{FrameBuf, Source};

    const IMU: &str = "\
# a tiny fixture: time in seconds, two accelerometer axes
\"t\",ax,ay,label
0.00,1,10,a
0.01,2,20,b

0.02,3,30,c
0.03,4,40,d
";

    fn cols(c: &[&str]) -> Vec<String> {
        c.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn columns_by_name_in_windows() {
        let p = Path::new("imu.csv");
        let mut s = CsvSource::parse(IMU, p, &cols(&["ay", "ax"]), 2, 1, Pace::Unpaced).unwrap();
        assert_eq!(s.rows(), 4);
        assert_eq!(s.sample_window(), Some((2, 2)));
        let mut b = FrameBuf::new(s.frame_capacity());
        let mut got = Vec::new();
        while let Some(m) = s.next_frame(&mut b).unwrap() {
            assert_eq!(m.name.as_str(), "imu");
            got.push(b.samples().to_vec());
        }
        assert_eq!(
            got,
            vec![
                vec![10., 1., 20., 2.],
                vec![20., 2., 30., 3.],
                vec![30., 3., 40., 4.]
            ]
        );
    }

    #[test]
    fn errors_name_the_line_and_column() {
        let p = Path::new("imu.csv");
        let e = CsvSource::parse(IMU, p, &cols(&["gx"]), 2, 2, Pace::Unpaced).unwrap_err();
        assert!(e.to_string().contains("imu.csv:2: no column `gx`"), "{e}");
        let e = CsvSource::parse(IMU, p, &cols(&["label"]), 2, 2, Pace::Unpaced).unwrap_err();
        assert!(e.to_string().contains("imu.csv:3: column `label`"), "{e}");
        let back = "t,x\n0.5,1\n0.2,2\n";
        let e = CsvSource::parse(back, p, &cols(&["x"]), 1, 1, Pace::Timestamps("t".into()))
            .unwrap_err();
        assert!(e.to_string().contains("go back"), "{e}");
    }

    #[test]
    fn timestamps_pace_the_windows() {
        let p = Path::new("imu.csv");
        let mut s = CsvSource::parse(IMU, p, &cols(&["ax"]), 2, 2, Pace::Timestamps("t".into()))
            .unwrap()
            .looping(true);
        let mut b = FrameBuf::new(s.frame_capacity());
        assert_eq!(s.ready_at(), None);
        s.next_frame(&mut b).unwrap().unwrap();
        let t0 = s.start.unwrap();
        // Window 1 ends at row 3 (t = 0.03), window 0 at row 1 (t = 0.01).
        let due = s.ready_at().unwrap() - t0;
        assert!((due.as_secs_f64() - 0.02).abs() < 1e-9, "{due:?}");
        s.next_frame(&mut b).unwrap().unwrap();
        // Window 2 ends at row 5 = row 1 of the second pass: 0.04 + 0.01.
        let due = s.ready_at().unwrap() - t0;
        assert!((due.as_secs_f64() - 0.04).abs() < 1e-9, "{due:?}");
        assert_eq!(s.next_frame(&mut b).unwrap().unwrap().seq, 2);
        assert_eq!(b.samples(), &[1., 2.]);
    }
}
