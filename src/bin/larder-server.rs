//! `larder-server`: a memcached-compatible server over a larder cache.
//!
//! Takes memcached's flags where they make sense (`-p`, `-l`, `-s`, `-m`,
//! `-c`, `-I`, `-t`, `-v`, `-d`, `-u`, `-M`, `-S`, `-Y`, ...), speaks the
//! text, meta and binary protocols over TCP or a Unix domain socket (no
//! UDP, no TLS), stops cleanly on SIGINT or SIGTERM, saving a snapshot first
//! when `--snapshot` asks for one, and on SIGHUP rereads its user files
//! (`-Y`'s, as memcached does, and `-S`'s), keeping the old users if a file
//! cannot be read.
//! Arguments are parsed by hand: a bad flag or value prints the error and a
//! usage line and exits with status 2.
#![deny(unsafe_code)]

/// `eprintln!` that never panics: the server's stderr may close under it
/// (a supervisor's log pipe gone, a terminal closed, `2>&-`), and losing a
/// message must not end the server, as it does not end memcached.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

use std::fmt;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use larder::memcached::{Credentials, Protocols, StoreConfig, MAX_ITEM_SIZE};
use larder::server::{
    ReplicationConfig, Server, ServerConfig, ServerError, SnapshotConfig, UnixSocketConfig, VERSION,
};

const USAGE: &str = "usage: larder-server [-p PORT] [-l ADDR] [-m MB] [-c CONNS] [-I SIZE] \
[-s FILE [-a MASK]] [-t THREADS] [-v[v]] [-A] [--idle-timeout SECS] [--conn-buffer-budget MB] \
[--metrics-listen ADDR:PORT] [--snapshot PATH [--snapshot-interval SECS] [--snapshot-keep N]] \
[--replica-of HOST:PORT [--promote-after SECS]] [--repl-backlog SIZE] [-P PIDFILE] [--help] [--version]";

const HELP: &str = "\
larder-server: a memcached-compatible server over a larder cache (TCP or a
Unix domain socket)

  -p, --port PORT          TCP port to listen on (default 11211; 0 or -1 picks
                           one; MEMCACHED_PORT_FILENAME=FILE writes it there as
                           'TCP INET: PORT', as memcached does)
  -l, --listen ADDR[,ADDR..]
                           interfaces to listen on, each an address or host
                           name, optionally with its own :PORT; -l again adds
                           more (default: loopback, 127.0.0.1 and ::1 where
                           the machine has IPv6)
  -s, --unix-socket FILE   listen on this Unix domain socket instead of TCP (as
                           memcached's -s, it disables network support; a socket
                           file left there by an earlier run is replaced, one a
                           running server listens on is not)
  -a, --unix-mask MASK     the socket file's permissions, in octal (default 700)
  -m, --memory-limit MB    item memory in megabytes (default 64)
  -c, --conn-limit N       most simultaneous connections (default 1024); the
                           open-file limit is raised to N + 64 at start, as
                           memcached raises it (exit 71 if not even N fit)
  -I, --max-item-size SIZE largest item, with an optional k or m suffix (default
                           1m), counted as memcached counts it: the value, the key
                           and 59 bytes (63 with nonzero flags)
  -t, --threads N          worker threads (default: the CPU count, at most 4)
  -v, --verbose            log to stderr; repeat (-vv) for more
  -A, --enable-shutdown    honour the shutdown command
      --idle-timeout SECS  close connections idle this long (default 300; 0 never;
                           at most a year)
      --conn-buffer-budget MB
                           memory all connections' buffers may use beyond 16 KiB
                           each way per connection (default 64, and at least
                           room for the largest request); a connection past it
                           stops reading until budget frees
      --metrics-listen ADDR:PORT
                           serve Prometheus metrics at http://ADDR:PORT/metrics
                           (off by default; port 0 picks one, printed on stderr
                           as 'metrics on ADDR:PORT')
      --snapshot PATH      restore the cache from PATH at start (falling back to
                           older generations, else empty; never fails the start)
                           and save it there on SIGTERM, SIGINT and `shutdown`
      --snapshot-interval SECS
                           also save every SECS seconds while serving (default:
                           only at stop)
      --snapshot-keep N    older snapshots kept as PATH.1 .. PATH.N (default 1)
      --replica-of HOST:PORT
                           run as a read-only replica of that primary: sync its
                           data, then apply its changes as they happen (writes
                           answer 'SERVER_ERROR read-only replica')
      --promote-after SECS with --replica-of: once synced, promote this replica
                           to a writable primary when the primary has been
                           unreachable for SECS seconds (default: never; the
                           'replica promote' command promotes by hand)
      --repl-backlog SIZE  recent changes kept for replicas that reconnect, with
                           an optional k or m suffix (default 16m; at least 64k)
  -P, --pidfile PATH       write the process id to PATH (removed at a clean stop)
  -M, --disable-evictions  never evict a live item: once the items fill -m, a
                           store that needs more room gets 'SERVER_ERROR out of
                           memory storing object' (expired items still make
                           room)
  -S, --enable-sasl        binary connections must authenticate (SASL PLAIN)
                           before anything but VERSION is answered; implies -B
                           binary. Users come from memcached's password file
                           format (user:password per line) named by
                           --sasl-pwdb FILE or MEMCACHED_SASL_PWDB. Replicas
                           cannot sync from a server with -S
  -Y, --auth-file FILE     text connections authenticate first, as memcached's
                           ASCII authentication: 'set <key> <flags> <exptime>
                           <bytes>' whose data is 'user password', checked
                           against FILE's user:password lines (read at start
                           and on SIGHUP, with -S's file); implies -B ascii
  -d, --daemon             run in the background: the command returns once the
                           server listens (status 0, after 'listening on'), or
                           with the server's error and status if it cannot
                           start; the server then leaves its session, works
                           from /, and sends its output to /dev/null (kept with
                           -v)
  -h, --help               this help
  -V, --version            the version

memcached's other flags, so that larder-server can stand in for it under the
same command line:
  -U 0                     UDP off (the only UDP setting: larder speaks TCP)
  -u USER                  started as root, run as USER (as memcached does: its
                           supplementary groups are dropped, then its group and
                           user taken, before anything is opened); ignored when
                           not started as root
  -o OPT[,OPT..]           memcached's tuning options are accepted and have no
                           effect (hashpower=N, lru_segmented, ...), but
                           idle_timeout=N sets --idle-timeout N (0: never),
                           no_lru_crawler (or no_modern) stops the background
                           sweep of expired items until 'lru_crawler enable',
                           and slab_automove=0 (or no_slab_reassign) stops the
                           page mover until 'slabs automove 1';
                           extstore (ext_*), TLS (ssl_*), proxy (proxy_*) and
                           unknown options are refused
  -F                       refuse flush_all (CLIENT_ERROR flush_all not allowed)
  -B ascii|binary|auto     the protocols spoken (default auto: the first byte
                           decides)
  -R N                     answer at most N requests of one connection before
                           the others get a turn (counted in conn_yields)
  -b N                     the listen backlog (default 1024)
  -X                       refuse to list the items (stats cachedump,
                           lru_crawler metadump)
  -C, -L, -k, -r           accepted, no effect (CAS stays on)
  -f F, -n N, -D C         accepted, no effect (no slab classes)
  -e, -Z                  refused with the reason (memory files, TLS)

The bound address is printed on stderr as 'listening on ADDR:PORT' (with -s,
'listening on unix:FILE').";

/// The largest `-m`: its megabytes still count in a 64-bit number of bytes.
const MAX_MEMORY_MB: u64 = u64::MAX >> 20;

/// The largest `--idle-timeout`, a year: far below where deadlines stop
/// fitting a timer, and a longer one is better said as 0 (never).
const MAX_IDLE_SECS: u64 = 365 * 24 * 60 * 60;

