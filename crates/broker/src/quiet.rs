//! Warnings about one client, rate limited: a client that reconnects in a loop
//! after a protocol error must not fill the disk with the same line.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const EVERY: Duration = Duration::from_secs(60);
/// Addresses remembered at most; older entries are forgotten first.
const REMEMBERED: usize = 10_000;

static SEEN: Mutex<Option<HashMap<IpAddr, (Instant, u64)>>> = Mutex::new(None);

/// Whether a warning about `peer` may be logged now, and how many were
/// suppressed since the last one that was.
pub fn may_warn(peer: IpAddr) -> Option<u64> {
    may_warn_at(peer, Instant::now())
}

fn may_warn_at(peer: IpAddr, now: Instant) -> Option<u64> {
    let mut seen = SEEN.lock().unwrap();
    let seen = seen.get_or_insert_with(HashMap::new);
    if seen.len() >= REMEMBERED {
        seen.retain(|_, (at, _)| now.duration_since(*at) < EVERY);
    }
    match seen.get_mut(&peer) {
        Some((at, suppressed)) if now.duration_since(*at) < EVERY => {
            *suppressed += 1;
            None
        }
        Some((at, suppressed)) => {
            let n = std::mem::take(suppressed);
            *at = now;
            Some(n)
        }
        None => {
            seen.insert(peer, (now, 0));
            Some(0)
        }
    }
}

/// Logs a warning about a client connection, at most once a minute per
/// address, saying how many were held back.
macro_rules! warn_peer {
    ($peer:expr, $($arg:tt)*) => {
        if let Some(suppressed) = $crate::quiet::may_warn($peer.ip()) {
            if suppressed > 0 {
                tracing::warn!(peer = %$peer, suppressed, $($arg)*);
            } else {
                tracing::warn!(peer = %$peer, $($arg)*);
            }
        }
    };
}
pub(crate) use warn_peer;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_warning_a_minute_per_address_with_the_count_held_back() {
        let a: IpAddr = "10.9.8.7".parse().unwrap();
        let b: IpAddr = "10.9.8.6".parse().unwrap();
        let t = Instant::now();
        assert_eq!(may_warn_at(a, t), Some(0));
        for i in 1..1000 {
            assert_eq!(may_warn_at(a, t + Duration::from_millis(i)), None);
        }
        assert_eq!(
            may_warn_at(b, t),
            Some(0),
            "another address is not held back"
        );
        assert_eq!(may_warn_at(a, t + EVERY), Some(999));
    }
}
