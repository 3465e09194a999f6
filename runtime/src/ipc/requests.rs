//! Reading client messages and answering them: handshake, subscribe, requests, protocol errors.

use std::io;
use std::sync::atomic::Ordering;

use outpost_proto::{
    self as proto, ClientMsg, ErrorCode, MAX_CLIENT_MSG, MAX_SERVER_MSG, RequestBody, ResponseBody,
    ServerHello, ServerMsg,
};

use super::client::{Fate, Phase, encode_ctrl, error};
use super::io_loop::{IoLoop, is_would_block};

impl IoLoop {
    /// Read and handle every message the client has sent, as long as no control message is
    /// pending (a client that does not read its responses is not read either).
    pub(super) fn read_client(&mut self, token: u64) -> Fate {
        let mut buf = [0u8; MAX_CLIENT_MSG + 1];
        loop {
            let Some(client) = self.clients.get_mut(&token) else {
                return Fate::Close;
            };
            if !client.ctrl.is_empty() || client.close_after_ctrl {
                return Fate::Keep;
            }
            let n = match client.sock.recv_trunc(&mut buf) {
                Ok(0) => return Fate::Close,
                Ok(n) => n,
                Err(e) if is_would_block(&e) => return Fate::Keep,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Fate::Close,
            };
            if n > MAX_CLIENT_MSG {
                return self.fatal(
                    token,
                    ErrorCode::Oversized,
                    "message larger than MAX_CLIENT_MSG",
                );
            }
            let msg = match ClientMsg::decode(&buf[..n]) {
                Ok(m) => m,
                Err(e) => {
                    let mut detail = heapless::String::<64>::new();
                    let _ = core::fmt::write(&mut detail, format_args!("{e}"));
                    return self.fatal(token, ErrorCode::Malformed, &detail);
                }
            };
            if let Fate::Close = self.handle(token, msg) {
                return Fate::Close;
            }
        }
    }

    /// Queue a fatal error; the connection closes once it is sent (or cannot be).
    pub(super) fn fatal(&mut self, token: u64, code: ErrorCode, detail: &str) -> Fate {
        self.shared
            .counters
            .rejected
            .fetch_add(1, Ordering::Relaxed);
        let Some(c) = self.clients.get_mut(&token) else {
            return Fate::Close;
        };
        log::info!("IPC client pid {}: {code}: {detail}", c.peer.pid);
        c.ctrl.clear();
        c.close_after_ctrl = true;
        let _ = encode_ctrl(&mut c.ctrl, &error(code, detail));
        Fate::Keep
    }

    pub(super) fn handle(&mut self, token: u64, msg: ClientMsg) -> Fate {
        let head = self.head;
        let capabilities = proto::caps::ALL_V1;
        let queue_capacity = self.config.queue_capacity as u32;
        let Some(c) = self.clients.get_mut(&token) else {
            return Fate::Close;
        };
        match (&c.phase, msg) {
            (Phase::Handshake { .. }, ClientMsg::Hello(h)) => {
                if h.version != proto::PROTOCOL_VERSION {
                    let mut detail = heapless::String::<64>::new();
                    let _ = core::fmt::write(
                        &mut detail,
                        format_args!(
                            "server speaks {}, client {}",
                            proto::PROTOCOL_VERSION,
                            h.version
                        ),
                    );
                    return self.fatal(token, ErrorCode::UnsupportedVersion, &detail);
                }
                log::debug!("IPC client pid {} hello ({})", c.peer.pid, h.client_name);
                c.phase = Phase::Ready;
                let hello = ServerHello {
                    version: proto::PROTOCOL_VERSION,
                    capabilities,
                    max_message: MAX_SERVER_MSG as u32,
                    queue_capacity,
                };
                let _ = encode_ctrl(&mut c.ctrl, &ServerMsg::Hello(hello));
                Fate::Keep
            }
            (Phase::Handshake { .. }, _) | (_, ClientMsg::Hello(_)) => self.fatal(
                token,
                ErrorCode::UnexpectedMessage,
                "Hello must come first, once",
            ),
            (_, ClientMsg::Subscribe(sub)) => {
                c.phase = Phase::Subscribed(sub);
                c.cursor = head;
                c.missed_pending = 0;
                c.missed_run = 0;
                let _ = encode_ctrl(&mut c.ctrl, &ServerMsg::Subscribed);
                Fate::Keep
            }
            (_, ClientMsg::Request(req)) => {
                let body = match req.body {
                    RequestBody::Status => {
                        let mut status = self.shared.status();
                        status.your_missed = c.missed_total;
                        ResponseBody::Status(status)
                    }
                    RequestBody::ListModels => {
                        let models = self.shared.models.lock().unwrap_or_else(|e| e.into_inner());
                        ResponseBody::Models(proto::BoundedVec(models.clone()))
                    }
                };
                let resp = proto::Response { id: req.id, body };
                let _ = encode_ctrl(&mut c.ctrl, &ServerMsg::Response(resp));
                Fate::Keep
            }
            (_, ClientMsg::Bye) => Fate::Close,
        }
    }
}
