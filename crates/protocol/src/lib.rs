//! The wire edge. Everything that knows Kafka's message encodings lives here:
//! framing, request headers, decoding each supported API version into the domain
//! types of `cohort_types::api`, and encoding the domain answers back at the
//! version the client spoke. The broker never sees a `kafka_protocol` type.

pub mod client;
mod decode;
mod decode_group;
mod encode;
mod encode_group;
pub mod frame;
mod guard;
mod guard_group;
mod newer;
mod newer_client;
pub mod sweep;
mod sweep_group;
pub mod versions;
mod wire;

pub use decode::{decode_request, ApiVersionsAsk, DecodeError, Decoded};
pub use encode::{api_versions_response, encode_response, ApiVersionsAnswer};

/// The parts of a request header the broker needs after decoding.
#[derive(Clone, Debug)]
pub struct RequestHeader {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
}

/// Whether this request expects no answer at all (Produce with acks=0).
pub fn expects_no_response(request: &cohort_types::api::Request) -> bool {
    matches!(request, cohort_types::api::Request::Produce(p) if p.acks == 0)
}
