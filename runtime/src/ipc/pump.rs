//! Sending each client what it is owed: its control message, `Missed` notices and batches of
//! results gathered straight from the history ring.

use std::io;
use std::os::fd::AsFd;

use outpost_proto::{self as proto, ServerMsg};

use super::client::{Fate, Phase, check_lag};
use super::io_loop::{IoLoop, is_would_block};
use super::sys;

/// Most messages in one packet.
pub(super) const MAX_BATCH: usize = 256;
/// Most bytes in one packet (the protocol's limit).
pub(super) const DEFAULT_BATCH_BYTES: usize = proto::MAX_PACKET;

impl IoLoop {
    pub(super) fn pump_all(&mut self) {
        let mut tokens = std::mem::take(&mut self.tokens);
        tokens.clear();
        tokens.extend(self.clients.keys().copied());
        for &token in &tokens {
            if let Fate::Close = self.pump(token) {
                self.close(token);
            }
        }
        self.tokens = tokens;
    }

    /// Send what the client is owed: its pending control message, a `Missed` notice, then
    /// results from its cursor, until done or its socket is full.
    pub(super) fn pump(&mut self, token: u64) -> Fate {
        let head = self.head;
        let cap = self.config.queue_capacity as u64;
        let len = self.ring.len() as u64;
        let max_missed = self.config.max_missed;
        let Some(c) = self.clients.get_mut(&token) else {
            return Fate::Close;
        };
        let fate = 'pump: {
            // Evaluate lag even while blocked: a client that never reads must still be dropped.
            if check_lag(c, head, cap, max_missed, &self.shared.counters) {
                break 'pump Fate::Close;
            }
            if c.write_blocked {
                break 'pump Fate::Keep;
            }
            if !c.ctrl.is_empty() {
                match c.sock.send(&c.ctrl) {
                    Ok(_) => c.ctrl.clear(),
                    // A client that must be dropped is not waited for.
                    Err(e) if is_would_block(&e) && c.close_after_ctrl => break 'pump Fate::Close,
                    Err(e) if is_would_block(&e) => {
                        c.write_blocked = true;
                        break 'pump Fate::Keep;
                    }
                    Err(_) => break 'pump Fate::Close,
                }
            }
            if c.close_after_ctrl {
                break 'pump Fate::Close;
            }
            let Phase::Subscribed(sub) = &c.phase else {
                break 'pump Fate::Keep;
            };
            // `head` is fixed during a pump, so the lag check above holds for the whole loop.
            // Results go out in batches: several messages concatenated in one packet, gathered
            // straight from the ring slots by one sendmsg (filtered results are re-encoded into
            // the scratch buffer first). A client that keeps up gets one result per packet.
            let filtering = sub.filters_content();
            loop {
                let mut missed_buf = [0u8; 8];
                let mut batch: heapless::Vec<io::IoSlice<'_>, MAX_BATCH> = heapless::Vec::new();
                let mut bytes = 0usize;
                let mut missed_sent = 0u64;
                if c.missed_pending > 0 {
                    let count = c.missed_pending.min(u64::from(u32::MAX)) as u32;
                    missed_buf[0] = proto::SERVER_TAG_MISSED;
                    let n = 1 + proto::encode(&count, &mut missed_buf[1..]).unwrap_or(0);
                    let _ = batch.push(io::IoSlice::new(&missed_buf[..n]));
                    bytes += n;
                    missed_sent = u64::from(count);
                }
                let mut scratch: &mut [u8] = &mut self.scratch[..];
                let mut cursor = c.cursor;
                while cursor < head && !batch.is_full() {
                    let Some(slot) = self.ring[(cursor % len) as usize].as_deref() else {
                        cursor += 1; // cannot happen: every cursor in the window has a slot
                        continue;
                    };
                    if !sub.wants_stream(slot.stream) {
                        cursor += 1;
                        continue;
                    }
                    let piece: &[u8] = if filtering {
                        let n = match proto::decode::<ServerMsg>(slot.bytes()) {
                            Ok(ServerMsg::Result(r)) => {
                                *self.scratch_result = r;
                                sub.apply(&mut self.scratch_result);
                                proto::encode_result(&self.scratch_result, scratch).unwrap_or(0)
                            }
                            _ => 0,
                        };
                        if bytes + n > self.batch_bytes && !batch.is_empty() {
                            break;
                        }
                        let (done, rest) = std::mem::take(&mut scratch).split_at_mut(n);
                        scratch = rest;
                        done
                    } else {
                        slot.bytes()
                    };
                    if bytes + piece.len() > self.batch_bytes && !batch.is_empty() {
                        break;
                    }
                    bytes += piece.len();
                    let _ = batch.push(io::IoSlice::new(piece));
                    cursor += 1;
                }
                if batch.is_empty() {
                    c.cursor = cursor;
                    c.missed_run = 0;
                    break 'pump Fate::Keep;
                }
                match c.sock.send_vectored(&batch) {
                    Ok(_) => {
                        c.cursor = cursor;
                        c.missed_pending -= missed_sent;
                    }
                    Err(e) if is_would_block(&e) => {
                        c.write_blocked = true;
                        break 'pump Fate::Keep;
                    }
                    Err(_) => break 'pump Fate::Close,
                }
            }
        };
        if let Fate::Keep = fate {
            // Wait for writability only while blocked; stop reading while a control message is
            // pending so a client that never reads cannot make us buffer without bound.
            let mut want = sys::HUP;
            if c.write_blocked {
                want |= sys::WRITE;
            }
            if c.ctrl.is_empty() && !c.close_after_ctrl {
                want |= sys::READ;
            }
            if want != c.interest {
                if self.epoll.modify(c.sock.as_fd(), want, token).is_err() {
                    return Fate::Close;
                }
                c.interest = want;
            }
        }
        fate
    }
}
