//! A real Mosquitto broker for tests: started on 127.0.0.1 on a free port with the config of
//! DESIGN §9, stopped by PID. Debian `mosquitto` (tools/ci/install-system.sh installs it).

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (bound, then released for the broker).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A running broker; killed (by PID) when dropped.
#[derive(Debug)]
pub struct Broker {
    child: Option<Child>,
    /// Its port.
    pub port: u16,
    dir: PathBuf,
}

impl Broker {
    /// Start `mosquitto` listening on `port`, and wait until it accepts connections.
    pub fn start(port: u16) -> Broker {
        let dir =
            std::env::temp_dir().join(format!("outpost-mosquitto-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        )
        .expect("write mosquitto.conf");
        let log = std::fs::File::create(dir.join("mosquitto.log")).expect("log file");
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start `mosquitto` ({e}): install the Debian package `mosquitto` \
                     (tools/ci/install-system.sh does)"
                )
            });
        let mut b = Broker {
            child: Some(child),
            port,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(Ok(Some(st))) = b.child.as_mut().map(|c| c.try_wait()) {
                let log = std::fs::read_to_string(b.dir.join("mosquitto.log")).unwrap_or_default();
                panic!("mosquitto exited ({st}): {log}");
            }
            assert!(
                Instant::now() < deadline,
                "mosquitto does not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        b
    }

    /// Kill the broker (SIGKILL by PID: clients see the connection drop) and reap it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A test publisher: a rumqttc client whose event loop runs on a thread named `mqtt-pub`
/// (reconnecting after a failure), publishing at QoS 0.
pub struct Publisher {
    client: rumqttc::Client,
    connected: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Publisher {
    /// Connect to the broker on `port` (in the background; see [`Publisher::wait_connected`]).
    pub fn connect(port: u16, id: &str) -> Publisher {
        use std::sync::atomic::Ordering;
        let mut o = rumqttc::MqttOptions::new(id, "127.0.0.1", port);
        o.set_keep_alive(Duration::from_secs(5));
        let (client, mut conn) = rumqttc::Client::new(o, 64);
        let connected = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = connected.clone();
        std::thread::Builder::new()
            .name("mqtt-pub".into())
            .spawn(move || {
                for ev in conn.iter() {
                    match ev {
                        Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                            flag.store(true, Ordering::Release)
                        }
                        Ok(rumqttc::Event::Outgoing(rumqttc::Outgoing::Disconnect)) => break,
                        Ok(_) => {}
                        Err(_) => {
                            flag.store(false, Ordering::Release);
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                }
            })
            .expect("spawn the publisher");
        Publisher { client, connected }
    }

    /// Wait (up to 10 s) for the session.
    pub fn wait_connected(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.connected.load(std::sync::atomic::Ordering::Acquire) {
            assert!(
                Instant::now() < deadline,
                "the test publisher cannot connect"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Publish `payload` on `topic` (blocks while the client's queue is full).
    pub fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, rumqttc::QoS::AtMostOnce, false, payload.into())
            .expect("publish");
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let _ = self.client.try_disconnect();
    }
}
