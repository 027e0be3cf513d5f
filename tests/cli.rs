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

/// Starts the server with `args`, reads the first line of its stderr, runs
/// `meanwhile`, and kills it (before any assertion, so that a failure leaves
/// no server behind); returns the line, `meanwhile`'s result and the pid.
fn first_line_of<T>(args: &[&OsStr], meanwhile: impl FnOnce() -> T) -> (String, T, u32) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server binary runs");
    let mut first = String::new();
    let read = BufReader::new(child.stderr.take().expect("piped stderr")).read_line(&mut first);
    let result = meanwhile();
    child.kill().expect("the server is still running");
    child.wait().expect("the server exits");
    read.expect("stderr is readable");
    (first, result, child.id())
}

#[test]
fn the_largest_memory_limit_starts_a_server() {
    let args = ["-p", "0", "-l", "127.0.0.1", "-m", "17592186044415"].map(OsStr::new);
    let (first, (), _) = first_line_of(&args, || ());
    assert!(first.starts_with("listening on 127.0.0.1:"), "{first:?}");
}

#[test]
fn a_backlog_the_machine_cannot_hold_ends_the_server_with_a_message() {
    // 1 TiB: within the flag's range, beyond any machine this runs on. The
    // backlog is reserved at start, so the server says so and exits rather
    // than aborting later on the first replica's write.
    let output = Command::new(BIN)
        .args(["-p", "0", "-l", "127.0.0.1", "--repl-backlog", "1048576m"])
        .stdin(Stdio::null())
        .output()
        .expect("the server binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
    assert!(
        stderr.contains("cannot allocate a replication backlog of 1099511627776 bytes"),
        "stderr: {stderr}"
    );
    assert!(!stderr.contains("listening on"), "stderr: {stderr}");
}

#[test]
fn a_memcached_command_line_starts_a_server_that_writes_its_pid_file() {
    let dir = std::env::temp_dir().join(format!("larder-cli-pid-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
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
    let (first, written, pid) = first_line_of(&args, || std::fs::read_to_string(&pidfile));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(first.starts_with("listening on 127.0.0.1:"), "{first:?}");
    assert_eq!(
        written.expect("the pid file is written before 'listening on'"),
        format!("{pid}\n")
    );
}
