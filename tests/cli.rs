//! `larder-server`'s command line, run as a process: a flag or value it
//! cannot use ends it with a message naming the problem, the usage line and
//! exit status 2, never a panic and never a silently changed value.
#![cfg(feature = "server")]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_larder-server");

/// Runs the server with `args`, expects a usage error, returns its stderr.
///
/// `--version` goes last: flags are read in order, so an error in `args`
/// still comes first, but a command line wrongly accepted prints the version
/// and exits 0 instead of serving forever.
fn usage_error<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let output = Command::new(BIN)
        .args(args)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .expect("the server binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(output.stdout.is_empty(), "stdout: {:?}", output.stdout);
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
    assert!(stderr.starts_with("larder-server: "), "stderr: {stderr}");
    assert!(stderr.contains("usage: larder-server"), "stderr: {stderr}");
    stderr
}

#[test]
fn a_non_ascii_short_flag_is_an_unknown_flag() {
    assert!(usage_error(["-é"]).contains("unknown flag -é\n"));
}

#[test]
fn a_non_ascii_short_flag_with_text_attached_is_an_unknown_flag() {
    assert!(usage_error(["-éé"]).contains("unknown flag -é\n"));
    assert!(usage_error(["-€1"]).contains("unknown flag -€\n"));
}

#[test]
fn a_non_ascii_long_flag_is_an_unknown_flag() {
    assert!(usage_error(["--mémoire"]).contains("unknown flag --mémoire\n"));
    assert!(usage_error(["--mémoire=64"]).contains("unknown flag --mémoire\n"));
}

#[test]
fn a_non_ascii_value_is_not_a_number() {
    assert!(usage_error(["-m", "é"]).contains("-m: \"é\" is not a valid number"));
    assert!(usage_error(["-pé"]).contains("-p: \"é\" is not a valid number"));
}

#[cfg(unix)]
#[test]
fn an_argument_that_is_not_utf8_is_named_in_the_error() {
    use std::os::unix::ffi::OsStrExt;
    let stderr = usage_error([OsStr::from_bytes(b"-\xe9")]);
    assert!(stderr.contains("is not valid UTF-8"), "stderr: {stderr}");
}

#[test]
fn a_memory_limit_whose_bytes_overflow_is_refused() {
    let message = "-m must be between 1 and 17592186044415 (megabytes)";
    assert!(usage_error(["-m", "99999999999999999"]).contains(message));
    assert!(usage_error(["-m", "17592186044416"]).contains(message));
    assert!(usage_error(["--memory-limit=18446744073709551615"])
        .contains("--memory-limit must be between 1 and 17592186044415 (megabytes)"));
}

#[test]
fn a_memory_limit_past_u64_is_not_a_number() {
    assert!(usage_error(["-m", "18446744073709551616"])
        .contains("-m: \"18446744073709551616\" is not a valid number"));
}

#[test]
fn an_idle_timeout_over_a_year_is_refused() {
    let message = "--idle-timeout must be at most 31536000 (a year; 0 never times out)";
    assert!(usage_error(["--idle-timeout", "31536001"]).contains(message));
    assert!(usage_error(["--idle-timeout=18446744073709551615"]).contains(message));
}

#[test]
fn other_numbers_out_of_range_are_refused() {
    assert!(usage_error(["-p", "65536"]).contains("-p: \"65536\" is not a valid number"));
    assert!(usage_error(["-c", "18446744073709551616"]).contains("is not a valid number"));
    assert!(usage_error(["-t", "257"]).contains("-t must be between 1 and 256"));
    assert!(usage_error(["-I", "18446744073709551615k"])
        .contains("-I: 18446744073709551615k is not between 1k and"));
}

