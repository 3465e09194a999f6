//! Shared helpers for Outpost integration tests.

