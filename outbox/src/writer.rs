//! The writer: a bounded queue in front of the store, so the pipeline never waits on the disk.
//!
//! [`OutboxWriter::enqueue`] never blocks: it encodes nothing and does no I/O, it only tries to
//! put the record into a bounded channel; when the channel is full the record is dropped and
//! counted. A writer thread takes whatever has accumulated (group commit) and appends it in one
//! durable redb commit. A record is *acknowledged* when that commit has returned; a [`Ticket`]
//! says when.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{OutboxError, Result};
use crate::priority::Background;
use crate::record::Record;
use crate::store::Store;

/// Writer settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WriterConfig {
    /// Capacity of the queue in front of the disk (records).
    pub queue_capacity: usize,
    /// Most records per durable commit.
    pub max_batch_records: usize,
    /// Most accounted bytes per durable commit (0: a sixteenth of the store's record budget).
    pub max_batch_bytes: u64,
    /// How the writer thread is scheduled (set from [`crate::OutboxSettings::background`]).
    #[serde(skip)]
    pub background: Background,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            queue_capacity: 1024,
            max_batch_records: 256,
            max_batch_bytes: 0,
            background: Background::default(),
        }
    }
}

/// Why a record was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnqueueError {
    /// The queue is full (the disk is behind); the record was dropped and counted.
    #[error("outbox queue full, record dropped")]
    Full,
    /// The writer has stopped.
    #[error("outbox writer stopped")]
    Closed,
    /// The record alone is larger than the outbox's record budget; dropped and counted.
    #[error("record larger than the outbox, dropped")]
    TooLarge,
}

/// Counters of the writer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriterStats {
    /// Records accepted into the queue.
    pub enqueued: u64,
    /// Records dropped because the queue was full (or the record was larger than the outbox).
    pub dropped_queue_full: u64,
    /// Records durably committed (acknowledged).
    pub committed: u64,
    /// Durable commits made.
    pub commits: u64,
    /// Records lost because the store failed to commit them (not acknowledged).
    pub failed: u64,
    /// Records evicted by the byte bound during appends.
    pub evicted: u64,
}

#[derive(Debug, Default)]
struct AckState {
    durable: u64,
    error: Option<String>,
    closed: bool,
}

#[derive(Debug, Default)]
struct Shared {
    ack: Mutex<AckState>,
    cv: Condvar,
    next_ticket: Mutex<u64>,
    enqueued: AtomicU64,
    dropped: AtomicU64,
    committed: AtomicU64,
    commits: AtomicU64,
    failed: AtomicU64,
    evicted: AtomicU64,
}

/// Says when an enqueued record has been durably committed.
#[derive(Debug, Clone)]
pub struct Ticket {
    n: u64,
    shared: Arc<Shared>,
}

impl Ticket {
    /// The ticket's position in the writer's order (1-based).
    pub fn number(&self) -> u64 {
        self.n
    }

    /// Whether the record is durable now.
    pub fn is_durable(&self) -> bool {
        self.shared
            .ack
            .lock()
            .map(|a| a.durable >= self.n)
            .unwrap_or(false)
    }

    /// Block until the record is durable, the writer failed it, or `timeout` passed.
    pub fn wait(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut a = self
            .shared
            .ack
            .lock()
            .map_err(|_| OutboxError::WriterStopped("poisoned".into()))?;
        loop {
            if a.durable >= self.n {
                return Ok(());
            }
            if let Some(e) = &a.error {
                return Err(OutboxError::WriterStopped(e.clone()));
            }
            if a.closed {
                return Err(OutboxError::WriterStopped("closed".into()));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(OutboxError::WriterStopped(
                    "timed out waiting for commit".into(),
                ));
            }
            a = self
                .shared
                .cv
                .wait_timeout(a, deadline - now)
                .map_err(|_| OutboxError::WriterStopped("poisoned".into()))?
                .0;
        }
    }
}

