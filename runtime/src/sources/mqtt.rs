//! MQTT sensor topics as a sample source.
//!
//! [`MqttSource`] subscribes to topics on a broker and turns the numbers published there into
//! windows of `window` readings of `channels` values each ([`FrameBuf::prepare_samples`]).
//!
//! **Payloads** ([`parse_payload`]): UTF-8 text holding one number (`21.5`), comma-separated
//! numbers (`0.1, -0.2, 9.8`) or a flat JSON array of numbers (`[0.1, -0.2, 9.8]`); whitespace
//! around numbers is ignored. A payload carries a positive multiple of `channels` values: each
//! consecutive group of `channels` is one reading (one row of the window), so a sensor can send
//! one reading per message or a batch. Readings of all subscribed topics go into one series, in
//! the order the broker delivers them. A payload that is not numbers, or whose count is not a
//! multiple of `channels`, is skipped and counted ([`MqttStats::malformed`]).
//!
//! **Threads and allocation**: rumqttc's event loop runs on a thread of its own
//! (`outpost-mqtt-io`). It parses each payload on the stack and hands the readings to the source
//! through a preallocated lock-free queue ([`ArrayQueue`]); the capture thread copies them into
//! the slot. Nothing on our side allocates per message or per window; rumqttc itself allocates for
//! every Publish it receives (topic and payload), on its own thread. When the queue is full (the
//! pipeline stopped taking frames), new readings are dropped and counted
//! ([`MqttStats::overflowed`]).
//!
//! **Broker loss**: every connection failure is counted ([`MqttStats::disconnects`]); the
//! event-loop thread reconnects with exponential backoff (100 ms doubling to 5 s, with jitter)
//! and subscribes again on every new session. The next [`Source::next_frame`] call after a
//! failure returns [`SourceError::Disconnected`] (once per failure seen), so the pipeline counts
//! it too. Readings are tagged with their session, so a partial window from before the gap is
//! dropped: no window straddles it.
//!
//! **Stopping**: `next_frame` waits for a full window. Give the pipeline's stop flag with
//! [`MqttSource::stop_on`] so that a quiet broker does not hold the capture thread: once it is
//! set, `next_frame` ends the stream.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use rumqttc::{Client, Connection, Event, MqttOptions, Packet, QoS};
use thiserror::Error;

use super::window::Windower;
use crate::pipeline::{FrameBuf, FrameMeta, Name, Source, SourceError, name};

/// Most values one reading (row) holds.
pub const MAX_CHANNELS: usize = 16;

/// Most values one payload holds (a batch of readings).
pub const MAX_PAYLOAD_VALUES: usize = 1024;

/// Readings the queue between the event loop and the source holds by default.
pub const DEFAULT_QUEUE: usize = 8192;

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Why a payload is not readings.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// Not UTF-8 text.
    #[error("not UTF-8 text")]
    NotText,
    /// No value at all.
    #[error("no number")]
    Empty,
    /// A field that is not a finite number.
    #[error("field {0} is not a finite number")]
    NotANumber(usize),
    /// More values than the buffer holds.
    #[error("more than {0} values")]
    TooMany(usize),
    /// A `[` without its `]` (or the reverse).
    #[error("unbalanced brackets")]
    Brackets,
}

/// Parse a payload (see the [module documentation](self)) into `out`; returns how many values
/// were written. Allocates nothing.
pub fn parse_payload(payload: &[u8], out: &mut [f32]) -> Result<usize, PayloadError> {
    let text = std::str::from_utf8(payload)
        .map_err(|_| PayloadError::NotText)?
        .trim();
    let inner = match (text.strip_prefix('['), text.ends_with(']')) {
        (Some(rest), true) => &rest[..rest.len() - 1],
        (None, false) => text,
        _ => return Err(PayloadError::Brackets),
    };
    if inner.trim().is_empty() {
        return Err(PayloadError::Empty);
    }
    let mut n = 0;
    for (i, field) in inner.split(',').enumerate() {
        let v: f32 = field
            .trim()
            .parse()
            .map_err(|_| PayloadError::NotANumber(i))?;
        if !v.is_finite() {
            return Err(PayloadError::NotANumber(i));
        }
        let cap = out.len();
        *out.get_mut(n).ok_or(PayloadError::TooMany(cap))? = v;
        n += 1;
    }
    Ok(n)
}

/// Where to connect and what to read.
#[derive(Debug, Clone)]
pub struct MqttConfig {
    /// Broker host name or address.
    pub host: String,
    /// Broker port (1883 by convention).
    pub port: u16,
    /// Topics (filters with `+`/`#` allowed) to subscribe to, at QoS 0.
    pub topics: Vec<String>,
    /// Values per reading (1..=[`MAX_CHANNELS`]).
    pub channels: usize,
    /// Readings per window.
    pub window: usize,
    /// Readings between the starts of consecutive windows (default: `window`, no overlap).
    pub hop: usize,
    /// MQTT client id (default: `outpost-<pid>-<n>`).
    pub client_id: Option<String>,
    /// Readings the hand-off queue holds ([`DEFAULT_QUEUE`]).
    pub queue: usize,
    /// MQTT keep-alive.
    pub keep_alive: Duration,
}