/// Runs the server with `args` (and `MEMCACHED_SASL_PWDB` set to
/// `sasl_pwdb`, or unset) until it exits; returns its status code and
/// stderr.
fn run_to_exit(args: &[&str], sasl_pwdb: Option<&str>) -> (Option<i32>, String) {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .stdin(Stdio::null())
        .env_remove("MEMCACHED_SASL_PWDB");
    if let Some(path) = sasl_pwdb {
        command.env("MEMCACHED_SASL_PWDB", path);
    }
    let output = command.output().expect("the server binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), stderr)
}

/// Starts the server with `args`, reads the first line of its stderr, runs
/// `meanwhile` (given the server's pid), and kills it (before any assertion,
/// so that a failure leaves no server behind); returns the line,
/// `meanwhile`'s result and the pid.
fn first_line_of<T>(args: &[&OsStr], meanwhile: impl FnOnce(u32) -> T) -> (String, T, u32) {
    first_line_under(Command::new(BIN), args, meanwhile)
}

/// [`first_line_of`] for a server started by `command` (the server binary,
/// or a program that execs it, such as `prlimit`).
fn first_line_under<T>(
    mut command: Command,
    args: &[&OsStr],
    meanwhile: impl FnOnce(u32) -> T,
) -> (String, T, u32) {
    let mut child = command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server binary runs");
    let mut first = String::new();
    let read = BufReader::new(child.stderr.take().expect("piped stderr")).read_line(&mut first);
    let result = meanwhile(child.id());
    child.kill().expect("the server is still running");
    child.wait().expect("the server exits");
    read.expect("stderr is readable");
    (first, result, child.id())
}

#[test]
fn the_largest_memory_limit_starts_a_server() {
    let args = ["-p", "0", "-l", "127.0.0.1", "-m", "17592186044415"].map(OsStr::new);
    let (first, (), _) = first_line_of(&args, |_| ());
    assert!(first.starts_with("listening on 127.0.0.1:"), "{first:?}");
}

#[test]
fn a_backlog_the_machine_cannot_hold_ends_the_server_with_a_message() {
    // 1 TiB: within the flag's range, beyond any machine this runs on. The
    // backlog is reserved at start, so the server says so and exits rather
    // than aborting later on the first replica's write.
    let (code, stderr) = run_to_exit(
        &["-p", "0", "-l", "127.0.0.1", "--repl-backlog", "1048576m"],
        None,
    );
    assert_eq!(code, Some(1), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
    assert!(
        stderr.contains("cannot allocate a replication backlog of 1099511627776 bytes"),
        "stderr: {stderr}"
    );
    assert!(!stderr.contains("listening on"), "stderr: {stderr}");
}

#[test]
fn a_memcached_command_line_starts_a_server_that_writes_its_pid_file() {
    let dir = scratch_dir("pid");
    let pidfile = dir.join("memcached.pid");
    let mut args = [
        "-p",
        "0",
        "-l",
        "127.0.0.1",
        "-U",
        "0",
        "-m",
        "64",
        "-c",
        "1024",
        "-o",
        "modern,idle_timeout=60",
        "-t",
        "2",
        "-P",
    ]
    .map(OsStr::new)
    .to_vec();
    args.push(pidfile.as_os_str());
    let (first, written, pid) = first_line_of(&args, |_| std::fs::read_to_string(&pidfile));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(first.starts_with("listening on 127.0.0.1:"), "{first:?}");
    assert_eq!(
        written.expect("the pid file is written before 'listening on'"),
        format!("{pid}\n")
    );
}

/// A new directory of this test process's, named after `name`.
fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("larder-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    dir
}

/// A loopback port free when asked.
fn free_port() -> String {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
        .to_string()
}

/// The first 8 bytes of the reply to `version` on a new connection to
/// `addr` (`VERSION `), or the error that stopped it: for checks made while
/// the server runs and asserted after it is killed.
fn version_reply(addr: &str) -> std::io::Result<[u8; 8]> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.write_all(b"version\r\n")?;
    let mut reply = [0u8; 8];
    stream.read_exact(&mut reply).map(|()| reply)
}

/// Sends `request` to a text-protocol server and reads until `end`.
fn ask(addr: &str, request: &[u8], end: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("the server accepts");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("a read timeout");
    stream.write_all(request).expect("the request is sent");
    let mut reply = Vec::new();
    let mut chunk = [0u8; 512];
    while !reply.ends_with(end) {
        let n = stream.read(&mut chunk).expect("a reply");
        assert!(n > 0, "the server closed after {reply:?}");
        reply.extend_from_slice(&chunk[..n]);
    }
    reply
}

#[test]
fn dash_d_returns_once_the_server_listens_and_the_server_runs_on_detached() {
    let dir = scratch_dir("daemon");
    // A relative pid file: the daemon moves to `/`, yet must remove this one.
    let started = Command::new(BIN)
        .current_dir(&dir)
        .args("-d -p 0 -l 127.0.0.1 -U 0 -P daemon.pid".split(' '))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server binary runs");
    let starter = started.id().to_string();
    // Returns once the starting process has exited and the daemon has let
    // go of the output pipes.
    let output = started
        .wait_with_output()
        .expect("the starting process exits");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let pidfile = dir.join("daemon.pid");
    let pid = std::fs::read_to_string(&pidfile).unwrap_or_default();
    let pid = pid.trim().to_owned();
    // Stop the daemon before any assertion can fail and leave it running.
    let stop = |pid: &str| {
        if !pid.is_empty() {
            let _ = Command::new("kill").arg(pid).status();
        }
    };
    let addr = stderr
        .lines()
        .find_map(|line| line.strip_prefix("listening on "))
        .map(str::to_owned);
    let reply = addr
        .as_deref()
        .map(|addr| ask(addr, b"set k 0 0 2\r\nhi\r\nget k\r\n", b"END\r\n"));
    stop(&pid);
    // The daemon removes its pid file as it stops (a clean stop on SIGTERM).
    let mut removed = false;
    for _ in 0..600 {
        if !pidfile.exists() {
            removed = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(output.status.code(), Some(0), "stderr: {stderr}");
    assert!(addr.is_some(), "stderr: {stderr}");
    assert_eq!(
        reply.as_deref(),
        Some(&b"STORED\r\nVALUE k 0 2\r\nhi\r\nEND\r\n"[..])
    );
    // The pid file names the server, not the process that started it.
    assert!(
        pid.parse::<u32>().is_ok() && pid != starter,
        "pid file: {pid:?}"
    );
    assert!(removed, "the relative pid file outlived the daemon");
}

#[test]
fn dash_d_exits_with_the_servers_error_when_it_cannot_listen() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = taken.local_addr().expect("its address").port().to_string();
    let (code, stderr) = run_to_exit(&["-d", "-p", &port, "-l", "127.0.0.1"], None);
    assert_eq!(code, Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains("Address already in use"),
        "stderr: {stderr}"
    );
    assert!(!stderr.contains("listening on"), "stderr: {stderr}");
}

#[test]
fn dash_capital_s_and_dash_capital_y_need_readable_user_files() {
    let dir = scratch_dir("sasl");
    let bad = dir.join("bad");
    std::fs::write(&bad, "alice:pw\nbob\n").expect("written");
    let serve = |extra: &[&str], env: Option<&str>| {
        let args: Vec<&str> = ["-p", "0", "-l", "127.0.0.1", "-S"]
            .iter()
            .chain(extra)
            .copied()
            .collect();
        run_to_exit(&args, env)
    };
    // `--version` is read after the flags: a command line that passes them
    // prints the version and exits 0 (the file is read only at start).
    let version = serve(&["--version"], None);
    let no_file = serve(&[], None);
    let unreadable = serve(&["--sasl-pwdb", "/nonexistent/pwdb"], None);
    let malformed = serve(&[], bad.to_str());
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(version.0, Some(0), "{}", version.1);
    assert_eq!(no_file.0, Some(2), "{}", no_file.1);
    assert!(
        no_file.1.contains("-S needs a password file"),
        "{}",
        no_file.1
    );
    assert_eq!(unreadable.0, Some(2), "{}", unreadable.1);
    assert!(
        unreadable
            .1
            .contains("cannot read the SASL password file /nonexistent/pwdb"),
        "{}",
        unreadable.1
    );
    let (ascii_code, ascii_stderr) = run_to_exit(
        &["-p", "0", "-l", "127.0.0.1", "-Y", "/nonexistent/authfile"],
        None,
    );
    assert_eq!(ascii_code, Some(2), "{ascii_stderr}");
    assert!(
        ascii_stderr.contains("cannot read the authentication file /nonexistent/authfile"),
        "{ascii_stderr}"
    );
    assert_eq!(malformed.0, Some(2), "{}", malformed.1);
    assert!(
        malformed.1.contains("line 2: no ':' after the user name"),
        "{}",
        malformed.1
    );
}

#[test]
fn dash_u_runs_the_server_as_that_user_when_started_as_root() {
    let id = |args: &[&str]| {
        let out = Command::new("id").args(args).output().expect("id runs");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let args = ["-u", "nobody", "-p", "0", "-l", "127.0.0.1"].map(OsStr::new);
    // Whose the running server is, by its /proc entry: "Uid: real effective ...".
    let (first, status, _) = first_line_of(&args, |pid| {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
    });
    assert!(first.starts_with("listening on 127.0.0.1:"), "{first:?}");
    let uids = status
        .expect("the server's /proc status")
        .lines()
        .find_map(|l| {
            l.strip_prefix("Uid:")
                .map(|u| u.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        })
        .expect("a Uid line");
    // As root it becomes nobody (real and effective); otherwise -u changes
    // nothing, as with memcached.
    let want = if id(&["-u"]) == "0" {
        id(&["-u", "nobody"])
    } else {
        id(&["-u"])
    };
    assert_eq!(&uids[..2], &[want.clone(), want], "{uids:?}");
    // A user that does not exist stops the start with a message (as root).
    if id(&["-u"]) == "0" {
        let (code, stderr) = run_to_exit(&["-u", "no-such-user-here", "-p", "0"], None);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains("no such user to switch to"), "{stderr}");
    }
}

#[test]
fn sighup_leaves_the_server_running() {
    let port = free_port();
    let args = ["-p", port.as_str(), "-l", "127.0.0.1"].map(OsStr::new);
    let (first, reply, _) = first_line_of(&args, |pid| {
        let hup = Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status();
        // The default action would end the process before it could answer.
        let reply = ask(&format!("127.0.0.1:{port}"), b"version\r\n", b"\r\n");
        (hup, reply)
    });
    assert!(first.starts_with("listening on"), "{first:?}");
    assert!(reply.0.expect("kill runs").success());
    assert!(reply.1.starts_with(b"VERSION "), "{:?}", reply.1);
}

/// The soft and hard open-file limits of process `pid`, from `/proc`.
fn open_file_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("/proc is readable");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a line for open files");
    let mut fields = line["Max open files".len()..].split_whitespace();
    let soft = fields.next().expect("a soft limit").to_string();
    (soft, fields.next().expect("a hard limit").to_string())
}

/// `prlimit` (util-linux) starting the server under these open-file limits.
fn under_nofile(limits: &str) -> Command {
    let mut command = Command::new("prlimit");
    command.arg(format!("--nofile={limits}")).arg(BIN);
    command
}

#[test]
#[cfg(target_os = "linux")] // prlimit, /proc
fn dash_c_raises_the_open_file_limit_to_hold_its_connections() {
    // A soft limit of 40 under a hard one of 4,096: before, the server ran
    // with 40 descriptors and `-c 1000` connections waited in the backlog
    // after the 30th. As memcached, it raises the soft limit (with room for
    // its own files: 64).
    let args = ["-p", "0", "-l", "127.0.0.1", "-c", "1000"].map(OsStr::new);
    let (first, limits, _) = first_line_under(under_nofile("40:4096"), &args, open_file_limits);
    assert!(first.starts_with("listening on 127.0.0.1:"), "{first:?}");
    assert_eq!(limits, ("1064".to_string(), "4096".to_string()));

    // A hard limit between -c and -c + 64: raised to it, with a warning
    // after `listening on` (where the hard limit cannot be raised: root may
    // raise it).
    let (first, limits, _) = first_line_under(under_nofile("40:1030"), &args, open_file_limits);
    assert!(first.starts_with("listening on 127.0.0.1:"), "{first:?}");
    if limits.1 == "1030" {
        assert_eq!(limits.0, "1030");
    } else {
        assert_eq!(limits, ("1064".to_string(), "1064".to_string()));
    }
    // A soft limit above what -c needs is left as it is.
    let few = ["-p", "0", "-l", "127.0.0.1", "-c", "10"].map(OsStr::new);
    let (_, limits, _) = first_line_under(under_nofile("300:4096"), &few, open_file_limits);
    assert_eq!(limits.0, "300");
}

#[test]
#[cfg(target_os = "linux")] // /proc/sys/fs/nr_open
fn a_connection_limit_the_open_file_limit_cannot_hold_ends_the_server() {
    // Beyond the kernel's fs.nr_open on any usual machine (1,048,576), so
    // even root cannot raise the limit that far: memcached's refusal, exit
    // status 71 (EX_OSERR), before listening.
    let (code, stderr) = run_to_exit(&["-p", "0", "-l", "127.0.0.1", "-c", "2000000"], None);
    let nr_open: u64 = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1 << 20);
    if nr_open >= 2_000_064 {
        eprintln!("fs.nr_open is {nr_open}: root could raise the limit; not checked");
        return;
    }
    assert_eq!(code, Some(71), "stderr: {stderr}");
    assert!(
        stderr.contains("cannot raise the open-file limit to 2000064 for -c 2000000"),
        "stderr: {stderr}"
    );
    assert!(!stderr.contains("listening on"), "stderr: {stderr}");
}

/// Sends `-Y`'s login (`user password` as a `set`'s data) on a new
/// connection; the server's reply line.
fn ascii_login(addr: &str, user: &str, password: &str) -> String {
    let data = format!("{user} {password}");
    let request = format!("set auth 0 0 {}\r\n{data}\r\n", data.len());
    String::from_utf8_lossy(&ask(addr, request.as_bytes(), b"\r\n")).into_owned()
}

#[test]
fn sighup_rereads_the_user_files_and_keeps_the_old_users_if_one_is_bad() {
    use std::io::{Read, Write};
    let dir = scratch_dir("hup");
    let authfile = dir.join("authfile");
    std::fs::write(&authfile, "alice:one\n").expect("the file is written");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(BIN)
        .args(["-p", &port, "-l", "127.0.0.1", "-Y"])
        .arg(&authfile)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server binary runs");
    let (lines, stderr) = std::sync::mpsc::channel();
    let reader = BufReader::new(child.stderr.take().expect("piped stderr"));
    std::thread::spawn(move || {
        for line in reader.lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let wait_line = |what: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match stderr.recv_timeout(left) {
                Ok(line) if line.contains(what) => return line,
                Ok(_) => {}
                Err(_) => return String::new(),
            }
        }
    };
    let hup = |pid: u32| {
        Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success())
    };
    // Each check runs with the server alive; the assertions come after the
    // kill, so a failure leaves no server behind.
    let listening = wait_line("listening on");
    let before = ascii_login(&addr, "alice", "one");
    // A connection that logged in before the change.
    let mut kept = std::net::TcpStream::connect(&addr).expect("the server accepts");
    kept.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("a read timeout");
    kept.write_all(b"set auth 0 0 9\r\nalice one\r\n")
        .expect("sent");
    let mut login = [0u8; 8];
    let kept_login = kept.read_exact(&mut login).map(|()| login);

    std::fs::write(&authfile, "bob:two\n").expect("the file is rewritten");
    let sent = hup(child.id());
    // The reload happens when the signal is handled: new logins are tried
    // until one of the new user's passes (or 30 s pass).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut bob = ascii_login(&addr, "bob", "two");
    while bob != "STORED\r\n" && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        bob = ascii_login(&addr, "bob", "two");
    }
    let alice_after = ascii_login(&addr, "alice", "one");
    kept.write_all(b"version\r\n").expect("sent");
    let mut version = [0u8; 8];
    let kept_after = kept.read_exact(&mut version).map(|()| version);

    std::fs::write(&authfile, "no colon on this line\n").expect("the file is rewritten");
    let sent_bad = hup(child.id());
    let complaint = wait_line("SIGHUP");
    let bob_after_bad = ascii_login(&addr, "bob", "two");
    // An empty file (one truncated while it is rewritten) would lock
    // everyone out: refused too.
    std::fs::write(&authfile, "").expect("the file is emptied");
    let sent_empty = hup(child.id());
    let empty = wait_line("the old users stay");
    let bob_after_empty = ascii_login(&addr, "bob", "two");

    child.kill().expect("the server is still running");
    child.wait().expect("the server exits");
    let _ = std::fs::remove_dir_all(&dir);

    assert!(listening.starts_with("listening on"), "{listening:?}");
    assert_eq!(before, "STORED\r\n");
    assert_eq!(&kept_login.expect("a reply"), b"STORED\r\n");
    assert!(sent && sent_bad, "kill -HUP runs");
    assert_eq!(bob, "STORED\r\n", "the new user logs in after SIGHUP");
    assert!(alice_after.starts_with("CLIENT_ERROR"), "{alice_after:?}");
    assert_eq!(&kept_after.expect("a reply"), b"VERSION ");
    assert!(
        complaint.contains("the old users stay") && complaint.contains("line 1"),
        "{complaint:?}"
    );
    assert_eq!(
        bob_after_bad, "STORED\r\n",
        "a bad file leaves the users as they were"
    );
    assert!(sent_empty && empty.contains("names no user"), "{empty:?}");
    assert_eq!(
        bob_after_empty, "STORED\r\n",
        "an empty file leaves them too"
    );
}

