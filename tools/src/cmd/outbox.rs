//! `outpost outbox status|drain|export`: operator commands for the store-and-forward outbox.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use outpost_outbox::{OutboxSettings, Store, Uplink};

use crate::exit::{CmdResult, Failure};

/// Arguments of `outpost outbox`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Outbox settings (JSON, the `outbox` section of the runtime configuration).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// The outbox database file (overrides `path` in --config).
    #[arg(long, global = true)]
    pub db: Option<PathBuf>,
    #[command(subcommand)]
    pub action: Action,
}

/// What to do.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Backlog: records and bytes per priority, oldest age, evictions, uploads, file size.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Upload everything now (needs the `azure` section); stops at the first link error.
    Drain {
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 3600)]
        timeout: u64,
        /// Create the container first (Azurite / plain http endpoints only).
        #[arg(long)]
        create_container: bool,
    },
    /// Write the backlog to DIR with the cloud layout (for carrying out by hand).
    Export {
        /// Destination directory.
        dir: PathBuf,
        /// Delete the exported records from the outbox after they are written and synced.
        #[arg(long)]
        remove: bool,
    },
}

fn settings(args: &Args) -> Result<OutboxSettings, Failure> {
    let mut s = match &args.config {
        Some(p) => OutboxSettings::from_file(p)
            .map_err(|e| Failure::input(format!("{}: {e}", p.display())))?,
        None => OutboxSettings::default(),
    };
    if let Some(db) = &args.db {
        s.path = db.clone();
    }
    if args.config.is_none() && args.db.is_none() {
        return Err(Failure::input("give --config FILE or --db PATH"));
    }
    Ok(s)
}

fn open(s: &OutboxSettings) -> Result<Store, Failure> {
    if !s.path.exists() {
        return Err(Failure::input(format!(
            "{}: no such outbox",
            s.path.display()
        )));
    }
    Store::open(&s.path, s.store).map_err(|e| Failure::other(format!("{}: {e}", s.path.display())))
}

/// Run the command.
pub fn run(args: Args) -> CmdResult {
    let s = settings(&args)?;
    match args.action {
        Action::Status { json } => {
            let st = open(&s)?
                .stats()
                .map_err(|e| Failure::other(e.to_string()))?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&st).map_err(|e| Failure::other(e.to_string()))?
                );
            } else {
                println!(
                    "outbox      {} (instance {})",
                    s.path.display(),
                    st.instance
                );
                println!("records     {}", st.records);
                println!(
                    "bytes       {} of a {} record budget",
                    st.bytes, st.record_budget
                );
                println!("file        {} of {} on disk", st.file_bytes, st.max_bytes);
                println!("oldest      {:.1} s", st.oldest_age_ms as f64 / 1e3);
                println!("pending     {} batches", st.pending_batches);
                println!("uploaded    {} records", st.uploaded_records);
                println!("priority    records  evicted(records, bytes)");
                for p in outpost_outbox::Priority::ALL.iter().rev() {
                    let i = usize::from(p.as_u8());
                    println!(
                        "  {:<9} {:>8}  {}, {}",
                        p.name(),
                        st.records_by_priority[i],
                        st.evicted.records[i],
                        st.evicted.bytes[i]
                    );
                }
            }
            Ok(())
        }
        Action::Drain {
            timeout,
            create_container,
        } => {
            let azure = s
                .azure
                .clone()
                .ok_or_else(|| Failure::input("the settings have no `azure` section"))?;
            if create_container {
                let base = azure
                    .emulator
                    .clone()
                    .or(azure.endpoint.clone())
                    .unwrap_or_default();
                let account = if azure.account.is_empty() {
                    outpost_outbox::uplink::EMULATOR_ACCOUNT.to_string()
                } else {
                    azure.account.clone()
                };
                let key = azure
                    .access_key
                    .clone()
                    .unwrap_or_else(|| outpost_outbox::uplink::EMULATOR_KEY.into());
                outpost_outbox::uplink::create_container(&base, &account, &key, &azure.container)
                    .map_err(|e| Failure::other(e.to_string()))?;
            }
            let store = Arc::new(open(&s)?);
            let client = azure
                .build(Duration::from_millis(s.uplink.request_timeout_ms))
                .map_err(|e| Failure::input(e.to_string()))?;
            let uplink = Uplink::new(store.clone(), client, s.uplink.clone());
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Failure::other(e.to_string()))?;
            let snap = rt
                .block_on(async {
                    tokio::time::timeout(Duration::from_secs(timeout), uplink.drain()).await
                })
                .map_err(|_| Failure::other(format!("drain did not finish in {timeout} s")))?
                .map_err(|e| Failure::other(format!("upload failed (records kept): {e}")))?;
            let left = store.stats().map_err(|e| Failure::other(e.to_string()))?;
            println!(
                "uploaded {} records in {} batches ({} objects, {} bytes); {} records left",
                snap.records, snap.batches, snap.objects, snap.bytes, left.records
            );
            Ok(())
        }
        Action::Export { dir, remove } => {
            let store = open(&s)?;
            let (n, files) = outpost_outbox::uplink::export_dir(&store, &s.uplink, &dir, remove)
                .map_err(|e| Failure::other(e.to_string()))?;
            println!(
                "exported {n} records into {files} files under {}{}",
                dir.display(),
                if remove {
                    " (removed from the outbox)"
                } else {
                    ""
                }
            );
            Ok(())
        }
    }
}
