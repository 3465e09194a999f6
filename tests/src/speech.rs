//! Spoken phrases for the audio tests: Debian's `espeak-ng` (installed by
//! `tools/ci/install-system.sh`), prepared exactly as `tools/reference/okay_nabu.py` did for the
//! golden file `golden/okay-nabu.json`: 22050 Hz speech resampled to 16 kHz by linear
//! interpolation ([`outpost_runtime::audio::resample::linear`]), then `pad_before_s` of silence
//! before and `pad_after_s` after.

use std::io::Cursor;
use std::process::Command;

use sha2::{Digest, Sha256};

/// `espeak-ng -v VOICE -s SPEED --stdout TEXT` as 16-bit samples and their rate.
pub fn espeak(text: &str, voice: &str, speed: u32) -> (Vec<i16>, u32) {
    let out = Command::new("espeak-ng")
        .args(["-v", voice, "-s", &speed.to_string(), "--stdout", text])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run espeak-ng ({e}): install it (tools/ci/install-system.sh does)")
        });
    assert!(out.status.success(), "espeak-ng failed: {out:?}");
    let mut r = hound::WavReader::new(Cursor::new(out.stdout)).expect("espeak-ng WAV");
    let spec = r.spec();
    assert_eq!(
        (spec.channels, spec.bits_per_sample),
        (1, 16),
        "espeak-ng: not 16-bit mono"
    );
    // With --stdout the header's data size is a placeholder (0x7ffff000): read to the end.
    let samples: Vec<i16> = r.samples::<i16>().map_while(Result::ok).collect();
    assert!(
        samples.len() > 1000,
        "espeak-ng gave {} samples",
        samples.len()
    );
    (samples, spec.sample_rate)
}

/// A phrase at 16 kHz with silence around it, and the sha256 (hex) of its little-endian bytes.
pub fn phrase_16k(
    text: &str,
    voice: &str,
    speed: u32,
    pad_before_s: f64,
    pad_after_s: f64,
) -> (Vec<i16>, String) {
    let (x, rate) = espeak(text, voice, speed);
    let speech = outpost_runtime::audio::resample::linear(&x, rate, 16_000);
    let mut pcm = vec![0i16; (pad_before_s * 16_000.0) as usize];
    pcm.extend_from_slice(&speech);
    pcm.extend(std::iter::repeat_n(0, (pad_after_s * 16_000.0) as usize));
    let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
    let sha = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (pcm, sha)
}

/// Write 16-bit mono PCM as a WAV file.
pub fn write_wav(path: &std::path::Path, pcm: &[i16], rate: u32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &s in pcm {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
}
