//! Size-prefixed frames: a big-endian i32 length, then that many bytes.

use bytes::{Buf, Bytes, BytesMut};

/// Kafka's default `socket.request.max.bytes` is 100 MiB.
pub const DEFAULT_MAX_REQUEST_SIZE: usize = 100 * 1024 * 1024;

#[derive(Debug, PartialEq, Eq)]
pub enum FrameError {
    /// A negative length, or one above the limit: the connection cannot be trusted
    /// to resynchronise, so it is closed.
    BadLength(i64),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::BadLength(n) => write!(f, "frame length {n} is out of range"),
        }
    }
}

/// The most a read buffer grows by ahead of the bytes that arrived.
pub const GROWTH_STEP: usize = 64 * 1024;

/// Takes one whole frame off the front of `buf`, if one has arrived.
pub fn take_frame(buf: &mut BytesMut, max_size: usize) -> Result<Option<Bytes>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as i64;
    if len < 0 || len as u64 > max_size as u64 {
        return Err(FrameError::BadLength(len));
    }
    let len = len as usize;
    if buf.len() < 4 + len {
        // Room for what is still to come, a step at a time: the buffer grows
        // (doubling) as bytes arrive, never to the announced size up front,
        // so a client announcing 100 MB and sending 10 bytes holds 10 bytes.
        buf.reserve((4 + len - buf.len()).min(GROWTH_STEP));
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some(buf.split_to(len).freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_for_a_whole_frame_then_takes_it() {
        let mut buf = BytesMut::from(&[0u8, 0, 0, 3, 1, 2][..]);
        assert_eq!(take_frame(&mut buf, 100), Ok(None));
        buf.extend_from_slice(&[3, 0, 0]);
        assert_eq!(
            take_frame(&mut buf, 100).unwrap().unwrap().as_ref(),
            &[1, 2, 3]
        );
        assert_eq!(buf.as_ref(), &[0, 0]);
    }

    #[test]
    fn a_large_announced_frame_does_not_reserve_its_size() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&(90_000_000i32).to_be_bytes());
        buf.extend_from_slice(&[0; 10]);
        assert_eq!(take_frame(&mut buf, 100 << 20), Ok(None));
        assert!(buf.capacity() < 1 << 20, "{}", buf.capacity());
    }

    #[test]
    fn rejects_negative_and_oversized_lengths() {
        let mut buf = BytesMut::from(&[0xffu8, 0xff, 0xff, 0xff][..]);
        assert_eq!(take_frame(&mut buf, 100), Err(FrameError::BadLength(-1)));
        let mut buf = BytesMut::from(&[0u8, 0, 1, 0][..]);
        assert_eq!(take_frame(&mut buf, 100), Err(FrameError::BadLength(256)));
    }
}
