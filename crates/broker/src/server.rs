//! The tokio shell: accepts connections, reads frames, hands decoded requests to
//! the broker and writes answers back in request order.
//!
//! One connection's requests are read and started in order (so appends keep the
//! client's order), up to `max_in_flight_per_connection`; their answers may be
//! waiting on fsync or a long poll at the same time, and are written strictly in
//! order, as Kafka clients expect.

use crate::budget::{Budget, Held};
use crate::quiet::warn_peer;
use crate::{Broker, BrokerConfig, Reply};
use bytes::{Bytes, BytesMut};
use cohort_protocol::frame::take_frame;
use cohort_protocol::{
    api_versions_response, decode_request, encode_response, ApiVersionsAnswer, ApiVersionsAsk,
    Decoded,
};
use cohort_types::ErrorCode;
use futures::future::BoxFuture;
use futures::stream::{FuturesOrdered, StreamExt};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use tokio::sync::watch;
use tokio::task::JoinSet;

type Answer = BoxFuture<'static, Result<Option<Bytes>, String>>;

/// What a connection reads when it does not yet know the next frame's size.
const READ_CHUNK: usize = 64 * 1024;
/// The most one read takes.
const MAX_READ: usize = 1 << 20;

pub struct Server {
    broker: Arc<Broker>,
    listener: TcpListener,
    budget: Arc<Budget>,
}

/// How long shutdown waits for connections to finish what they started.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

impl Server {
    /// Opens the data directory and binds the listener. A port of 0 binds any
    /// free port; an advertised port of 0 is then replaced by the bound one.
    pub async fn bind(mut config: BrokerConfig) -> io::Result<Server> {
        // The port is taken now (so a port of 0 can be advertised) but only
        // listens once the data directory is open: while every log recovers,
        // clients are refused at once rather than left unanswered.
        let addr = tokio::net::lookup_host(&config.listen)
            .await?
            .next()
            .ok_or_else(|| io::Error::other(format!("{} resolves to no address", config.listen)))?;
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        let local = socket.local_addr()?;
        if config.advertise.ends_with(":0") {
            config.advertise = local.to_string();
        }
        let budget = Budget::new(config.queued_max_request_bytes);
        let broker = {
            let config = config.clone();
            tokio::task::spawn_blocking(move || Broker::open(config))
                .await
                .map_err(io::Error::other)??
        };
        let listener = socket.listen(1024)?;
        Ok(Server {
            broker,
            listener,
            budget,
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn broker(&self) -> Arc<Broker> {
        self.broker.clone()
    }

    /// Serves until `shutdown` turns true, then stops accepting, lets every
    /// connection finish the requests it already read, syncs all data and returns.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> io::Result<()> {
        let mut connections = JoinSet::new();
        // Housekeeping on the blocking pool, each on its own schedule.
        let config = self.broker.config();
        let retention = every(&self.broker, config.retention_check_interval, |b| {
            b.apply_retention()
        });
        let cleaner = every(&self.broker, config.log_cleaner_backoff, |b| b.clean_logs());
        let storage_retry = every(&self.broker, Duration::from_secs(1), |b| {
            b.retry_failed_storage()
        });
        let checkpoints = every(
            &self.broker,
            config.recovery_point_checkpoint_interval,
            |b| {
                if let Err(e) = b.write_checkpoints() {
                    tracing::warn!("could not write the recovery points: {e}");
                }
            },
        );
        loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let broker = self.broker.clone();
                        let stop = shutdown.clone();
                        let budget = self.budget.clone();
                        connections.spawn(async move {
                            if let Err(e) = connection(stream, broker, budget, stop).await {
                                tracing::debug!(%peer, "connection closed: {e}");
                            }
                        });
                    }
                    Err(e) => {
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                _ = shutdown.changed() => break,
            }
        }
        drop(self.listener);
        retention.abort();
        checkpoints.abort();
        storage_retry.abort();
        cleaner.abort();
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("connections still busy after {DRAIN_TIMEOUT:?}; closing them");
            connections.abort_all();
        }
        let broker = self.broker.clone();
        tokio::task::spawn_blocking(move || broker.close())
            .await
            .map_err(io::Error::other)?;
        Ok(())
    }
}

/// Runs `work` on the blocking pool every `period` (the first time one period
/// from now) until the returned task is aborted.
fn every(
    broker: &Arc<Broker>,
    period: Duration,
    work: impl Fn(&Broker) + Send + Sync + 'static,
) -> tokio::task::JoinHandle<()> {
    let broker = broker.clone();
    let work = Arc::new(work);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.tick().await;
        loop {
            tick.tick().await;
            let (b, w) = (broker.clone(), work.clone());
            let _ = tokio::task::spawn_blocking(move || w(&b)).await;
        }
    })
}

