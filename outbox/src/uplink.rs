//! Uplink to Azure Blob Storage: batches, layout, bandwidth cap, backoff, confirm-then-delete.
//!
//! Object layout (a cloud job can read it with a glob or Hive-style partition discovery):
//! ```text
//! {prefix}/device={device}/stream={stream}/date=YYYY-MM-DD/hour=HH/{priority}-{instance}-{first_seq:020}-b{batch:010}.jsonl.gz
//! {prefix}/device={device}/stream={stream}/date=YYYY-MM-DD/hour=HH/{priority}-{instance}-{seq:020}.jpg
//! ```
//! `instance` is the outbox's random id and `seq`/`batch` are persisted in it, so every name is
//! fixed before the first attempt and a retry (even after a crash) overwrites the same object with
//! the same bytes instead of creating a second one. JPEGs are put first, the JSON Lines object
//! (one line per record, JPEG lines naming their object) last, and the records are deleted from
//! the outbox only after every put of the batch has succeeded.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use crate::error::{OutboxError, Result};
use crate::record::{Body, Priority, StoredRecord};
use crate::store::{Batch, BatchLimits, Store};

/// The well-known Azurite development account.
pub const EMULATOR_ACCOUNT: &str = "devstoreaccount1";
/// The well-known Azurite development account key (public, documented by Microsoft).
pub const EMULATOR_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Connection settings for Azure Blob Storage (or the Azurite emulator).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AzureConfig {
    /// Storage account name (defaults to the emulator account with `emulator`).
    pub account: String,
    /// Container name (must exist; see [`create_container`] for the emulator).
    pub container: String,
    /// Shared key (base64). One of `access_key` and `sas` is needed unless `emulator` is set.
    pub access_key: Option<String>,
    /// SAS token (query string, with or without the leading `?`).
    pub sas: Option<String>,
    /// Endpoint override, e.g. `http://127.0.0.1:10000/devstoreaccount1`.
    pub endpoint: Option<String>,
    /// Azurite emulator at this base URL, e.g. `http://127.0.0.1:10000` (development account and
    /// key unless given, plain HTTP allowed).
    pub emulator: Option<String>,
}

impl AzureConfig {
    /// Settings for Azurite at `base_url` (e.g. `http://127.0.0.1:10000`).
    pub fn emulator(base_url: &str, container: &str) -> AzureConfig {
        AzureConfig {
            container: container.into(),
            emulator: Some(base_url.trim_end_matches('/').into()),
            ..Default::default()
        }
    }

    /// (endpoint URL including the account path for the emulator, account, key).
    fn resolved(&self) -> (Option<String>, String, Option<String>) {
        match &self.emulator {
            Some(base) => {
                let account = if self.account.is_empty() {
                    EMULATOR_ACCOUNT.into()
                } else {
                    self.account.clone()
                };
                let key = self
                    .access_key
                    .clone()
                    .or_else(|| self.sas.is_none().then(|| EMULATOR_KEY.into()));
                let base = base.trim_end_matches('/');
                (Some(format!("{base}/{account}")), account, key)
            }
            None => (
                self.endpoint.clone(),
                self.account.clone(),
                self.access_key.clone(),
            ),
        }
    }

    /// Build the object store client. Timeouts are short and object_store's own retries are off:
    /// the uplink does its own backoff so that a dead link costs nothing but a timer.
    pub fn build(&self, request_timeout: Duration) -> Result<Arc<dyn ObjectStore>> {
        use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
        use object_store::{ClientOptions, RetryConfig};
        // Process-wide rustls provider for HTTPS: ring (no aws-lc C build). Already set is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        if self.container.is_empty() {
            return Err(OutboxError::Config("azure.container is empty".into()));
        }
        let (endpoint, account, key) = self.resolved();
        if account.is_empty() {
            return Err(OutboxError::Config("azure.account is empty".into()));
        }
        if key.is_none() && self.sas.is_none() {
            return Err(OutboxError::Config(
                "azure: set access_key or sas (or emulator)".into(),
            ));
        }
        let allow_http = endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"));
        let opts = ClientOptions::new()
            .with_allow_http(allow_http)
            .with_timeout(request_timeout)
            .with_connect_timeout(Duration::from_secs(2));
        let retry = RetryConfig {
            max_retries: 0,
            retry_timeout: request_timeout,
            ..Default::default()
        };
        let mut b = MicrosoftAzureBuilder::new()
            .with_account(account)
            .with_container_name(&self.container)
            .with_client_options(opts)
            .with_retry(retry);
        if let Some(e) = endpoint {
            b = b.with_endpoint(e);
        }
        if let Some(k) = key {
            b = b.with_access_key(k);
        } else if let Some(sas) = &self.sas {
            b = b.with_config(AzureConfigKey::SasKey, sas.trim_start_matches('?'));
        }
        Ok(Arc::new(b.build()?))
    }
}

