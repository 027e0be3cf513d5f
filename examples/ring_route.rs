//! Prints, for each key read from stdin (one per line), the index of the server
//! that twemproxy (`distribution: ketama`, `hash: fnv1a_64`) sends it to.
//!
//! ```text
//! printf 'user:1\nuser:2\n' | cargo run --example ring_route --features memcached -- \
//!     '127.0.0.1:22121:1' '127.0.0.1:22122:1' '127.0.0.1:22123:1 gamma' [--eject 1]
//! ```
//!
//! Servers are written as in twemproxy's `servers:` list and numbered in the
//! order given; `--eject N` routes as twemproxy does while server N is ejected.
//! The cluster test (`tests/cluster/`) compares its answers with nutcracker's.

use larder::ring::Ring;
use std::io::{self, BufRead, BufWriter, Write};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut builder = Ring::builder();
    let mut eject = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--eject" {
            eject.push(args.next().ok_or("--eject needs a server index")?.parse()?);
        } else {
            builder = builder.twemproxy_server(&arg);
        }
    }
    let mut ring = builder.build()?;
    for index in eject {
        ring = ring.without(index)?;
    }
    let stdin = io::stdin().lock();
    let mut out = BufWriter::new(io::stdout().lock());
    for line in stdin.split(b'\n') {
        let mut key = line?;
        if key.last() == Some(&b'\r') {
            key.pop();
        }
        writeln!(out, "{}", ring.node_for(&key))?;
    }
    out.flush()?;
    Ok(())
}
