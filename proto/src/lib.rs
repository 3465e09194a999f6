//! Outpost IPC wire protocol.
//!
//! Every message is one [postcard] value. Each `SOCK_SEQPACKET` packet (the socket keeps packet
//! boundaries) carries exactly one [`ClientMsg`] from a client, or one or more [`ServerMsg`]s back
//! to back from the server (it batches results for clients that are behind; see [`Packet`]). Every type is bounded: no allocator is needed to encode or decode, and
//! [`MAX_SERVER_MSG`] / [`MAX_CLIENT_MSG`] are the largest encodings that can exist, computed at
//! compile time from [`MaxSize`].
//!
//! The wire format is specified byte by byte in `docs/ipc.md`; the golden tests in
//! `proto/tests/golden.rs` freeze it. Changing the encoding of any existing message requires a new
//! [`PROTOCOL_VERSION`]. New enum variants may only be appended.
#![no_std]
#![forbid(unsafe_code)]

use core::fmt;
use core::ops::{Deref, DerefMut};

pub use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

mod decode_into;

/// The protocol version this crate speaks. A server refuses any other version with
/// [`ErrorCode::UnsupportedVersion`].
pub const PROTOCOL_VERSION: u16 = 1;

/// Most detections in one result.
pub const MAX_DETECTIONS: usize = 100;
/// Most keypoints on one detection (BlazeFace has 6).
pub const MAX_KEYPOINTS: usize = 6;
/// Most class scores in one result (classification heads).
pub const MAX_CLASS_SCORES: usize = 16;
/// Most sensor events in one result.
pub const MAX_SENSOR_EVENTS: usize = 8;
/// Most stream ids in a subscription filter.
pub const MAX_FILTER_STREAMS: usize = 16;
/// Most class ids in a subscription filter.
pub const MAX_FILTER_CLASSES: usize = 32;
/// Most models in a model listing.
pub const MAX_MODELS: usize = 8;
/// Longest name (model id, client name), in UTF-8 bytes.
pub const MAX_NAME: usize = 32;
/// Longest error detail, in UTF-8 bytes.
pub const MAX_DETAIL: usize = 64;

/// Capability bits exchanged in [`Hello`] / [`ServerHello`].
pub mod caps {
    /// Detections may carry keypoints.
    pub const KEYPOINTS: u32 = 1 << 0;
    /// Results may carry class scores.
    pub const CLASS_SCORES: u32 = 1 << 1;
    /// Results may carry sensor events.
    pub const SENSOR_EVENTS: u32 = 1 << 2;
    /// [`crate::RequestBody::ListModels`] is answered.
    pub const MODEL_LIST: u32 = 1 << 3;
    /// Model swap requests (reserved, not yet implemented).
    pub const MODEL_SWAP: u32 = 1 << 4;
    /// Everything protocol version 1 defines and the reference server implements.
    pub const ALL_V1: u32 = KEYPOINTS | CLASS_SCORES | SENSOR_EVENTS | MODEL_LIST;
}

/// Number of bytes of the varint that encodes `n` (postcard's unsigned LEB128).
pub const fn varint_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

/// A vector of at most `N` elements: encoded as a varint length then the elements.
///
/// A newtype over [`heapless::Vec`] so that it can implement [`MaxSize`] (postcard's own impl
/// targets heapless 0.7). Decoding more than `N` elements is an error, never an allocation.
#[derive(Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BoundedVec<T, const N: usize>(pub heapless::Vec<T, N>);

impl<T: MaxSize, const N: usize> MaxSize for BoundedVec<T, N> {
    const POSTCARD_MAX_SIZE: usize = varint_len(N) + N * T::POSTCARD_MAX_SIZE;
}

impl<T, const N: usize> BoundedVec<T, N> {
    /// An empty vector.
    pub const fn new() -> Self {
        BoundedVec(heapless::Vec::new())
    }