/// Uplink settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UplinkConfig {
    /// Device name, the first partition of every object name.
    pub device: String,
    /// Prefix inside the container (may be empty).
    pub prefix: String,
    /// Bandwidth cap in bytes per second (0 = unlimited).
    pub max_bytes_per_sec: u64,
    /// Token bucket depth in bytes (how much may go at once after an idle period).
    pub burst_bytes: u64,
    /// Batch limits.
    pub batch: BatchLimits,
    /// First backoff after a failure (ms).
    pub backoff_initial_ms: u64,
    /// Longest backoff (ms).
    pub backoff_max_ms: u64,
    /// Timeout of one request (ms).
    pub request_timeout_ms: u64,
    /// How often to look for new records when the outbox is empty (ms).
    pub poll_ms: u64,
    /// gzip level of JSON Lines objects (0–9).
    pub gzip_level: u32,
}

impl Default for UplinkConfig {
    fn default() -> Self {
        UplinkConfig {
            device: "device".into(),
            prefix: String::new(),
            max_bytes_per_sec: 0,
            burst_bytes: 64 * 1024,
            batch: BatchLimits::default(),
            backoff_initial_ms: 200,
            backoff_max_ms: 30_000,
            request_timeout_ms: 30_000,
            poll_ms: 500,
            gzip_level: 6,
        }
    }
}