/// Everything the command line chose.
#[derive(Debug, PartialEq)]
struct Options {
    port: u16,
    /// `-l` entries (empty: the loopback interface).
    listen: Vec<String>,
    /// `-s`: listen on this Unix domain socket instead of TCP.
    unix_socket: Option<String>,
    /// `-a`: the socket file's permission bits.
    unix_mask: u32,
    memory_mb: u64,
    conn_limit: usize,
    max_item_size: usize,
    threads: usize,
    verbosity: u8,
    enable_shutdown: bool,
    idle_timeout_secs: u64,
    conn_buffer_budget_mb: u64,
    metrics_listen: Option<String>,
    snapshot: Option<String>,
    snapshot_interval_secs: u64,
    snapshot_keep: usize,
    replica_of: Option<String>,
    promote_after_secs: u64,
    repl_backlog: usize,
    pidfile: Option<String>,
    /// `-d`: run in the background (see [`daemon`]).
    daemonize: bool,
    /// Not `-M`: evict items to make room.
    evictions: bool,
    /// `-S`: binary connections authenticate (SASL `PLAIN`).
    sasl: bool,
    /// `--sasl-pwdb`: the password file (else `MEMCACHED_SASL_PWDB`).
    sasl_pwdb: Option<String>,
    /// `-B` was given (`-S` refuses any but `binary`, as memcached does).
    protocol_named: bool,
    /// `-Y`: text connections authenticate with a user and password from
    /// this file.
    auth_file: Option<String>,
    /// `-u`: the user to run as, when started as root.
    user: Option<String>,
    reqs_per_event: Option<usize>,
    listen_backlog: u32,
    flush_enabled: bool,
    protocols: Protocols,
    lru_crawler: bool,
    page_mover: bool,
    dump_enabled: bool,
    /// Seconds added to the wall clock the store believes in (hidden, for
    /// tests of expiry across a restart; not in the help).
    time_offset_secs: u64,
}

impl Default for Options {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(4, |n| n.get());
        Options {
            port: 11211,
            listen: Vec::new(),
            unix_socket: None,
            unix_mask: 0o700,
            memory_mb: 64,
            conn_limit: 1024,
            max_item_size: 1 << 20,
            threads: cpus.min(4),
            verbosity: 0,
            enable_shutdown: false,
            idle_timeout_secs: 300,
            conn_buffer_budget_mb: 64,
            metrics_listen: None,
            snapshot: None,
            snapshot_interval_secs: 0,
            snapshot_keep: 1,
            replica_of: None,
            promote_after_secs: 0,
            repl_backlog: 16 << 20,
            pidfile: None,
            daemonize: false,
            evictions: true,
            sasl: false,
            sasl_pwdb: None,
            protocol_named: false,
            auth_file: None,
            user: None,
            reqs_per_event: None,
            listen_backlog: 1024,
            flush_enabled: true,
            protocols: Protocols::Auto,
            lru_crawler: true,
            page_mover: true,
            dump_enabled: true,
            time_offset_secs: 0,
        }
    }
}

/// What the command line asks for.
#[derive(Debug, PartialEq)]
enum Command {
    Serve(Box<Options>),
    Help,
    Version,
}

/// A command line that cannot be run.
#[derive(Debug, PartialEq)]
struct ArgError(String);

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn bad(message: impl Into<String>) -> ArgError {
    ArgError(message.into())
}

/// Parses the arguments after the program name. Accepts `-p 1`, `-p1`,
/// `--port 1` and `--port=1`, and `-vv` for repeated verbosity.
fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, ArgError> {
    let mut options = Options::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        // Split into the flag and a value attached to it, if any.
        let (flag, attached) = if let Some(long) = arg.strip_prefix("--") {
            match long.split_once('=') {
                Some((name, value)) => (format!("--{name}"), Some(value.to_string())),
                None => (arg.clone(), None),
            }
        } else if let Some((flag, attached)) = short_with_value(&arg) {
            (flag.to_string(), Some(attached.to_string()))
        } else {
            (arg.clone(), None)
        };
        let mut value = |name: &str| -> Result<String, ArgError> {
            attached
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| bad(format!("{name} needs a value")))
        };
        if attached.is_some() && BARE_FLAGS.contains(&flag.as_str()) {
            return Err(bad(format!("{flag} takes no value")));
        }
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "-p" | "--port" => {
                // memcached's `-p -1` asks for an ephemeral port, as 0 does here.
                let port = value(&flag)?;
                options.port = if port == "-1" {
                    0
                } else {
                    number(&flag, &port)?
                };
            }
            "-l" | "--listen" => {
                // memcached takes a comma-separated list, and -l again adds
                // to it.
                let list = value(&flag)?;
                let before = options.listen.len();
                options.listen.extend(
                    list.split([',', ';'])
                        .filter(|a| !a.is_empty())
                        .map(str::to_owned),
                );
                if options.listen.len() == before {
                    return Err(bad(format!("{flag} needs an address")));
                }
            }
            "-m" | "--memory-limit" => {
                options.memory_mb = number(&flag, &value(&flag)?)?;
                if !(1..=MAX_MEMORY_MB).contains(&options.memory_mb) {
                    return Err(bad(format!(
                        "{flag} must be between 1 and {MAX_MEMORY_MB} (megabytes)"
                    )));
                }
            }
            "-c" | "--conn-limit" => {
                options.conn_limit = number(&flag, &value(&flag)?)?;
                if options.conn_limit == 0 {
                    return Err(bad(format!("{flag} must be at least 1")));
                }
            }
            "-I" | "--max-item-size" => options.max_item_size = size(&flag, &value(&flag)?)?,
            "-t" | "--threads" => {
                options.threads = number(&flag, &value(&flag)?)?;
                if options.threads == 0 || options.threads > 256 {
                    return Err(bad(format!("{flag} must be between 1 and 256")));
                }
            }
            "--idle-timeout" => {
                options.idle_timeout_secs = number(&flag, &value(&flag)?)?;
                if options.idle_timeout_secs > MAX_IDLE_SECS {
                    return Err(bad(format!(
                        "{flag} must be at most {MAX_IDLE_SECS} (a year; 0 never times out)"
                    )));
                }
            }
            "--conn-buffer-budget" => {
                options.conn_buffer_budget_mb = number(&flag, &value(&flag)?)?;
                if options.conn_buffer_budget_mb == 0 || options.conn_buffer_budget_mb > 1 << 20 {
                    return Err(bad(format!("{flag} must be from 1 to 1048576 (megabytes)")));
                }
            }
            "--metrics-listen" => {
                let addr = value(&flag)?;
                // Checked here for its shape; resolved when the server starts.
                if addr
                    .rsplit_once(':')
                    .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
                {
                    return Err(bad(format!("{flag}: {addr:?} is not ADDR:PORT")));
                }
                options.metrics_listen = Some(addr);
            }
            "--snapshot" => {
                let path = value(&flag)?;
                if path.is_empty() {
                    return Err(bad(format!("{flag} needs a file path")));
                }
                options.snapshot = Some(path);
            }
            "--snapshot-interval" => {
                options.snapshot_interval_secs = number(&flag, &value(&flag)?)?;
                if options.snapshot_interval_secs > MAX_IDLE_SECS {
                    return Err(bad(format!(
                        "{flag} must be at most {MAX_IDLE_SECS} (a year)"
                    )));
                }
            }
            "--snapshot-keep" => {
                options.snapshot_keep = number(&flag, &value(&flag)?)?;
                if options.snapshot_keep > 100 {
                    return Err(bad(format!("{flag} must be at most 100")));
                }
            }
            "--replica-of" => {
                let addr = value(&flag)?;
                if addr
                    .rsplit_once(':')
                    .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
                {
                    return Err(bad(format!("{flag}: {addr:?} is not HOST:PORT")));
                }
                options.replica_of = Some(addr);
            }
            "--promote-after" => {
                options.promote_after_secs = number(&flag, &value(&flag)?)?;
                if options.promote_after_secs == 0 || options.promote_after_secs > MAX_IDLE_SECS {
                    return Err(bad(format!("{flag} must be from 1 to {MAX_IDLE_SECS}")));
                }
            }
            "--repl-backlog" => {
                let text = value(&flag)?;
                let (digits, unit) = match text.as_bytes().last() {
                    Some(b'k' | b'K') => (&text[..text.len() - 1], 1usize << 10),
                    Some(b'm' | b'M') => (&text[..text.len() - 1], 1 << 20),
                    _ => (&text[..], 1),
                };
                let n: usize = number(&flag, digits)?;
                options.repl_backlog = n
                    .checked_mul(unit)
                    .filter(|&b| ((64 << 10)..=(1 << 40)).contains(&b))
                    .ok_or_else(|| {
                        bad(format!("{flag}: {text} is not between 64k and 1048576m"))
                    })?;
            }
            "--debug-time-offset" => {
                options.time_offset_secs = number(&flag, &value(&flag)?)?;
            }
            "-A" | "--enable-shutdown" => options.enable_shutdown = true,
            "--verbose" => options.verbosity = options.verbosity.saturating_add(1),
            "-U" | "--udp-port" => {
                // memcached's UDP port: only "off" is supported.
                if value(&flag)? != "0" {
                    return Err(bad("UDP is not supported (only -U 0)"));
                }
            }
            "-P" | "--pidfile" => options.pidfile = Some(value(&flag)?),
            "-u" | "--user" => {
                let user = value(&flag)?;
                if user.is_empty() {
                    return Err(bad(format!("{flag} needs a user name")));
                }
                options.user = Some(user);
            }
            "-o" | "--extended" => {
                for option in value(&flag)?.split(',').filter(|o| !o.is_empty()) {
                    match option {
                        // The LRU crawler is the background expiry sweep.
                        "modern" | "lru_crawler" => options.lru_crawler = true,
                        "no_modern" | "no_lru_crawler" => options.lru_crawler = false,
                        // The arena's page mover is memcached's slab automove.
                        "slab_reassign" | "slab_automove=1" | "slab_automove=2" => {
                            options.page_mover = true
                        }
                        "no_slab_reassign" | "slab_automove=0" => options.page_mover = false,
                        _ => {}
                    }
                    if let Some(secs) = extended_option(option)? {
                        options.idle_timeout_secs = secs;
                    }
                }
            }
            // memcached's tuning knobs: accepted, no counterpart here.
            "-C"
            | "--disable-cas"
            | "-L"
            | "--enable-largepages"
            | "-k"
            | "--lock-memory"
            | "-r"
            | "--enable-coredumps" => {}
            "-X" | "--disable-dumping" => options.dump_enabled = false,
            "-R" | "--max-reqs-per-event" => {
                let n: usize = number(&flag, &value(&flag)?)?;
                if n == 0 {
                    return Err(bad(format!("{flag}: must be at least 1")));
                }
                options.reqs_per_event = Some(n);
            }
            "-b" | "--listen-backlog" => {
                let n: u32 = number(&flag, &value(&flag)?)?;
                if n == 0 {
                    return Err(bad(format!("{flag}: must be at least 1")));
                }
                options.listen_backlog = n;
            }
            "-f" | "--slab-growth-factor" | "-n" | "--slab-min-size" | "-D" => {
                value(&flag)?;
            }
            "-B" | "--protocol" => match value(&flag)
                .inspect(|_| options.protocol_named = true)?
                .as_str()
            {
                "ascii" => options.protocols = Protocols::Text,
                "binary" => options.protocols = Protocols::Binary,
                "auto" => options.protocols = Protocols::Auto,
                other => return Err(bad(format!("-B: {other:?} is not ascii, binary or auto"))),
            },
            "-d" | "--daemon" => options.daemonize = true,
            "-M" | "--disable-evictions" => options.evictions = false,
            "-F" | "--disable-flush-all" => options.flush_enabled = false,
            "-s" | "--unix-socket" => {
                options.unix_socket = Some(path_value(&flag, value(&flag)?)?);
            }
            "-a" | "--unix-mask" => {
                let text = value(&flag)?;
                options.unix_mask = u32::from_str_radix(&text, 8)
                    .ok()
                    .filter(|&mask| mask <= 0o777)
                    .ok_or_else(|| {
                        bad(format!(
                            "{flag}: {text:?} is not an octal permission mask (000 to 777)"
                        ))
                    })?;
            }
            "-e" | "--memory-file" => {
                return Err(bad("-e: no memory file; --snapshot PATH restarts warm"))
            }
            "-S" | "--enable-sasl" => options.sasl = true,
            "--sasl-pwdb" => {
                options.sasl_pwdb = Some(path_value(&flag, value(&flag)?)?);
            }
            "-Y" | "--auth-file" => {
                options.auth_file = Some(path_value(&flag, value(&flag)?)?);
            }
            "-Z" | "--enable-ssl" => return Err(bad("-Z: TLS is not supported")),
            v if v.len() > 1 && v.starts_with('-') && v[1..].bytes().all(|b| b == b'v') => {
                let count = u8::try_from(v.len() - 1).unwrap_or(u8::MAX);
                options.verbosity = options.verbosity.saturating_add(count);
            }
            other if other.starts_with('-') => return Err(bad(format!("unknown flag {other}"))),
            other => return Err(bad(format!("unexpected argument {other:?}"))),
        }
    }
    if options.sasl {
        // memcached's -S implies -B binary, and refuses a text protocol
        // asked for by name.
        if options.protocol_named && options.protocols != Protocols::Binary {
            return Err(bad(
                "-S: SASL needs the binary protocol alone (give -B binary, or no -B)",
            ));
        }
        options.protocols = Protocols::Binary;
    } else if options.sasl_pwdb.is_some() {
        return Err(bad("--sasl-pwdb needs -S"));
    }
    if options.auth_file.is_some() {
        // memcached's -Y implies -B ascii, and refuses binary asked for by
        // name; SASL is the binary protocol's authentication.
        if options.sasl {
            return Err(bad(
                "-Y: text authentication and -S (binary SASL) exclude each other",
            ));
        }
        if options.protocol_named && options.protocols != Protocols::Text {
            return Err(bad(
                "-Y: text authentication needs the text protocol alone (give -B ascii, or no -B)",
            ));
        }
        options.protocols = Protocols::Text;
    }
    if options.replica_of.is_none() && options.promote_after_secs > 0 {
        return Err(bad("--promote-after needs --replica-of HOST:PORT"));
    }
    if options.snapshot.is_none() && options.snapshot_interval_secs > 0 {
        return Err(bad("--snapshot-interval needs --snapshot PATH"));
    }
    let max = (options.memory_mb << 20) / 2;
    if options.max_item_size as u64 > max {
        return Err(bad(format!(
            "-I {} is more than half of -m {} MB",
            options.max_item_size, options.memory_mb
        )));
    }
    Ok(Command::Serve(Box::new(options)))
}