    /// Build from a slice; `Err(CapacityError)` if it holds more than `N` elements.
    pub fn from_slice(items: &[T]) -> Result<Self, CapacityError>
    where
        T: Clone,
    {
        heapless::Vec::from_slice(items)
            .map(BoundedVec)
            .map_err(|_| CapacityError)
    }
}

impl<T, const N: usize> Deref for BoundedVec<T, N> {
    type Target = heapless::Vec<T, N>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<T, const N: usize> DerefMut for BoundedVec<T, N> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl<T: fmt::Debug, const N: usize> fmt::Debug for BoundedVec<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

/// A UTF-8 string of at most `N` bytes: encoded as a varint byte length then the bytes.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BoundedString<const N: usize>(pub heapless::String<N>);

impl<const N: usize> MaxSize for BoundedString<N> {
    const POSTCARD_MAX_SIZE: usize = varint_len(N) + N;
}

impl<const N: usize> BoundedString<N> {
    /// An empty string.
    pub const fn new() -> Self {
        BoundedString(heapless::String::new())
    }

    /// Copy `s`; `Err(CapacityError)` if it is longer than `N` bytes.
    pub fn try_from_str(s: &str) -> Result<Self, CapacityError> {
        let mut out = heapless::String::new();
        out.push_str(s).map_err(|_| CapacityError)?;
        Ok(BoundedString(out))
    }

    /// Copy `s`, cut at the last character boundary that fits in `N` bytes.
    pub fn truncating(s: &str) -> Self {
        let mut end = s.len().min(N);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        let mut out = heapless::String::new();
        // Cannot fail: `end <= N` and is a char boundary.
        let _ = out.push_str(&s[..end]);
        BoundedString(out)
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl<const N: usize> fmt::Debug for BoundedString<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0.as_str(), f)
    }
}

impl<const N: usize> fmt::Display for BoundedString<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

/// A name: model id, client name.
pub type Name = BoundedString<MAX_NAME>;

/// More elements than a bounded container holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapacityError;

impl fmt::Display for CapacityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bounded container capacity exceeded")
    }
}

// ---------------------------------------------------------------------------------------------
// Client → server
// ---------------------------------------------------------------------------------------------

/// A message from a client to the server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, MaxSize)]
pub enum ClientMsg {
    /// Must be the first message on a connection.
    Hello(Hello),
    /// Start (or replace) the subscription; results flow after [`ServerMsg::Subscribed`].
    Subscribe(Subscribe),
    /// A request answered by one [`ServerMsg::Response`] with the same id.
    Request(Request),
    /// The client is leaving; the server closes the connection.
    Bye,
}

/// Client handshake.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, MaxSize)]
pub struct Hello {
    /// Must equal the server's [`PROTOCOL_VERSION`].
    pub version: u16,
    /// [`caps`] bits the client understands.
    pub capabilities: u32,
    /// Free-form name for logs and status (may be empty).
    pub client_name: Name,
}

/// What a client wants to receive. Empty lists mean "all".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, MaxSize)]
pub struct Subscribe {
    /// Stream ids to receive; empty = every stream.
    pub streams: BoundedVec<u16, MAX_FILTER_STREAMS>,
    /// Class ids to keep in detections and class scores; empty = every class.
    pub classes: BoundedVec<u16, MAX_FILTER_CLASSES>,
    /// Detections and class scores below this score are removed.
    pub min_score: f32,
    /// Whether detections keep their keypoints.
    pub keypoints: bool,
}

impl Subscribe {
    /// Everything: all streams, all classes, every score, with keypoints.
    pub fn all() -> Self {
        Subscribe {
            streams: BoundedVec::new(),
            classes: BoundedVec::new(),
            min_score: f32::NEG_INFINITY,
            keypoints: true,
        }
    }

    /// Whether a result of `stream` is wanted at all.
    pub fn wants_stream(&self, stream: u16) -> bool {
        self.streams.is_empty() || self.streams.contains(&stream)
    }

