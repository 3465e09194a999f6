//! Accepting connections: peer-credential (`SO_PEERCRED`) allow-list and client limit.

use std::io;
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::time::Instant;

use outpost_proto::ErrorCode;

use super::client::{Client, MAX_CTRL, Phase, error, send_msg};
use super::io_loop::{IoLoop, is_would_block};
use super::sys::{self, PeerCred};

impl IoLoop {
    pub(super) fn accept_all(&mut self) {
        loop {
            let sock = match self.listener.accept() {
                Ok(s) => s,
                Err(e) if is_would_block(&e) => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning on a ready listener.
                    log::warn!("IPC accept failed: {e}");
                    return;
                }
            };
            let peer = sock.peer_cred().unwrap_or(PeerCred {
                pid: 0,
                uid: u32::MAX,
                gid: u32::MAX,
            });
            if !self.allowed(&peer) {
                log::warn!(
                    "IPC refusing pid {} uid {} gid {}",
                    peer.pid,
                    peer.uid,
                    peer.gid
                );
                let _ = send_msg(
                    &sock,
                    &error(ErrorCode::NotPermitted, "uid/gid not allowed"),
                );
                self.shared
                    .counters
                    .rejected
                    .fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if self.clients.len() >= self.config.max_clients {
                log::warn!(
                    "IPC refusing pid {}: {} clients",
                    peer.pid,
                    self.clients.len()
                );
                let _ = send_msg(&sock, &error(ErrorCode::Busy, "too many clients"));
                self.shared
                    .counters
                    .rejected
                    .fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if let Some(bytes) = self.config.client_send_buffer {
                let _ = sock.set_send_buffer(bytes);
            }
            let token = self.next_token;
            self.next_token += 1;
            let interest = sys::READ | sys::HUP;
            if let Err(e) = self.epoll.add(sock.as_fd(), interest, token) {
                log::warn!("IPC epoll add failed: {e}");
                continue;
            }
            log::debug!("IPC client connected: pid {} uid {}", peer.pid, peer.uid);
            let deadline = Instant::now() + self.config.handshake_timeout;
            self.clients.insert(
                token,
                Client {
                    sock,
                    peer,
                    phase: Phase::Handshake { deadline },
                    cursor: 0,
                    missed_pending: 0,
                    missed_run: 0,
                    missed_total: 0,
                    ctrl: Vec::with_capacity(MAX_CTRL),
                    close_after_ctrl: false,
                    write_blocked: false,
                    interest,
                },
            );
            self.shared
                .counters
                .clients
                .store(self.clients.len() as u32, Ordering::Relaxed);
        }
    }

    pub(super) fn allowed(&self, peer: &PeerCred) -> bool {
        let c = &self.config;
        (c.allow_uids.is_empty() && c.allow_gids.is_empty())
            || c.allow_uids.contains(&peer.uid)
            || c.allow_gids.contains(&peer.gid)
    }
}