/// Turns one frame into the future of its answer, or an error that must close
/// the connection.
fn dispatch(
    broker: &Arc<Broker>,
    frame: Bytes,
    peer: &SocketAddr,
    connection: (u64, &watch::Receiver<u64>),
) -> Result<(Answer, bool), String> {
    let (header, decoded) = decode_request(frame).map_err(|e| e.to_string())?;
    let heartbeat = matches!(header.api_key, HEARTBEAT | CONSUMER_GROUP_HEARTBEAT);
    dispatch_decoded(broker, header, decoded, peer, connection).map(|a| (a, heartbeat))
}

/// ConsumerGroupHeartbeat's API key: its answer may be held.
const CONSUMER_GROUP_HEARTBEAT: i16 = 68;
/// The classic Heartbeat's API key: its answer may be held too.
const HEARTBEAT: i16 = 12;

fn dispatch_decoded(
    broker: &Arc<Broker>,
    header: cohort_protocol::RequestHeader,
    decoded: Decoded,
    peer: &SocketAddr,
    (connection, arrivals): (u64, &watch::Receiver<u64>),
) -> Result<Answer, String> {
    match decoded {
        Decoded::ApiVersions(ask) => {
            let bytes = api_versions_response(&header, api_versions_answer(broker, ask));
            Ok(Box::pin(async move { Ok(Some(bytes)) }))
        }
        Decoded::Request(request) => {
            let client = crate::ClientInfo {
                connection,
                later_requests: Some(arrivals.clone()),
                client_id: header.client_id.clone().unwrap_or_default(),
                client_host: format!("/{}", peer.ip()),
            };
            match broker.handle(request, &client) {
                Reply::Nothing => Ok(Box::pin(async { Ok(None) })),
                Reply::Now(response) => {
                    let bytes = encode_response(&header, &response)?;
                    Ok(Box::pin(async move { Ok(Some(bytes)) }))
                }
                Reply::Later(fut) => Ok(Box::pin(async move {
                    let response = fut.await;
                    encode_response(&header, &response).map(Some)
                })),
            }
        }
    }
}

/// Kafka's order: a version above ours, then a request it finds invalid, then
/// a v5 client that expected another cluster or broker (it must rebootstrap).
fn api_versions_answer(broker: &Broker, ask: ApiVersionsAsk) -> ApiVersionsAnswer {
    match ask {
        ApiVersionsAsk::Unsupported => ApiVersionsAnswer::Downgrade,
        ApiVersionsAsk::Invalid => ApiVersionsAnswer::Error(ErrorCode::INVALID_REQUEST),
        ApiVersionsAsk::Valid {
            expects: Some((cluster_id, node_id)),
        } if cluster_id != broker.cluster_id() || node_id != broker.config().node_id => {
            ApiVersionsAnswer::Error(ErrorCode::REBOOTSTRAP_REQUIRED)
        }
        ApiVersionsAsk::Valid { .. } => ApiVersionsAnswer::Full,
    }
}

struct ConnectionEnds {
    broker: Arc<Broker>,
    connection: u64,
}

impl Drop for ConnectionEnds {
    fn drop(&mut self) {
        self.broker.connection_closed(self.connection);
    }
}

static NEXT_CONNECTION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// The size (length prefix included) of the frame at the front of `buf`,
/// once its length has arrived.
fn frame_size(buf: &BytesMut) -> Option<usize> {
    let len = i32::from_be_bytes(buf.get(..4)?.try_into().ok()?);
    usize::try_from(len).ok().map(|l| l + 4)
}

/// How much more a connection reads next: the rest of a frame whose size is
/// known, or a chunk to learn the next frame's size.
fn ahead(buf: &BytesMut) -> usize {
    match frame_size(buf) {
        Some(total) if total > buf.len() => total - buf.len(),
        _ => READ_CHUNK,
    }
}

/// Reads more, once the budget covers what is buffered, what is in flight and
/// the whole of the frame being read: a frame that has started always has room
/// to finish, so connections never wait on each other mid-frame (Kafka sizes
/// its memory pool by whole requests for the same reason).
async fn read_more(
    budget: &Arc<Budget>,
    held: &mut Held,
    rd: &mut tokio::net::tcp::OwnedReadHalf,
    buf: &mut BytesMut,
    in_flight_bytes: usize,
) -> io::Result<usize> {
    let ahead = ahead(buf);
    let want = in_flight_bytes + buf.len() + ahead;
    if held.amount() < want {
        held.merge(budget.acquire(want - held.amount()).await);
    }
    let step = ahead.min(MAX_READ);
    buf.reserve(step.min(READ_CHUNK));
    let mut limited = rd.take(step as u64);
    limited.read_buf(buf).await
}