/// A token bucket: `rate` bytes per second, `burst` deep. Sending more than is in the bucket
/// borrows against the future, so the long-run rate equals `rate` whatever the object sizes.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl TokenBucket {
    /// A bucket that is empty at its first use (no burst above the cap when the uplink starts);
    /// `burst` is how much unused allowance it saves up while idle or while a request is in
    /// flight, so per-request latency does not lower the achieved rate. `rate == 0`: unlimited.
    pub fn new(rate: u64, burst: u64) -> TokenBucket {
        TokenBucket {
            rate: rate as f64,
            burst: burst as f64,
            tokens: 0.0,
            last: None,
        }
    }

    /// Take `n` bytes; returns how long to wait before sending them.
    pub fn take(&mut self, n: u64) -> Duration {
        if self.rate <= 0.0 {
            return Duration::ZERO;
        }
        let now = Instant::now();
        let dt = self
            .last
            .map_or(0.0, |l| now.duration_since(l).as_secs_f64());
        self.last = Some(now);
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        self.tokens -= n as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

/// Exponential backoff with jitter: the n-th delay is uniform in [d/2, d], d = min(max, init·2ⁿ).
#[derive(Debug, Clone)]
pub struct Backoff {
    init: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// New backoff.
    pub fn new(init: Duration, max: Duration) -> Backoff {
        Backoff {
            init,
            max,
            attempt: 0,
        }
    }

    /// The next delay.
    pub fn next_delay(&mut self) -> Duration {
        let d = self
            .init
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let half = d / 2;
        half + Duration::from_nanos(fastrand::u64(
            0..=half.as_nanos().min(u128::from(u64::MAX)) as u64,
        ))
    }

    /// Success: start again from the initial delay.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// Uplink counters.
#[derive(Debug, Default)]
pub struct UplinkStats {
    /// Batches confirmed.
    pub batches: AtomicU64,
    /// Records confirmed (deleted from the outbox after upload).
    pub records: AtomicU64,
    /// Objects put successfully (including retries of the same name).
    pub objects: AtomicU64,
    /// Payload bytes put successfully.
    pub bytes: AtomicU64,
    /// Failed attempts.
    pub failures: AtomicU64,
}

/// A snapshot of [`UplinkStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UplinkSnapshot {
    /// Batches confirmed.
    pub batches: u64,
    /// Records confirmed.
    pub records: u64,
    /// Objects put.
    pub objects: u64,
    /// Bytes put.
    pub bytes: u64,
    /// Failed attempts.
    pub failures: u64,
}

impl UplinkStats {
    /// Read all counters.
    pub fn snapshot(&self) -> UplinkSnapshot {
        UplinkSnapshot {
            batches: self.batches.load(Ordering::Relaxed),
            records: self.records.load(Ordering::Relaxed),
            objects: self.objects.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
        }
    }
}

/// One confirmed batch, reported to an optional observer (tests, metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmed {
    /// Batch id.
    pub batch: u64,
    /// Its priority.
    pub priority: Priority,
    /// Its records' seqs.
    pub seqs: Vec<u64>,
    /// The JSON Lines object name.
    pub object: String,
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Replace anything but `[A-Za-z0-9._-]` so a value is safe inside a partition segment.
pub fn sanitize(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() { "_".into() } else { out }
}

/// The object layout.
#[derive(Debug, Clone)]
pub struct Layout {
    prefix: String,
    device: String,
    instance: String,
}

impl Layout {
    /// Layout for one device and outbox instance.
    pub fn new(prefix: &str, device: &str, instance: &str) -> Layout {
        let prefix = prefix.trim_matches('/');
        Layout {
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            device: sanitize(device),
            instance: instance.into(),
        }
    }

    /// `{prefix}/device=…/stream=…/date=…/hour=…`
    pub fn partition(&self, stream: &str, time_ms: u64) -> String {
        let secs = (time_ms / 1000) as i64;
        let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
        let h = secs.rem_euclid(86_400) / 3600;
        format!(
            "{}device={}/stream={}/date={y:04}-{m:02}-{d:02}/hour={h:02}",
            self.prefix,
            self.device,
            sanitize(stream)
        )
    }

    /// Name of a record's JPEG object.
    pub fn jpeg_name(&self, r: &StoredRecord) -> String {
        format!(
            "{}/{}-{}-{:020}.jpg",
            self.partition(&r.record.meta.stream, r.record.meta.time_ms),
            r.record.meta.priority.name(),
            self.instance,
            r.seq
        )
    }

    /// Name of a batch's JSON Lines object.
    pub fn batch_name(&self, batch: &Batch) -> Option<String> {
        let first = batch.records.first()?;
        Some(format!(
            "{}/{}-{}-{:020}-b{:010}.jsonl.gz",
            self.partition(&first.record.meta.stream, first.record.meta.time_ms),
            batch.priority.name(),
            self.instance,
            first.seq,
            batch.id
        ))
    }
}

/// The JSON line describing one record (`jpeg` names the image object for frame records).
pub fn record_line(
    instance: &str,
    r: &StoredRecord,
    jpeg_object: Option<&str>,
) -> serde_json::Value {
    let m = &r.record.meta;
    let mut v = serde_json::json!({
        "instance": instance,
        "seq": r.seq,
        "stream": m.stream,
        "time_ms": m.time_ms,
        "model_id": m.model_id,
        "model_version": m.model_version,
        "priority": m.priority,
    });
    match r.record.body() {
        Body::Json(j) => v["data"] = j.clone(),
        Body::Jpeg(img) => {
            v["jpeg"] = serde_json::json!(jpeg_object);
            v["width"] = img.width().into();
            v["height"] = img.height().into();
            v["detections"] = serde_json::to_value(img.detections()).unwrap_or_default();
        }
    }
    v
}

/// gzip-compressed JSON Lines of the batch.
pub fn encode_lines(lines: &[serde_json::Value], level: u32) -> Result<Vec<u8>> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level.min(9)));
    for l in lines {
        serde_json::to_writer(&mut gz, l)?;
        gz.write_all(b"\n")?;
    }
    Ok(gz.finish()?)
}

/// Everything one batch turns into: (object name, bytes), JPEGs first, JSON Lines last.
pub fn batch_objects(
    layout: &Layout,
    batch: &Batch,
    gzip_level: u32,
) -> Result<Vec<(String, Vec<u8>)>> {
    let Some(name) = layout.batch_name(batch) else {
        return Ok(Vec::new());
    };
    let mut objects = Vec::new();
    let mut lines = Vec::with_capacity(batch.records.len());
    for r in &batch.records {
        let jpeg = match r.record.body() {
            Body::Jpeg(img) => {
                let n = layout.jpeg_name(r);
                objects.push((n.clone(), img.bytes().to_vec()));
                Some(n)
            }
            Body::Json(_) => None,
        };
        lines.push(record_line(&layout.instance, r, jpeg.as_deref()));
    }
    objects.push((name, encode_lines(&lines, gzip_level)?));
    Ok(objects)
}

