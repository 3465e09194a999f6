//! Outpost IPC client library: connects to the runtime's result socket.
//!
//! Blocking, no async runtime, and it links only `outpost-proto` (never the runtime).
//!
//! ```no_run
//! use outpost_client::{Client, ClientConfig, Event, Subscribe};
//! let config = ClientConfig::new("/run/outpost/results.sock");
//! for event in Client::connect_with(config.clone())?.subscribe(Subscribe::all())? {
//!     match event? {
//!         Event::Result(r) => println!("stream {} frame {}: {} detections", r.stream, r.seq, r.detections.len()),
//!         Event::Missed(n) => eprintln!("missed {n} results"),
//!         Event::Reconnected => eprintln!("reconnected"),
//!     }
//! }
//! # Ok::<(), outpost_client::ClientError>(())
//! ```
//!
//! With [`ClientConfig::reconnect`] set (the default) the [`Subscription`] iterator survives
//! server restarts: it reconnects with exponential backoff, subscribes again, and yields
//! [`Event::Reconnected`] so the caller knows results may have been lost in between.

mod sys;

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use outpost_proto as proto;
use outpost_proto::{
    ClientMsg, Hello, MAX_CLIENT_MSG, Name, PROTOCOL_VERSION, Request, RequestBody, ResponseBody,
    ServerMsg,
};
pub use outpost_proto::{
    ErrorCode, MAX_SERVER_MSG, ModelInfo, ResultMsg, ServerHello, Status, Subscribe,
};

use sys::SeqPacket;

/// Receive buffer: the largest packet a server sends.
const RECV_BUFFER: usize = proto::MAX_PACKET;

/// Where the runtime publishes by default (`outpost run` without `--socket`).
pub const DEFAULT_SOCKET_PATH: &str = "/run/outpost/results.sock";

/// Client errors.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket could not be reached.
    #[error("cannot connect to {path}: {source} (is the runtime running with --socket {path}?)")]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Sending or receiving failed.
    #[error("IPC I/O error: {0}")]
    Io(#[from] io::Error),
    /// The server reported an error (and, except for `Unsupported`, closed the connection).
    #[error("server error: {code}{}{detail}", if detail.is_empty() { "" } else { ": " })]
    Server {
        /// The error kind.
        code: ErrorCode,
        /// The server's detail text.
        detail: String,
    },
    /// The server sent something this client cannot decode or did not expect.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The server closed the connection.
    #[error("connection closed by the server")]
    Closed,
    /// No message within the read timeout.
    #[error("timed out waiting for the server")]
    Timeout,
}

impl ClientError {
    /// Whether reconnecting could help (the server went away, rather than refusing us).
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Connect { .. } | ClientError::Io(_) | ClientError::Closed => true,
            ClientError::Server { code, .. } => {
                matches!(
                    code,
                    ErrorCode::TooSlow | ErrorCode::ShuttingDown | ErrorCode::Busy
                )
            }
            ClientError::Protocol(_) | ClientError::Timeout => false,
        }
    }
}

/// Client settings.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The server's socket.
    pub path: PathBuf,
    /// Name sent in Hello (shown in server logs).
    pub name: String,
    /// Reconnect automatically when the connection is lost while subscribed.
    pub reconnect: bool,
    /// First delay between reconnection attempts; doubles up to `max_reconnect_delay`.
    pub reconnect_delay: Duration,
    /// Longest delay between reconnection attempts.
    pub max_reconnect_delay: Duration,
    /// Give up after this many failed attempts in a row (None = never).
    pub max_reconnect_attempts: Option<u32>,
    /// How long to wait for the server's handshake and responses.
    pub request_timeout: Duration,
    /// How long a subscription waits for the next message (None = forever); on expiry the
    /// iterator yields `Err(Timeout)` and can be polled again.
    pub read_timeout: Option<Duration>,
}

impl ClientConfig {
    /// Defaults for `path`: reconnect on, 50 ms..2 s backoff, 5 s request timeout.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ClientConfig {
            path: path.into(),
            name: String::from("outpost-client"),
            reconnect: true,
            reconnect_delay: Duration::from_millis(50),
            max_reconnect_delay: Duration::from_secs(2),
            max_reconnect_attempts: None,
            request_timeout: Duration::from_secs(5),
            read_timeout: None,
        }
    }
}

/// A connected, handshaken client.
pub struct Client {
    sock: SeqPacket,
    config: ClientConfig,
    hello: ServerHello,
    /// The current packet: `buf[pos..len]` holds messages not yet returned.
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
    next_id: u32,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("path", &self.config.path)
            .field("hello", &self.hello)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connect to `path` with default settings and do the handshake.
    pub fn connect(path: impl AsRef<Path>) -> Result<Client, ClientError> {
        Client::connect_with(ClientConfig::new(path.as_ref()))
    }