    /// Whether this subscription changes the content of results (not just which are sent).
    pub fn filters_content(&self) -> bool {
        !self.classes.is_empty() || !self.keypoints || self.min_score > f32::NEG_INFINITY
    }

    /// Whether a (class, score) pair passes the class and score filters.
    pub fn keeps(&self, class: u16, score: f32) -> bool {
        (self.classes.is_empty() || self.classes.contains(&class)) && score >= self.min_score
    }

    /// Remove from `result` what this subscription does not want (in place, no allocation).
    pub fn apply(&self, result: &mut ResultMsg) {
        result.detections.retain(|d| self.keeps(d.class, d.score));
        if !self.keypoints {
            for d in result.detections.iter_mut() {
                d.keypoints.clear();
            }
        }
        result.class_scores.retain(|c| self.keeps(c.class, c.score));
    }
}

/// A request with a client-chosen id echoed in the response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, MaxSize)]
pub struct Request {
    /// Echoed in [`Response::id`].
    pub id: u32,
    /// What is asked.
    pub body: RequestBody,
}

/// The requests. Model swap will be appended as a new variant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, MaxSize)]
pub enum RequestBody {
    /// Server status and counters.
    Status,
    /// The models the runtime has loaded.
    ListModels,
}

// ---------------------------------------------------------------------------------------------
// Server → client
// ---------------------------------------------------------------------------------------------

/// A message from the server to a client.
// `no_std` without an allocator: the large Result variant cannot be boxed. Receivers keep one
// `ServerMsg` and decode into it; the server encodes results without building a `ServerMsg`.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, MaxSize)]
pub enum ServerMsg {
    /// Answer to a valid [`ClientMsg::Hello`].
    Hello(ServerHello),
    /// The subscription is active: results published from now on are delivered.
    Subscribed,
    /// One inference result.
    Result(ResultMsg),
    /// `n` results for this client were dropped (its queue was full) before the next message.
    Missed(Missed),
    /// Answer to a [`ClientMsg::Request`].
    Response(Response),
    /// Something went wrong; fatal errors are followed by the server closing the connection.
    Error(ErrorMsg),
}

/// Wire tag (postcard enum index) of [`ServerMsg::Result`]; see [`encode_result`].
pub const SERVER_TAG_RESULT: u8 = 2;
/// Wire tag of [`ServerMsg::Missed`].
pub const SERVER_TAG_MISSED: u8 = 3;

/// Server handshake.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, MaxSize)]
pub struct ServerHello {
    /// The server's [`PROTOCOL_VERSION`].
    pub version: u16,
    /// [`caps`] bits the server implements.
    pub capabilities: u32,
    /// Largest message the server will send, in bytes ([`MAX_SERVER_MSG`]).
    pub max_message: u32,
    /// Results the server queues for this client before dropping the oldest.
    pub queue_capacity: u32,
}

/// Results dropped for this client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct Missed {
    /// How many results were dropped since the previous message.
    pub count: u32,
}

/// One inference result.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize, MaxSize)]
pub struct ResultMsg {
    /// Source stream id.
    pub stream: u16,
    /// Frame sequence number within the stream.
    pub seq: u64,
    /// When the frame was captured, ns since the Unix epoch (CLOCK_REALTIME).
    pub capture_ns: u64,
    /// When inference finished, ns since the Unix epoch.
    pub inference_ns: u64,
    /// When the result was published, ns since the Unix epoch.
    pub publish_ns: u64,
    /// Which model produced it.
    pub model: ModelRef,
    /// Detections (boxes), best first by convention.
    pub detections: BoundedVec<Detection, MAX_DETECTIONS>,
    /// Classification scores.
    pub class_scores: BoundedVec<ClassScore, MAX_CLASS_SCORES>,
    /// Sensor events (anomaly, keyword, threshold crossings).
    pub events: BoundedVec<SensorEvent, MAX_SENSOR_EVENTS>,
}