impl MqttConfig {
    /// Windows of `window` readings of `channels` values from `topics` on `host:port`.
    pub fn new(
        host: impl Into<String>,
        port: u16,
        topics: Vec<String>,
        channels: usize,
        window: usize,
    ) -> Self {
        MqttConfig {
            host: host.into(),
            port,
            topics,
            channels,
            window,
            hop: window,
            client_id: None,
            queue: DEFAULT_QUEUE,
            keep_alive: Duration::from_secs(5),
        }
    }

    /// Set the hop (readings between window starts).
    pub fn hop(mut self, hop: usize) -> Self {
        self.hop = hop;
        self
    }
}

/// What the event-loop thread has seen so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MqttStats {
    /// Sessions established (the first connection included).
    pub connects: u64,
    /// Subscriptions the broker acknowledged (one per session once it subscribed).
    pub subscribed: u64,
    /// Connection failures (a refused connect, a lost connection).
    pub disconnects: u64,
    /// Readings queued for the source.
    pub readings: u64,
    /// Payloads skipped: not numbers, or a count that is not a multiple of `channels`.
    pub malformed: u64,
    /// Readings dropped because the queue was full.
    pub overflowed: u64,
}

/// One reading, tagged with the session it came in (a change of session starts a new window).
#[derive(Debug, Clone, Copy)]
struct Reading {
    session: u64,
    values: [f32; MAX_CHANNELS],
}

/// State shared by the source and its event-loop thread.
#[derive(Debug)]
struct Shared {
    queue: ArrayQueue<Reading>,
    /// Set when the source is dropped: the event-loop thread ends.
    closed: AtomicBool,
    /// A session is up.
    connected: AtomicBool,
    connects: AtomicU64,
    subscribed: AtomicU64,
    disconnects: AtomicU64,
    readings: AtomicU64,
    malformed: AtomicU64,
    overflowed: AtomicU64,
    /// The last connection error, for [`SourceError::Disconnected`].
    last_error: Mutex<String>,
    /// The capture thread, woken when readings or failures arrive.
    waiter: OnceLock<Thread>,
}

impl Shared {
    fn wake(&self) {
        if let Some(t) = self.waiter.get() {
            t.unpark();
        }
    }

    fn stats(&self) -> MqttStats {
        MqttStats {
            connects: self.connects.load(Ordering::Acquire),
            subscribed: self.subscribed.load(Ordering::Acquire),
            disconnects: self.disconnects.load(Ordering::Acquire),
            readings: self.readings.load(Ordering::Acquire),
            malformed: self.malformed.load(Ordering::Acquire),
            overflowed: self.overflowed.load(Ordering::Acquire),
        }
    }
}

/// A view of a source's connection and counters that stays valid after the source moved into a
/// pipeline ([`MqttSource::monitor`]).
#[derive(Debug, Clone)]
pub struct MqttMonitor(Arc<Shared>);

impl MqttMonitor {
    /// The event-loop thread's counters.
    pub fn stats(&self) -> MqttStats {
        self.0.stats()
    }

    /// Whether a session with the broker is up now.
    pub fn is_connected(&self) -> bool {
        self.0.connected.load(Ordering::Acquire)
    }
}

/// MQTT topics as windows of samples. See the [module documentation](self).
pub struct MqttSource {
    shared: Arc<Shared>,
    client: Client,
    windower: Windower,
    /// Failures already returned as [`SourceError::Disconnected`].
    reported: u64,
    /// The session the readings in the windower came in.
    session: u64,
    label: Name,
    seq: u64,
    stop: Option<&'static AtomicBool>,
    broker: String,
}