/// The uplink: moves records from the outbox to the object store.
#[derive(Debug)]
pub struct Uplink {
    store: Arc<Store>,
    client: Arc<dyn ObjectStore>,
    cfg: UplinkConfig,
    layout: Layout,
    bucket: tokio::sync::Mutex<TokenBucket>,
    stats: Arc<UplinkStats>,
    observer: Option<std::sync::mpsc::Sender<Confirmed>>,
}

impl Uplink {
    /// New uplink over `store`, putting objects into `client`.
    pub fn new(store: Arc<Store>, client: Arc<dyn ObjectStore>, cfg: UplinkConfig) -> Uplink {
        let layout = Layout::new(&cfg.prefix, &cfg.device, &store.instance());
        let bucket =
            tokio::sync::Mutex::new(TokenBucket::new(cfg.max_bytes_per_sec, cfg.burst_bytes));
        Uplink {
            store,
            client,
            cfg,
            layout,
            bucket,
            stats: Arc::default(),
            observer: None,
        }
    }

    /// Report every confirmed batch on this channel.
    pub fn with_observer(mut self, tx: std::sync::mpsc::Sender<Confirmed>) -> Uplink {
        self.observer = Some(tx);
        self
    }

    /// Counters (shared; stay valid while the uplink runs).
    pub fn stats(&self) -> Arc<UplinkStats> {
        self.stats.clone()
    }

    /// The layout in use.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    async fn claim(&self) -> Result<Option<Batch>> {
        let store = self.store.clone();
        let limits = self.cfg.batch;
        tokio::task::spawn_blocking(move || store.claim_batch(limits))
            .await
            .map_err(|e| OutboxError::WriterStopped(e.to_string()))?
    }

    async fn put(&self, name: &str, bytes: Vec<u8>) -> Result<()> {
        let n = bytes.len() as u64;
        let wait = self.bucket.lock().await.take(n);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        self.client
            .put(&ObjPath::from(name), PutPayload::from(bytes))
            .await?;
        self.stats.objects.fetch_add(1, Ordering::Relaxed);
        self.stats.bytes.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }

    /// Upload every object of the batch (each put is idempotent by name).
    async fn upload(&self, objects: &[(String, Vec<u8>)]) -> Result<()> {
        for (name, bytes) in objects {
            self.put(name, bytes.clone()).await?;
        }
        Ok(())
    }

    async fn confirm(&self, batch: &Batch, objects: &[(String, Vec<u8>)]) -> Result<()> {
        let store = self.store.clone();
        let id = batch.id;
        let n = tokio::task::spawn_blocking(move || store.confirm_batch(id))
            .await
            .map_err(|e| OutboxError::WriterStopped(e.to_string()))??;
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        self.stats.records.fetch_add(n, Ordering::Relaxed);
        log::debug!("uplink: batch {id} confirmed ({n} records)");
        if let Some(tx) = &self.observer {
            let _ = tx.send(Confirmed {
                batch: id,
                priority: batch.priority,
                seqs: batch.records.iter().map(|r| r.seq).collect(),
                object: objects.last().map(|o| o.0.clone()).unwrap_or_default(),
            });
        }
        Ok(())
    }

    /// Upload one batch, retrying with backoff until it is confirmed or `stop` turns true.
    /// Returns Ok(false) when there was nothing (eligible) to upload.
    async fn step(
        &self,
        backoff: &mut Backoff,
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Result<bool> {
        let Some(batch) = self.claim().await? else {
            return Ok(false);
        };
        let objects = batch_objects(&self.layout, &batch, self.cfg.gzip_level)?;
        loop {
            match self.upload(&objects).await {
                Ok(()) => {
                    backoff.reset();
                    self.confirm(&batch, &objects).await?;
                    return Ok(true);
                }
                Err(e) => {
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    let d = backoff.next_delay();
                    log::warn!(
                        "uplink: batch {} failed ({e}); retrying in {} ms",
                        batch.id,
                        d.as_millis()
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(d) => {}
                        _ = stop.changed() => {}
                    }
                    if *stop.borrow() {
                        return Ok(true);
                    }
                }
            }
        }
    }

    /// Run until `stop` is set to true. Errors of the local store end the loop; link errors never
    /// do (they are retried with backoff).
    pub async fn run(&self, mut stop: tokio::sync::watch::Receiver<bool>) -> Result<()> {
        let mut backoff = Backoff::new(
            Duration::from_millis(self.cfg.backoff_initial_ms),
            Duration::from_millis(self.cfg.backoff_max_ms),
        );
        while !*stop.borrow() {
            if !self.step(&mut backoff, &mut stop).await? {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(self.cfg.poll_ms)) => {}
                    _ = stop.changed() => {}
                }
            }
        }
        Ok(())
    }

    /// Upload until the outbox holds nothing eligible; the first link error is returned (the
    /// claimed batch stays pending and is re-sent under the same name next time).
    pub async fn drain(&self) -> Result<UplinkSnapshot> {
        while let Some(batch) = self.claim().await? {
            let objects = batch_objects(&self.layout, &batch, self.cfg.gzip_level)?;
            if let Err(e) = self.upload(&objects).await {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
            self.confirm(&batch, &objects).await?;
        }
        Ok(self.stats.snapshot())
    }
}