/// Model id and version.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, MaxSize)]
pub struct ModelRef {
    /// Model id (e.g. `blazeface-short`).
    pub id: Name,
    /// Monotonic model version.
    pub version: u32,
}

/// One detected object.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize, MaxSize)]
pub struct Detection {
    /// Class id.
    pub class: u16,
    /// Score in [0, 1].
    pub score: f32,
    /// Box, normalised to the frame (0..1).
    pub bbox: BBox,
    /// Keypoints, normalised to the frame; empty if the model has none or the client asked none.
    pub keypoints: BoundedVec<Point, MAX_KEYPOINTS>,
}

/// Axis-aligned box in normalised frame coordinates.
#[derive(Clone, Copy, Debug, PartialEq, Default, Serialize, Deserialize, MaxSize)]
pub struct BBox {
    /// Left edge.
    pub x_min: f32,
    /// Top edge.
    pub y_min: f32,
    /// Right edge.
    pub x_max: f32,
    /// Bottom edge.
    pub y_max: f32,
}

/// A point in normalised frame coordinates.
#[derive(Clone, Copy, Debug, PartialEq, Default, Serialize, Deserialize, MaxSize)]
pub struct Point {
    /// Horizontal, 0 = left.
    pub x: f32,
    /// Vertical, 0 = top.
    pub y: f32,
}

/// A class and its score.
#[derive(Clone, Copy, Debug, PartialEq, Default, Serialize, Deserialize, MaxSize)]
pub struct ClassScore {
    /// Class id.
    pub class: u16,
    /// Score in [0, 1].
    pub score: f32,
}

/// A sensor event.
#[derive(Clone, Copy, Debug, PartialEq, Default, Serialize, Deserialize, MaxSize)]
pub struct SensorEvent {
    /// Sensor id.
    pub sensor: u16,
    /// Event kind (application-defined).
    pub kind: u16,
    /// Measured value or score.
    pub value: f32,
    /// When it happened, ns since the Unix epoch.
    pub timestamp_ns: u64,
}

/// Answer to a [`Request`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, MaxSize)]
pub struct Response {
    /// The request's id.
    pub id: u32,
    /// The answer.
    pub body: ResponseBody,
}

/// The answers.
#[allow(clippy::large_enum_variant)] // no allocator: the model list cannot be boxed
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, MaxSize)]
pub enum ResponseBody {
    /// Answer to [`RequestBody::Status`].
    Status(Status),
    /// Answer to [`RequestBody::ListModels`].
    Models(BoundedVec<ModelInfo, MAX_MODELS>),
}

/// Server status and counters.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, MaxSize)]
pub struct Status {
    /// Milliseconds since the server started.
    pub uptime_ms: u64,
    /// Connected clients (handshaken or not).
    pub clients: u32,
    /// Results published.
    pub published: u64,
    /// Results the publisher dropped because the server's I/O thread was behind.
    pub publish_dropped: u64,
    /// Results dropped for slow clients, all clients together.
    pub missed_total: u64,
    /// Clients disconnected for being too slow.
    pub disconnected_slow: u64,
    /// Clients disconnected for protocol errors or refused (peer credentials, limits).
    pub rejected: u64,
    /// Results dropped for the asking client.
    pub your_missed: u64,
    /// Per-client queue capacity.
    pub queue_capacity: u32,
}

/// A loaded model.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, MaxSize)]
pub struct ModelInfo {
    /// Model id.
    pub id: Name,
    /// Model version.
    pub version: u32,
    /// sha256 of the model file.
    pub sha256: [u8; 32],
    /// Input width in pixels (0 if not an image model).
    pub input_width: u16,
    /// Input height in pixels (0 if not an image model).
    pub input_height: u16,
    /// Number of output classes.
    pub classes: u16,
    /// Whether results currently come from this model.
    pub active: bool,
}

/// An error report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct ErrorMsg {
    /// What kind of error.
    pub code: ErrorCode,
    /// Human-readable detail (may be empty).
    pub detail: BoundedString<MAX_DETAIL>,
}