/// Flags that take no value: one attached (`-Cx`, `--disable-cas=1`) is an
/// error, not silently dropped.
const BARE_FLAGS: &[&str] = &[
    "-h",
    "--help",
    "-V",
    "--version",
    "-A",
    "--enable-shutdown",
    "--verbose",
    "-C",
    "--disable-cas",
    "-L",
    "--enable-largepages",
    "-k",
    "--lock-memory",
    "-r",
    "--enable-coredumps",
    "-X",
    "--disable-dumping",
    "-d",
    "--daemon",
    "-M",
    "--disable-evictions",
    "-F",
    "--disable-flush-all",
    "-S",
    "--enable-sasl",
];

/// memcached's port file: when `MEMCACHED_PORT_FILENAME` is set, the bound
/// TCP port is written there as `TCP INET: <port>` (`INET6` for IPv6), into
/// `<name>.lck` first and then renamed, so a reader never sees half a file.
/// Tools start memcached with port 0 and read the port from it.
fn write_port_file(addr: SocketAddr) -> std::io::Result<()> {
    let Some(path) = std::env::var_os("MEMCACHED_PORT_FILENAME") else {
        return Ok(());
    };
    let family = if addr.is_ipv4() { "INET" } else { "INET6" };
    let mut temp = path.clone();
    temp.push(".lck");
    std::fs::write(&temp, format!("TCP {family}: {}\n", addr.port()))?;
    std::fs::rename(&temp, &path)
}

/// Whether this process runs as root (its effective user id).
fn running_as_root() -> bool {
    nix::unistd::getuid().is_root() || nix::unistd::geteuid().is_root()
}

/// Descriptors the server may hold beyond its client connections: standard
/// streams, the runtime's poller and wakers, listeners, the metrics
/// endpoint's connections, replication links, snapshot and pid files.
const FD_HEADROOM: u64 = 64;

/// Makes room in the open-file limit for `-c` connections, as memcached does
/// at start (before `-u`, so that root may raise the hard limit too). The
/// soft limit is raised to `conns` + [`FD_HEADROOM`], never lowered; where the
/// hard limit is lower and cannot be raised, to the hard limit, and the
/// warning to print (once the server listens: `listening on` stays the
/// first line) is returned. Err (memcached's refusal) only when not even
/// `conns` descriptors can be had: a server that cannot hold its `-c` would
/// refuse connections long before it says so.
fn raise_fd_limit(conns: usize) -> Result<Option<String>, String> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};
    let conns = u64::try_from(conns).unwrap_or(u64::MAX);
    let want = conns.saturating_add(FD_HEADROOM);
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)
        .map_err(|e| format!("cannot read the open-file limit: {e}"))?;
    if soft == RLIM_INFINITY || soft >= want {
        return Ok(None);
    }
    // Raising the hard limit needs root (CAP_SYS_RESOURCE) and stops at the
    // kernel's fs.nr_open; either way a refusal leaves the limits unchanged.
    let raised_hard = hard != RLIM_INFINITY && hard < want;
    if setrlimit(Resource::RLIMIT_NOFILE, want, hard.max(want)).is_ok() {
        return Ok(None);
    }
    let best = if raised_hard { hard } else { want };
    let err = match setrlimit(Resource::RLIMIT_NOFILE, best, hard) {
        Ok(()) if best >= conns => {
            return Ok(Some(format!(
                "larder-server: warning: the open-file limit is {best} (hard limit), {want} \
                 wanted for -c {conns} and the server's own files: near -c, accepts may wait"
            )));
        }
        Ok(()) => format!("the hard limit is {best}"),
        Err(e) => e.to_string(),
    };
    let root = if running_as_root() {
        ""
    } else {
        "start as root, "
    };
    Err(format!(
        "cannot raise the open-file limit to {want} for -c {conns} ({err}): \
         {root}raise the limit (ulimit -n, systemd's LimitNOFILE, fs.nr_open) or ask for a smaller -c"
    ))
}

