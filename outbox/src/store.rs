//! The crash-safe, bounded local store (redb).
//!
//! Tables:
//! - `records`: seq → encoded record ([`Record::encode`], checksummed);
//! - `index`: (priority, seq) → size; ascending order is eviction order, priorities descending
//!   and seqs ascending is upload order;
//! - `meta`: counters (next seq, bytes, evictions per priority, uploads) and the store instance id;
//! - `batches`: batch id → the seqs claimed for one upload, so a retry (also after a crash)
//!   re-sends exactly the same object under the same name;
//! - `claimed`: seq → batch id, so eviction and export skip records being uploaded.
//!
//! Every mutation is one redb write transaction with `Durability::Immediate`: once it returns, the
//! change survives a crash or power loss; if it does not return, none of it happened.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::error::{Result, db};
use crate::record::{Priority, Record, StoredRecord};

const RECORDS: TableDefinition<u64, &[u8]> = TableDefinition::new("records");
const INDEX: TableDefinition<(u8, u64), u64> = TableDefinition::new("index");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const BATCHES: TableDefinition<u64, &[u8]> = TableDefinition::new("batches");
const CLAIMED: TableDefinition<u64, u64> = TableDefinition::new("claimed");

/// Fixed bookkeeping cost charged per record on top of its encoded size (keys, index entry).
pub const RECORD_OVERHEAD: u64 = 64;

/// Store limits.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StoreConfig {
    /// Disk budget of the database file in bytes.
    pub max_bytes: u64,
    /// Share of `max_bytes` that records may occupy (accounted size, see [`Store::accounted`]).
    /// The rest is redb's room: what is live is the records plus copy-on-write pages kept until
    /// later commits plus page rounding, and when the file runs out redb grows it to twice its
    /// size (or by twice the allocation it needs), so the file can reach about twice what is
    /// live. With the default 0.25 the file stayed at 4.2–5.4 MB for an 8 MiB budget in the
    /// disk-bound test, which fails if the file exceeds `max_bytes` (docs/outbox.md).
    pub record_fraction: f64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            max_bytes: 1 << 30,
            record_fraction: 0.25,
        }
    }
}

impl StoreConfig {
    /// A store with this disk budget and the default record fraction.
    pub fn with_max_bytes(max_bytes: u64) -> StoreConfig {
        StoreConfig {
            max_bytes,
            ..Default::default()
        }
    }

    /// Bytes records may occupy (accounted): `max_bytes × record_fraction`.
    pub fn record_budget(&self) -> u64 {
        (self.max_bytes as f64 * self.record_fraction.clamp(0.01, 1.0)) as u64
    }
}

/// Counters of what was evicted, per priority (index = [`Priority::as_u8`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvictionCounters {
    /// Records evicted.
    pub records: [u64; 5],
    /// Bytes evicted.
    pub bytes: [u64; 5],
}

/// Backlog metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BacklogStats {
    /// Records waiting in the outbox.
    pub records: u64,
    /// Their accounted bytes.
    pub bytes: u64,
    /// The bytes records may occupy ([`StoreConfig::record_budget`]).
    pub record_budget: u64,
    /// The disk budget of the file.
    pub max_bytes: u64,
    /// Records per priority (index = priority value).
    pub records_by_priority: [u64; 5],
    /// Age of the oldest record in ms (by capture time), 0 when empty.
    pub oldest_age_ms: u64,
    /// Evictions since the store was created.
    pub evicted: EvictionCounters,
    /// Records confirmed uploaded (deleted after confirmation) since the store was created.
    pub uploaded_records: u64,
    /// Upload batches pending (claimed, not yet confirmed).
    pub pending_batches: u64,
    /// Size of the database file on disk.
    pub file_bytes: u64,
    /// Random id of this store, part of every object name.
    pub instance: String,
}

/// What one append did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Sequence numbers given to the appended records, in order.
    pub seqs: Vec<u64>,
    /// Records evicted to make room (may include just-appended low-priority ones).
    pub evicted_records: u64,
    /// Bytes evicted.
    pub evicted_bytes: u64,
}

