//! A memcached-compatible server in a few dozen lines, to show how to embed
//! larder's codec and [`Store`]: one thread per connection over std's
//! `TcpListener`, no async runtime.
//!
//! This is an embedding example, not the production server (that one, with
//! connection limits, timeouts and graceful shutdown, is `larder-server`).
//!
//! ```text
//! cargo run --example memcached_server --features memcached -- 127.0.0.1:11311
//! printf 'set k 0 0 2\r\nhi\r\nget k\r\n' | nc -q1 127.0.0.1 11311
//! ```

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use larder::memcached::{Outcome, Session, Store, StoreConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:11311".into());
    let store = Arc::new(Store::new(StoreConfig {
        memory_limit: 64 << 20,
        enable_shutdown: true,
        ..StoreConfig::default()
    })?);
    let listener = TcpListener::bind(&addr)?;
    eprintln!("memcached example listening on {addr}");
    for stream in listener.incoming() {
        let (store, stream) = (Arc::clone(&store), stream?);
        std::thread::spawn(move || {
            if let Err(e) = serve(&store, stream) {
                eprintln!("connection error: {e}");
            }
        });
    }
    Ok(())
}

/// Reads requests, answers them, until the peer leaves or says `quit`.
fn serve(store: &Store, mut stream: TcpStream) -> std::io::Result<()> {
    // Cap buffered replies so a pipelining client cannot grow `out` at will.
    let mut session = Session::new().with_output_limit(1 << 20);
    let (mut input, mut out) = (Vec::new(), Vec::new());
    let mut buf = vec![0; 64 << 10];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        input.extend_from_slice(&buf[..n]);
        loop {
            let progress = store.process(&mut session, &input, &mut out);
            input.drain(..progress.consumed);
            stream.write_all(&out)?;
            out.clear();
            match progress.outcome {
                // A multi-get paused by the output limit resumes without
                // consuming: its line stays at the head of `input`.
                Outcome::Continue
                    if (progress.consumed > 0 || session.is_resuming()) && !input.is_empty() =>
                {
                    continue
                }
                Outcome::Continue => break,
                Outcome::Shutdown { .. } => std::process::exit(0),
                // Close, and what this example does not serve (a replica
                // asking for the stream; outcomes added later): close.
                _ => return Ok(()),
            }
        }
    }
}