/// Error kinds. All but [`ErrorCode::Unsupported`] are followed by a disconnect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum ErrorCode {
    /// The client's protocol version is not the server's.
    UnsupportedVersion,
    /// A message could not be decoded.
    Malformed,
    /// A message was larger than [`MAX_CLIENT_MSG`].
    Oversized,
    /// A valid message at the wrong time (e.g. anything before Hello).
    UnexpectedMessage,
    /// The client fell too far behind and is disconnected.
    TooSlow,
    /// The peer's uid/gid is not allowed.
    NotPermitted,
    /// The request is valid but not implemented by this server (connection stays open).
    Unsupported,
    /// Too many clients.
    Busy,
    /// No Hello within the handshake timeout.
    HandshakeTimeout,
    /// The server is shutting down.
    ShuttingDown,
}

impl ErrorCode {
    /// Short lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::UnsupportedVersion => "unsupported protocol version",
            ErrorCode::Malformed => "malformed message",
            ErrorCode::Oversized => "oversized message",
            ErrorCode::UnexpectedMessage => "unexpected message",
            ErrorCode::TooSlow => "client too slow",
            ErrorCode::NotPermitted => "not permitted",
            ErrorCode::Unsupported => "unsupported request",
            ErrorCode::Busy => "server busy",
            ErrorCode::HandshakeTimeout => "handshake timeout",
            ErrorCode::ShuttingDown => "server shutting down",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ErrorMsg {
    /// An error with a detail (truncated to [`MAX_DETAIL`] bytes).
    pub fn new(code: ErrorCode, detail: &str) -> Self {
        ErrorMsg {
            code,
            detail: BoundedString::truncating(detail),
        }
    }
}

/// Largest encoded [`ServerMsg`], in bytes.
pub const MAX_SERVER_MSG: usize = ServerMsg::POSTCARD_MAX_SIZE;
/// Largest encoded [`ClientMsg`], in bytes.
pub const MAX_CLIENT_MSG: usize = ClientMsg::POSTCARD_MAX_SIZE;

/// Largest server packet, in bytes: a batch of messages never exceeds it (and one message always
/// fits). Receive server packets into a buffer at least this large.
pub const MAX_PACKET: usize = 32 * 1024;

// Every message fits a packet (with a `Missed` notice before it) and a stack buffer.
const _: () = assert!(MAX_SERVER_MSG + 16 <= MAX_PACKET && MAX_CLIENT_MSG < 256);

// ---------------------------------------------------------------------------------------------
// Encoding and decoding
// ---------------------------------------------------------------------------------------------

/// Encoding or decoding failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// The output buffer is too small.
    BufferFull,
    /// The input ended early.
    Truncated,
    /// Bytes were left after a complete message.
    TrailingBytes,
    /// The input is not a valid message (bad tag, varint, UTF-8, too many elements...).
    Invalid,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WireError::BufferFull => "output buffer too small",
            WireError::Truncated => "message truncated",
            WireError::TrailingBytes => "trailing bytes after message",
            WireError::Invalid => "invalid message",
        })
    }
}

impl core::error::Error for WireError {}

fn map_ser(e: postcard::Error) -> WireError {
    match e {
        postcard::Error::SerializeBufferFull => WireError::BufferFull,
        _ => WireError::Invalid,
    }
}

fn map_de(e: postcard::Error) -> WireError {
    match e {
        postcard::Error::DeserializeUnexpectedEnd => WireError::Truncated,
        _ => WireError::Invalid,
    }
}

/// Encode `value` into `buf`; returns the number of bytes written.
pub fn encode<T: Serialize>(value: &T, buf: &mut [u8]) -> Result<usize, WireError> {
    postcard::to_slice(value, buf)
        .map(|s| s.len())
        .map_err(map_ser)
}