/// Limits of one upload batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BatchLimits {
    /// Most records per batch.
    pub max_records: usize,
    /// Most record bytes per batch.
    pub max_bytes: u64,
    /// Records of a priority below this are not uploaded (kept, and evicted first): "only the
    /// needed subset when bandwidth is scarce". Default: everything.
    pub min_priority: Priority,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_records: 500,
            max_bytes: 4 << 20,
            min_priority: Priority::Bulk,
        }
    }
}

/// A batch claimed for upload: same priority, same stream, same UTC hour.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Batch id (persistent; part of the object name).
    pub id: u64,
    /// The records' priority.
    pub priority: Priority,
    /// The records, seq ascending.
    pub records: Vec<StoredRecord>,
}

#[derive(Serialize, Deserialize)]
struct PendingBatch {
    priority: Priority,
    seqs: Vec<u64>,
}

/// The outbox store.
#[derive(Debug)]
pub struct Store {
    pub(crate) db: Database,
    path: PathBuf,
    cfg: StoreConfig,
    instance: u64,
}

fn meta_get<T: ReadableTable<&'static str, u64>>(t: &T, key: &str) -> Result<u64> {
    Ok(t.get(key).map_err(db)?.map(|v| v.value()).unwrap_or(0))
}

fn evict_key(kind: &str, p: u8) -> String {
    format!("evicted.{kind}.{p}")
}