/// Write every record (not claimed by a pending upload) into `dir` with the uplink's layout, fsync
/// each file, and, with `remove`, delete the exported records from the outbox afterwards.
/// Returns (records, files).
pub fn export_dir(
    store: &Store,
    cfg: &UplinkConfig,
    dir: &std::path::Path,
    remove: bool,
) -> Result<(u64, u64)> {
    use std::collections::BTreeMap;
    let layout = Layout::new(&cfg.prefix, &cfg.device, &store.instance());
    let claimed: std::collections::HashSet<u64> = store.claimed()?.into_iter().collect();
    let mut groups: BTreeMap<(String, Priority), Vec<StoredRecord>> = BTreeMap::new();
    let mut err = None;
    store.for_each(|r| match r {
        Ok(r) if claimed.contains(&r.seq) => true,
        Ok(r) => {
            let part = layout.partition(&r.record.meta.stream, r.record.meta.time_ms);
            groups
                .entry((part, r.record.meta.priority))
                .or_default()
                .push(r);
            true
        }
        Err(e) => {
            err = Some(e);
            false
        }
    })?;
    if let Some(e) = err {
        return Err(e);
    }
    let write = |name: &str, bytes: &[u8]| -> Result<()> {
        use std::io::Write;
        let path = dir.join(name);
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p)?;
        }
        let mut f = std::fs::File::create(&path)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        Ok(())
    };
    let (mut n, mut files, mut seqs) = (0, 0, Vec::new());
    for ((part, prio), recs) in &groups {
        let mut lines = Vec::new();
        for r in recs {
            let jpeg = match r.record.body() {
                Body::Jpeg(img) => {
                    let name = layout.jpeg_name(r);
                    write(&name, img.bytes())?;
                    files += 1;
                    Some(name)
                }
                Body::Json(_) => None,
            };
            lines.push(record_line(&layout.instance, r, jpeg.as_deref()));
            seqs.push(r.seq);
            n += 1;
        }
        let (first, last) = (recs[0].seq, recs[recs.len() - 1].seq);
        let name = format!(
            "{part}/{}-{}-{first:020}-{last:020}.export.jsonl.gz",
            prio.name(),
            layout.instance
        );
        write(&name, &encode_lines(&lines, cfg.gzip_level)?)?;
        files += 1;
    }
    if remove {
        store.remove(&seqs)?;
    }
    Ok((n, files))
}

/// Create a container with a SharedKey-signed `PUT` over plain HTTP (for Azurite; real
/// deployments create containers with their own tooling). An existing container is fine.
pub fn create_container(
    base_url: &str,
    account: &str,
    key_b64: &str,
    container: &str,
) -> Result<()> {
    use base64::Engine;
    use std::io::{Read, Write};
    let rest = base_url
        .strip_prefix("http://")
        .ok_or_else(|| OutboxError::Http(format!("{base_url}: only http:// is supported")))?;
    let hostport = rest.split('/').next().unwrap_or(rest);
    let path = format!("/{account}/{container}");
    let date = http_date(crate::store::now_ms() / 1000);
    let version = "2021-12-02";
    let sts = format!(
        "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{account}{path}\nrestype:container"
    );
    let key = base64::engine::general_purpose::STANDARD
        .decode(key_b64)
        .map_err(|e| OutboxError::Config(format!("account key is not base64: {e}")))?;
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key),
        sts.as_bytes(),
    );
    let sig = base64::engine::general_purpose::STANDARD.encode(tag.as_ref());
    let req = format!(
        "PUT {path}?restype=container HTTP/1.1\r\nHost: {hostport}\r\nx-ms-date: {date}\r\nx-ms-version: {version}\r\nAuthorization: SharedKey {account}:{sig}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let mut s = std::net::TcpStream::connect(hostport)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(req.as_bytes())?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let status = resp.split_whitespace().nth(1).unwrap_or("");
    match status {
        "201" | "409" => Ok(()),
        _ => Err(OutboxError::Http(format!(
            "create container {container}: {}",
            resp.lines().next().unwrap_or("no response")
        ))),
    }
}

