//! [`ResultServer`]: binds the socket, starts the I/O thread, stops it on drop.

use std::collections::HashMap;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_queue::ArrayQueue;
use outpost_proto::{MAX_MODELS, MAX_SERVER_MSG, ModelInfo, Status};

use super::config::ServerConfig;
use super::error::IpcError;
use super::io_loop::{FIRST_CLIENT_TOKEN, IoLoop, TOKEN_LISTENER, TOKEN_WAKE};
use super::publisher::Publisher;
use super::pump::DEFAULT_BATCH_BYTES;
use super::shared::{Counters, Shared, Slot};
use super::sys::{self, Epoll, EventFd, SeqPacket, SeqPacketListener};

/// A running result server. Dropping it stops the I/O thread and removes the socket file.
pub struct ResultServer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    path: PathBuf,
}

impl std::fmt::Debug for ResultServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResultServer")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl ResultServer {
    /// Bind `path` (removing a stale socket file left by a dead server), set its mode, and start
    /// the I/O thread.
    pub fn bind(path: impl AsRef<Path>, config: ServerConfig) -> Result<ResultServer, IpcError> {
        let path = path.as_ref().to_path_buf();
        if config.queue_capacity == 0 || config.handoff_capacity == 0 {
            return Err(IpcError::Config(
                "queue_capacity and handoff_capacity must be > 0",
            ));
        }
        if config.max_clients == 0 {
            return Err(IpcError::Config("max_clients must be > 0"));
        }
        let io_err = |what: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| IpcError::Io { what, path, source }
        };
        let io_cpu = config.io_cpu;
        remove_stale_socket(&path)?;
        let listener = SeqPacketListener::bind(&path).map_err(io_err("cannot bind", &path))?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(config.socket_mode))
                .map_err(io_err("cannot set the mode of", &path))?;
        }
        let slots = config.queue_capacity + config.handoff_capacity;
        let free = ArrayQueue::new(slots);
        for _ in 0..slots {
            let _ = free.push(Slot::boxed());
        }
        let shared = Arc::new(Shared {
            free,
            ready: ArrayQueue::new(slots),
            wake: EventFd::new().map_err(io_err("cannot create eventfd for", &path))?,
            io_sleeping: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            counters: Counters::default(),
            models: Mutex::new(heapless::Vec::new()),
            started: Instant::now(),
            queue_capacity: config.queue_capacity,
        });
        let epoll = Epoll::new().map_err(io_err("cannot create epoll for", &path))?;
        epoll
            .add(listener.as_fd(), sys::READ, TOKEN_LISTENER)
            .map_err(io_err("epoll", &path))?;
        epoll
            .add(shared.wake.as_fd(), sys::READ | sys::EDGE, TOKEN_WAKE)
            .map_err(io_err("epoll", &path))?;
        let queue_cap = config.queue_capacity;
        // A packet must fit the client's send buffer (the kernel doubles SO_SNDBUF).
        // At least one maximal message (with a Missed notice) must fit.
        let batch_bytes = config.client_send_buffer.map_or(DEFAULT_BATCH_BYTES, |b| {
            b.clamp(MAX_SERVER_MSG + 16, DEFAULT_BATCH_BYTES)
        });
        let io = IoLoop {
            shared: Arc::clone(&shared),
            config,
            listener,
            epoll,
            ring: (0..queue_cap)
                .map(|_| None)
                .collect::<Vec<_>>()
                .into_boxed_slice(),
            head: 0,
            clients: HashMap::new(),
            next_token: FIRST_CLIENT_TOKEN,
            scratch_result: Box::default(),
            scratch: vec![0; batch_bytes + MAX_SERVER_MSG].into_boxed_slice(),
            batch_bytes,
            tokens: Vec::with_capacity(256),
        };
        // The I/O thread pins itself before serving; bind waits for the outcome.
        let (pinned_tx, pinned_rx) = std::sync::mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("outpost-ipc".into())
            .spawn(move || {
                let pinned = io_cpu.map_or(Ok(()), crate::affinity::pin_current_thread);
                let ok = pinned.is_ok();
                let _ = pinned_tx.send(pinned);
                if ok {
                    io.run()
                }
            })
            .map_err(io_err("cannot start the I/O thread for", &path))?;
        let pinned = pinned_rx.recv().unwrap_or(Ok(()));
        if let Err(source) = pinned {
            let _ = thread.join();
            let _ = std::fs::remove_file(&path);
            return Err(IpcError::Io {
                what: "cannot pin the I/O thread (ServerConfig::io_cpu) of",
                path,
                source,
            });
        }
        log::info!("IPC result server listening on {}", path.display());
        Ok(ResultServer {
            shared,
            thread: Some(thread),
            path,
        })
    }

    /// A publisher handle (clone it freely; several threads may publish).
    pub fn publisher(&self) -> Publisher {
        Publisher {
            shared: Arc::clone(&self.shared),
        }
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Counters, as a client's `Status` request would see them.
    pub fn status(&self) -> Status {
        self.shared.status()
    }

    /// Set the model list answered to `ListModels` (at most [`MAX_MODELS`] are kept).
    pub fn set_models(&self, models: &[ModelInfo]) {
        let mut guard = self.shared.models.lock().unwrap_or_else(|e| e.into_inner());
        guard.clear();
        for m in models.iter().take(MAX_MODELS) {
            let _ = guard.push(m.clone());
        }
    }

    /// Stop the I/O thread, close every connection and remove the socket file.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake.notify();
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                log::error!("IPC I/O thread panicked");
            }
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Drop for ResultServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn remove_stale_socket(path: &Path) -> Result<(), IpcError> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(IpcError::Io {
            what: "cannot inspect",
            path: path.into(),
            source,
        }),
        Ok(meta) if !meta.file_type().is_socket() => Err(IpcError::Io {
            what: "refusing to replace non-socket",
            path: path.into(),
            source: io::Error::from(io::ErrorKind::AlreadyExists),
        }),
        Ok(_) => match SeqPacket::connect(path) {
            Ok(_) => Err(IpcError::InUse(path.into())),
            Err(_) => {
                log::info!("removing stale socket {}", path.display());
                std::fs::remove_file(path).map_err(|source| IpcError::Io {
                    what: "cannot remove stale socket",
                    path: path.into(),
                    source,
                })
            }
        },
    }
}
