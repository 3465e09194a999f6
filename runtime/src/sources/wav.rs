//! Audio from a WAV file or standard input, in fixed windows.
//!
//! [`WavSource`] reads integer PCM (8 to 32 bits; 16-bit is what microphones and the tests
//! give) with `hound`, one channel out: stereo and wider are mixed down (the mean of the
//! channels) or one channel is chosen ([`Mix`]). Samples become f32 in [-1, 1) (a 16-bit `s`
//! becomes `s / 32768`). Windows hold `window` samples and start every `hop` samples
//! ([`Windower`]); a partial window at the end of the stream is not delivered.
//!
//! A file can be replayed in real time (a window is due when its last sample would have been
//! captured, at the file's sample rate) and looped (the windows run on across the wrap, as from
//! a microphone). Standard input is read as it comes (it blocks). Once open, delivering a window
//! allocates nothing.

use std::fs::File;
use std::io::{BufReader, Stdin};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hound::{SampleFormat, WavReader};

use super::window::Windower;
use crate::pipeline::{FrameBuf, FrameMeta, Name, Source, SourceError, name};

/// How several channels become one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mix {
    /// The mean of all channels.
    #[default]
    Mean,
    /// Only this channel (from 0).
    Channel(u16),
}

enum Reader {
    File(WavReader<BufReader<File>>),
    Stdin(WavReader<Stdin>),
}

impl Reader {
    fn spec(&self) -> hound::WavSpec {
        match self {
            Reader::File(r) => r.spec(),
            Reader::Stdin(r) => r.spec(),
        }
    }

    fn next(&mut self) -> Option<Result<i32, hound::Error>> {
        match self {
            Reader::File(r) => r.samples::<i32>().next(),
            Reader::Stdin(r) => r.samples::<i32>().next(),
        }
    }
}

/// WAV audio as windows of mono f32 samples. See the [module documentation](self).
pub struct WavSource {
    reader: Reader,
    path: Option<PathBuf>,
    channels: u16,
    mix: Mix,
    /// `1 / 2^(bits - 1)`.
    scale: f32,
    rate: u32,
    windower: Windower,
    realtime: bool,
    looping: bool,
    label: Name,
    seq: u64,
    /// Samples (per channel) read since the start, across loops.
    position: u64,
    start: Option<Instant>,
}

impl std::fmt::Debug for WavSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavSource")
            .field("path", &self.path)
            .field("channels", &self.channels)
            .field("rate", &self.rate)
            .field("mix", &self.mix)
            .field("windower", &self.windower)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

fn wav_error(what: &str, e: hound::Error) -> SourceError {
    SourceError::Other(format!("{what}: {e}"))
}

impl WavSource {
    /// Open a WAV file; windows of `window` samples every `hop` samples.
    pub fn open(path: &Path, window: usize, hop: usize) -> Result<Self, SourceError> {
        let what = path.display().to_string();
        let reader = WavReader::open(path).map_err(|e| wav_error(&what, e))?;
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("wav");
        Self::new(
            Reader::File(reader),
            Some(path.to_path_buf()),
            name(stem),
            window,
            hop,
        )
    }

    /// Read a WAV stream from standard input (its header first).
    pub fn stdin(window: usize, hop: usize) -> Result<Self, SourceError> {
        let reader = WavReader::new(std::io::stdin()).map_err(|e| wav_error("stdin", e))?;
        Self::new(Reader::Stdin(reader), None, name("stdin"), window, hop)
    }

    fn new(
        reader: Reader,
        path: Option<PathBuf>,
        label: Name,
        window: usize,
        hop: usize,
    ) -> Result<Self, SourceError> {
        let spec = reader.spec();
        let what = path
            .as_ref()
            .map_or("stdin".to_string(), |p| p.display().to_string());
        if spec.sample_format != SampleFormat::Int || !(8..=32).contains(&spec.bits_per_sample) {
            return Err(SourceError::Other(format!(
                "{what}: {}-bit {:?} samples: only integer PCM of 8 to 32 bits is read",
                spec.bits_per_sample, spec.sample_format
            )));
        }
        if window == 0 || hop == 0 {
            return Err(SourceError::Other(format!(
                "{what}: window and hop must be at least 1 sample"
            )));
        }
        Ok(WavSource {
            reader,
            path,
            channels: spec.channels.max(1),
            mix: Mix::Mean,
            scale: 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32,
            rate: spec.sample_rate.max(1),
            windower: Windower::new(window, 1, hop),
            realtime: false,
            looping: false,
            label,
            seq: 0,
            position: 0,
            start: None,
        })
    }