async fn connection(
    stream: TcpStream,
    broker: Arc<Broker>,
    budget: Arc<Budget>,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let peer = stream.peer_addr()?;
    let (mut rd, mut wr) = stream.into_split();
    let max_size = broker.config().max_request_size;
    let max_in_flight = broker.config().max_in_flight_per_connection.max(1);
    let idle = broker.config().connections_max_idle;
    let frame_timeout = broker.config().frame_read_timeout;
    let mut buf = BytesMut::new();
    // Each unanswered request with the bytes its frame holds.
    let mut in_flight: FuturesOrdered<BoxFuture<'static, (usize, Result<Option<Bytes>, String>)>> =
        FuturesOrdered::new();
    let mut in_flight_bytes = 0usize;
    // Budget held for `buf` and the frames in flight.
    let mut held = budget.none();
    let mut closing = *shutdown.borrow();
    let connection = NEXT_CONNECTION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // However the connection ends, the group coordinator hears of it: a
    // member whose process died is removed without waiting for its session.
    let _closed = ConnectionEnds {
        broker: broker.clone(),
        connection,
    };
    // A heartbeat is among the unanswered requests: its answer may be held.
    let mut heartbeat_pending = false;
    // Counts requests that arrived behind unanswered ones: a fetch long poll
    // ends when one does (see `ClientInfo::later_requests`).
    let (arrivals, arrivals_rx) = watch::channel(0u64);
    let mut last_activity = tokio::time::Instant::now();
    // When the first byte of a frame not yet whole arrived.
    let mut frame_started: Option<tokio::time::Instant> = None;
    loop {
        while !closing && in_flight.len() < max_in_flight {
            match take_frame(&mut buf, max_size) {
                Ok(Some(frame)) => {
                    let size = frame.len() + 4;
                    frame_started = None;
                    if !in_flight.is_empty() {
                        arrivals.send_modify(|n| *n += 1);
                    }
                    match dispatch(&broker, frame, &peer, (connection, &arrivals_rx)) {
                        Ok((answer, heartbeat)) => {
                            if heartbeat_pending {
                                broker.release_held(connection);
                            }
                            heartbeat_pending |= heartbeat;
                            in_flight_bytes += size;
                            in_flight.push_back(Box::pin(async move { (size, answer.await) }))
                        }
                        Err(e) => {
                            warn_peer!(peer, "closing connection: {e}");
                            return Ok(());
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    warn_peer!(peer, "closing connection: {e}");
                    return Ok(());
                }
            }
        }
        if closing && in_flight.is_empty() {
            return Ok(());
        }
        // Keep budget for what is buffered, in flight, and the rest of a frame
        // that has started; give back the rest.
        let started = match frame_size(&buf) {
            Some(total) if total > buf.len() => total - buf.len(),
            _ => 0,
        };
        held.shrink_to(in_flight_bytes + buf.len() + started);
        if buf.is_empty() {
            frame_started = None;
        } else if frame_started.is_none() {
            frame_started = Some(tokio::time::Instant::now());
        }
        let idle_at = (in_flight.is_empty() && buf.is_empty()).then(|| last_activity + idle);
        let stalled_at = frame_started.map(|t| t + frame_timeout);
        tokio::select! {
            biased;
            Some((size, answer)) = in_flight.next(), if !in_flight.is_empty() => {
                in_flight_bytes -= size;
                last_activity = tokio::time::Instant::now();
                match answer {
                    Ok(Some(bytes)) => {
                        if in_flight.is_empty() {
                            heartbeat_pending = false;
                        }
                        wr.write_all(&bytes).await?
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(%peer, "could not encode a response, closing: {e}");
                        return Ok(());
                    }
                }
            },
            read = read_more(&budget, &mut held, &mut rd, &mut buf, in_flight_bytes), if !closing && in_flight.len() < max_in_flight => {
                last_activity = tokio::time::Instant::now();
                if read? == 0 {
                    // The client closed its side: finish what it asked, then go.
                    closing = true;
                }
            }
            _ = tokio::time::sleep_until(idle_at.unwrap_or_else(tokio::time::Instant::now)), if idle_at.is_some() && !closing => {
                tracing::debug!(%peer, "closing a connection idle for {idle:?}");
                return Ok(());
            }
            _ = tokio::time::sleep_until(stalled_at.unwrap_or_else(tokio::time::Instant::now)), if stalled_at.is_some() && !closing => {
                warn_peer!(peer, "closing connection: a request frame did not arrive whole within {frame_timeout:?} ({} bytes of it had)", buf.len());
                return Ok(());
            }
            _ = shutdown.changed(), if !closing => {
                // Stopping: a held heartbeat is answered now; waiting out
                // its hold would hold up the shutdown (and the restart).
                closing = true;
                if heartbeat_pending {
                    broker.release_held(connection);
                }
            }
        }
    }
}