/// Decode exactly one value from `bytes` (trailing bytes are an error).
pub fn decode<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, WireError> {
    let (value, rest) = postcard::take_from_bytes(bytes).map_err(map_de)?;
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(WireError::TrailingBytes)
    }
}

/// Decode one value from the front of `bytes`; returns it and the bytes after it. Server packets
/// may carry several messages back to back: decode until the rest is empty.
pub fn decode_prefix<'de, T: Deserialize<'de>>(
    bytes: &'de [u8],
) -> Result<(T, &'de [u8]), WireError> {
    postcard::take_from_bytes(bytes).map_err(map_de)
}

/// Encode `ServerMsg::Result(result)` without constructing the `ServerMsg` (no copy of the
/// result): the tag byte [`SERVER_TAG_RESULT`] then the result. Byte-identical to
/// `encode(&ServerMsg::Result(result.clone()), buf)` (a property test checks this), but written
/// directly rather than through serde: this is the publisher's hot path.
pub fn encode_result(result: &ResultMsg, buf: &mut [u8]) -> Result<usize, WireError> {
    let mut w = Writer { buf, pos: 0 };
    w.byte(SERVER_TAG_RESULT)?;
    w.varint(u64::from(result.stream))?;
    w.varint(result.seq)?;
    w.varint(result.capture_ns)?;
    w.varint(result.inference_ns)?;
    w.varint(result.publish_ns)?;
    w.str(result.model.id.as_str())?;
    w.varint(u64::from(result.model.version))?;
    w.varint(result.detections.len() as u64)?;
    for d in result.detections.iter() {
        w.detection(d)?;
    }
    w.varint(result.class_scores.len() as u64)?;
    for c in result.class_scores.iter() {
        w.varint(u64::from(c.class))?;
        w.f32(c.score)?;
    }
    w.varint(result.events.len() as u64)?;
    for e in result.events.iter() {
        w.varint(u64::from(e.sensor))?;
        w.varint(u64::from(e.kind))?;
        w.f32(e.value)?;
        w.varint(e.timestamp_ns)?;
    }
    Ok(w.pos)
}

/// A minimal postcard writer for the hot path.
struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Writer<'_> {
    #[inline]
    fn bytes(&mut self, b: &[u8]) -> Result<(), WireError> {
        let end = self.pos + b.len();
        self.buf
            .get_mut(self.pos..end)
            .ok_or(WireError::BufferFull)?
            .copy_from_slice(b);
        self.pos = end;
        Ok(())
    }

    #[inline]
    fn byte(&mut self, b: u8) -> Result<(), WireError> {
        *self.buf.get_mut(self.pos).ok_or(WireError::BufferFull)? = b;
        self.pos += 1;
        Ok(())
    }

    #[inline]
    fn varint(&mut self, mut v: u64) -> Result<(), WireError> {
        while v >= 0x80 {
            self.byte((v as u8) | 0x80)?;
            v >>= 7;
        }
        self.byte(v as u8)
    }

    #[inline]
    fn f32(&mut self, f: f32) -> Result<(), WireError> {
        self.bytes(&f.to_le_bytes())
    }

    #[inline]
    fn str(&mut self, s: &str) -> Result<(), WireError> {
        self.varint(s.len() as u64)?;
        self.bytes(s.as_bytes())
    }

    /// One detection. Where [`DETECTION_MAX`] bytes remain (always, except near the end of a
    /// too-small buffer) it is assembled in a fixed-size window with one bounds check instead
    /// of one per field; otherwise field by field, so a short buffer still fails exactly like
    /// postcard (`BufferFull`, never a panic).
    #[inline]
    fn detection(&mut self, d: &Detection) -> Result<(), WireError> {
        let end = self.pos + DETECTION_MAX;
        if let Some(window) = self.buf.get_mut(self.pos..end) {
            let window: &mut [u8; DETECTION_MAX] =
                window.try_into().map_err(|_| WireError::BufferFull)?;
            self.pos += put_detection(d, window);
            return Ok(());
        }
        self.varint(u64::from(d.class))?;
        self.f32(d.score)?;
        self.f32(d.bbox.x_min)?;
        self.f32(d.bbox.y_min)?;
        self.f32(d.bbox.x_max)?;
        self.f32(d.bbox.y_max)?;
        self.varint(d.keypoints.len() as u64)?;
        for p in d.keypoints.iter() {
            self.f32(p.x)?;
            self.f32(p.y)?;
        }
        Ok(())
    }
}