impl std::fmt::Debug for MqttSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttSource")
            .field("broker", &self.broker)
            .field("label", &self.label)
            .field("windower", &self.windower)
            .field("seq", &self.seq)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl MqttSource {
    /// Start the event-loop thread, which connects to the broker and subscribes (the broker
    /// need not be up yet: it retries with backoff). Fails only on an invalid configuration.
    pub fn connect(config: MqttConfig) -> Result<Self, SourceError> {
        let invalid = |m: String| SourceError::Other(format!("mqtt: {m}"));
        if config.topics.is_empty() {
            return Err(invalid("give at least one topic".into()));
        }
        if config.channels == 0 || config.channels > MAX_CHANNELS {
            return Err(invalid(format!(
                "channels {}: give 1 to {MAX_CHANNELS}",
                config.channels
            )));
        }
        if config.window == 0 || config.hop == 0 || config.queue == 0 {
            return Err(invalid("window, hop and queue must be at least 1".into()));
        }
        static CLIENTS: AtomicU64 = AtomicU64::new(0);
        let id = config.client_id.clone().unwrap_or_else(|| {
            format!(
                "outpost-{}-{}",
                std::process::id(),
                CLIENTS.fetch_add(1, Ordering::Relaxed)
            )
        });
        let mut options = MqttOptions::new(id, config.host.clone(), config.port);
        options
            .set_keep_alive(config.keep_alive)
            .set_clean_session(true)
            .set_max_packet_size(64 * 1024, 64 * 1024);
        let (client, connection) = Client::new(options, config.topics.len() + 8);
        let shared = Arc::new(Shared {
            queue: ArrayQueue::new(config.queue),
            closed: AtomicBool::new(false),
            connected: AtomicBool::new(false),
            connects: AtomicU64::new(0),
            subscribed: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            readings: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            overflowed: AtomicU64::new(0),
            last_error: Mutex::new(String::new()),
            waiter: OnceLock::new(),
        });
        let broker = format!("{}:{}", config.host, config.port);
        let label = name(&config.topics[0]);
        let windower = Windower::new(config.window, config.channels, config.hop);
        let io = EventLoop {
            shared: Arc::clone(&shared),
            client: client.clone(),
            topics: config.topics,
            channels: config.channels,
            broker: broker.clone(),
        };
        thread::Builder::new()
            .name("outpost-mqtt-io".into())
            .spawn(move || io.run(connection))
            .map_err(|e| invalid(format!("cannot start the event-loop thread: {e}")))?;
        Ok(MqttSource {
            shared,
            client,
            windower,
            reported: 0,
            session: 0,
            label,
            seq: 0,
            stop: None,
            broker,
        })
    }

    /// End the stream (`next_frame` returns `Ok(None)`) once `stop` is set: pass the flag
    /// given to [`crate::pipeline::Pipeline::run`].
    pub fn stop_on(mut self, stop: &'static AtomicBool) -> Self {
        self.stop = Some(stop);
        self
    }

    /// Name frames with `label` instead of the first topic.
    pub fn named(mut self, label: &str) -> Self {
        self.label = name(label);
        self
    }

    /// The event-loop thread's counters.
    pub fn stats(&self) -> MqttStats {
        self.shared.stats()
    }

    /// A handle on the connection state and counters, for after the source moved into a
    /// pipeline.
    pub fn monitor(&self) -> MqttMonitor {
        MqttMonitor(Arc::clone(&self.shared))
    }

    /// Whether a session with the broker is up now.
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::Acquire)
    }
}

impl Drop for MqttSource {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        // Wakes an event loop waiting on a quiet connection; it then sees `closed` and ends.
        let _ = self.client.try_disconnect();
    }
}

impl Source for MqttSource {
    fn next_frame(&mut self, slot: &mut FrameBuf) -> Result<Option<FrameMeta>, SourceError> {
        let sh = &*self.shared;
        if sh.waiter.get().is_none() {
            let _ = sh.waiter.set(thread::current());
        }
        loop {
            if self.stop.is_some_and(|s| s.load(Ordering::Acquire)) {
                return Ok(None);
            }
            let failures = sh.disconnects.load(Ordering::Acquire);
            if failures > self.reported {
                self.reported = failures;
                let why = sh.last_error.lock().map(|e| e.clone()).unwrap_or_default();
                return Err(SourceError::Disconnected(format!(
                    "mqtt broker {}: {why}",
                    self.broker
                )));
            }
            while let Some(r) = sh.queue.pop() {
                if r.session != self.session {
                    // Readings of a new session: the partial window before the gap is dropped.
                    self.session = r.session;
                    self.windower.reset();
                }
                if self.windower.push(&r.values[..self.windower.channels()]) {
                    let w = &mut self.windower;
                    w.take(slot.prepare_samples(w.frames(), w.channels())?);
                    let meta = FrameMeta {
                        seq: self.seq,
                        name: self.label.clone(),
                        index: self.seq as u32,
                    };
                    self.seq += 1;
                    return Ok(Some(meta));
                }
            }
            thread::park_timeout(Duration::from_millis(20));
        }
    }

    fn frame_capacity(&self) -> usize {
        self.windower.frames() * self.windower.channels() * 4
    }

    fn sample_window(&self) -> Option<(usize, usize)> {
        Some((self.windower.frames(), self.windower.channels()))
    }
}

/// The event-loop thread: drives rumqttc, parses payloads, queues readings.
struct EventLoop {
    shared: Arc<Shared>,
    client: Client,
    topics: Vec<String>,
    channels: usize,
    broker: String,
}

