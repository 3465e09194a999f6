//! Per-client state: connection phase, cursor into the history ring (the client's bounded
//! queue), missed-result accounting and the one buffered control message.

use std::io;
use std::sync::atomic::Ordering;
use std::time::Instant;

use outpost_proto::{self as proto, ErrorCode, ErrorMsg, ServerMsg, Subscribe};

use super::shared::Counters;
use super::sys::{PeerCred, SeqPacket};

/// Control messages (everything but results) are small; one is buffered per client.
pub(super) const MAX_CTRL: usize = <ServerMsg as proto::MaxSize>::POSTCARD_MAX_SIZE;

pub(super) enum Phase {
    Handshake { deadline: Instant },
    Ready,
    Subscribed(Subscribe),
}

pub(super) struct Client {
    pub(super) sock: SeqPacket,
    pub(super) peer: PeerCred,
    pub(super) phase: Phase,
    pub(super) cursor: u64,
    /// Results dropped and not yet reported with `Missed`.
    pub(super) missed_pending: u64,
    /// Results dropped since the client was last caught up.
    pub(super) missed_run: u64,
    pub(super) missed_total: u64,
    /// One pending control message (handshake, response, error).
    pub(super) ctrl: Vec<u8>,
    /// Close once the pending control message is sent (or cannot be).
    pub(super) close_after_ctrl: bool,
    /// Waiting for EPOLLOUT.
    pub(super) write_blocked: bool,
    /// Interest currently registered with epoll.
    pub(super) interest: u32,
}

pub(super) enum Fate {
    Keep,
    Close,
}

/// Move a client that fell off the history window to its oldest result, counting what it
/// missed; true if it is past `max_missed` (it has been sent `TooSlow` and must be closed).
pub(super) fn check_lag(
    c: &mut Client,
    head: u64,
    cap: u64,
    max_missed: u64,
    counters: &Counters,
) -> bool {
    if !matches!(c.phase, Phase::Subscribed(_)) {
        return false;
    }
    let oldest = head.saturating_sub(cap);
    if c.cursor >= oldest {
        return false;
    }
    let skipped = oldest - c.cursor;
    c.cursor = oldest;
    c.missed_pending += skipped;
    c.missed_run += skipped;
    c.missed_total += skipped;
    counters.missed_total.fetch_add(skipped, Ordering::Relaxed);
    if c.missed_run <= max_missed {
        return false;
    }
    log::warn!(
        "IPC client pid {} too slow: missed {} results, disconnecting",
        c.peer.pid,
        c.missed_run
    );
    counters.disconnected_slow.fetch_add(1, Ordering::Relaxed);
    let _ = send_msg(
        &c.sock,
        &error(ErrorCode::TooSlow, "missed too many results"),
    );
    true
}

pub(super) fn error(code: ErrorCode, detail: &str) -> ServerMsg {
    ServerMsg::Error(ErrorMsg::new(code, detail))
}

pub(super) fn encode_ctrl(out: &mut Vec<u8>, msg: &ServerMsg) -> Result<(), proto::WireError> {
    out.resize(MAX_CTRL, 0);
    match msg.encode(out) {
        Ok(n) => {
            out.truncate(n);
            Ok(())
        }
        Err(e) => {
            out.clear();
            Err(e)
        }
    }
}

/// Best-effort immediate send (used just before closing).
pub(super) fn send_msg(sock: &SeqPacket, msg: &ServerMsg) -> io::Result<()> {
    let mut buf = [0u8; MAX_CTRL];
    let n = msg
        .encode(&mut buf)
        .map_err(|e| io::Error::other(e.to_string()))?;
    sock.send(&buf[..n]).map(drop)
}
