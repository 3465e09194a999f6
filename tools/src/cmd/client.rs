//! `outpost client`: talk to a running runtime's result socket.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use outpost_client::proto::{BoundedVec, MAX_FILTER_CLASSES, MAX_FILTER_STREAMS, ResultMsg};
use outpost_client::{Client, ClientConfig, ClientError, DEFAULT_SOCKET_PATH, Event, Subscribe};

use crate::exit::{CmdResult, Failure};

/// Arguments of `outpost client`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: ClientCommand,
}

/// The socket option shared by every client command.
#[derive(Debug, clap::Args)]
pub struct SocketArg {
    /// The runtime's result socket (as given to `outpost run --socket`) [default: $OUTPOST_SOCKET,
    /// else /run/outpost/results.sock].
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
}

impl SocketArg {
    /// The socket path: --socket, else $OUTPOST_SOCKET, else the runtime's default.
    pub fn path(&self) -> PathBuf {
        self.socket
            .clone()
            .or_else(|| std::env::var_os("OUTPOST_SOCKET").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET_PATH))
    }
}

/// `outpost client` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ClientCommand {
    /// Print results as they are published (one line each, or one JSON object with --json).
    #[command(
        after_help = "Examples:\n  outpost client subscribe --stream 0 --min-score 0.6\n  outpost client subscribe --json --count 100 | jq .detections\n\nExit status: 0 when --count results were printed (or the server closed without --reconnect), 1 when the runtime cannot be reached, 2 for bad arguments."
    )]
    Subscribe(SubscribeArgs),
    /// Print the server's status and counters.
    Status(QueryArgs),
    /// List the models the runtime has loaded.
    Models(QueryArgs),
}

/// Arguments of `outpost client subscribe`.
#[derive(Debug, clap::Args)]
pub struct SubscribeArgs {
    #[command(flatten)]
    pub socket: SocketArg,
    /// Only this stream id (repeatable; default: every stream).
    #[arg(long = "stream", value_name = "S")]
    pub streams: Vec<u16>,
    /// Only detections and scores of this class id (repeatable; default: every class).
    #[arg(long = "class", value_name = "C")]
    pub classes: Vec<u16>,
    /// Drop detections and class scores below this score (0..=1).
    #[arg(long, value_name = "X")]
    pub min_score: Option<f32>,
    /// Leave keypoints out of detections.
    #[arg(long)]
    pub no_keypoints: bool,
    /// Print one JSON object per result instead of a line of text.
    #[arg(long)]
    pub json: bool,
    /// Stop after this many results.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Exit when the connection drops instead of reconnecting.
    #[arg(long)]
    pub no_reconnect: bool,
}

/// Arguments of `outpost client status` / `models`.
#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub socket: SocketArg,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Run the command.
pub fn run(args: Args) -> CmdResult {
    match args.command {
        ClientCommand::Subscribe(a) => subscribe(a),
        ClientCommand::Status(a) => status(a),
        ClientCommand::Models(a) => models(a),
    }
}

fn connect_failure(e: ClientError) -> Failure {
    Failure::other(e.to_string())
}

fn subscription(a: &SubscribeArgs) -> Result<Subscribe, Failure> {
    let mut sub = Subscribe::all();
    if a.streams.len() > MAX_FILTER_STREAMS {
        return Err(Failure::input(format!(
            "at most {MAX_FILTER_STREAMS} --stream values"
        )));
    }
    if a.classes.len() > MAX_FILTER_CLASSES {
        return Err(Failure::input(format!(
            "at most {MAX_FILTER_CLASSES} --class values"
        )));
    }
    sub.streams =
        BoundedVec::from_slice(&a.streams).map_err(|_| Failure::input("too many --stream"))?;
    sub.classes =
        BoundedVec::from_slice(&a.classes).map_err(|_| Failure::input("too many --class"))?;
    if let Some(x) = a.min_score {
        if !(0.0..=1.0).contains(&x) {
            return Err(Failure::input(format!(
                "--min-score must be between 0 and 1, got {x}"
            )));
        }
        sub.min_score = x;
    }
    sub.keypoints = !a.no_keypoints;
    Ok(sub)
}

