//! Outpost store and forward.
