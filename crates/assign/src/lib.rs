//! Pure partition assignors over plain data, no I/O.
//!
//! `server` holds the KIP-848 broker-side assignors (`uniform`, `range`) behind
//! one trait; `client` the client-side ones the simulator's classic members run.

pub mod client;
pub mod server;

pub use client::{cooperative_sticky, range, sticky, MemberId, Partition};