    /// Connect with `config` and do the handshake.
    pub fn connect_with(config: ClientConfig) -> Result<Client, ClientError> {
        let sock = SeqPacket::connect(&config.path).map_err(|source| ClientError::Connect {
            path: config.path.clone(),
            source,
        })?;
        sock.set_read_timeout(Some(config.request_timeout))?;
        let mut client = Client {
            sock,
            hello: ServerHello {
                version: 0,
                capabilities: 0,
                max_message: 0,
                queue_capacity: 0,
            },
            config,
            buf: vec![0; RECV_BUFFER].into_boxed_slice(),
            pos: 0,
            len: 0,
            next_id: 1,
        };
        let hello = ClientMsg::Hello(Hello {
            version: PROTOCOL_VERSION,
            capabilities: proto::caps::ALL_V1,
            client_name: Name::truncating(&client.config.name),
        });
        if let Err(e) = client.send(&hello) {
            // A server that refuses us (peer credentials, too many clients) says why and closes
            // at once; report its reason rather than the broken pipe.
            return Err(match client.recv() {
                Err(refusal @ ClientError::Server { .. }) => refusal,
                _ => e,
            });
        }
        match client.recv()? {
            ServerMsg::Hello(h) => client.hello = h,
            other => return Err(unexpected(&other)),
        }
        log::debug!(
            "connected to {}: {:?}",
            client.config.path.display(),
            client.hello
        );
        Ok(client)
    }

    /// The server's handshake answer.
    pub fn server_hello(&self) -> &ServerHello {
        &self.hello
    }

    /// Ask for the server's status and counters.
    pub fn status(&mut self) -> Result<Status, ClientError> {
        match self.request(RequestBody::Status)? {
            ResponseBody::Status(s) => Ok(s),
            other => Err(ClientError::Protocol(format!(
                "expected Status, got {other:?}"
            ))),
        }
    }

    /// Ask for the loaded models.
    pub fn list_models(&mut self) -> Result<Vec<ModelInfo>, ClientError> {
        match self.request(RequestBody::ListModels)? {
            ResponseBody::Models(m) => Ok(m.iter().cloned().collect()),
            other => Err(ClientError::Protocol(format!(
                "expected Models, got {other:?}"
            ))),
        }
    }

    fn request(&mut self, body: RequestBody) -> Result<ResponseBody, ClientError> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.send(&ClientMsg::Request(Request { id, body }))?;
        loop {
            match self.recv()? {
                ServerMsg::Response(r) if r.id == id => return Ok(r.body),
                // Results and notices of an active subscription are skipped here.
                ServerMsg::Result(_) | ServerMsg::Missed(_) | ServerMsg::Response(_) => {}
                other => return Err(unexpected(&other)),
            }
        }
    }

    /// Subscribe and turn this client into an iterator of [`Event`]s.
    pub fn subscribe(mut self, subscription: Subscribe) -> Result<Subscription, ClientError> {
        self.start_subscription(&subscription)?;
        Ok(Subscription {
            config: self.config.clone(),
            filter: subscription,
            conn: Some(self),
        })
    }

    fn start_subscription(&mut self, subscription: &Subscribe) -> Result<(), ClientError> {
        self.send(&ClientMsg::Subscribe(subscription.clone()))?;
        loop {
            match self.recv()? {
                ServerMsg::Subscribed => break,
                ServerMsg::Response(_) => {}
                other => return Err(unexpected(&other)),
            }
        }
        self.sock.set_read_timeout(self.config.read_timeout)?;
        Ok(())
    }

    /// Send one message.
    pub fn send(&mut self, msg: &ClientMsg) -> Result<(), ClientError> {
        let mut buf = [0u8; MAX_CLIENT_MSG];
        let n = msg
            .encode(&mut buf)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        match self.sock.send(&buf[..n]) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(ClientError::Closed),
            Err(e) => Err(ClientError::Io(e)),
        }
    }

    /// Receive the next message. A server `Error` is returned as `Err(ClientError::Server)`.
    ///
    /// A server packet may hold several messages; they are returned one by one.
    pub fn recv(&mut self) -> Result<ServerMsg, ClientError> {
        let mut msg = ServerMsg::Subscribed;
        self.recv_into(&mut msg)?;
        Ok(msg)
    }

    /// As [`Client::recv`], decoding into `msg`: a result is filled in place
    /// ([`ServerMsg::decode_prefix_into`]), so a subscriber that keeps one `ServerMsg` does not
    /// build and move an 8 KB value per message (the form for high result rates).
    pub fn recv_into(&mut self, msg: &mut ServerMsg) -> Result<(), ClientError> {
        if self.pos >= self.len {
            let mut reset_seen = false;
            let n = loop {
                match self.sock.recv_trunc(&mut self.buf[..]) {
                    Ok(0) => return Err(ClientError::Closed),
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        return Err(ClientError::Timeout);
                    }
                    // A server that closes while our last message is unread resets the
                    // connection, but what it sent before (e.g. its Error) is still queued: the
                    // next recv returns it, or end of file.
                    Err(e) if e.kind() == io::ErrorKind::ConnectionReset && !reset_seen => {
                        reset_seen = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                        return Err(ClientError::Closed);
                    }
                    Err(e) => return Err(ClientError::Io(e)),
                }
            };
            if n > self.buf.len() {
                return Err(ClientError::Protocol(format!(
                    "{n}-byte packet exceeds the {RECV_BUFFER}-byte receive buffer"
                )));
            }
            self.pos = 0;
            self.len = n;
        }
        let packet = &self.buf[self.pos..self.len];
        match ServerMsg::decode_prefix_into(packet, msg) {
            Ok(rest) => {
                self.pos = self.len - rest.len();
                match msg {
                    ServerMsg::Error(e) => Err(ClientError::Server {
                        code: e.code,
                        detail: e.detail.as_str().to_owned(),
                    }),
                    _ => Ok(()),
                }
            }
            Err(e) => {
                self.pos = self.len;
                Err(ClientError::Protocol(format!(
                    "cannot decode server message: {e}"
                )))
            }
        }
    }
}

