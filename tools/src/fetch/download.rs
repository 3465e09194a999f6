//! HTTPS download of a pinned wheel, streamed into a temporary file, hashed on the way.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sha2::{Digest, Sha256};

use super::{AtomicFile, FetchError, Wheel};
use crate::fmt::bytes;

/// Attempts per download: transient network failures are retried, with a pause.
const ATTEMPTS: u32 = 3;

/// Downloads files, building the HTTP agent on first use.
pub(super) struct Downloader {
    agent: Option<ureq::Agent>,
    /// Whether to show progress on stderr.
    pub(super) progress: bool,
}

/// Why one attempt failed.
enum Failed {
    /// Worth another try (connection, timeout, 5xx, cut-off body).
    Transient(FetchError),
    /// Not (4xx, disk, too large).
    Fatal(FetchError),
}

impl Downloader {
    pub(super) fn new(progress: bool) -> Self {
        Downloader {
            agent: None,
            progress,
        }
    }

    fn agent(&mut self) -> &ureq::Agent {
        self.agent.get_or_insert_with(|| {
            let tls = ureq::tls::TlsConfig::builder()
                // The system's roots (and its verifier), so that a TLS-inspecting proxy whose CA
                // the administrator installed works, as it does for curl and pip.
                .root_certs(ureq::tls::RootCerts::PlatformVerifier)
                .build();
            ureq::Agent::config_builder()
                .tls_config(tls)
                .user_agent(format!("outpost/{}", env!("CARGO_PKG_VERSION")))
                .timeout_connect(Some(Duration::from_secs(30)))
                .timeout_recv_response(Some(Duration::from_secs(60)))
                // A stalled transfer fails instead of hanging; a slow one is fine.
                .timeout_per_read(Some(Duration::from_secs(60)))
                .build()
                .into()
        })
    }

    /// Download `wheel` to `dest` (via a temporary file next to it), check its size and sha256,
    /// and rename it into place; return the number of bytes downloaded.
    pub(super) fn download(&mut self, wheel: &Wheel, dest: &Path) -> Result<u64, FetchError> {
        let mut out = AtomicFile::new(dest)?;
        let bar = self.bar(wheel);
        let mut attempt = 1;
        let result = loop {
            match self.attempt(wheel, &mut out, &bar) {
                Ok(done) => break Ok(done),
                Err(Failed::Transient(e)) if attempt < ATTEMPTS => {
                    let pause = Duration::from_secs(2 * u64::from(attempt));
                    if self.progress {
                        bar.suspend(|| {
                            eprintln!("{e}\nretrying in {} s", pause.as_secs());
                        });
                    }
                    std::thread::sleep(pause);
                    attempt += 1;
                    out.truncate()?;
                    bar.set_position(0);
                }
                Err(Failed::Transient(e) | Failed::Fatal(e)) => break Err(e),
            }
        };
        bar.finish_and_clear();
        let (sha256, size) = result?;
        out.commit(&sha256, wheel.sha256)?;
        if self.progress {
            eprintln!("downloaded  {} ({}, sha256 ok)", wheel.file, bytes(size));
        }
        Ok(size)
    }

    /// A progress bar on stderr (hidden when quiet or when stderr is not a terminal; then a
    /// plain line says what is being downloaded).
    fn bar(&self, wheel: &Wheel) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(wheel.size), ProgressDrawTarget::stderr());
        if bar.is_hidden() {
            eprintln!(
                "downloading {} ({}) from {}",
                wheel.file,
                bytes(wheel.size),
                wheel.url
            );
        } else {
            let style = ProgressStyle::with_template(
                "{msg} [{wide_bar}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            // The requirement, not the (long) file name, so the bar fits on one line.
            bar.set_message(format!("downloading {}", wheel.requirement));
        }
        bar
    }

    /// One try: stream the body into `out`; return its sha256 and size.
    fn attempt(
        &mut self,
        wheel: &Wheel,
        out: &mut AtomicFile,
        bar: &ProgressBar,
    ) -> Result<(String, u64), Failed> {
        let url = wheel.url;
        let network =
            |source: Box<dyn std::error::Error + Send + Sync>, hint| FetchError::Network {
                url: url.to_string(),
                source,
                hint,
            };
        let mut response = match self.agent().get(url).call() {
            Ok(r) => r,
            Err(ureq::Error::StatusCode(status)) => {
                let e = FetchError::HttpStatus {
                    url: url.to_string(),
                    status,
                };
                return Err(if status >= 500 || status == 429 {
                    Failed::Transient(e)
                } else {
                    Failed::Fatal(e)
                });
            }
            Err(e) => {
                let hint = match e {
                    ureq::Error::Tls(_) | ureq::Error::Rustls(_) => {
                        " (TLS failed: are the system CA certificates installed and current?)"
                    }
                    _ => "",
                };
                let fatal = matches!(e, ureq::Error::Tls(_) | ureq::Error::Rustls(_));
                let e = network(Box::new(e), hint);
                return Err(if fatal {
                    Failed::Fatal(e)
                } else {
                    Failed::Transient(e)
                });
            }
        };
        if let Some(len) = response.body().content_length() {
            bar.set_length(len.max(wheel.size));
        }
        // Read at most one byte past the pinned size: enough to tell the file is not the one
        // pinned, without filling the disk if a server sends something else.
        let mut body = response.body_mut().as_reader().take(wheel.size + 1);
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut size = 0u64;
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Failed::Transient(network(Box::new(e), ""))),
            };
            size += n as u64;
            if size > wheel.size {
                return Err(Failed::Fatal(FetchError::TooLarge {
                    url: url.to_string(),
                    expected: wheel.size,
                }));
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(Failed::Fatal)?;
            bar.set_position(size);
        }
        Ok((hex::encode(hasher.finalize()), size))
    }
}
