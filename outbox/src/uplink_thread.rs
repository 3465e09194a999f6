//! [`UplinkThread`]: the uplink running in the background on a thread of its own (with its own
//! single-threaded tokio runtime), for hosts that are not async, such as `outpost run`.

use std::sync::Arc;
use std::thread::JoinHandle;

use crate::error::{OutboxError, Result};
use crate::priority::Background;
use crate::uplink::{Uplink, UplinkSnapshot, UplinkStats};

/// A running uplink; [`UplinkThread::stop`] ends it (records not yet confirmed stay in the
/// outbox for next time).
#[derive(Debug)]
pub struct UplinkThread {
    stop: tokio::sync::watch::Sender<bool>,
    thread: JoinHandle<Result<()>>,
    stats: Arc<UplinkStats>,
}

impl UplinkThread {
    /// Start uploading in the background; the uplink's threads (the runtime's and its blocking
    /// pool's) are scheduled as `background` says (see [`crate::priority`]).
    pub fn start(uplink: Uplink, background: Background) -> Result<UplinkThread> {
        let (stop, rx) = tokio::sync::watch::channel(false);
        let stats = uplink.stats();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .on_thread_start(move || crate::priority::lower_this_thread(background))
            .build()?;
        let thread = std::thread::Builder::new()
            .name("outpost-uplink".into())
            .spawn(move || {
                crate::priority::lower_this_thread(background);
                rt.block_on(uplink.run(rx))
            })?;
        Ok(UplinkThread {
            stop,
            thread,
            stats,
        })
    }

    /// The counters so far.
    pub fn snapshot(&self) -> UplinkSnapshot {
        self.stats.snapshot()
    }

    /// Stop (an upload in flight is abandoned and retried next time under the same name) and
    /// return the final counters, or the local store error that ended the uplink.
    pub fn stop(self) -> Result<UplinkSnapshot> {
        let _ = self.stop.send(true);
        self.thread
            .join()
            .map_err(|_| OutboxError::WriterStopped("the uplink thread panicked".into()))??;
        Ok(self.stats.snapshot())
    }
}