/// `-u`: started as root, becomes `name` (supplementary groups dropped,
/// then its group and user), as memcached does; does nothing otherwise.
fn switch_user(name: &str) -> Result<(), String> {
    use nix::unistd::{setgid, setgroups, setuid, User};
    if !running_as_root() {
        return Ok(());
    }
    let user = User::from_name(name)
        .map_err(|e| format!("-u {name}: cannot look the user up: {e}"))?
        .ok_or_else(|| format!("-u {name}: no such user to switch to"))?;
    // EPERM: already without the right to change groups (a minimal
    // state), as memcached reads it.
    match setgroups(&[]) {
        Ok(()) | Err(nix::errno::Errno::EPERM) => {}
        Err(e) => return Err(format!("-u {name}: cannot drop supplementary groups: {e}")),
    }
    setgid(user.gid)
        .and_then(|()| setuid(user.uid))
        .map_err(|e| format!("-u {name}: cannot take the user's identity: {e}"))
}

/// memcached's tuning options (`-o`) with no counterpart here: accepted.
const IGNORED_EXTENDED: &[&str] = &[
    "modern",
    "no_modern",
    "lru_crawler",
    "no_lru_crawler",
    "lru_maintainer",
    "no_lru_maintainer",
    "lru_segmented",
    "no_lru_segmented",
    "lru_crawler_sleep",
    "lru_crawler_tocrawl",
    "hash_algorithm",
    "hashpower",
    "no_hashexpand",
    "slab_reassign",
    "no_slab_reassign",
    "slab_automove",
    "slab_automove_ratio",
    "slab_automove_window",
    "slab_chunk_max",
    "slab_sizes",
    "tail_repair_time",
    "hot_lru_pct",
    "warm_lru_pct",
    "hot_max_factor",
    "warm_max_factor",
    "temporary_ttl",
    "track_sizes",
    "watcher_logbuf_size",
    "worker_logbuf_size",
    "maxconns_fast",
    "no_maxconns_fast",
    "inline_ascii_resp",
    "no_inline_ascii_resp",
    "drop_privileges",
    "no_drop_privileges",
    "resp_obj_mem_limit",
    "read_buf_mem_limit",
    "large_memory_pages",
    "verbose",
    "relaxed_privileges",
    "no_chunked_items",
    "sock_cookie_id",
];

/// One `-o` option: `Some(secs)` for `idle_timeout=secs`, `None` for one
/// accepted without effect.
fn extended_option(option: &str) -> Result<Option<u64>, ArgError> {
    let (name, value) = option.split_once('=').unwrap_or((option, ""));
    if name == "idle_timeout" {
        let secs: u64 = number("-o idle_timeout", value)?;
        if secs > MAX_IDLE_SECS {
            return Err(bad(format!(
                "-o idle_timeout={secs} is more than a year (use 0 for never)"
            )));
        }
        return Ok(Some(secs));
    }
    if name.starts_with("ext_") {
        return Err(bad(format!(
            "-o {name}: extstore is not supported (items live in memory only)"
        )));
    }
    if name.starts_with("ssl_") {
        return Err(bad(format!("-o {name}: TLS is not supported")));
    }
    if name.starts_with("proxy_") {
        return Err(bad(format!(
            "-o {name}: memcached's proxy mode is not supported (larder-server is a cache node)"
        )));
    }
    if IGNORED_EXTENDED.contains(&name) {
        return Ok(None);
    }
    Err(bad(format!("-o: unknown option {name:?}")))
}

/// A short flag with its value attached (`-p11211` gives `-p` and `11211`),
/// split after the flag's first character, whatever its width; `None` for a
/// bare short flag, a run of `v`s, or anything not starting with one `-`.
fn short_with_value(arg: &str) -> Option<(&str, &str)> {
    let rest = arg.strip_prefix('-')?;
    let first = rest.chars().next()?;
    if rest.len() == first.len_utf8() || rest.bytes().all(|b| b == b'v') {
        return None;
    }
    Some(arg.split_at(1 + first.len_utf8()))
}

/// The arguments as strings: one that is not UTF-8 is an error naming it
/// (`std::env::args` would panic on it).
fn utf8_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Vec<String>, ArgError> {
    args.into_iter()
        .map(|arg| {
            arg.into_string()
                .map_err(|raw| bad(format!("argument {raw:?} is not valid UTF-8")))
        })
        .collect()
}

fn number<T: std::str::FromStr>(flag: &str, text: &str) -> Result<T, ArgError> {
    text.parse()
        .map_err(|_| bad(format!("{flag}: {text:?} is not a valid number")))
}

/// A byte size: digits with an optional `k`/`K` or `m`/`M` suffix.
fn size(flag: &str, text: &str) -> Result<usize, ArgError> {
    let (digits, unit) = match text.as_bytes().last() {
        Some(b'k' | b'K') => (&text[..text.len() - 1], 1 << 10),
        Some(b'm' | b'M') => (&text[..text.len() - 1], 1 << 20),
        _ => (text, 1),
    };
    let n: usize = number(flag, digits)?;
    let bytes = n
        .checked_mul(unit)
        .filter(|&b| (1024..=MAX_ITEM_SIZE).contains(&b))
        .ok_or_else(|| {
            bad(format!(
                "{flag}: {text} is not between 1k and {}m",
                MAX_ITEM_SIZE >> 20
            ))
        })?;
    Ok(bytes)
}

/// The socket address for `-l` and `-p`: an IP address, or a host name
/// resolved once at start.
fn listen_addr(listen: &str, port: u16) -> Result<Vec<SocketAddr>, ArgError> {
    // `HOST:PORT` or `[V6]:PORT` name their own port, as in memcached.
    if let Ok(addr) = listen.parse::<SocketAddr>() {
        return Ok(vec![addr]);
    }
    let (host, port) = match listen.rsplit_once(':') {
        Some((host, own)) if !host.contains(':') || host.ends_with(']') => {
            let own = own
                .parse()
                .map_err(|_| bad(format!("-l: {own:?} in {listen:?} is not a port")))?;
            (host, own)
        }
        _ => (listen, port),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    // A name: every address it resolves to, as memcached binds them all
    // (`localhost` is 127.0.0.1 and ::1 on most systems).
    let mut addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|_| bad(format!("-l: cannot resolve {listen:?}")))?
        .collect();
    addrs.sort();
    addrs.dedup();
    if addrs.is_empty() {
        return Err(bad(format!("-l: cannot resolve {listen:?}")));
    }
    Ok(addrs)
}

/// Where to listen: each `-l` entry, or by default the loopback interface,
/// IPv6's too where the machine has it (so that clients resolving
/// `localhost` to `::1` connect, as they do to memcached).
fn listen_addrs(listen: &[String], port: u16) -> Result<Vec<SocketAddr>, ArgError> {
    if listen.is_empty() {
        let mut addrs = vec![SocketAddr::from(([127, 0, 0, 1], port))];
        if std::net::TcpListener::bind("[::1]:0").is_ok() {
            addrs.push(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)));
        }
        return Ok(addrs);
    }
    let mut addrs = Vec::new();
    for entry in listen {
        for addr in listen_addr(entry, port)? {
            if !addrs.contains(&addr) {
                addrs.push(addr);
            }
        }
    }
    Ok(addrs)
}

/// The socket address for `--metrics-listen`: `HOST:PORT`, with an IP
/// address (IPv6 in brackets) or a host name resolved once at start.
fn metrics_addr(text: &str) -> Result<SocketAddr, ArgError> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    text.to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| bad(format!("--metrics-listen: cannot resolve {text:?}")))
}