fn unexpected(msg: &ServerMsg) -> ClientError {
    let name = match msg {
        ServerMsg::Hello(_) => "Hello",
        ServerMsg::Subscribed => "Subscribed",
        ServerMsg::Result(_) => "Result",
        ServerMsg::Missed(_) => "Missed",
        ServerMsg::Response(_) => "Response",
        ServerMsg::Error(_) => "Error",
    };
    ClientError::Protocol(format!("unexpected {name} message"))
}

/// What a subscription yields.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// One result (boxed: a full result is several kilobytes).
    Result(Box<ResultMsg>),
    /// The server dropped this many results for us (we were too slow).
    Missed(u32),
    /// The connection was lost and re-established; results in between are lost.
    Reconnected,
}

/// A blocking iterator over results; reconnects automatically if configured.
///
/// It ends (`None`) after yielding a non-transient error, or a transient one when reconnecting is
/// off or `max_reconnect_attempts` is exhausted. `Err(Timeout)` does not end it.
pub struct Subscription {
    config: ClientConfig,
    filter: Subscribe,
    conn: Option<Client>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("path", &self.config.path)
            .field("connected", &self.conn.is_some())
            .finish_non_exhaustive()
    }
}

impl Subscription {
    /// The current connection, if any.
    pub fn client(&mut self) -> Option<&mut Client> {
        self.conn.as_mut()
    }

    /// Block for the next event. `Ok(None)` only after the subscription has ended.
    pub fn next_event(&mut self) -> Result<Option<Event>, ClientError> {
        loop {
            let Some(conn) = self.conn.as_mut() else {
                if !self.config.reconnect {
                    return Ok(None);
                }
                let conn = self.reconnect()?;
                self.conn = Some(conn);
                return Ok(Some(Event::Reconnected));
            };
            match conn.recv() {
                Ok(ServerMsg::Result(r)) => return Ok(Some(Event::Result(Box::new(r)))),
                Ok(ServerMsg::Missed(m)) => return Ok(Some(Event::Missed(m.count))),
                Ok(_) => {}
                Err(ClientError::Timeout) => return Err(ClientError::Timeout),
                Err(e) if e.is_transient() && self.config.reconnect => {
                    log::info!(
                        "connection to {} lost: {e}; reconnecting",
                        self.config.path.display()
                    );
                    self.conn = None;
                }
                Err(e) => {
                    self.conn = None;
                    self.config.reconnect = false;
                    return Err(e);
                }
            }
        }
    }

    fn reconnect(&mut self) -> Result<Client, ClientError> {
        let mut delay = self.config.reconnect_delay;
        let mut attempts = 0u32;
        loop {
            std::thread::sleep(delay);
            let attempt = Client::connect_with(self.config.clone()).and_then(|mut c| {
                c.start_subscription(&self.filter)?;
                Ok(c)
            });
            match attempt {
                Ok(c) => return Ok(c),
                Err(e) if e.is_transient() => {
                    attempts += 1;
                    if self
                        .config
                        .max_reconnect_attempts
                        .is_some_and(|max| attempts >= max)
                    {
                        self.config.reconnect = false;
                        return Err(e);
                    }
                    log::debug!("reconnect attempt {attempts} failed: {e}");
                    delay = (delay * 2).min(self.config.max_reconnect_delay);
                }
                Err(e) => {
                    self.config.reconnect = false;
                    return Err(e);
                }
            }
        }
    }
}

impl Iterator for Subscription {
    type Item = Result<Event, ClientError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_event().transpose()
    }
}
