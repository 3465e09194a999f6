//! Outpost IPC client library.
