//! Frames and request translation: arbitrary bytes from a client must yield
//! frames, decoded requests, or errors, and never a panic. Whatever decodes as
//! ApiVersions must also encode an answer; any batch a Produce carries goes
//! through the same header check the broker uses.
#![no_main]

use bytes::BytesMut;
use cohort_protocol::frame::take_frame;
use cohort_protocol::{api_versions_response, decode_request, ApiVersionsAnswer, ApiVersionsAsk, Decoded};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // As a stream of frames, with a small limit so oversized lengths are hit.
    let mut buf = BytesMut::from(data);
    while let Ok(Some(frame)) = take_frame(&mut buf, 1 << 20) {
        check(frame);
    }
    // And as one frame body, so the decoder sees every input directly.
    check(bytes::Bytes::copy_from_slice(data));
});

fn check(frame: bytes::Bytes) {
    match decode_request(frame) {
        Ok((header, Decoded::ApiVersions(ask))) => {
            let answer = match ask {
                ApiVersionsAsk::Unsupported => ApiVersionsAnswer::Downgrade,
                ApiVersionsAsk::Invalid => ApiVersionsAnswer::Error(cohort_types::ErrorCode::INVALID_REQUEST),
                ApiVersionsAsk::Valid { .. } => ApiVersionsAnswer::Full,
            };
            let _ = api_versions_response(&header, answer);
        }
        Ok((_, Decoded::Request(cohort_types_request))) => {
            if let cohort_types::api::Request::Produce(p) = cohort_types_request {
                for t in p.topics {
                    for (_, records) in t.partitions {
                        if let Some(r) = records {
                            let _ = cohort_log::BatchHeader::validate(&r);
                        }
                    }
                }
            }
        }
        Err(_) => {}
    }
}
