//! Outpost IPC wire protocol.
#![no_std]

