//! The server on a Unix domain socket (memcached's `-s` and `-a`): requests
//! in every protocol over it, the socket file's mode, a stale socket
//! replaced and any other file left alone, `stats settings` and `stats
//! conns` naming it, replication refused on it, and the binary's `-s`.
#![cfg(all(feature = "server", unix))]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use larder::server::{Server, ServerConfig, ServerError, UnixSocketConfig};

mod common;

use common::{read_until, request, TestServer, PATIENCE};

/// A fresh directory for one test's socket, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("larder-unix-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A server on the Unix socket `unix`, stopped when dropped.
fn start(unix: UnixSocketConfig) -> TestServer {
    let path = unix.path.clone();
    let server = TestServer::start(ServerConfig {
        unix_socket: Some(unix),
        ..ServerConfig::default()
    });
    assert_eq!(server.unix.as_deref(), Some(path.as_path()));
    server
}

/// [`Server::bind`] on the Unix socket `unix`, on a runtime of its own,
/// for the binds that must fail (a server that binds is dropped at once).
fn bind_unix(unix: UnixSocketConfig) -> Result<Server, ServerError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(Server::bind(ServerConfig {
        unix_socket: Some(unix),
        ..ServerConfig::default()
    }))
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_unix_socket_server_answers_text_meta_and_binary_requests() {
    let dir = Dir::new("protocols");
    let server = start(UnixSocketConfig::new(dir.path("mc.sock")));
    let mut text = server.connect_unix();
    assert_eq!(
        request(&mut text, b"set foo 5 0 6\r\nfooval\r\n", b"\r\n"),
        "STORED\r\n"
    );
    assert_eq!(
        request(&mut text, b"get foo\r\n", b"END\r\n"),
        "VALUE foo 5 6\r\nfooval\r\nEND\r\n"
    );
    assert_eq!(
        request(&mut text, b"mg foo v f\r\n", b"\r\nfooval\r\n"),
        "VA 6 f5\r\nfooval\r\n"
    );
    // A binary GET of the same key on a connection of its own.
    let mut binary = server.connect_unix();
    let mut get = vec![0x80, 0x00, 0, 3, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 7];
    get.extend_from_slice(&[0; 8]);
    get.extend_from_slice(b"foo");
    binary.write_all(&get).unwrap();
    let mut header = [0u8; 24];
    binary.read_exact(&mut header).unwrap();
    assert_eq!(
        (header[0], header[6], header[7]),
        (0x81, 0, 0),
        "{header:?}"
    );
    assert_eq!(&header[12..16], &[0, 0, 0, 7], "opaque echoed");
    let body_len = u32::from_be_bytes(header[8..12].try_into().unwrap()) as usize;
    let mut body = vec![0u8; body_len];
    binary.read_exact(&mut body).unwrap();
    assert_eq!(&body[..4], &5u32.to_be_bytes(), "flags");
    assert_eq!(&body[4..], b"fooval");
}

#[test]
fn stats_settings_report_the_socket_and_its_mask() {
    let dir = Dir::new("settings");
    let path = dir.path("mc.sock");
    let server = start(UnixSocketConfig {
        mode: 0o760,
        ..UnixSocketConfig::new(&path)
    });
    let settings = request(
        &mut server.connect_unix(),
        b"stats settings\r\n",
        b"END\r\n",
    );
    for line in [
        format!("STAT domain_socket {}\r\n", path.display()),
        "STAT umask 760\r\n".to_owned(),
        // memcached still reports its -p: the harness's port 0 here.
        "STAT tcpport 0\r\n".to_owned(),
    ] {
        assert!(settings.contains(&line), "no {line:?} in {settings}");
    }
}

#[test]
fn a_tcp_server_reports_no_socket_and_memcacheds_default_mask() {
    let server = TestServer::default();
    let settings = request(&mut server.connect(), b"stats settings\r\n", b"END\r\n");
    assert!(
        settings.contains("STAT domain_socket NULL\r\n"),
        "{settings}"
    );
    assert!(settings.contains("STAT umask 700\r\n"), "{settings}");
}

#[test]
fn the_socket_file_gets_the_mode_asked_for() {
    let dir = Dir::new("modes");
    for mode in [0o700, 0o766, 0o777, 0o600] {
        let path = dir.path(&format!("{mode:o}.sock"));
        let _server = start(UnixSocketConfig {
            mode,
            ..UnixSocketConfig::new(&path)
        });
        assert_eq!(mode_of(&path), mode, "{}", path.display());
    }
    let path = dir.path("default.sock");
    let _server = start(UnixSocketConfig::new(&path));
    assert_eq!(mode_of(&path), 0o700);
}

#[test]
fn a_socket_left_by_an_earlier_run_is_replaced() {
    let dir = Dir::new("stale");
    let path = dir.path("mc.sock");
    // A socket file whose server is gone: connecting to it is refused.
    drop(UnixListener::bind(&path).unwrap());
    assert!(UnixStream::connect(&path).is_err());
    let server = start(UnixSocketConfig::new(&path));
    assert_eq!(
        request(&mut server.connect_unix(), b"version\r\n", b"\r\n"),
        "VERSION 1.6.18\r\n"
    );
}