impl EventLoop {
    fn run(self, mut connection: Connection) {
        let sh = &*self.shared;
        let mut backoff = BACKOFF_MIN;
        let mut values = [0f32; MAX_PAYLOAD_VALUES];
        // Jitter from the clock: spreads reconnects of many sources without a RNG.
        let seed = Instant::now();
        for event in connection.iter() {
            if sh.closed.load(Ordering::Acquire) {
                break;
            }
            match event {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    self.queue_payload(&p.payload, &mut values);
                }
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    backoff = BACKOFF_MIN;
                    sh.connected.store(true, Ordering::Release);
                    sh.connects.fetch_add(1, Ordering::AcqRel);
                    log::info!("mqtt {}: connected", self.broker);
                    for t in &self.topics {
                        if let Err(e) = self.client.try_subscribe(t.as_str(), QoS::AtMostOnce) {
                            log::warn!("mqtt {}: cannot subscribe to {t}: {e}", self.broker);
                        }
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    sh.subscribed.fetch_add(1, Ordering::AcqRel);
                }
                Ok(_) => {}
                Err(e) => {
                    sh.connected.store(false, Ordering::Release);
                    sh.disconnects.fetch_add(1, Ordering::AcqRel);
                    if let Ok(mut last) = sh.last_error.lock() {
                        *last = e.to_string();
                    }
                    log::warn!("mqtt {}: {e}; retrying in {backoff:?}", self.broker);
                    sh.wake();
                    let jitter = Duration::from_micros(u64::from(seed.elapsed().subsec_micros()))
                        .mul_f64(backoff.as_secs_f64() / 4.0);
                    let until = Instant::now() + backoff + jitter;
                    while Instant::now() < until && !sh.closed.load(Ordering::Acquire) {
                        thread::sleep(Duration::from_millis(10));
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
        log::debug!("mqtt {}: event loop ended", self.broker);
    }

    /// Parse one payload into readings and queue them (no allocation).
    fn queue_payload(&self, payload: &[u8], values: &mut [f32; MAX_PAYLOAD_VALUES]) {
        let sh = &*self.shared;
        let c = self.channels;
        let n = match parse_payload(payload, values) {
            Ok(n) if n % c == 0 => n,
            Ok(n) => {
                sh.malformed.fetch_add(1, Ordering::Relaxed);
                log::debug!("mqtt {}: {n} values is not a multiple of {c}", self.broker);
                return;
            }
            Err(e) => {
                sh.malformed.fetch_add(1, Ordering::Relaxed);
                log::debug!("mqtt {}: payload skipped: {e}", self.broker);
                return;
            }
        };
        let session = sh.connects.load(Ordering::Acquire);
        for row in values[..n].chunks_exact(c) {
            let mut r = Reading {
                session,
                values: [0.0; MAX_CHANNELS],
            };
            r.values[..c].copy_from_slice(row);
            if sh.queue.push(r).is_err() {
                sh.overflowed.fetch_add(1, Ordering::Relaxed);
            } else {
                sh.readings.fetch_add(1, Ordering::Release);
            }
        }
        sh.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::{PayloadError, parse_payload};

    #[test]
    fn payload_forms() {
        let mut out = [0f32; 8];
        assert_eq!(parse_payload(b" 21.5\n", &mut out), Ok(1));
        assert_eq!(out[0], 21.5);
        assert_eq!(parse_payload(b"0.1, -2,3e1", &mut out), Ok(3));
        assert_eq!(&out[..3], &[0.1, -2.0, 30.0]);
        assert_eq!(parse_payload(b"[1, 2.5 ,-3]", &mut out), Ok(3));
        assert_eq!(&out[..3], &[1.0, 2.5, -3.0]);
    }

    #[test]
    fn payload_errors() {
        let mut out = [0f32; 2];
        assert_eq!(parse_payload(b"", &mut out), Err(PayloadError::Empty));
        assert_eq!(parse_payload(b"[]", &mut out), Err(PayloadError::Empty));
        assert_eq!(
            parse_payload(b"1,x", &mut out),
            Err(PayloadError::NotANumber(1))
        );
        assert_eq!(
            parse_payload(b"1,,2", &mut out),
            Err(PayloadError::NotANumber(1))
        );
        assert_eq!(
            parse_payload(b"NaN", &mut out),
            Err(PayloadError::NotANumber(0))
        );
        assert_eq!(
            parse_payload(b"[1,2", &mut out),
            Err(PayloadError::Brackets)
        );
        assert_eq!(
            parse_payload(b"1,2,3", &mut out),
            Err(PayloadError::TooMany(2))
        );
        assert_eq!(
            parse_payload(&[0xff, 0x31], &mut out),
            Err(PayloadError::NotText)
        );
        assert_eq!(
            parse_payload(b"{\"x\": 1}", &mut out),
            Err(PayloadError::NotANumber(0))
        );
    }
}