struct Msg {
    n: u64,
    priority: crate::Priority,
    encoded: Vec<u8>,
}

/// The front of the outbox: a bounded queue and a writer thread.
#[derive(Debug)]
pub struct OutboxWriter {
    tx: Option<SyncSender<Msg>>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    max_record: u64,
}

impl OutboxWriter {
    /// Start the writer thread over `store`.
    pub fn start(store: Arc<Store>, cfg: WriterConfig) -> Result<OutboxWriter> {
        let (tx, rx) = sync_channel(cfg.queue_capacity.max(1));
        let shared = Arc::new(Shared::default());
        let sh = shared.clone();
        let max_record = store.config().record_budget();
        let max_bytes = if cfg.max_batch_bytes == 0 {
            (max_record / 16).max(64 * 1024)
        } else {
            cfg.max_batch_bytes
        };
        let limits = (cfg.max_batch_records.max(1), max_bytes);
        let thread = std::thread::Builder::new()
            .name("outbox-writer".into())
            .spawn(move || {
                crate::priority::lower_this_thread(cfg.background);
                writer_loop(&store, &rx, &sh, limits)
            })?;
        Ok(OutboxWriter {
            tx: Some(tx),
            shared,
            thread: Some(thread),
            max_record,
        })
    }

    /// Hand a record to the outbox without blocking. The record is encoded (and checksummed) here,
    /// on the caller's thread; no disk I/O happens here.
    pub fn enqueue(&self, record: &Record) -> std::result::Result<Ticket, EnqueueError> {
        let encoded = record.encode();
        if Store::accounted(encoded.len()) > self.max_record {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            log::warn!(
                "outbox: record of {} bytes is larger than the outbox, dropped",
                encoded.len()
            );
            return Err(EnqueueError::TooLarge);
        }
        self.enqueue_encoded(record.meta.priority, encoded)
    }

    fn enqueue_encoded(
        &self,
        priority: crate::Priority,
        encoded: Vec<u8>,
    ) -> std::result::Result<Ticket, EnqueueError> {
        let tx = self.tx.as_ref().ok_or(EnqueueError::Closed)?;
        let mut next = self
            .shared
            .next_ticket
            .lock()
            .map_err(|_| EnqueueError::Closed)?;
        let n = *next + 1;
        match tx.try_send(Msg {
            n,
            priority,
            encoded,
        }) {
            Ok(()) => {
                *next = n;
                self.shared.enqueued.fetch_add(1, Ordering::Relaxed);
                Ok(Ticket {
                    n,
                    shared: self.shared.clone(),
                })
            }
            Err(TrySendError::Full(_)) => {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                Err(EnqueueError::Full)
            }
            Err(TrySendError::Disconnected(_)) => Err(EnqueueError::Closed),
        }
    }

    /// Counters.
    pub fn stats(&self) -> WriterStats {
        let s = &self.shared;
        WriterStats {
            enqueued: s.enqueued.load(Ordering::Relaxed),
            dropped_queue_full: s.dropped.load(Ordering::Relaxed),
            committed: s.committed.load(Ordering::Relaxed),
            commits: s.commits.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
            evicted: s.evicted.load(Ordering::Relaxed),
        }
    }

    /// Stop accepting records, commit what is queued, and join the thread.
    pub fn close(mut self) -> WriterStats {
        self.shutdown();
        self.stats()
    }

    fn shutdown(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            log::error!("outbox writer thread panicked");
        }
        if let Ok(mut a) = self.shared.ack.lock() {
            a.closed = true;
        }
        self.shared.cv.notify_all();
    }
}