/// RFC 1123 date, e.g. `Sun, 22 Nov 2026 12:00:00 GMT`.
pub fn http_date(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = (secs / 86_400) as i64;
    let (y, m, d) = civil_from_days(days);
    let t = secs % 86_400;
    format!(
        "{}, {d:02} {} {y} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(m - 1) as usize],
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(http_date(1_700_000_000), "Tue, 14 Nov 2023 22:13:20 GMT");
        let l = Layout::new("/p/", "dev 1", "00ff");
        assert_eq!(
            l.partition("cam/1", 1_700_000_000_000),
            "p/device=dev_1/stream=cam_1/date=2023-11-14/hour=22"
        );
    }

    #[test]
    fn token_bucket_rate() {
        let mut b = TokenBucket::new(1000, 100);
        let w = b.take(100); // empty at first use
        assert_eq!(w, Duration::from_millis(100));
        std::thread::sleep(Duration::from_millis(300)); // pays the debt, then saves up `burst`
        let w = b.take(600); // 100 saved, 500 owed
        assert!(
            w >= Duration::from_millis(490) && w <= Duration::from_millis(510),
            "{w:?}"
        );
        assert_eq!(TokenBucket::new(0, 0).take(1 << 30), Duration::ZERO);
    }

    #[test]
    fn export_writes_the_layout_skips_claimed_and_removes() {
        use crate::record::{Record, RecordMeta};
        use crate::store::StoreConfig;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("o.redb"), StoreConfig::default()).unwrap();
        let meta = |p, t: u64| RecordMeta {
            stream: "cam".into(),
            time_ms: 1_700_000_000_000 + t,
            model_id: "m".into(),
            model_version: "1".into(),
            priority: p,
        };
        let mut f = crate::RgbFrame::new(16, 16, vec![9; 768]).unwrap();
        let red = crate::Redactor::apply(&crate::RedactionPolicy::default(), &mut f, &[]);
        store
            .append(&[
                Record::json(meta(Priority::Anomaly, 0), serde_json::json!({"a": 1})),
                Record::json(meta(Priority::Event, 1), serde_json::json!({"e": 1})),
                Record::frame(meta(Priority::Bulk, 2), &red, 80).unwrap(),
            ])
            .unwrap();
        // The anomaly is claimed by an upload in flight: export leaves it to the uplink.
        let claimed = store.claim_batch(BatchLimits::default()).unwrap().unwrap();
        assert_eq!(claimed.priority, Priority::Anomaly);
        let out = dir.path().join("export");
        let cfg = UplinkConfig {
            device: "dev".into(),
            ..Default::default()
        };
        assert_eq!(export_dir(&store, &cfg, &out, true).unwrap(), (2, 3));
        let part = out.join("device=dev/stream=cam/date=2023-11-14/hour=22");
        let mut names: Vec<String> = std::fs::read_dir(&part)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert!(
            names[0].starts_with("bulk-") && names[0].ends_with(".export.jsonl.gz"),
            "{names:?}"
        );
        assert!(names[1].starts_with("bulk-") && names[1].ends_with(".jpg"));
        assert!(names[2].starts_with("event-"));
        let st = store.stats().unwrap();
        assert_eq!(
            (st.records, st.pending_batches),
            (1, 1),
            "only the claimed anomaly is left"
        );
    }

    #[test]
    fn backoff_grows_with_jitter_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let d: Vec<_> = (0..6).map(|_| b.next_delay()).collect();
        assert!(d[0] >= Duration::from_millis(50) && d[0] <= Duration::from_millis(100));
        assert!(d[3] >= Duration::from_millis(400) && d[3] <= Duration::from_millis(800));
        assert!(d[5] >= Duration::from_millis(500) && d[5] <= Duration::from_secs(1));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
