//! The I/O thread: one epoll loop over the listener, the wake-up eventfd and every client.

use std::collections::HashMap;
use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{Ordering, fence};
use std::time::{Duration, Instant};

use outpost_proto::{ErrorCode, ErrorMsg, ResultMsg, ServerMsg};

use super::client::{Client, Fate, Phase, error, send_msg};
use super::config::ServerConfig;
use super::shared::{Shared, Slot};
use super::sys::{self, Epoll, SeqPacketListener};

pub(super) const TOKEN_LISTENER: u64 = 0;
pub(super) const TOKEN_WAKE: u64 = 1;
pub(super) const FIRST_CLIENT_TOKEN: u64 = 2;

pub(super) struct IoLoop {
    pub(super) shared: Arc<Shared>,
    pub(super) config: ServerConfig,
    pub(super) listener: SeqPacketListener,
    pub(super) epoll: Epoll,
    /// Slot for result number `n` is `ring[n % cap]`, valid for `head - cap <= n < head`.
    pub(super) ring: Box<[Option<Box<Slot>>]>,
    pub(super) head: u64,
    pub(super) clients: HashMap<u64, Client>,
    pub(super) next_token: u64,
    pub(super) scratch_result: Box<ResultMsg>,
    /// Re-encoded (filtered) results of one batch.
    pub(super) scratch: Box<[u8]>,
    /// Packet size limit for batches.
    pub(super) batch_bytes: usize,
    /// Reused list of client tokens (so the loop does not allocate).
    pub(super) tokens: Vec<u64>,
}

pub(super) fn is_would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

impl IoLoop {
    pub(super) fn run(mut self) {
        let mut events = vec![sys::empty_event(); 64];
        loop {
            if self.shared.stop.load(Ordering::SeqCst) {
                break;
            }
            self.take_ready();
            self.pump_all();
            let timeout = self
                .next_deadline()
                .map(|d| d.saturating_duration_since(Instant::now()));
            let n = match self.sleep(&mut events, timeout) {
                Ok(n) => n,
                Err(e) => {
                    log::error!("IPC epoll_wait failed: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            for ev in &events[..n] {
                let token = sys::event_token(ev);
                let bits = sys::event_bits(ev);
                match token {
                    TOKEN_LISTENER => self.accept_all(),
                    // Edge-triggered: every notify is reported once, and nothing needs to be
                    // read back (one system call fewer per wake-up).
                    TOKEN_WAKE => {}
                    _ => self.client_event(token, bits),
                }
            }
            self.expire_handshakes();
        }
        let n = self.clients.len();
        for (_, c) in self.clients.drain() {
            let _ = send_msg(
                &c.sock,
                &ServerMsg::Error(ErrorMsg::new(ErrorCode::ShuttingDown, "")),
            );
        }
        self.shared.counters.clients.store(0, Ordering::Relaxed);
        log::info!("IPC result server stopped ({n} clients closed)");
    }

    /// Sleep in epoll unless results are waiting; publishers wake us through the eventfd.
    pub(super) fn sleep(
        &mut self,
        events: &mut [sys::Event],
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        self.shared.io_sleeping.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if !self.shared.ready.is_empty() || self.shared.stop.load(Ordering::SeqCst) {
            self.shared.io_sleeping.store(false, Ordering::SeqCst);
            return Ok(0);
        }
        let n = self.epoll.wait(events, timeout);
        self.shared.io_sleeping.store(false, Ordering::SeqCst);
        n
    }

    pub(super) fn take_ready(&mut self) {
        let len = self.ring.len() as u64;
        while let Some(slot) = self.shared.ready.pop() {
            let idx = (self.head % len) as usize;
            if let Some(old) = self.ring[idx].replace(slot) {
                let _ = self.shared.free.push(old);
            }
            self.head += 1;
        }
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.clients
            .values()
            .filter_map(|c| match c.phase {
                Phase::Handshake { deadline } => Some(deadline),
                _ => None,
            })
            .min()
    }

    pub(super) fn expire_handshakes(&mut self) {
        let now = Instant::now();
        let mut expired = std::mem::take(&mut self.tokens);
        expired.clear();
        expired.extend(
            self.clients
                .iter()
                .filter(
                    |(_, c)| matches!(c.phase, Phase::Handshake { deadline } if deadline <= now),
                )
                .map(|(t, _)| *t),
        );
        for &token in &expired {
            if let Some(c) = self.clients.get(&token) {
                log::info!("IPC client pid {} sent no Hello in time", c.peer.pid);
                let _ = send_msg(
                    &c.sock,
                    &error(ErrorCode::HandshakeTimeout, "send Hello first"),
                );
            }
            self.shared
                .counters
                .rejected
                .fetch_add(1, Ordering::Relaxed);
            self.close(token);
        }
        self.tokens = expired;
    }

    pub(super) fn close(&mut self, token: u64) {
        if let Some(c) = self.clients.remove(&token) {
            let _ = self.epoll.delete(c.sock.as_fd());
            log::debug!(
                "IPC client pid {} closed (missed {})",
                c.peer.pid,
                c.missed_total
            );
        }
        self.shared
            .counters
            .clients
            .store(self.clients.len() as u32, Ordering::Relaxed);
    }

    pub(super) fn client_event(&mut self, token: u64, bits: u32) {
        let Some(client) = self.clients.get_mut(&token) else {
            return;
        };
        if bits & sys::HUP != 0 {
            // The peer has gone (or the socket failed): nothing more can be delivered.
            self.close(token);
            return;
        }
        if bits & sys::WRITE != 0 {
            client.write_blocked = false;
        }
        if bits & sys::READ != 0 && matches!(self.read_client(token), Fate::Close) {
            self.close(token);
            return;
        }
        if let Fate::Close = self.pump(token) {
            self.close(token);
        }
    }
}