/// Completes on SIGINT or SIGTERM; calls `on_hangup` at each SIGHUP. The
/// handlers are installed when this is called, not when it is first polled:
/// the server restores its snapshot before it polls it, and a signal in that
/// window must stop it cleanly (with a save) rather than kill it.
fn shutdown_signal(
    on_hangup: impl Fn() + Clone + Send + 'static,
) -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let streams = {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(term), Ok(int)) => Some((term, int)),
            _ => None,
        }
    };
    // SIGHUP's default action would end the server without a save: it is
    // taken, and rereads the user files (memcached survives it too, and
    // rereads its -Y file).
    #[cfg(unix)]
    let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    async move {
        #[cfg(unix)]
        if let Some((mut term, mut int)) = streams {
            let mut hangup = hangup;
            loop {
                tokio::select! {
                    _ = int.recv() => return,
                    _ = term.recv() => return,
                    received = async {
                        match hangup.as_mut() {
                            Some(h) => h.recv().await,
                            None => std::future::pending().await,
                        }
                    } => {
                        match received {
                            // Files are read on a blocking thread: a slow
                            // one (a stalled mount, a FIFO) must not stop
                            // the accept loop this future is polled in.
                            Some(()) => drop(tokio::task::spawn_blocking(on_hangup.clone())),
                            None => hangup = None,
                        }
                    }
                }
            }
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn main() -> ExitCode {
    malloc::tune();
    let mut options = match utf8_args(std::env::args_os().skip(1)).and_then(parse_args) {
        Ok(Command::Serve(options)) => *options,
        Ok(Command::Help) => {
            // `--help | head` closes stdout early: no panic for that.
            use std::io::Write as _;
            let _ = writeln!(std::io::stdout(), "{HELP}\n\n{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stdout(),
                "larder-server {}",
                env!("CARGO_PKG_VERSION")
            );
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            say!("larder-server: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // As memcached: the open-file limit is raised first, while root may
    // still raise the hard limit (exit status 71, EX_OSERR, as memcached's).
    let fd_warning = match raise_fd_limit(options.conn_limit) {
        Ok(warning) => warning,
        Err(e) => {
            say!("larder-server: {e}");
            return ExitCode::from(71);
        }
    };
    // As memcached: the user is switched before any file or socket is
    // opened, so all of them are opened as that user.
    if let Some(user) = &options.user {
        if let Err(e) = switch_user(user) {
            say!("larder-server: {e}");
            return ExitCode::from(2);
        }
    }
    if options.daemonize {
        // The server leaves its directory once it listens: the paths it
        // uses later (the snapshot at stop, the pid file it removes) must
        // not depend on it.
        // So are the user files SIGHUP rereads, the SASL one named by the
        // variable too.
        if options.sasl && options.sasl_pwdb.is_none() {
            options.sasl_pwdb = std::env::var("MEMCACHED_SASL_PWDB")
                .ok()
                .filter(|p| !p.is_empty());
        }
        let paths = [
            &mut options.snapshot,
            &mut options.pidfile,
            &mut options.unix_socket,
            &mut options.auth_file,
            &mut options.sasl_pwdb,
        ];
        for path in paths.into_iter().flatten() {
            match daemon::absolute(path) {
                Ok(absolute) => *path = absolute,
                Err(e) => {
                    say!("larder-server: {path}: {e}");
                    return ExitCode::from(2);
                }
            }
        }
    }
    // The user files are read before anything starts: a bad one is a
    // usage error.
    let sasl = options
        .sasl
        .then(|| sasl_users(options.sasl_pwdb.as_deref()));
    let ascii_auth = options.auth_file.as_deref().map(ascii_users);
    let (sasl, ascii_auth) = match (sasl.transpose(), ascii_auth.transpose()) {
        (Ok(sasl), Ok(ascii_auth)) => (sasl, ascii_auth),
        (Err(e), _) | (_, Err(e)) => {
            say!("larder-server: {e}");
            return ExitCode::from(2);
        }
    };
    let listen = match listen_addrs(&options.listen, options.port) {
        Ok(addrs) => addrs,
        Err(e) => {
            say!("larder-server: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let metrics_listen = match options.metrics_listen.as_deref().map(metrics_addr) {
        None => None,
        Some(Ok(addr)) => Some(addr),
        Some(Err(e)) => {
            say!("larder-server: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let idle =
        (options.idle_timeout_secs > 0).then(|| Duration::from_secs(options.idle_timeout_secs));
    let config = ServerConfig {
        listen: listen[0],
        also_listen: listen[1..].to_vec(),
        unix_socket: options.unix_socket.as_ref().map(|path| UnixSocketConfig {
            mode: options.unix_mask,
            ..UnixSocketConfig::new(path)
        }),
        metrics_listen,
        conn_limit: options.conn_limit,
        reqs_per_event: options.reqs_per_event,
        listen_backlog: options.listen_backlog,
        idle_timeout: idle,
        write_timeout: idle,
        threads: options.threads,
        verbosity: options.verbosity,
        // At most 1 TiB (checked above), so the shift cannot overflow a 64-bit usize.
        conn_buffer_budget: usize::try_from(options.conn_buffer_budget_mb << 20)
            .unwrap_or(usize::MAX),
        snapshot: options.snapshot.as_ref().map(|path| SnapshotConfig {
            interval: (options.snapshot_interval_secs > 0)
                .then(|| Duration::from_secs(options.snapshot_interval_secs)),
            keep: options.snapshot_keep,
            ..SnapshotConfig::new(path)
        }),
        replication: ReplicationConfig {
            replica_of: options.replica_of.clone(),
            backlog: options.repl_backlog,
            promote_after: (options.promote_after_secs > 0)
                .then(|| Duration::from_secs(options.promote_after_secs)),
        },
        store: StoreConfig {
            unix_time: (options.time_offset_secs > 0).then(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
                    .saturating_add(options.time_offset_secs)
            }),
            memory_limit: options.memory_mb << 20,
            max_item_size: options.max_item_size,
            enable_shutdown: options.enable_shutdown,
            flush_enabled: options.flush_enabled,
            protocols: options.protocols,
            lru_crawler: options.lru_crawler,
            page_mover: options.page_mover,
            evictions: options.evictions,
            sasl,
            ascii_auth,
            dump_enabled: options.dump_enabled,
            version: VERSION.into(),
            ..StoreConfig::default()
        },
        ..ServerConfig::default()
    };
    let ready = if options.daemonize {
        match daemon::detach() {
            Ok(daemon::Side::Parent(code)) => return ExitCode::from(code),
            Ok(daemon::Side::Child(ready)) => Some(ready),
            Err(e) => {
                say!("larder-server: cannot start in the background: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    // After the fork: a thread started before it would not run in the child.
    malloc::keep_trimmed(options.memory_mb << 20);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.threads)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            say!("larder-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        // With -p 0 the port is picked on IPv4 loopback and may be taken on
        // IPv6's: the server then goes on without ::1 (saying so) rather
        // than fail to start. A port asked for must bind on both.
        let implicit_v6 =
            options.listen.is_empty() && options.port == 0 && !config.also_listen.is_empty();
        let fallback = implicit_v6.then(|| ServerConfig {
            also_listen: Vec::new(),
            ..config.clone()
        });
        let server = match (Server::bind(config).await, fallback) {
            (Ok(server), _) => server,
            (Err(ServerError::Bind(addr, e)), Some(fallback))
                if addr.is_ipv6() && e.kind() == std::io::ErrorKind::AddrInUse =>
            {
                say!("larder-server: not listening on {addr}: {e}");
                match Server::bind(fallback).await {
                    Ok(server) => server,
                    Err(e) => {
                        say!("larder-server: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            (Err(e), _) => {
                say!("larder-server: {e}");
                return ExitCode::FAILURE;
            }
        };
        // The signal handlers exist before anyone is told where we listen: a
        // SIGTERM sent on reading `listening on` must stop the server cleanly,
        // not kill it by the default action.
        let shutdown = shutdown_signal(reload_users(
            std::sync::Arc::clone(server.store()),
            options.sasl.then(|| options.sasl_pwdb.clone()),
            options.auth_file.clone(),
            options.verbosity > 0,
        ));
        if let Some(path) = &options.pidfile {
            if let Err(e) = std::fs::write(path, format!("{}\n", std::process::id())) {
                say!("larder-server: cannot write the pid file {path}: {e}");
                return ExitCode::FAILURE;
            }
        }
        // `listening on` is the first line, as the help text promises.
        match server.unix_socket() {
            // memcached writes no port file when it serves a Unix socket.
            Some(path) => say!("listening on unix:{}", path.display()),
            None => {
                if let Err(e) = write_port_file(server.local_addr()) {
                    say!("larder-server: cannot write MEMCACHED_PORT_FILENAME: {e}");
                    return ExitCode::FAILURE;
                }
                say!("listening on {}", server.local_addr());
                for addr in server.local_addrs().iter().skip(1) {
                    say!("listening on {addr}");
                }
            }
        }
        if let Some(addr) = server.metrics_addr() {
            say!("metrics on {addr}");
        }
        if let Some(warning) = &fd_warning {
            say!("{warning}");
        }
        if let Some(ready) = ready {
            if let Err(e) = ready.listening(options.verbosity > 0) {
                say!("larder-server: cannot detach from the terminal: {e}");
                return ExitCode::FAILURE;
            }
        }
        // Held past `run` and never dropped: the process is about to end, and
        // freeing millions of items one by one would only delay the exit
        // (seconds for 10M items) after the snapshot is already safe.
        let store = std::sync::Arc::clone(server.store());
        let code = match server.run(shutdown).await {
            Ok(()) => {
                if options.verbosity > 0 {
                    say!("larder-server: stopped");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                say!("larder-server: {e}");
                ExitCode::FAILURE
            }
        };
        std::mem::forget(store);
        if let Some(path) = &options.pidfile {
            let _ = std::fs::remove_file(path);
        }
        code
    })
}

/// What SIGHUP does: rereads the user files the server started with (`-S`'s
/// password file, `sasl` holding `--sasl-pwdb`'s path if given, and `-Y`'s
/// file) and puts their users in place for the logins that follow. A file
/// that cannot be read or parsed changes nothing, and says so on stderr
/// (memcached keeps its old users too).
fn reload_users(
    store: std::sync::Arc<larder::memcached::Store>,
    sasl: Option<Option<String>>,
    auth_file: Option<String>,
    verbose: bool,
) -> impl Fn() + Clone + Send + 'static {
    move || {
        let reloads = [
            sasl.as_ref()
                .map(|flag| (sasl_users(flag.as_deref()), true)),
            auth_file.as_deref().map(|path| (ascii_users(path), false)),
        ];
        for (users, is_sasl) in reloads.into_iter().flatten() {
            // A file that names nobody (truncated while being rewritten,
            // say) would lock everyone out: the old users stay.
            let users = users.and_then(|users| match users.is_empty() {
                true => Err("the file names no user".to_string()),
                false => Ok(users),
            });
            match users {
                Ok(users) => {
                    let count = users.len();
                    if is_sasl {
                        store.set_sasl_users(users);
                    } else {
                        store.set_ascii_users(users);
                    }
                    if verbose {
                        say!("larder-server: SIGHUP: {count} users reloaded");
                    }
                }
                Err(e) => say!("larder-server: SIGHUP: the old users stay: {e}"),
            }
        }
    }
}

/// A flag's value that names a file: not empty.
fn path_value(flag: &str, path: String) -> Result<String, ArgError> {
    if path.is_empty() {
        return Err(bad(format!("{flag} needs a path")));
    }
    Ok(path)
}

/// `-S`'s users: the password file `--sasl-pwdb` names, else
/// `MEMCACHED_SASL_PWDB` (memcached's variable for the same file).
fn sasl_users(flag: Option<&str>) -> Result<Credentials, String> {
    let env = std::env::var("MEMCACHED_SASL_PWDB").ok();
    let Some(path) = flag.map(str::to_owned).or(env).filter(|p| !p.is_empty()) else {
        return Err(
            "-S needs a password file: --sasl-pwdb FILE or MEMCACHED_SASL_PWDB=FILE \
                    (memcached's format, user:password per line; Cyrus SASL's sasldb is \
                    not read)"
                .into(),
        );
    };
    read_users(&path, "the SASL password file", Credentials::parse)
}

/// `-Y`'s users, from memcached's authentication file format.
fn ascii_users(path: &str) -> Result<Credentials, String> {
    read_users(path, "the authentication file", Credentials::parse_authfile)
        .map(|users| users.with_source(path))
}

/// Reads the user file `path` (`what`, for messages) with `parse`; warns
/// when it names nobody.
fn read_users(
    path: &str,
    what: &str,
    parse: fn(Vec<u8>) -> Result<Credentials, larder::memcached::CredentialsError>,
) -> Result<Credentials, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read {what} {path}: {e}"))?;
    let users = parse(text).map_err(|e| format!("{what} {path}: {e}"))?;
    if users.is_empty() {
        say!("larder-server: warning: {path} names no user: nobody can authenticate");
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, ArgError> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    fn serve(args: &[&str]) -> Options {
        match parse(args) {
            Ok(Command::Serve(options)) => *options,
            other => panic!("{args:?} gave {other:?}"),
        }
    }

    #[test]
    fn no_arguments_give_memcacheds_defaults_on_loopback() {
        let options = serve(&[]);
        assert_eq!(options.port, 11211);
        assert!(options.listen.is_empty());
        assert_eq!(options.memory_mb, 64);
        assert_eq!(options.conn_limit, 1024);
        assert_eq!(options.max_item_size, 1 << 20);
        assert_eq!(options.idle_timeout_secs, 300);
    }

    #[test]
    fn short_long_attached_and_equals_forms_are_accepted() {
        assert_eq!(serve(&["-p", "1"]).port, 1);
        assert_eq!(serve(&["-p2"]).port, 2);
        assert_eq!(serve(&["--port", "3"]).port, 3);
        assert_eq!(serve(&["--port=4"]).port, 4);
        assert_eq!(serve(&["-l", "::1"]).listen, ["::1"]);
        assert_eq!(
            serve(&["-l", "127.0.0.1,::1", "-l", "10.0.0.1:11300"]).listen,
            ["127.0.0.1", "::1", "10.0.0.1:11300"]
        );
        assert_eq!(serve(&["--memory-limit=8"]).memory_mb, 8);
        assert_eq!(serve(&["-c", "5"]).conn_limit, 5);
        assert_eq!(serve(&["-t", "2"]).threads, 2);
        assert_eq!(serve(&["--idle-timeout", "0"]).idle_timeout_secs, 0);
        assert_eq!(
            serve(&["--conn-buffer-budget", "8"]).conn_buffer_budget_mb,
            8
        );
        assert!(serve(&["-A"]).enable_shutdown);
        assert!(serve(&["-U", "0"]).port == 11211);
        assert_eq!(
            serve(&["--metrics-listen", "127.0.0.1:9150"]).metrics_listen,
            Some("127.0.0.1:9150".into())
        );
        assert_eq!(
            serve(&["--metrics-listen=[::1]:0"]).metrics_listen,
            Some("[::1]:0".into())
        );
    }

    #[test]
    fn memcached_command_lines_are_accepted() {
        // Debian's /etc/memcached.conf, a container's command, a test harness's.
        let user = if running_as_root() {
            "root"
        } else {
            "memcache"
        };
        let debian = serve(&[
            "-m",
            "64",
            "-p",
            "11211",
            "-u",
            user,
            "-l",
            "127.0.0.1",
            "-P",
            "/tmp/memcached.pid",
            "-c",
            "1024",
            "-U",
            "0",
        ]);
        assert_eq!(debian.pidfile.as_deref(), Some("/tmp/memcached.pid"));
        assert_eq!((debian.memory_mb, debian.conn_limit), (64, 1024));
        let tuned = serve(&[
            "-o",
            "modern,lru_crawler,hashpower=20,idle_timeout=30",
            "-C",
            "-R",
            "20",
            "-b",
            "1024",
            "-f",
            "1.25",
            "-n",
            "48",
            "-B",
            "auto",
            "-L",
            "-k",
            "-r",
            "-X",
            "-D",
            ":",
            "-t",
            "2",
            "-vv",
        ]);
        assert_eq!(tuned.idle_timeout_secs, 30);
        assert_eq!((tuned.threads, tuned.verbosity), (2, 2));
        assert_eq!(serve(&["-o", "idle_timeout=0"]).idle_timeout_secs, 0);
        assert_eq!(
            serve(&["--pidfile=/tmp/x.pid"]).pidfile.as_deref(),
            Some("/tmp/x.pid")
        );
        assert_eq!(serve(&["-u", "memcache"]).user.as_deref(), Some("memcache"));
        let memcached_like = serve(&["-F", "-B", "binary", "-R", "5", "-b", "64", "-X"]);
        assert!(!memcached_like.flush_enabled);
        assert!(!memcached_like.dump_enabled);
        assert!(!serve(&["-o", "modern,no_lru_crawler"]).lru_crawler);
        assert!(serve(&["-o", "no_modern,lru_crawler"]).lru_crawler);
        assert!(serve(&[]).page_mover);
        assert!(!serve(&["-o", "slab_reassign,slab_automove=0"]).page_mover);
        assert!(!serve(&["-o", "no_slab_reassign"]).page_mover);
        assert!(serve(&["-o", "slab_automove=0,slab_automove=2"]).page_mover);
        assert_eq!(memcached_like.protocols, Protocols::Binary);
        assert_eq!(memcached_like.reqs_per_event, Some(5));
        assert_eq!(memcached_like.listen_backlog, 64);
        let unix = serve(&["-s", "/tmp/mc.sock", "-a", "0766"]);
        assert_eq!(
            (unix.unix_socket.as_deref(), unix.unix_mask),
            (Some("/tmp/mc.sock"), 0o766)
        );
        assert_eq!(serve(&["--unix-socket=/run/l.sock"]).unix_mask, 0o700);
        assert_eq!(serve(&["-B", "ascii"]).protocols, Protocols::Text);
        assert!(serve(&[]).evictions && !serve(&["-M"]).evictions);
        assert!(!serve(&["--disable-evictions"]).evictions);
        assert!(serve(&["-d"]).daemonize);
        let sasl = serve(&["-S", "-B", "binary", "--sasl-pwdb", "/etc/pw"]);
        assert!(sasl.sasl && sasl.protocols == Protocols::Binary);
        assert_eq!(sasl.sasl_pwdb.as_deref(), Some("/etc/pw"));
        assert_eq!(serve(&["--enable-sasl"]).protocols, Protocols::Binary);
        assert_eq!(serve(&["-o", "relaxed_privileges"]), serve(&[]));
        for (args, says) in [
            (&["-R", "0"][..], "at least 1"),
            (&["-b", "0"], "at least 1"),
            (&["-o", "ssl_key=/k.pem"], "TLS"),
            (&["-o", "proxy_config=/p.lua"], "proxy"),
            (&["-s", ""], "needs a path"),
            (&["-a", "800"], "not an octal permission mask"),
            (&["-a", "1777"], "not an octal permission mask"),
            (&["-a", "rw"], "not an octal permission mask"),
            (&["-e", "/dev/shm/mc"], "--snapshot"),
            (&["-S", "-B", "ascii"], "binary protocol alone"),
            (&["-S", "-B", "auto"], "binary protocol alone"),
            (&["--sasl-pwdb", "/p"], "needs -S"),
            (&["-Y", "/auth", "-B", "binary"], "text protocol alone"),
            (&["-Y", "/auth", "-S"], "exclude each other"),
            (&["-Y", ""], "needs a path"),
            (&["-l", ","], "needs an address"),
            (&["-Z"], "TLS"),
            (&["-o", "ext_path=/ssd/file:64G"], "extstore"),
            (&["-o", "bogus"], "unknown option"),
            (&["-o", "idle_timeout=abc"], "not a valid number"),
            (&["-B", "udp"], "not ascii, binary or auto"),
            (&["-R"], "needs a value"),
            (&["-Cfoo"], "-C takes no value"),
            (&["--disable-cas=1"], "--disable-cas takes no value"),
            (&["-A1"], "-A takes no value"),
            (
                &["--enable-shutdown=yes"],
                "--enable-shutdown takes no value",
            ),
        ] {
            match parse(args) {
                Err(ArgError(message)) => assert!(message.contains(says), "{args:?}: {message}"),
                other => panic!("{args:?} accepted: {other:?}"),
            }
        }
    }

    #[test]
    fn replication_flags_are_parsed() {
        let options = serve(&[
            "--replica-of",
            "127.0.0.1:11300",
            "--promote-after",
            "2",
            "--repl-backlog=64m",
        ]);
        assert_eq!(options.replica_of.as_deref(), Some("127.0.0.1:11300"));
        assert_eq!(options.promote_after_secs, 2);
        assert_eq!(options.repl_backlog, 64 << 20);
        assert_eq!(serve(&[]).repl_backlog, 16 << 20);
        for bad_args in [
            &["--promote-after", "2"][..],
            &["--replica-of", "nohost"],
            &["--replica-of", "h:1", "--promote-after", "0"],
            &["--repl-backlog", "1k"],
            &["--repl-backlog", "lots"],
        ] {
            assert!(parse(bad_args).is_err(), "{bad_args:?} accepted");
        }
    }

    #[test]
    fn snapshot_flags_are_parsed() {
        let options = serve(&[
            "--snapshot",
            "/tmp/c.snap",
            "--snapshot-interval=60",
            "--snapshot-keep",
            "3",
        ]);
        assert_eq!(options.snapshot.as_deref(), Some("/tmp/c.snap"));
        assert_eq!(options.snapshot_interval_secs, 60);
        assert_eq!(options.snapshot_keep, 3);
        assert_eq!(serve(&["--snapshot", "s"]).snapshot_keep, 1);
    }

    #[test]
    fn verbosity_counts_every_v() {
        assert_eq!(serve(&["-v"]).verbosity, 1);
        assert_eq!(serve(&["-vv", "-v"]).verbosity, 3);
        assert_eq!(serve(&["--verbose", "-vvv"]).verbosity, 4);
    }

    #[test]
    fn item_sizes_take_k_and_m_suffixes() {
        assert_eq!(serve(&["-I", "512k"]).max_item_size, 512 << 10);
        assert_eq!(serve(&["-I", "2m"]).max_item_size, 2 << 20);
        assert_eq!(serve(&["-I", "4096"]).max_item_size, 4096);
    }

    #[test]
    fn bad_flags_and_values_are_errors() {
        for args in [
            &["-x"][..],
            &["--nope"],
            &["-p"],
            &["-p", "70000"],
            &["-p", "port"],
            &["-m", "0"],
            &["-m", "-1"],
            &["-c", "0"],
            &["-I", "1g"],
            &["-I", "12"],
            &["-I", "200m"],
            &["-I", "40m", "-m", "64"],
            &["-t", "0"],
            &["-U", "11211"],
            &["--idle-timeout", "soon"],
            &["--conn-buffer-budget", "0"],
            &["--metrics-listen"],
            &["--metrics-listen", "9150"],
            &["--metrics-listen", ":9150"],
            &["--metrics-listen", "127.0.0.1:http"],
            &["--snapshot"],
            &["--snapshot", ""],
            &["--snapshot-interval", "5"],
            &["--snapshot", "x", "--snapshot-keep", "101"],
            &["--snapshot", "x", "--snapshot-interval", "soon"],
            &["stray"],
        ] {
            assert!(parse(args).is_err(), "{args:?} was accepted");
        }
    }

    #[test]
    fn help_and_version_win() {
        assert_eq!(parse(&["--help"]), Ok(Command::Help));
        assert_eq!(parse(&["-p", "1", "--version"]), Ok(Command::Version));
    }

    #[test]
    fn metrics_addresses_accept_ips_brackets_and_localhost() {
        assert_eq!(
            metrics_addr("127.0.0.1:9150").unwrap(),
            "127.0.0.1:9150".parse().unwrap()
        );
        assert_eq!(metrics_addr("[::1]:0").unwrap(), "[::1]:0".parse().unwrap());
        assert!(metrics_addr("localhost:9150").unwrap().ip().is_loopback());
    }

    #[test]
    fn listen_addresses_accept_ips_brackets_and_localhost() {
        let one = |text: &str| vec![text.parse::<SocketAddr>().unwrap()];
        assert_eq!(listen_addr("127.0.0.1", 5).unwrap(), one("127.0.0.1:5"));
        assert_eq!(listen_addr("[::1]", 6).unwrap(), one("[::1]:6"));
        assert_eq!(listen_addr("::1", 6).unwrap(), one("[::1]:6"));
        // An entry may name its own port, as memcached's -l HOST:PORT.
        assert_eq!(listen_addr("127.0.0.1:9", 6).unwrap(), one("127.0.0.1:9"));
        assert_eq!(listen_addr("[::1]:9", 6).unwrap(), one("[::1]:9"));
        assert!(listen_addr("127.0.0.1:x", 6).is_err());
        // A name binds every address it resolves to.
        let local = listen_addr("localhost:9", 6).unwrap();
        assert!(!local.is_empty());
        assert!(local.iter().all(|a| a.port() == 9 && a.ip().is_loopback()));
        // By default, loopback: IPv4, and IPv6 where the machine has it.
        let default = listen_addrs(&[], 5).unwrap();
        assert_eq!(default[0], "127.0.0.1:5".parse().unwrap());
        assert!(default[1..]
            .iter()
            .all(|a| *a == "[::1]:5".parse().unwrap()));
        assert!(listen_addr("localhost", 7).unwrap()[0].ip().is_loopback());
        assert_eq!(serve(&["-l", "127.0.0.1;::1"]).listen, ["127.0.0.1", "::1"]);
    }
}

/// The process's allocator settings.
///
/// glibc's malloc gives each thread that allocates an arena of its own (up
/// to eight per core), and memory freed into one arena is reused only by the
/// threads that allocate from it. Items are written on one worker thread and
/// evicted on another, so with several arenas the freed memory of one piles
/// up while another grows: filled with 10 KB values under `-m 64`, the
/// server's resident set reached 113 MB with the default arenas and 67.5 MB
/// with one (`benches/memory_vs_memcached.py`, BENCHMARKS.md). One arena
/// keeps the resident set near `-m`; small allocations still come from each
/// thread's own cache without a lock.
///
/// The cache's slot tables are the other large allocations: a shard's table
/// is replaced by one a quarter larger as it grows, the old one freed. glibc
/// maps a block of 128 KiB or more on its own, but raises that threshold to
/// the size of each mapped block it frees, so after the first few growths
/// the tables come from the heap, and a replaced table leaves a hole that
/// small items fill only in part. Filled with 10-byte values, the resident
/// set per item moved between 94 and 114 bytes with the store's size (where
/// its tables stood in their growth); with the threshold held at 128 KiB it
/// stayed within 88-96 (BENCHMARKS.md, "Thin item pointers"). Held there,
/// a table of 128 KiB or more is mapped apart whatever the shard count, and
/// so is an item value of that size: a large `set` pays a mapping and its
/// page faults instead of reusing heap memory (not measured; large values
/// are rare in memcached workloads, and their copy and transfer dominate).
mod malloc {
    /// Limits glibc's malloc to one arena and holds its mapping threshold at
    /// 128 KiB, unless `MALLOC_ARENA_MAX`, `MALLOC_MMAP_THRESHOLD_` or
    /// `GLIBC_TUNABLES` (which glibc reads itself) sets them. Call first
    /// thing in `main`, before any thread starts.
    #[allow(unsafe_code)]
    pub(crate) fn tune() {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            if !set_by_env("MALLOC_ARENA_MAX", "glibc.malloc.arena_max") {
                // SAFETY: `mallopt` only changes the allocator's own
                // parameters, under its own lock; it takes plain integers and
                // touches no memory of ours. No other thread exists yet.
                let _ = unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
            }
            if !set_by_env("MALLOC_MMAP_THRESHOLD_", "glibc.malloc.mmap_threshold") {
                // SAFETY: as above. Setting the threshold also turns off
                // glibc's raising of it.
                let _ = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10) };
            }
        }
    }

    /// How often [`keep_trimmed`] reads the resident set.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    const TRIM_TICK: std::time::Duration = std::time::Duration::from_millis(100);

    /// Starts a thread that hands the heap's free pages back to the system
    /// (glibc's `malloc_trim`) whenever the resident set has grown by a 32nd
    /// of `limit` bytes (at least 1 MiB) since the last trim, or since its
    /// lowest reading after it.
    ///
    /// glibc returns freed memory to the system only from the top of the
    /// heap; a freed block in the middle stays resident until a block of its
    /// size reuses it. Where item sizes stay put it is reused at once, but
    /// where the mix held shifts (the eviction policy keeps light items
    /// longer than heavy ones, so a store filled with mixed sizes ends up
    /// holding more small items, in arena pages, and fewer large ones, on the
    /// heap), the large items' freed blocks stay behind: filled with 10 B-10
    /// KB values under `-m 64`, the resident set was 76.3-76.6 MiB with
    /// `bytes` at the limit, and 73.4-74.0 MiB with this thread (72.5 MiB
    /// two seconds later; BENCHMARKS.md, session 16). The check reads
    /// `/proc/self/status` ten times a second and takes no lock; a trim (0.3-1.4
    /// ms measured there, under the allocator's lock) runs only while the
    /// resident set grows: a few dozen times while the store first fills,
    /// then after shifts like the one above.
    pub(crate) fn keep_trimmed(limit: u64) {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            let step = (limit / 32).max(1 << 20);
            let spawned = std::thread::Builder::new()
                .name("larder-trim".into())
                .spawn(move || {
                    let Some(mut mark) = resident_bytes() else {
                        return;
                    };
                    loop {
                        std::thread::sleep(TRIM_TICK);
                        let Some(now) = resident_bytes() else {
                            return;
                        };
                        mark = mark.min(now);
                        if now - mark >= step {
                            trim();
                            mark = resident_bytes().unwrap_or(now);
                        }
                    }
                });
            // Without the thread the server runs as before, with more
            // resident memory after a shift in sizes.
            drop(spawned);
        }
        #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
        let _ = limit;
    }

    /// The process's resident set in bytes (`VmRSS` in `/proc/self/status`).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn resident_bytes() -> Option<u64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    /// Returns the heap's free pages to the system (glibc's `malloc_trim`).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    fn trim() {
        // SAFETY: `malloc_trim` takes a plain integer (the top padding to
        // keep) and releases only pages of free chunks, under the
        // allocator's lock; no memory of ours is touched.
        let _ = unsafe { libc::malloc_trim(0) };
    }

    /// Whether the environment sets a malloc parameter itself, by its own
    /// variable or as a glibc tunable.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn set_by_env(variable: &str, tunable: &str) -> bool {
        std::env::var_os(variable).is_some()
            || std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains(tunable))
    }
}

/// `-d`: the server runs on in a child process, while the command that
/// started it returns once the server listens.
///
/// memcached forks and returns at once, so an address in use or a bad
/// snapshot path is lost unless `-v` kept its output. Here the starting
/// process waits for the child's word over a pipe: it exits 0 when the child
/// is listening (after the child has written `listening on`, the port file
/// and the pid file), or with the child's own status when the child ends
/// first, its error already on the shared stderr.
mod daemon {
    use std::fs::File;
    use std::io::{self, Read, Write};
    use std::path::{Path, PathBuf};

    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::{
        chdir, dup2_stderr, dup2_stdin, dup2_stdout, fork, pipe, setsid, ForkResult,
    };

    /// The byte a child writes once it listens.
    const READY: u8 = b'R';

    /// Which side of the fork this is.
    pub(crate) enum Side {
        /// The starting process: exit with this status.
        Parent(u8),
        /// The server, which calls [`Ready::listening`] once it listens.
        Child(Ready),
    }

    /// The child's end of the pipe its parent waits on.
    pub(crate) struct Ready(File);

    /// Forks. Call before any thread starts: the child must not inherit a
    /// lock that some other thread held at the fork.
    #[allow(unsafe_code)]
    pub(crate) fn detach() -> io::Result<Side> {
        let (reader, writer) = pipe().map_err(io::Error::from)?;
        let (reader, writer) = (File::from(reader), File::from(writer));
        // SAFETY: called from `main` before the runtime (or any other
        // thread) exists, so the child is a copy of a single-threaded
        // process and may run any code, not only async-signal-safe calls.
        match unsafe { fork() }.map_err(io::Error::from)? {
            ForkResult::Parent { child } => {
                drop(writer);
                if wait_for_word(reader) {
                    return Ok(Side::Parent(0));
                }
                // The child ended (or closed its end) before it listened.
                let code = match waitpid(child, None) {
                    Ok(WaitStatus::Exited(_, code)) => u8::try_from(code).unwrap_or(1).max(1),
                    _ => 1,
                };
                Ok(Side::Parent(code))
            }
            ForkResult::Child => {
                drop(reader);
                // Leave the starting terminal's session, so that its
                // hangup does not reach the server.
                setsid().map_err(io::Error::from)?;
                Ok(Side::Child(Ready(writer)))
            }
        }
    }

    /// Whether the child said it listens before closing its end.
    fn wait_for_word(mut reader: File) -> bool {
        let mut word = Vec::new();
        // `read_to_end` retries reads a signal interrupts.
        reader.read_to_end(&mut word).is_ok() && word == [READY]
    }

    impl Ready {
        /// The server listens: move to `/` (so that it holds no directory's
        /// file system busy), point stdin and stdout (and stderr unless
        /// `keep_stderr`) at `/dev/null`, and release the parent.
        pub(crate) fn listening(self, keep_stderr: bool) -> io::Result<()> {
            chdir("/").map_err(io::Error::from)?;
            let null = File::options().read(true).write(true).open("/dev/null")?;
            dup2_stdin(&null).map_err(io::Error::from)?;
            dup2_stdout(&null).map_err(io::Error::from)?;
            if !keep_stderr {
                dup2_stderr(&null).map_err(io::Error::from)?;
            }
            let Ready(mut writer) = self;
            writer.write_all(&[READY])
        }
    }

    /// `path` made absolute against the current directory, which the server
    /// leaves once it listens.
    pub(crate) fn absolute(path: &str) -> io::Result<String> {
        let absolute: PathBuf = std::path::absolute(Path::new(path))?;
        absolute
            .into_os_string()
            .into_string()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not valid UTF-8"))
    }
}
