//! A client of the IPC result server speaking the protocol by hand, so that tests can
//! misbehave (wrong versions, garbage, half-open connections) as well as behave.

use std::time::Duration;

use outpost_runtime::ipc::SeqPacket;
use outpost_runtime::ipc::proto::{
    self, ClientMsg, ErrorCode, Hello, MAX_CLIENT_MSG, Name, PROTOCOL_VERSION, ServerMsg, Subscribe,
};

/// A client speaking the protocol by hand (so tests can misbehave).
#[allow(missing_debug_implementations)]
pub struct Raw {
    pub sock: SeqPacket,
    buf: Vec<u8>,
    /// Unread messages of the current packet: `buf[pos..len]`.
    pos: usize,
    len: usize,
}

impl Raw {
    pub fn connect(path: &std::path::Path) -> Raw {
        let sock = SeqPacket::connect(path).expect("connect");
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Raw {
            sock,
            buf: vec![0; proto::MAX_PACKET],
            pos: 0,
            len: 0,
        }
    }

    pub fn send(&self, msg: &ClientMsg) {
        let mut buf = [0u8; MAX_CLIENT_MSG];
        let n = msg.encode(&mut buf).unwrap();
        self.sock.send(&buf[..n]).expect("send");
    }

    /// Next message (packets may hold several); None on end of file (or reset) from the server.
    pub fn recv(&mut self) -> Option<ServerMsg> {
        if self.pos >= self.len {
            match self.sock.recv(&mut self.buf) {
                Ok(0) => return None,
                Ok(n) => (self.pos, self.len) = (0, n),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("recv: {e}"),
            }
        }
        let (msg, rest) = proto::decode_prefix::<ServerMsg>(&self.buf[self.pos..self.len])
            .expect("server sent garbage");
        self.pos = self.len - rest.len();
        Some(msg)
    }

    pub fn hello(&self, version: u16) {
        self.send(&ClientMsg::Hello(Hello {
            version,
            capabilities: proto::caps::ALL_V1,
            client_name: Name::truncating("e2e"),
        }));
    }

    pub fn handshake_and_subscribe(path: &std::path::Path) -> Raw {
        let mut c = Raw::connect(path);
        c.hello(PROTOCOL_VERSION);
        assert!(matches!(c.recv(), Some(ServerMsg::Hello(_))));
        c.send(&ClientMsg::Subscribe(Subscribe::all()));
        assert_eq!(c.recv(), Some(ServerMsg::Subscribed));
        c
    }

    /// Expect an error with `code`, then the server closing the connection.
    pub fn expect_error_then_close(&mut self, code: ErrorCode) {
        match self.recv() {
            Some(ServerMsg::Error(e)) => assert_eq!(e.code, code, "{e:?}"),
            other => panic!("expected Error({code:?}), got {other:?}"),
        }
        assert_eq!(self.recv(), None, "server must close after {code:?}");
    }
}