/// Milliseconds since the Unix epoch now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Store {
    /// Open (or create) the store at `path`. After a crash redb repairs the file on open.
    pub fn open(path: impl AsRef<Path>, cfg: StoreConfig) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let database = Database::create(&path).map_err(db)?;
        let txn = database.begin_write().map_err(db)?;
        let instance = {
            let mut meta = txn.open_table(META).map_err(db)?;
            txn.open_table(RECORDS).map_err(db)?;
            txn.open_table(INDEX).map_err(db)?;
            txn.open_table(BATCHES).map_err(db)?;
            txn.open_table(CLAIMED).map_err(db)?;
            let existing = meta.get("instance").map_err(db)?.map(|v| v.value());
            match existing {
                Some(i) => i,
                None => {
                    let i = fastrand::u64(1..);
                    meta.insert("instance", i).map_err(db)?;
                    i
                }
            }
        };
        txn.commit().map_err(db)?;
        log::debug!(
            "outbox store {} opened, instance {instance:016x}",
            path.display()
        );
        Ok(Store {
            db: database,
            path,
            cfg,
            instance,
        })
    }

    /// The store's random instance id as 16 hex digits.
    pub fn instance(&self) -> String {
        format!("{:016x}", self.instance)
    }

    /// The configured limits.
    pub fn config(&self) -> StoreConfig {
        self.cfg
    }

    /// Accounted size of a record: its encoded size plus [`RECORD_OVERHEAD`]; values too large to
    /// share a page are rounded up to the power-of-two page run redb allocates for them.
    pub fn accounted(encoded_len: usize) -> u64 {
        let n = encoded_len as u64 + RECORD_OVERHEAD;
        if n > 2048 {
            n.next_power_of_two().max(4096)
        } else {
            n
        }
    }

    /// Append records in one durable commit, evicting by policy if the limit is exceeded.
    /// Records must be encoded already (see [`Record::encode`]); each must fit the limit alone.
    pub fn append_encoded(&self, records: &[(Priority, Vec<u8>)]) -> Result<AppendOutcome> {
        let budget = self.cfg.record_budget();
        for (_, enc) in records {
            let size = Self::accounted(enc.len());
            if size > budget {
                return Err(crate::OutboxError::TooLarge {
                    size,
                    limit: budget,
                });
            }
        }
        let txn = self.db.begin_write().map_err(db)?;
        let mut out = AppendOutcome::default();
        {
            let mut rec_t = txn.open_table(RECORDS).map_err(db)?;
            let mut idx_t = txn.open_table(INDEX).map_err(db)?;
            let mut meta = txn.open_table(META).map_err(db)?;
            let claimed = txn.open_table(CLAIMED).map_err(db)?;
            let mut next = meta_get(&meta, "next_seq")?.max(1);
            let mut bytes = meta_get(&meta, "bytes")?;
            for (p, enc) in records {
                let size = Self::accounted(enc.len());
                rec_t.insert(next, enc.as_slice()).map_err(db)?;
                idx_t.insert((p.as_u8(), next), size).map_err(db)?;
                out.seqs.push(next);
                bytes += size;
                next += 1;
            }
            if bytes > budget {
                let mut victims = Vec::new();
                let mut freed = 0;
                for e in idx_t.iter().map_err(db)? {
                    let (k, v) = e.map_err(db)?;
                    let (p, seq) = k.value();
                    if claimed.get(seq).map_err(db)?.is_some() {
                        continue;
                    }
                    victims.push((p, seq, v.value()));
                    freed += v.value();
                    if bytes - freed <= budget {
                        break;
                    }
                }
                for (p, seq, size) in victims {
                    idx_t.remove((p, seq)).map_err(db)?;
                    rec_t.remove(seq).map_err(db)?;
                    bytes -= size;
                    out.evicted_records += 1;
                    out.evicted_bytes += size;
                    let kr = evict_key("records", p);
                    let kb = evict_key("bytes", p);
                    let (r, b) = (meta_get(&meta, &kr)?, meta_get(&meta, &kb)?);
                    meta.insert(kr.as_str(), r + 1).map_err(db)?;
                    meta.insert(kb.as_str(), b + size).map_err(db)?;
                }
                if out.evicted_records > 0 {
                    log::info!(
                        "outbox full: evicted {} records ({} bytes)",
                        out.evicted_records,
                        out.evicted_bytes
                    );
                }
            }
            meta.insert("next_seq", next).map_err(db)?;
            meta.insert("bytes", bytes).map_err(db)?;
        }
        txn.commit().map_err(db)?;
        Ok(out)
    }

    /// Append records in one durable commit (encodes them first).
    pub fn append(&self, records: &[Record]) -> Result<AppendOutcome> {
        let enc: Vec<_> = records
            .iter()
            .map(|r| (r.meta.priority, r.encode()))
            .collect();
        self.append_encoded(&enc)
    }

    /// Backlog metrics.
    pub fn stats(&self) -> Result<BacklogStats> {
        let txn = self.db.begin_read().map_err(db)?;
        let meta = txn.open_table(META).map_err(db)?;
        let rec_t = txn.open_table(RECORDS).map_err(db)?;
        let idx_t = txn.open_table(INDEX).map_err(db)?;
        let batches = txn.open_table(BATCHES).map_err(db)?;
        let mut s = BacklogStats {
            records: rec_t.len().map_err(db)?,
            bytes: meta_get(&meta, "bytes")?,
            max_bytes: self.cfg.max_bytes,
            record_budget: self.cfg.record_budget(),
            uploaded_records: meta_get(&meta, "uploaded")?,
            pending_batches: batches.len().map_err(db)?,
            file_bytes: std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0),
            instance: self.instance(),
            ..Default::default()
        };
        for p in Priority::ALL {
            let i = usize::from(p.as_u8());
            s.records_by_priority[i] = idx_t
                .range((p.as_u8(), 0)..=(p.as_u8(), u64::MAX))
                .map_err(db)?
                .count() as u64;
            s.evicted.records[i] = meta_get(&meta, &evict_key("records", p.as_u8()))?;
            s.evicted.bytes[i] = meta_get(&meta, &evict_key("bytes", p.as_u8()))?;
        }
        if let Some((k, v)) = rec_t.first().map_err(db)? {
            let r = Record::decode(k.value(), v.value())?;
            s.oldest_age_ms = now_ms().saturating_sub(r.meta.time_ms);
        }
        Ok(s)
    }

    /// Read one record.
    pub fn get(&self, seq: u64) -> Result<Option<StoredRecord>> {
        let txn = self.db.begin_read().map_err(db)?;
        let t = txn.open_table(RECORDS).map_err(db)?;
        let v = t.get(seq).map_err(db)?;
        v.map(|v| {
            let bytes = v.value();
            Ok(StoredRecord {
                seq,
                size: Self::accounted(bytes.len()),
                record: Record::decode(seq, bytes)?,
            })
        })
        .transpose()
    }

    /// Visit every record in seq order (verifying each). `f` returns false to stop.
    pub fn for_each(&self, mut f: impl FnMut(Result<StoredRecord>) -> bool) -> Result<()> {
        let txn = self.db.begin_read().map_err(db)?;
        let t = txn.open_table(RECORDS).map_err(db)?;
        for e in t.iter().map_err(db)? {
            let (k, v) = e.map_err(db)?;
            let (seq, bytes) = (k.value(), v.value());
            let r = Record::decode(seq, bytes).map(|record| StoredRecord {
                seq,
                size: Self::accounted(bytes.len()),
                record,
            });
            if !f(r) {
                break;
            }
        }
        Ok(())
    }

    /// Seqs currently claimed by a pending upload batch.
    pub fn claimed(&self) -> Result<Vec<u64>> {
        let txn = self.db.begin_read().map_err(db)?;
        let t = txn.open_table(CLAIMED).map_err(db)?;
        t.iter()
            .map_err(db)?
            .map(|e| Ok(e.map_err(db)?.0.value()))
            .collect()
    }

    /// Remove records (not claimed ones) in one durable commit; returns how many were removed.
    /// Used by `export --remove` and by tests; the uplink uses [`Store::confirm_batch`].
    pub fn remove(&self, seqs: &[u64]) -> Result<u64> {
        let txn = self.db.begin_write().map_err(db)?;
        let mut n = 0;
        {
            let mut rec_t = txn.open_table(RECORDS).map_err(db)?;
            let mut idx_t = txn.open_table(INDEX).map_err(db)?;
            let mut meta = txn.open_table(META).map_err(db)?;
            let claimed = txn.open_table(CLAIMED).map_err(db)?;
            let mut bytes = meta_get(&meta, "bytes")?;
            for &seq in seqs {
                if claimed.get(seq).map_err(db)?.is_some() {
                    continue;
                }
                let Some(v) = rec_t.remove(seq).map_err(db)? else {
                    continue;
                };
                let (size, p) = {
                    let enc = v.value();
                    let p = Record::decode(seq, enc).map(|r| r.meta.priority.as_u8());
                    (Self::accounted(enc.len()), p)
                };
                drop(v);
                match p {
                    Ok(p) => {
                        idx_t.remove((p, seq)).map_err(db)?;
                    }
                    Err(_) => {
                        for p in Priority::ALL {
                            idx_t.remove((p.as_u8(), seq)).map_err(db)?;
                        }
                    }
                }
                bytes = bytes.saturating_sub(size);
                n += 1;
            }
            meta.insert("bytes", bytes).map_err(db)?;
        }
        txn.commit().map_err(db)?;
        Ok(n)
    }

    /// The next batch to upload: a pending (claimed, unconfirmed) batch if there is one, so a
    /// retry re-sends exactly the same records under the same name; otherwise a new batch of the
    /// highest priority present, oldest first, all of one stream and one UTC hour, claimed in a
    /// durable commit before it is returned.
    pub fn claim_batch(&self, limits: BatchLimits) -> Result<Option<Batch>> {
        let txn = self.db.begin_write().map_err(db)?;
        let batch = {
            let rec_t = txn.open_table(RECORDS).map_err(db)?;
            let idx_t = txn.open_table(INDEX).map_err(db)?;
            let mut meta = txn.open_table(META).map_err(db)?;
            let mut batches = txn.open_table(BATCHES).map_err(db)?;
            let mut claimed = txn.open_table(CLAIMED).map_err(db)?;
            let load = |seqs: &[u64]| -> Result<Vec<StoredRecord>> {
                let mut out = Vec::with_capacity(seqs.len());
                for &seq in seqs {
                    if let Some(v) = rec_t.get(seq).map_err(db)? {
                        let bytes = v.value();
                        out.push(StoredRecord {
                            seq,
                            size: Self::accounted(bytes.len()),
                            record: Record::decode(seq, bytes)?,
                        });
                    }
                }
                Ok(out)
            };
            let pending = batches
                .first()
                .map_err(db)?
                .map(|(k, v)| (k.value(), v.value().to_vec()));
            if let Some((id, raw)) = pending {
                let pb: PendingBatch = serde_json::from_slice(&raw)?;
                let records = load(&pb.seqs)?;
                return Ok(Some(Batch {
                    id,
                    priority: pb.priority,
                    records,
                }));
            }
            let mut picked: Vec<u64> = Vec::new();
            let mut prio = Priority::Bulk;
            'outer: for p in Priority::ALL
                .iter()
                .rev()
                .filter(|p| **p >= limits.min_priority)
            {
                let mut key: Option<(String, u64)> = None;
                let mut bytes = 0;
                let mut scanned = 0;
                for e in idx_t
                    .range((p.as_u8(), 0)..=(p.as_u8(), u64::MAX))
                    .map_err(db)?
                {
                    let (k, v) = e.map_err(db)?;
                    let seq = k.value().1;
                    let size = v.value();
                    scanned += 1;
                    let Some(rv) = rec_t.get(seq).map_err(db)? else {
                        continue;
                    };
                    let r = Record::decode(seq, rv.value())?;
                    let part = (r.meta.stream.clone(), r.meta.time_ms / 3_600_000);
                    match &key {
                        None => key = Some(part),
                        Some(k) if *k != part => {
                            if scanned > limits.max_records * 4 {
                                break;
                            }
                            continue;
                        }
                        Some(_) => {}
                    }
                    if !picked.is_empty() && bytes + size > limits.max_bytes {
                        break;
                    }
                    picked.push(seq);
                    bytes += size;
                    if picked.len() >= limits.max_records.max(1) {
                        break;
                    }
                }
                if !picked.is_empty() {
                    prio = *p;
                    break 'outer;
                }
            }
            if picked.is_empty() {
                None
            } else {
                let id = meta_get(&meta, "next_batch")?.max(1);
                meta.insert("next_batch", id + 1).map_err(db)?;
                let pb = PendingBatch {
                    priority: prio,
                    seqs: picked.clone(),
                };
                batches
                    .insert(id, serde_json::to_vec(&pb)?.as_slice())
                    .map_err(db)?;
                for &s in &picked {
                    claimed.insert(s, id).map_err(db)?;
                }
                Some(Batch {
                    id,
                    priority: prio,
                    records: load(&picked)?,
                })
            }
        };
        if batch.is_some() {
            txn.commit().map_err(db)?;
        }
        Ok(batch)
    }

    /// The upload of batch `id` is confirmed: delete its records and the batch, durably.
    pub fn confirm_batch(&self, id: u64) -> Result<u64> {
        let txn = self.db.begin_write().map_err(db)?;
        let mut n = 0;
        {
            let mut rec_t = txn.open_table(RECORDS).map_err(db)?;
            let mut idx_t = txn.open_table(INDEX).map_err(db)?;
            let mut meta = txn.open_table(META).map_err(db)?;
            let mut batches = txn.open_table(BATCHES).map_err(db)?;
            let mut claimed = txn.open_table(CLAIMED).map_err(db)?;
            let raw = batches.remove(id).map_err(db)?.map(|v| v.value().to_vec());
            let Some(raw) = raw else {
                return Ok(0);
            };
            let pb: PendingBatch = serde_json::from_slice(&raw)?;
            let mut bytes = meta_get(&meta, "bytes")?;
            for &seq in &pb.seqs {
                claimed.remove(seq).map_err(db)?;
                let size = rec_t
                    .remove(seq)
                    .map_err(db)?
                    .map(|v| Self::accounted(v.value().len()));
                if let Some(size) = size {
                    idx_t.remove((pb.priority.as_u8(), seq)).map_err(db)?;
                    bytes = bytes.saturating_sub(size);
                    n += 1;
                }
            }
            let up = meta_get(&meta, "uploaded")?;
            meta.insert("uploaded", up + n).map_err(db)?;
            meta.insert("bytes", bytes).map_err(db)?;
        }
        txn.commit().map_err(db)?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RecordMeta;

    fn rec(p: Priority, stream: &str, t: u64, n: usize) -> Record {
        Record::json(
            RecordMeta {
                stream: stream.into(),
                time_ms: t,
                model_id: "m".into(),
                model_version: "1".into(),
                priority: p,
            },
            serde_json::json!({ "pad": "x".repeat(n) }),
        )
    }

    #[test]
    fn eviction_policy_and_counters() {
        let dir = tempfile::tempdir().unwrap();
        let one = Store::accounted(rec(Priority::Anomaly, "a", 9, 100).encode().len());
        let s = Store::open(
            dir.path().join("o.redb"),
            StoreConfig {
                max_bytes: one * 10,
                record_fraction: 1.0,
            },
        )
        .unwrap();
        let recs: Vec<_> = (0..4)
            .map(|i| rec(Priority::Event, "a", i, 100))
            .chain((0..4).map(|i| rec(Priority::Bulk, "a", i, 100)))
            .chain((0..2).map(|i| rec(Priority::Sample, "a", i, 100)))
            .collect();
        s.append(&recs).unwrap();
        assert_eq!(s.stats().unwrap().records, 10);
        let out = s
            .append(&[
                rec(Priority::Anomaly, "a", 9, 100),
                rec(Priority::Anomaly, "a", 9, 100),
            ])
            .unwrap();
        assert_eq!(out.evicted_records, 2);
        let st = s.stats().unwrap();
        assert!(st.bytes <= st.record_budget);
        assert_eq!(st.evicted.records[0], 2);
        // the two oldest bulk records went
        assert!(
            s.get(5).unwrap().is_none()
                && s.get(6).unwrap().is_none()
                && s.get(7).unwrap().is_some()
        );
    }

    #[test]
    fn claim_is_priority_ordered_stable_and_confirmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.redb");
        let s = Store::open(&path, StoreConfig::default()).unwrap();
        s.append(&[
            rec(Priority::Bulk, "a", 0, 10),
            rec(Priority::Event, "a", 0, 10),
            rec(Priority::Event, "b", 0, 10),
            rec(Priority::Event, "a", 1, 10),
            rec(Priority::Anomaly, "a", 7_200_000, 10),
        ])
        .unwrap();
        let b = s.claim_batch(BatchLimits::default()).unwrap().unwrap();
        assert_eq!(b.priority, Priority::Anomaly);
        assert_eq!(b.records.len(), 1);
        // Unconfirmed: the same batch comes back, also after reopening.
        drop(s);
        let s = Store::open(&path, StoreConfig::default()).unwrap();
        let again = s.claim_batch(BatchLimits::default()).unwrap().unwrap();
        assert_eq!(again, b);
        assert_eq!(s.confirm_batch(b.id).unwrap(), 1);
        let b = s.claim_batch(BatchLimits::default()).unwrap().unwrap();
        assert_eq!(b.priority, Priority::Event);
        assert_eq!(
            b.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
            vec![2, 4]
        );
        s.confirm_batch(b.id).unwrap();
        let b = s.claim_batch(BatchLimits::default()).unwrap().unwrap();
        assert_eq!(b.records.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![3]);
        s.confirm_batch(b.id).unwrap();
        let b = s.claim_batch(BatchLimits::default()).unwrap().unwrap();
        assert_eq!(b.priority, Priority::Bulk);
        s.confirm_batch(b.id).unwrap();
        assert!(s.claim_batch(BatchLimits::default()).unwrap().is_none());
        let st = s.stats().unwrap();
        assert_eq!((st.records, st.bytes, st.uploaded_records), (0, 0, 5));
    }
}
