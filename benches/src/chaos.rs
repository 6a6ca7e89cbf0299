//! A fault-injecting HTTP/1.1 proxy for chaos runs: it stands between a prediction client and
//! a real server (`ee-model serve`) and fails a seeded share of the requests the way an
//! overloaded or flaky node does: 429 with `Retry-After`, 503, a connection reset (RST), a
//! stall past the client's deadline, and a 200 whose body is cut off half way. Every other
//! request is forwarded to the upstream server on a fresh connection and its answer relayed.
//!
//! Which requests fail is drawn from a seeded generator in arrival order; which fault a failing
//! request gets cycles through the configured kinds, so every kind occurs once there have been
//! as many faults as kinds.
//!
//! Depends only on `std` and `tokio` so the test suite of other crates can include this file
//! with `#[path]` and run the proxy in process.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does to one failing request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `429 Too Many Requests` with `Retry-After`.
    TooMany,
    /// `503 Service Unavailable`.
    Unavailable,
    /// The connection is reset (SO_LINGER 0, then closed) without an answer.
    Reset,
    /// Nothing is answered for [`ChaosConfig::stall`], then the connection is closed.
    Stall,
    /// The upstream answer's status and full `content-length`, half its body, then close.
    Truncated,
}

impl Fault {
    /// Every kind, in the order they cycle.
    pub const ALL: [Fault; 5] = [
        Fault::TooMany,
        Fault::Unavailable,
        Fault::Reset,
        Fault::Stall,
        Fault::Truncated,
    ];

    /// A short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Fault::TooMany => "429+retry-after",
            Fault::Unavailable => "503",
            Fault::Reset => "reset",
            Fault::Stall => "stall",
            Fault::Truncated => "truncated",
        }
    }

    fn index(self) -> usize {
        Fault::ALL.iter().position(|&k| k == self).unwrap_or(0)
    }
}

/// How the proxy behaves.
#[derive(Clone, Debug)]
pub struct ChaosConfig {
    /// The real server (HTTP/1.1).
    pub upstream: SocketAddr,
    /// Address to listen on (port 0: any free port).
    pub listen: SocketAddr,
    /// Share of requests that fail, in `[0, 1]`.
    pub rate: f64,
    /// Seed of the failure draws.
    pub seed: u64,
    /// Fault kinds to cycle through.
    pub kinds: Vec<Fault>,
    /// How long a stalled request hangs before its connection is closed; set it past the
    /// client's per-request deadline.
    pub stall: Duration,
    /// Seconds in the `Retry-After` of a 429.
    pub retry_after_s: u64,
}

impl ChaosConfig {
    /// 20% of requests failing in every kind, stalls of 2 s, `Retry-After: 1`.
    pub fn new(upstream: SocketAddr, seed: u64) -> Self {
        ChaosConfig {
            upstream,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            rate: 0.2,
            seed,
            kinds: Fault::ALL.to_vec(),
            stall: Duration::from_secs(2),
            retry_after_s: 1,
        }
    }
}

/// What the proxy did so far.
#[derive(Default, Debug)]
pub struct ChaosStats {
    /// Requests received.
    pub requests: AtomicU64,
    /// Requests forwarded and answered in full.
    pub forwarded: AtomicU64,
    /// Upstream failures (the upstream could not be reached or answered garbage; relayed as 502).
    pub upstream_errors: AtomicU64,
    faults: [AtomicU64; 5],
}

impl ChaosStats {
    /// Faults of `kind` injected so far.
    pub fn faults(&self, kind: Fault) -> u64 {
        self.faults[kind.index()].load(Ordering::Relaxed)
    }

    /// All faults injected so far.
    pub fn total_faults(&self) -> u64 {
        Fault::ALL.iter().map(|&k| self.faults(k)).sum()
    }
}

impl fmt::Display for ChaosStats {
    /// One line of `key=value` pairs (parsed by `cargo xtask chaos`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "requests={} forwarded={} upstream_errors={}",
            self.requests.load(Ordering::Relaxed),
            self.forwarded.load(Ordering::Relaxed),
            self.upstream_errors.load(Ordering::Relaxed)
        )?;
        for k in Fault::ALL {
            write!(f, " {}={}", k.name(), self.faults(k))?;
        }
        Ok(())
    }
}

/// A running proxy; stops accepting when dropped.
pub struct ChaosProxy {
    addr: SocketAddr,
    stats: Arc<ChaosStats>,
    task: tokio::task::JoinHandle<()>,
}