    /// Mix the channels down, or pick one. Fails when the channel does not exist.
    pub fn mix(mut self, mix: Mix) -> Result<Self, SourceError> {
        if let Mix::Channel(c) = mix
            && c >= self.channels
        {
            return Err(SourceError::Other(format!(
                "channel {c}: the stream has {} channel(s)",
                self.channels
            )));
        }
        self.mix = mix;
        Ok(self)
    }

    /// Deliver windows no faster than the audio's own rate (files).
    pub fn realtime(mut self, realtime: bool) -> Self {
        self.realtime = realtime;
        self
    }

    /// Start again at the end of a file instead of ending.
    pub fn looping(mut self, looping: bool) -> Self {
        self.looping = looping;
        self
    }

    /// Sample rate in Hz.
    pub fn sample_rate(&self) -> u32 {
        self.rate
    }

    /// Channels in the stream (before mixing).
    pub fn channels(&self) -> u16 {
        self.channels
    }

    /// Mono samples read so far (across loops).
    pub fn samples_read(&self) -> u64 {
        self.position
    }

    /// The next mono sample; `None` at the end.
    fn next_sample(&mut self) -> Result<Option<f32>, SourceError> {
        let mut sum = 0.0f32;
        for c in 0..self.channels {
            let s = match self.reader.next() {
                Some(Ok(s)) => s,
                Some(Err(e)) => {
                    // A file cut inside a sample frame ends like a clean end.
                    if c > 0 && matches!(e, hound::Error::IoError(_)) {
                        return Ok(None);
                    }
                    return Err(wav_error("wav", e));
                }
                None => return Ok(None),
            };
            let v = s as f32 * self.scale;
            match self.mix {
                Mix::Mean => sum += v,
                Mix::Channel(k) if k == c => sum = v,
                Mix::Channel(_) => {}
            }
        }
        if self.mix == Mix::Mean {
            sum /= f32::from(self.channels);
        }
        Ok(Some(sum))
    }

    /// Back to the first sample of a file; false for standard input.
    fn rewind(&mut self) -> Result<bool, SourceError> {
        match &mut self.reader {
            Reader::File(r) => {
                r.seek(0).map_err(|e| {
                    SourceError::Other(format!("wav: cannot go back to the start: {e}"))
                })?;
                Ok(true)
            }
            Reader::Stdin(_) => Ok(false),
        }
    }
}

impl Source for WavSource {
    fn next_frame(&mut self, slot: &mut FrameBuf) -> Result<Option<FrameMeta>, SourceError> {
        // Samples read since the last rewind in this call (None: no rewind yet).
        let mut since_rewind: Option<u64> = None;
        loop {
            let Some(v) = self.next_sample()? else {
                // A loop over a file without samples would spin.
                if !self.looping || since_rewind == Some(0) || !self.rewind()? {
                    return Ok(None);
                }
                since_rewind = Some(0);
                continue;
            };
            if let Some(n) = &mut since_rewind {
                *n += 1;
            }
            self.position += 1;
            if self.windower.push(&[v]) {
                self.start.get_or_insert_with(Instant::now);
                let w = &mut self.windower;
                w.take(slot.prepare_samples(w.frames(), 1)?);
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
        self.windower.frames() * 4
    }

    fn sample_window(&self) -> Option<(usize, usize)> {
        Some((self.windower.frames(), 1))
    }

    fn sample_rate(&self) -> Option<u32> {
        Some(self.rate)
    }

    /// Window `n` is due when its last sample would have been captured: `(window + n·hop) /
    /// rate` after the first (which comes at once).
    fn ready_at(&mut self) -> Option<Instant> {
        if !self.realtime {
            return None;
        }
        let start = self.start?;
        let samples = self.seq.saturating_mul(self.windower.hop() as u64);
        start.checked_add(Duration::from_secs_f64(
            samples as f64 / f64::from(self.rate),
        ))
    }
}