impl Drop for OutboxWriter {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn writer_loop(
    store: &Store,
    rx: &Receiver<Msg>,
    sh: &Shared,
    (max_batch, max_bytes): (usize, u64),
) {
    let mut batch: Vec<Msg> = Vec::with_capacity(max_batch);
    let mut carry: Option<Msg> = None;
    loop {
        let first = match carry.take() {
            Some(m) => m,
            None => match rx.recv() {
                Ok(m) => m,
                Err(_) => break,
            },
        };
        let mut bytes = Store::accounted(first.encoded.len());
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(m) => {
                    let size = Store::accounted(m.encoded.len());
                    if bytes + size > max_bytes {
                        carry = Some(m);
                        break;
                    }
                    bytes += size;
                    batch.push(m);
                }
                Err(_) => break,
            }
        }
        let last = batch.last().map(|m| m.n).unwrap_or(0);
        let enc: Vec<_> = batch.drain(..).map(|m| (m.priority, m.encoded)).collect();
        let mut attempt = 0;
        let result = loop {
            match store.append_encoded(&enc) {
                Ok(o) => break Ok(o),
                Err(e) if attempt < 3 => {
                    log::warn!("outbox commit failed (attempt {}): {e}", attempt + 1);
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(50 << attempt));
                }
                Err(e) => break Err(e),
            }
        };
        let mut a = match sh.ack.lock() {
            Ok(a) => a,
            Err(_) => return,
        };
        match result {
            Ok(o) => {
                a.durable = last;
                sh.committed.fetch_add(enc.len() as u64, Ordering::Relaxed);
                sh.commits.fetch_add(1, Ordering::Relaxed);
                sh.evicted.fetch_add(o.evicted_records, Ordering::Relaxed);
            }
            Err(e) => {
                // The store is failing (disk full, I/O error): stop, so nothing after this point
                // is acknowledged; queued and later records are counted as failed.
                log::error!(
                    "outbox commit failed, writer stopping, {} records lost: {e}",
                    enc.len()
                );
                a.error = Some(e.to_string());
                a.closed = true;
                sh.failed.fetch_add(enc.len() as u64, Ordering::Relaxed);
                drop(a);
                sh.cv.notify_all();
                while rx.try_recv().is_ok() {
                    sh.failed.fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
        }
        drop(a);
        sh.cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Priority, RecordMeta};
    use crate::store::StoreConfig;

    fn rec(i: u64) -> Record {
        Record::json(
            RecordMeta {
                stream: "s".into(),
                time_ms: i,
                model_id: "m".into(),
                model_version: "1".into(),
                priority: Priority::Event,
            },
            serde_json::json!({ "i": i }),
        )
    }

    #[test]
    fn enqueue_never_blocks_on_a_stalled_disk() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Arc::new(Store::open(dir.path().join("o.redb"), StoreConfig::default()).unwrap());
        // Hold redb's write lock: the writer thread cannot commit until it is released.
        let stall = store.db.begin_write().unwrap();
        let cfg = WriterConfig {
            queue_capacity: 8,
            max_batch_records: 4,
            ..Default::default()
        };
        let w = OutboxWriter::start(store.clone(), cfg).unwrap();
        let mut tickets = Vec::new();
        let mut full = 0;
        let t = Instant::now();
        for i in 0..100 {
            match w.enqueue(&rec(i)) {
                Ok(tk) => tickets.push(tk),
                Err(EnqueueError::Full) => full += 1,
                Err(e) => panic!("{e}"),
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        assert!(t.elapsed() < Duration::from_secs(5), "enqueue blocked");
        // At most the queue plus the batch the writer holds were accepted; the rest were counted.
        assert!(tickets.len() <= 8 + 4, "{} accepted", tickets.len());
        assert_eq!(w.stats().dropped_queue_full, full);
        assert_eq!(full + tickets.len() as u64, 100);
        assert!(tickets.iter().all(|t| !t.is_durable()));
        drop(stall);
        for t in &tickets {
            t.wait(Duration::from_secs(10)).unwrap();
        }
        let st = w.close();
        assert_eq!(st.committed, tickets.len() as u64);
        assert_eq!(store.stats().unwrap().records, tickets.len() as u64);
    }
}