/// Largest encoding of one [`Detection`]: class (varint u16, ≤ 3 bytes), score and box
/// (5 × f32), keypoint count (1 byte: at most [`MAX_KEYPOINTS`] < 128), keypoints (2 × f32 each).
const DETECTION_MAX: usize = 3 + 5 * 4 + 1 + MAX_KEYPOINTS * 8;

/// Fixed part of a detection after its class: score, box, keypoint count, keypoints.
const DETECTION_BODY_MAX: usize = DETECTION_MAX - 3;

/// Write `d` at the start of `out`; returns the bytes written. Every index is checked against
/// the array's constant length, so the compiler removes the checks.
#[inline]
fn put_detection(d: &Detection, out: &mut [u8; DETECTION_MAX]) -> usize {
    let class = d.class;
    let n = if class < 0x80 {
        out[0] = class as u8;
        1
    } else if class < 0x4000 {
        out[0] = class as u8 | 0x80;
        out[1] = (class >> 7) as u8;
        2
    } else {
        out[0] = class as u8 | 0x80;
        out[1] = (class >> 7) as u8 | 0x80;
        out[2] = (class >> 14) as u8;
        3
    };
    let mut body = [0u8; DETECTION_BODY_MAX];
    body[0..4].copy_from_slice(&d.score.to_le_bytes());
    body[4..8].copy_from_slice(&d.bbox.x_min.to_le_bytes());
    body[8..12].copy_from_slice(&d.bbox.y_min.to_le_bytes());
    body[12..16].copy_from_slice(&d.bbox.x_max.to_le_bytes());
    body[16..20].copy_from_slice(&d.bbox.y_max.to_le_bytes());
    let points = d.keypoints.len().min(MAX_KEYPOINTS);
    body[20] = points as u8;
    for (i, p) in d.keypoints.iter().take(MAX_KEYPOINTS).enumerate() {
        let at = 21 + i * 8;
        body[at..at + 4].copy_from_slice(&p.x.to_le_bytes());
        body[at + 4..at + 8].copy_from_slice(&p.y.to_le_bytes());
    }
    let len = 21 + points * 8;
    out[n..n + len].copy_from_slice(&body[..len]);
    n + len
}

// The keypoint count is one varint byte.
const _: () = assert!(MAX_KEYPOINTS < 0x80);

impl ClientMsg {
    /// Encode into `buf`.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        encode(self, buf)
    }

    /// Decode one message from exactly `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        decode(bytes)
    }
}

impl ServerMsg {
    /// Encode into `buf`.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        encode(self, buf)
    }

    /// Iterate over the messages of one server packet (one or more messages back to back).
    pub fn packet(bytes: &[u8]) -> Packet<'_> {
        Packet { rest: bytes }
    }

    /// Decode one message from exactly `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        decode(bytes)
    }
}

/// The messages of one server packet; yields `Err` once (and then ends) on a malformed message.
#[derive(Debug, Clone)]
pub struct Packet<'a> {
    rest: &'a [u8],
}

impl Iterator for Packet<'_> {
    type Item = Result<ServerMsg, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match decode_prefix::<ServerMsg>(self.rest) {
            Ok((msg, rest)) => {
                self.rest = rest;
                Some(Ok(msg))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_len_matches_postcard() {
        for n in [0usize, 1, 127, 128, 16383, 16384, usize::MAX] {
            let mut buf = [0u8; 16];
            assert_eq!(encode(&n, &mut buf).unwrap(), varint_len(n), "{n}");
        }
    }
}
