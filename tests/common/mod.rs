//! The harness the socket tests share: an in-process server on its own
//! runtime thread (127.0.0.1, port 0) and blocking helpers to talk to it.
#![allow(dead_code)] // each test crate uses a different part

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::Duration;

use larder::server::{Server, ServerConfig};

/// Longest any test waits for something that should happen at once.
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

/// A server on its own runtime thread, stopped when dropped.
pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    /// The Unix domain socket it listens on instead, when the config asked
    /// for one.
    pub(crate) unix: Option<std::path::PathBuf>,
    /// The Prometheus endpoint, when the config asked for one.
    pub(crate) metrics: Option<SocketAddr>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl TestServer {
    pub(crate) fn start(config: ServerConfig) -> TestServer {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let server = Server::bind(ServerConfig {
                    listen: "127.0.0.1:0".parse().unwrap(),
                    shutdown_grace: Duration::from_secs(2),
                    ..config
                })
                .await
                .unwrap();
                let unix = server.unix_socket().map(std::path::Path::to_path_buf);
                addr_tx
                    .send((server.local_addr(), server.metrics_addr(), unix))
                    .unwrap();
                server
                    .run(async {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let (addr, metrics, unix) = addr_rx.recv_timeout(PATIENCE).unwrap();
        TestServer {
            addr,
            unix,
            metrics,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub(crate) fn default() -> TestServer {
        TestServer::start(ServerConfig::default())
    }

    pub(crate) fn client(&self) -> memcache::Client {
        let url = format!("memcache://{}?protocol=ascii&timeout=10", self.addr);
        memcache::Client::connect(url).unwrap()
    }

    /// A `memcache` crate client speaking its default, the binary protocol.
    pub(crate) fn binary_client(&self) -> memcache::Client {
        let url = format!("memcache://{}?timeout=10", self.addr);
        memcache::Client::connect(url).unwrap()
    }

    pub(crate) fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream
    }

    /// A connection to the server's Unix domain socket.
    #[cfg(unix)]
    pub(crate) fn connect_unix(&self) -> std::os::unix::net::UnixStream {
        let path = self
            .unix
            .as_ref()
            .expect("the server listens on a Unix socket");
        let stream = std::os::unix::net::UnixStream::connect(path).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream
    }

    /// One `stats` figure, over a fresh connection.
    pub(crate) fn stat(&self, name: &str) -> u64 {
        let mut conn = self.connect();
        let text = request(&mut conn, b"stats\r\n", b"END\r\n");
        let prefix = format!("STAT {name} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .parse()
            .unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One `read`, retried when a signal interrupts it (`EINTR`): a blocking
/// socket read with a timeout is interrupted by any signal the test process
/// handles, and `Read::read` passes that on instead of retrying.
pub(crate) fn read_some(conn: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match conn.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Sends `input`, reads until the reply ends with `end`.
pub(crate) fn request(conn: &mut (impl Read + Write), input: &[u8], end: &[u8]) -> String {
    conn.write_all(input).unwrap();
    read_until(conn, end)
}

pub(crate) fn read_until(conn: &mut impl Read, end: &[u8]) -> String {
    let mut reply = Vec::new();
    let mut buf = [0u8; 64 << 10];
    while !reply.ends_with(end) {
        let n = read_some(conn, &mut buf).unwrap();
        assert!(
            n > 0,
            "closed early; got {:?}",
            String::from_utf8_lossy(&reply)
        );
        reply.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(reply).unwrap()
}

/// Reads until the server closes the connection; returns what it sent.
pub(crate) fn read_to_close(conn: &mut TcpStream) -> Vec<u8> {
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match read_some(conn, &mut buf) {
            Ok(0) => return reply,
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return reply,
            Err(e) => panic!("not closed: {e}; got {:?}", String::from_utf8_lossy(&reply)),
        }
    }
}

/// A `larder-server` process: the child, the address it printed
/// (`listening on ...`), and its stderr lines as they arrive.
pub(crate) type Launched = (
    std::process::Child,
    String,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
);

/// Starts the binary `bin` on 127.0.0.1, port 0, with `args`, and waits (up to
/// `patience`) until it says where it listens.
pub(crate) fn launch(bin: &str, args: &[&str], patience: Duration) -> Launched {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::sync::{mpsc, Arc, Mutex};
    let mut child = Command::new(bin)
        .args(["-p", "0", "-l", "127.0.0.1"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server binary runs");
    let stderr = child.stderr.take().expect("piped stderr");
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let lines = Arc::clone(&log);
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("listening on ") {
                let _ = tx.send(addr.to_string());
            }
            lines.lock().unwrap().push(line);
        }
    });
    let addr = rx
        .recv_timeout(patience)
        .expect("the server says where it listens");
    (child, addr, log)
}