#[test]
fn a_file_that_is_not_a_socket_is_left_alone_and_the_bind_fails() {
    let dir = Dir::new("in-the-way");
    let path = dir.path("data.txt");
    std::fs::write(&path, b"precious").unwrap();
    let bound = bind_unix(UnixSocketConfig::new(&path));
    match bound {
        Err(e @ ServerError::BindUnix(..)) => {
            let message = e.to_string();
            assert!(message.contains("data.txt"), "{message}");
            assert!(message.contains("not a socket"), "{message}");
        }
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("bound over a regular file"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    // A directory that does not exist is an error too, not a panic.
    let missing = dir.path("no/such/dir/mc.sock");
    let bound = bind_unix(UnixSocketConfig::new(&missing));
    assert!(matches!(bound, Err(ServerError::BindUnix(..))));
}

#[test]
fn a_socket_a_running_server_listens_on_is_not_taken_over() {
    let dir = Dir::new("live");
    let path = dir.path("mc.sock");
    let first = start(UnixSocketConfig::new(&path));
    request(&mut first.connect_unix(), b"set k 0 0 1\r\nv\r\n", b"\r\n");
    let second = bind_unix(UnixSocketConfig::new(&path));
    match second {
        Err(ServerError::BindUnix(_, e)) => {
            assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse, "{e}")
        }
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("a second server took over a live socket"),
    }
    // The first server still serves its data on its socket.
    assert_eq!(
        request(&mut first.connect_unix(), b"get k\r\n", b"END\r\n"),
        "VALUE k 0 1\r\nv\r\nEND\r\n"
    );
}

#[test]
fn a_link_at_the_path_is_left_alone_and_no_private_directory_is_left_behind() {
    let dir = Dir::new("link");
    let target = dir.path("target.txt");
    std::fs::write(&target, b"keep").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    let link = dir.path("mc.sock");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let bound = bind_unix(UnixSocketConfig {
        mode: 0o777,
        ..UnixSocketConfig::new(&link)
    });
    assert!(matches!(bound, Err(ServerError::BindUnix(..))));
    assert_eq!(mode_of(&target), 0o600, "the link's target kept its mode");
    // A server that binds leaves only its socket in the directory.
    let path = dir.path("ok.sock");
    let _server = start(UnixSocketConfig::new(&path));
    let mut names: Vec<String> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["mc.sock", "ok.sock", "target.txt"]);
}

#[test]
fn stats_conns_names_the_socket_and_a_connection_waiting_for_its_value() {
    let dir = Dir::new("conns");
    let path = dir.path("mc.sock");
    let server = start(UnixSocketConfig::new(&path));
    let mut writer = server.connect_unix();
    // The command line is in; its 6 bytes of data are not.
    writer.write_all(b"set foo 0 0 6\r\n").unwrap();
    let mut stats = server.connect_unix();
    let listen = format!("unix:{}", path.display());
    let deadline = Instant::now() + PATIENCE;
    let conns = loop {
        let conns = request(&mut stats, b"stats conns\r\n", b"END\r\n");
        if conns.contains("conn_nread") || Instant::now() > deadline {
            break conns;
        }
        thread::sleep(Duration::from_millis(10));
    };
    assert!(
        conns.starts_with(&format!(
            "STAT 0:addr {listen}\r\nSTAT 0:state conn_listening\r\n"
        )),
        "{conns}"
    );
    assert!(conns.contains(":state conn_nread\r\n"), "{conns}");
    assert!(conns.contains(":state conn_parse_cmd\r\n"), "{conns}");
    assert_eq!(
        conns.matches(&format!(":listen_addr {listen}\r\n")).count(),
        2,
        "{conns}"
    );
    // The value completes the set.
    writer.write_all(b"fooval\r\n").unwrap();
    writer.set_read_timeout(Some(PATIENCE)).unwrap();
    assert_eq!(read_until(&mut writer, b"\r\n"), "STORED\r\n");
}

#[test]
fn replica_sync_over_the_unix_socket_is_refused_with_a_reason() {
    let dir = Dir::new("repl");
    let server = start(UnixSocketConfig::new(dir.path("mc.sock")));
    let mut conn = server.connect_unix();
    conn.write_all(b"replica sync ? 0\r\n").unwrap();
    let mut reply = Vec::new();
    conn.read_to_end(&mut reply).unwrap();
    assert_eq!(
        String::from_utf8(reply).unwrap(),
        "SERVER_ERROR replication needs a TCP connection\r\n"
    );
    // The server serves on.
    assert_eq!(
        request(&mut server.connect_unix(), b"version\r\n", b"\r\n"),
        "VERSION 1.6.18\r\n"
    );
}

#[test]
fn the_binary_listens_on_the_socket_given_with_dash_s() {
    let dir = Dir::new("binary");
    let path = dir.path("mc.sock");
    let mut child = Command::new(env!("CARGO_BIN_EXE_larder-server"))
        .args(["-s", path.to_str().unwrap(), "-a", "766"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), format!("listening on unix:{}", path.display()));
    assert_eq!(mode_of(&path), 0o766);
    let mut conn = UnixStream::connect(&path).unwrap();
    conn.set_read_timeout(Some(PATIENCE)).unwrap();
    assert_eq!(
        request(&mut conn, b"set k 0 0 1\r\nv\r\nget k\r\n", b"END\r\n"),
        "STORED\r\nVALUE k 0 1\r\nv\r\nEND\r\n"
    );
    let _ = child.kill();
    let _ = child.wait();
}
