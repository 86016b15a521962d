//! The compression codecs a batch's attributes name (bits 0-2), as Kafka reads
//! them: gzip, snappy (raw, or in the xerial framing the Java client writes),
//! lz4 (the LZ4 frame format) and zstd. Decompression is a stream, bounded per
//! block, so a small hostile payload cannot make the broker allocate gigabytes.

use std::io::{self, BufRead, BufReader, Cursor, Read};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

/// Largest decompressed snappy block the broker will materialise (a raw
/// snappy payload is one block).
pub const MAX_SNAPPY_BLOCK: usize = 128 << 20;

impl Compression {
    /// The codec in a batch's attributes; 5, 6 and 7 are not codecs (Kafka:
    /// "Unknown compression type id").
    pub fn from_attributes(attributes: i16) -> Result<Compression, String> {
        Ok(match attributes & 0x7 {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            id => return Err(format!("Unknown compression type id: {id}")),
        })
    }

    pub fn id(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }
}

/// A stream of the decompressed records of `payload`.
pub fn reader<'a>(codec: Compression, payload: &'a [u8]) -> Result<Box<dyn BufRead + 'a>, String> {
    Ok(match codec {
        Compression::None => Box::new(payload),
        Compression::Gzip => Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(payload))),
        Compression::Snappy => Box::new(BufReader::new(SnappyReader::new(payload)?)),
        Compression::Lz4 => Box::new(BufReader::new(lz4_flex::frame::FrameDecoder::new(payload))),
        Compression::Zstd => Box::new(BufReader::new(
            zstd::stream::read::Decoder::with_buffer(payload).map_err(|e| e.to_string())?,
        )),
    })
}

/// The xerial snappy framing: an 8-byte magic, two 4-byte versions, then
/// blocks of (length i32, raw snappy block).
const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";

struct SnappyReader<'a> {
    rest: &'a [u8],
    xerial: bool,
    block: Cursor<Vec<u8>>,
}

impl<'a> SnappyReader<'a> {
    fn new(payload: &'a [u8]) -> Result<SnappyReader<'a>, String> {
        let xerial = payload.len() >= 16 && payload.starts_with(XERIAL_MAGIC);
        Ok(SnappyReader {
            rest: if xerial { &payload[16..] } else { payload },
            xerial,
            block: Cursor::new(Vec::new()),
        })
    }

    fn next_block(&mut self) -> io::Result<bool> {
        if self.rest.is_empty() {
            return Ok(false);
        }
        let compressed = if self.xerial {
            if self.rest.len() < 4 {
                return Err(io::Error::other("truncated snappy block length"));
            }
            let len = i32::from_be_bytes(self.rest[..4].try_into().unwrap());
            if len < 0 || self.rest.len() - 4 < len as usize {
                return Err(io::Error::other(format!("bad snappy block length {len}")));
            }
            let (block, rest) = self.rest[4..].split_at(len as usize);
            self.rest = rest;
            block
        } else {
            std::mem::take(&mut self.rest)
        };
        let len = snap::raw::decompress_len(compressed).map_err(io::Error::other)?;
        if len > MAX_SNAPPY_BLOCK {
            return Err(io::Error::other(format!(
                "snappy block of {len} bytes is larger than {MAX_SNAPPY_BLOCK}"
            )));
        }
        let out = snap::raw::Decoder::new()
            .decompress_vec(compressed)
            .map_err(io::Error::other)?;
        self.block = Cursor::new(out);
        Ok(true)
    }
}

impl Read for SnappyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.block.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            if !self.next_block()? {
                return Ok(0);
            }
        }
    }
}

/// Compresses `data` as a Kafka producer would (for tests and tools).
pub fn compress(codec: Compression, data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    match codec {
        Compression::None => data.to_vec(),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        Compression::Snappy => {
            let mut out = XERIAL_MAGIC.to_vec();
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            for chunk in data.chunks(32 * 1024) {
                let block = snap::raw::Encoder::new().compress_vec(chunk).unwrap();
                out.extend_from_slice(&(block.len() as i32).to_be_bytes());
                out.extend_from_slice(&block);
            }
            out
        }
        Compression::Lz4 => {
            let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        Compression::Zstd => zstd::stream::encode_all(data, 3).unwrap(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(codec: Compression, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        reader(codec, &compress(codec, data))
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn every_codec_round_trips() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            assert_eq!(roundtrip(c, &data), data, "{c:?}");
        }
    }

    #[test]
    fn raw_snappy_as_librdkafka_may_send_it_reads_too() {
        let raw = snap::raw::Encoder::new()
            .compress_vec(b"hello hello hello")
            .unwrap();
        let mut out = Vec::new();
        reader(Compression::Snappy, &raw)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"hello hello hello");
    }

    #[test]
    fn garbage_fails_to_decompress_with_every_codec() {
        let garbage = b"this is not compressed data at all, just text".to_vec();
        for c in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let mut out = Vec::new();
            let r = reader(c, &garbage)
                .and_then(|mut r| r.read_to_end(&mut out).map_err(|e| e.to_string()));
            assert!(r.is_err(), "{c:?} read garbage as {} bytes", out.len());
        }
    }

    #[test]
    fn a_snappy_block_claiming_gigabytes_is_refused_without_allocating_them() {
        // A raw snappy block starts with its decompressed length as a varint.
        let mut bomb = vec![0xff, 0xff, 0xff, 0xff, 0x0f];
        bomb.extend_from_slice(&[0; 16]);
        let mut out = Vec::new();
        let r = reader(Compression::Snappy, &bomb)
            .unwrap()
            .read_to_end(&mut out);
        assert!(r.unwrap_err().to_string().contains("larger than"));
    }

    #[test]
    fn unknown_codec_ids_are_refused() {
        for id in 5..8 {
            assert_eq!(
                Compression::from_attributes(id),
                Err(format!("Unknown compression type id: {id}"))
            );
        }
    }
}
