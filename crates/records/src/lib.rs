//! The records inside a Kafka v2 record batch.
//!
//! `cohort-log` knows a batch's 61-byte header; this crate knows what follows it:
//! the records (`parse`), the compression codecs they may be wrapped in
//! (`codec`), how to build batches with keys, headers and compression
//! (`build`), and the checks Kafka's broker applies to a produced batch before
//! it is appended (`validate`, after Kafka's `LogValidator`).

pub mod build;
pub mod codec;
pub mod compact;
pub mod parse;
pub mod validate;

pub use codec::Compression;
pub use parse::{for_each_record, RecordError, RecordView};
pub use validate::{validate_batch, Rejection, Validated, ValidationConfig};