#[test]
fn every_ipv4_and_every_ipv6_address_bind_together_on_one_port() {
    // As memcached's `-l 0.0.0.0,::`: the IPv6 socket is IPv6-only, so the
    // two wildcards do not collide (without IPV6_V6ONLY, `::` also claims
    // IPv4's port on Linux, and the second bind failed).
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 on this machine: not checked");
        return;
    }
    // Free on every address of both families (a dual-stack wildcard bind),
    // not only on IPv4's loopback.
    let port = std::net::TcpListener::bind("[::]:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
        .to_string();
    let args = ["-p", port.as_str(), "-l", "0.0.0.0,::"].map(OsStr::new);
    let (first, replies, _) = first_line_of(&args, |_| {
        ["127.0.0.1", "[::1]"].map(|host| version_reply(&format!("{host}:{port}")))
    });
    assert_eq!(first.trim_end(), format!("listening on 0.0.0.0:{port}"));
    for reply in replies {
        assert_eq!(&reply.expect("a reply"), b"VERSION ");
    }
}

#[test]
fn a_closed_stderr_does_not_end_the_server_or_its_connections() {
    // `first_line_of` closes its end of the server's stderr once it has
    // the first line: every later log line (-vv logs each connection) meets
    // a closed pipe. Before, `eprintln!` panicked there: in a connection's
    // task (the connection reset), or in the server's main task (the
    // server gone).
    let port = free_port();
    let args = ["-p", port.as_str(), "-l", "127.0.0.1", "-vv"].map(OsStr::new);
    let (first, replies, _) = first_line_of(&args, |_| {
        [1, 2].map(|_| version_reply(&format!("127.0.0.1:{port}")))
    });
    assert!(first.starts_with("listening on 127.0.0.1:"), "{first:?}");
    for reply in replies {
        assert_eq!(&reply.expect("a reply"), b"VERSION ");
    }
}

#[test]
fn help_into_a_closed_pipe_is_not_a_panic() {
    let mut child = Command::new(BIN)
        .arg("--help")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server binary runs");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("it exits");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
    assert_eq!(output.status.code(), Some(0));
}