fn subscribe(a: SubscribeArgs) -> CmdResult {
    let filter = subscription(&a)?;
    if a.count == Some(0) {
        return Ok(());
    }
    let mut config = ClientConfig::new(a.socket.path());
    config.reconnect = !a.no_reconnect;
    config.name = String::from("outpost client subscribe");
    let client = Client::connect_with(config).map_err(connect_failure)?;
    let mut events = client.subscribe(filter).map_err(connect_failure)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut printed = 0u64;
    while a.count.is_none_or(|n| printed < n) {
        let event = match events.next() {
            None => break,
            Some(Ok(e)) => e,
            Some(Err(e)) => return Err(Failure::other(format!("{e}"))),
        };
        let written = match event {
            Event::Result(r) => {
                printed += 1;
                if a.json {
                    serde_json::to_writer(&mut out, &r)
                        .map_err(std::io::Error::from)
                        .and_then(|()| writeln!(out))
                } else {
                    writeln!(out, "{}", Line(&r))
                }
            }
            Event::Missed(n) => {
                eprintln!("warning: missed {n} results (this client is reading too slowly)");
                Ok(())
            }
            Event::Reconnected => {
                eprintln!("note: reconnected to {}", a.socket.path().display());
                Ok(())
            }
        };
        if written.and_then(|()| out.flush()).is_err() {
            // stdout closed (e.g. piped into `head`): stop quietly.
            return Ok(());
        }
    }
    Ok(())
}

/// One human-readable line for a result.
struct Line<'a>(&'a ResultMsg);

impl std::fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = self.0;
        write!(
            f,
            "stream {} frame {} model {} v{}:",
            r.stream, r.seq, r.model.id, r.model.version
        )?;
        write!(
            f,
            " {} detection{}",
            r.detections.len(),
            if r.detections.len() == 1 { "" } else { "s" }
        )?;
        for (i, d) in r.detections.iter().enumerate() {
            let b = d.bbox;
            let sep = if i == 0 { " [" } else { ", " };
            write!(
                f,
                "{sep}class {} {:.2} at ({:.3},{:.3})-({:.3},{:.3})",
                d.class, d.score, b.x_min, b.y_min, b.x_max, b.y_max
            )?;
            if !d.keypoints.is_empty() {
                write!(f, " +{}kp", d.keypoints.len())?;
            }
        }
        if !r.detections.is_empty() {
            write!(f, "]")?;
        }
        for c in r.class_scores.iter() {
            write!(f, " class {}={:.2}", c.class, c.score)?;
        }
        for e in r.events.iter() {
            write!(
                f,
                " event sensor {} kind {} value {}",
                e.sensor, e.kind, e.value
            )?;
        }
        if r.publish_ns >= r.capture_ns && r.capture_ns > 0 {
            let ms = (r.publish_ns - r.capture_ns) as f64 / 1e6;
            write!(f, " capture→publish {ms:.2} ms")?;
        }
        Ok(())
    }
}

fn query_client(socket: &SocketArg) -> Result<Client, Failure> {
    let mut config = ClientConfig::new(socket.path());
    config.reconnect = false;
    config.request_timeout = Duration::from_secs(5);
    config.name = String::from("outpost client");
    Client::connect_with(config).map_err(connect_failure)
}

fn status(a: QueryArgs) -> CmdResult {
    let mut client = query_client(&a.socket)?;
    let s = client.status().map_err(connect_failure)?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string(&s).map_err(|e| Failure::other(e.to_string()))?
        );
        return Ok(());
    }
    let h = client.server_hello();
    println!("socket          {}", a.socket.path().display());
    println!(
        "protocol        v{} (capabilities {:#x})",
        h.version, h.capabilities
    );
    println!("uptime          {:.1} s", s.uptime_ms as f64 / 1000.0);
    println!("clients         {}", s.clients);
    println!("published       {}", s.published);
    println!("publish dropped {}", s.publish_dropped);
    println!("missed (all)    {}", s.missed_total);
    println!("slow clients    {} disconnected", s.disconnected_slow);
    println!("rejected        {}", s.rejected);
    println!("queue capacity  {} results per client", s.queue_capacity);
    Ok(())
}

fn models(a: QueryArgs) -> CmdResult {
    let mut client = query_client(&a.socket)?;
    let models = client.list_models().map_err(connect_failure)?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string(&models).map_err(|e| Failure::other(e.to_string()))?
        );
        return Ok(());
    }
    if models.is_empty() {
        println!("no models loaded");
    }
    for m in &models {
        let sha: String = m
            .sha256
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect();
        println!(
            "{}{} v{} input {}x{} classes {} sha256 {sha}…",
            if m.active { "* " } else { "  " },
            m.id,
            m.version,
            m.input_width,
            m.input_height,
            m.classes
        );
    }
    Ok(())
}
