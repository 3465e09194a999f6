//! Whole WAV files as 16-bit mono PCM, for offline use (`outpost infer`). Streams come through
//! [`crate::sources::wav`] instead.

use std::io::Read;
use std::path::Path;

use hound::{SampleFormat, WavReader};

use crate::error::{Result, RuntimeError};

/// Mono 16-bit samples and their rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Pcm {
    /// The samples (channels mixed by their mean).
    pub samples: Vec<i16>,
    /// Samples per second.
    pub rate: u32,
    /// Whether the header promised more samples than the file holds (a WAV written to a pipe,
    /// such as `espeak-ng --stdout`, has a placeholder length); the samples present are kept.
    pub truncated: bool,
}

fn bad(path: &Path, reason: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::BadInput {
        name: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Read `path`: integer PCM of 8–32 bits (scaled to 16) or 32-bit float, any channel count.
pub fn read_pcm16(path: &Path) -> Result<Pcm> {
    let file = std::fs::File::open(path).map_err(|e| bad(path, format!("cannot open: {e}")))?;
    read_from(std::io::BufReader::new(file), path)
}

fn read_from<R: Read>(r: R, path: &Path) -> Result<Pcm> {
    let mut reader = WavReader::new(r).map_err(|e| bad(path, format!("not a WAV file ({e})")))?;
    let spec = reader.spec();
    if spec.channels == 0 || spec.sample_rate == 0 {
        return Err(bad(path, "WAV header with 0 channels or a 0 Hz rate"));
    }
    let ch = spec.channels as usize;
    let mut frame = vec![0f64; ch];
    let declared = reader.len() as u64;
    // A WAV written to a pipe (`espeak-ng --stdout`) cannot know its length: its header holds
    // a placeholder near 2^31 bytes. Reading such a file to its end is right; a file shorter
    // than an honest header is truncated.
    let placeholder = declared * spec.bits_per_sample as u64 / 8 >= 0x7FFF_0000;
    let mut samples = Vec::with_capacity((declared as usize / ch).min(1 << 24));
    let mut truncated = false;
    let mut at = 0usize;
    let mut push = |v: f64, samples: &mut Vec<i16>| {
        frame[at] = v;
        at += 1;
        if at == ch {
            at = 0;
            let mean = frame.iter().sum::<f64>() / ch as f64;
            samples.push(mean.round().clamp(-32768.0, 32767.0) as i16);
        }
    };
    match (spec.sample_format, spec.bits_per_sample) {
        (SampleFormat::Int, 1..=32) => {
            let shift = spec.bits_per_sample as i32 - 16;
            for s in reader.samples::<i32>() {
                match s {
                    Ok(v) => {
                        let v = if shift >= 0 {
                            (v >> shift) as f64
                        } else {
                            (v << -shift) as f64
                        };
                        push(v, &mut samples);
                    }
                    Err(hound::Error::IoError(e))
                        if e.kind() != std::io::ErrorKind::InvalidData =>
                    {
                        truncated = true;
                        break;
                    }
                    Err(e) => return Err(bad(path, format!("corrupt WAV data ({e})"))),
                }
            }
        }
        (SampleFormat::Float, 32) => {
            for s in reader.samples::<f32>() {
                match s {
                    Ok(v) => push(v as f64 * 32768.0, &mut samples),
                    Err(hound::Error::IoError(_)) => {
                        truncated = true;
                        break;
                    }
                    Err(e) => return Err(bad(path, format!("corrupt WAV data ({e})"))),
                }
            }
        }
        (f, b) => {
            return Err(bad(
                path,
                format!("{b}-bit {f:?} samples are not supported"),
            ));
        }
    }
    if truncated && !placeholder {
        return Err(bad(
            path,
            format!(
                "truncated: the header promises {} samples, the file holds {}",
                declared / ch as u64,
                samples.len()
            ),
        ));
    }
    if samples.is_empty() {
        return Err(bad(path, "the WAV file holds no samples"));
    }
    Ok(Pcm {
        samples,
        rate: spec.sample_rate,
        truncated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(channels: u16, bits: u16, data: &[u8], declared: Option<u32>) -> Vec<u8> {
        let mut v = Vec::new();
        let block = channels * bits / 8;
        v.extend_from_slice(b"RIFF");
        v.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
        v.extend_from_slice(b"WAVEfmt ");
        v.extend_from_slice(&16u32.to_le_bytes());
        v.extend_from_slice(&1u16.to_le_bytes());
        v.extend_from_slice(&channels.to_le_bytes());
        v.extend_from_slice(&16_000u32.to_le_bytes());
        v.extend_from_slice(&(16_000 * block as u32).to_le_bytes());
        v.extend_from_slice(&block.to_le_bytes());
        v.extend_from_slice(&bits.to_le_bytes());
        v.extend_from_slice(b"data");
        v.extend_from_slice(&declared.unwrap_or(data.len() as u32).to_le_bytes());
        v.extend_from_slice(data);
        v
    }

    fn read(bytes: Vec<u8>) -> Result<Pcm> {
        read_from(std::io::Cursor::new(bytes), Path::new("t.wav"))
    }

    #[test]
    fn stereo_is_mixed_and_streamed_headers_are_read_to_the_end() {
        let data: Vec<u8> = [100i16, 300, -50, -150]
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        let p = read(wav(2, 16, &data, None)).unwrap();
        assert_eq!(
            (p.samples.as_slice(), p.rate, p.truncated),
            (&[200, -100][..], 16_000, false)
        );
        let p = read(wav(1, 16, &data, Some(0x7fff_f000))).unwrap();
        assert_eq!(
            (p.samples.as_slice(), p.truncated),
            (&[100, 300, -50, -150][..], true)
        );
    }

    #[test]
    fn garbage_and_empty_files_are_errors() {
        let e = read(b"not a wav at all, just text".to_vec()).unwrap_err();
        assert!(e.to_string().contains("not a WAV file"), "{e}");
        let e = read(wav(1, 16, &[], None)).unwrap_err();
        assert!(e.to_string().contains("no samples"), "{e}");
        let mut cut = wav(1, 16, &[1, 0, 2, 0, 3, 0, 4, 0], None);
        cut.truncate(cut.len() - 3);
        let e = read(cut).unwrap_err();
        assert!(
            e.to_string()
                .contains("truncated: the header promises 4 samples"),
            "{e}"
        );
    }
}