impl ChaosProxy {
    /// Binds and starts serving on the current tokio runtime.
    pub async fn start(config: ChaosConfig) -> std::io::Result<ChaosProxy> {
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let stats = Arc::new(ChaosStats::default());
        let draws = Arc::new(Mutex::new((SplitMix64(config.seed), 0usize)));
        let config = Arc::new(config);
        let stats2 = stats.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    continue;
                };
                let _ = sock.set_nodelay(true);
                let (config, stats, draws) = (config.clone(), stats2.clone(), draws.clone());
                tokio::spawn(async move {
                    serve_connection(sock, &config, &stats, &draws).await;
                });
            }
        });
        Ok(ChaosProxy { addr, stats, task })
    }

    /// The address clients should use.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What the proxy did so far.
    pub fn stats(&self) -> &ChaosStats {
        &self.stats
    }
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A tiny seeded generator (SplitMix64), so this file needs no random-number crate.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One HTTP/1.1 message: the start line, headers (names lower-cased) and body.
struct Message {
    start: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Message {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

fn parse_head(head: &[u8]) -> (String, Vec<(String, String)>) {
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split("\r\n");
    let start = lines.next().unwrap_or_default().to_string();
    let headers = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect();
    (start, headers)
}

/// Reads one request (a `content-length` body; chunked request bodies are not supported).
/// `None` when the client closed the connection or sent something unreadable.
async fn read_request(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Message> {
    let mut chunk = vec![0u8; 64 << 10];
    let head_end = loop {
        if let Some(p) = find_head_end(buf) {
            break p;
        }
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let (start, headers) = parse_head(&buf[..head_end]);
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let body_start = head_end + 4;
    while buf.len() < body_start + len {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[body_start..body_start + len].to_vec();
    buf.drain(..body_start + len);
    Some(Message {
        start,
        headers,
        body,
    })
}

/// Decodes a chunked body; `None` if malformed.
fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        if data.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// Sends `request` to the upstream on a fresh connection (`connection: close`) and reads the
/// whole answer.
async fn forward(upstream: SocketAddr, request: &Message) -> std::io::Result<Message> {
    let mut up = TcpStream::connect(upstream).await?;
    up.set_nodelay(true)?;
    let mut head = format!("{}\r\n", request.start);
    for (k, v) in &request.headers {
        if k == "connection" || k == "host" || k == "content-length" || k == "keep-alive" {
            continue;
        }
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "host: {upstream}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        request.body.len()
    ));
    up.write_all(head.as_bytes()).await?;
    up.write_all(&request.body).await?;
    up.flush().await?;
    let mut raw = Vec::new();
    up.read_to_end(&mut raw).await?;
    let bad = |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_string());
    let head_end = find_head_end(&raw).ok_or_else(|| bad("upstream answer without a head"))?;
    let (start, headers) = parse_head(&raw[..head_end]);
    let rest = &raw[head_end + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        dechunk(rest).ok_or_else(|| bad("malformed chunked upstream answer"))?
    } else {
        match headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok())
        {
            Some(n) if n <= rest.len() => rest[..n].to_vec(),
            Some(_) => return Err(bad("upstream answer shorter than its content-length")),
            None => rest.to_vec(),
        }
    };
    Ok(Message {
        start,
        headers,
        body,
    })
}

/// Writes `answer`'s status and headers with `content-length` of its full body, then the first
/// `send` bytes of the body.
async fn relay(sock: &mut TcpStream, answer: &Message, send: usize) -> std::io::Result<()> {
    let mut head = format!("{}\r\n", answer.start);
    for (k, v) in &answer.headers {
        if k == "connection" || k == "content-length" || k == "transfer-encoding" {
            continue;
        }
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("content-length: {}\r\n\r\n", answer.body.len()));
    sock.write_all(head.as_bytes()).await?;
    sock.write_all(&answer.body[..send.min(answer.body.len())])
        .await?;
    sock.flush().await
}

async fn reply(sock: &mut TcpStream, status: &str, extra: &str, body: &str) -> std::io::Result<()> {
    let text = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{extra}\r\n{body}",
        body.len()
    );
    sock.write_all(text.as_bytes()).await?;
    sock.flush().await
}

async fn serve_connection(
    mut sock: TcpStream,
    config: &ChaosConfig,
    stats: &ChaosStats,
    draws: &Mutex<(SplitMix64, usize)>,
) {
    let mut buf = Vec::new();
    while let Some(request) = read_request(&mut sock, &mut buf).await {
        stats.requests.fetch_add(1, Ordering::Relaxed);
        let fault = {
            let mut guard = draws.lock().unwrap_or_else(|e| e.into_inner());
            let (rng, next) = &mut *guard;
            if !config.kinds.is_empty() && rng.next_f64() < config.rate {
                *next += 1;
                Some(config.kinds[(*next - 1) % config.kinds.len()])
            } else {
                None
            }
        };
        if let Some(k) = fault {
            stats.faults[k.index()].fetch_add(1, Ordering::Relaxed);
        }
        let keep_alive = !request
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let keep = match fault {
            Some(Fault::TooMany) => reply(
                &mut sock,
                "429 Too Many Requests",
                &format!("retry-after: {}\r\n", config.retry_after_s),
                r#"{"error": "chaos proxy: node saturated"}"#,
            )
            .await
            .is_ok(),
            Some(Fault::Unavailable) => reply(
                &mut sock,
                "503 Service Unavailable",
                "",
                r#"{"error": "chaos proxy: unavailable"}"#,
            )
            .await
            .is_ok(),
            Some(Fault::Reset) => {
                reset(&sock);
                false
            }
            Some(Fault::Stall) => {
                tokio::time::sleep(config.stall).await;
                false
            }
            Some(Fault::Truncated) => {
                match forward(config.upstream, &request).await {
                    Ok(answer) => {
                        let _ = relay(&mut sock, &answer, answer.body.len() / 2).await;
                    }
                    Err(_) => {
                        stats.upstream_errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                false
            }
            None => match forward(config.upstream, &request).await {
                Ok(answer) => {
                    let ok = relay(&mut sock, &answer, answer.body.len()).await.is_ok();
                    if ok {
                        stats.forwarded.fetch_add(1, Ordering::Relaxed);
                    }
                    ok
                }
                Err(e) => {
                    stats.upstream_errors.fetch_add(1, Ordering::Relaxed);
                    let body = format!(r#"{{"error": "chaos proxy: upstream: {e}"}}"#);
                    let _ = reply(&mut sock, "502 Bad Gateway", "", &body).await;
                    false
                }
            },
        };
        if !keep || !keep_alive {
            return;
        }
    }
}

/// Makes the close of `sock` send a TCP RST instead of a FIN.
#[allow(deprecated)] // tokio deprecates set_linger for its blocking close; a zero linger never blocks
fn reset(sock: &TcpStream) {
    let _ = sock.set_linger(Some(Duration::ZERO));
}
