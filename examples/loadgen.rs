//! A small memcached load generator: N connections, 90 % `get` / 10 % `set`
//! (`--sets P` changes the share of sets to P %)
//! of 100-byte values over a fixed key space, unpipelined (one request in
//! flight per connection) or pipelined (a window of requests per write).
//! Reports operations per second and p50/p99 latency (per request when
//! unpipelined, per window when pipelined). `--binary 1` speaks memcached's
//! binary protocol (`GET`/`SET`) instead of text.
//!
//! Sends only to the address given, which should be on this machine.
//!
//! ```text
//! cargo run --release --features server --bin larder-server &
//! cargo run --release --features server --example loadgen -- \
//!     --addr 127.0.0.1:11211 --conns 8 --seconds 5 --pipeline 16
//! ```
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use larder::memcached::binary::{self, Extras, Opcode, Request, Value};
use larder::memcached::Status;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What to run, from the command line.
struct Options {
    addr: SocketAddr,
    conns: usize,
    seconds: u64,
    pipeline: usize,
    keys: u64,
    binary: bool,
    sets: u64,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        addr: "127.0.0.1:11211".parse().expect("valid"),
        conns: 8,
        seconds: 5,
        pipeline: 1,
        keys: 10_000,
        binary: false,
        sets: 10,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |_| format!("bad value for {flag}: {value}");
        match flag.as_str() {
            "--addr" => o.addr = value.parse().map_err(|_| format!("bad address {value}"))?,
            "--conns" => o.conns = value.parse().map_err(bad)?,
            "--seconds" => o.seconds = value.parse().map_err(bad)?,
            "--pipeline" => o.pipeline = value.parse().map_err(bad)?,
            "--keys" => o.keys = value.parse().map_err(bad)?,
            "--binary" => o.binary = value == "1",
            "--sets" => o.sets = value.parse().map_err(bad)?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if o.conns == 0 || o.pipeline == 0 || o.keys == 0 || o.seconds > 600 || o.sets > 100 {
        return Err(
            "--conns, --pipeline and --keys must be positive, --seconds <= 600, --sets <= 100"
                .into(),
        );
    }
    Ok(o)
}

/// A tiny xorshift generator: no dependency, different per connection.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Runs one connection until `end`; returns (operations, latencies in µs).
async fn worker(
    addr: SocketAddr,
    id: u64,
    pipeline: usize,
    keys: u64,
    binary: bool,
    sets: u64,
    end: Instant,
) -> std::io::Result<(u64, Vec<u32>)> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (id + 1).wrapping_mul(0xA24B_AED4_963E_E407));
    let value = [b'v'; 100];
    let (mut request, mut reply) = (Vec::new(), vec![0u8; 1 << 16]);
    let (mut ops, mut latencies) = (0u64, Vec::new());
    while Instant::now() < end {
        request.clear();
        // Each reply ends with one terminator line: END (get), STORED (set).
        let mut terminators = 0;
        for _ in 0..pipeline {
            let key = rng.next() % keys;
            let set = rng.next() % 100 < sets;
            terminators += 1;
            if binary {
                let key = format!("key:{key}");
                let request_for = |opcode| Request {
                    key: key.as_bytes(),
                    ..Request::bare(opcode)
                };
                let packet = if set {
                    Request {
                        extras: Extras::Store {
                            flags: 0,
                            exptime: 0,
                        },
                        value: Value::Data(&value),
                        ..request_for(Opcode::Set)
                    }
                } else {
                    request_for(Opcode::Get)
                };
                packet.write_to(&mut request);
                continue;
            }
            if set {
                request.extend_from_slice(format!("set key:{key} 0 0 100\r\n").as_bytes());
                request.extend_from_slice(&value);
                request.extend_from_slice(b"\r\n");
            } else {
                request.extend_from_slice(format!("get key:{key}\r\n").as_bytes());
            }
        }
        let start = Instant::now();
        stream.write_all(&request).await?;
        let mut seen = 0;
        let mut tail = Vec::new();
        while seen < terminators {
            let n = stream.read(&mut reply).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            tail.extend_from_slice(&reply[..n]);
            if binary {
                // Count whole response packets.
                while let Ok(Status::Complete(_, used)) = binary::parse_response(&tail) {
                    tail.drain(..used);
                    seen += 1;
                }
                continue;
            }
            // Count terminators across read boundaries.
            let mut from = 0;
            while let Some(at) = find_line(&tail[from..]) {
                let line = &tail[from..from + at];
                if line == b"END" || line == b"STORED" {
                    seen += 1;
                }
                from += at + 2;
            }
            tail.drain(..from);
        }
        latencies.push(u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX));
        ops += pipeline as u64;
    }
    Ok((ops, latencies))
}

/// Offset of the first `\r\n` in `bytes`.
fn find_line(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|w| w == b"\r\n")
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let o = options().map_err(|e| {
        format!(
            "{e}\nusage: loadgen [--addr A] [--conns N] [--seconds S] [--pipeline W] [--keys K] [--binary 0|1] [--sets PERCENT]"
        )
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (ops, mut latencies) = runtime.block_on(async {
        let end = Instant::now() + Duration::from_secs(o.seconds);
        let tasks: Vec<_> = (0..o.conns as u64)
            .map(|id| {
                tokio::spawn(worker(
                    o.addr, id, o.pipeline, o.keys, o.binary, o.sets, end,
                ))
            })
            .collect();
        let (mut ops, mut latencies) = (0, Vec::new());
        for task in tasks {
            let (n, l) = task.await??;
            ops += n;
            latencies.extend(l);
        }
        Ok::<_, Box<dyn std::error::Error>>((ops, latencies))
    })?;
    latencies.sort_unstable();
    let unit = if o.pipeline == 1 { "request" } else { "window" };
    println!(
        "{} conns, pipeline {}: {:.0} ops/s; per {unit}: p50 {} us, p99 {} us",
        o.conns,
        o.pipeline,
        ops as f64 / o.seconds.max(1) as f64,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
    );
    Ok(())
}
