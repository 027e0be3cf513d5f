//! SASL authentication for binary connections (memcached's `-S`), with the
//! `PLAIN` mechanism and a password list in memcached's "pwdb" format.
//!
//! A store given [`Credentials`] ([`StoreConfig::sasl`](super::StoreConfig::sasl))
//! answers a binary connection's requests only once it has authenticated,
//! as memcached does: before that, every request but `SASL_LIST_MECHS`,
//! `SASL_AUTH`, `SASL_STEP` and `VERSION` is answered `Auth failure.`
//! (status `0x0020`) and the connection is closed. `SASL_LIST_MECHS`
//! answers `PLAIN`; a `SASL_AUTH` of `PLAIN` whose user and password match
//! answers `Authenticated`, and any other is `Auth failure.` (counted in
//! `auth_errors`; both in `auth_cmds`). As in memcached, every SASL command
//! starts the connection's authentication over (it is unauthenticated until
//! an exchange succeeds), and a connection completes one exchange only: a
//! second `SASL_AUTH` on it fails. memcached takes its mechanisms from
//! Cyrus SASL; larder offers `PLAIN` only, which is what memcached clients
//! use (libmemcached and pylibmc pick it from the list, Dalli and
//! python-binary-memcached send it).

use std::collections::HashMap;
use std::fmt;

use super::counters::Counter;
use super::output::Sink;
use super::session::Session;
use super::Outcome;
use crate::memcached::Response;

/// The longest mechanism name memcached accepts (`MAX_SASL_MECH_LEN`).
pub(super) const MAX_MECH_LEN: usize = 32;

/// The mechanisms offered, as `SASL_LIST_MECHS` lists them.
pub(super) const MECHANISMS: &[u8] = b"PLAIN";

/// The users who may authenticate, with their passwords.
///
/// Read from memcached's password file format ([`Credentials::parse`]: one
/// `user:password` per line), or built in code with
/// [`Credentials::insert`]. `Debug` shows the user names, never the
/// passwords.
///
/// ```
/// use larder::memcached::Credentials;
///
/// let users = Credentials::parse("alice:s3cret\nbob:hunter2:more-fields\n")?;
/// assert_eq!(users.len(), 2);
/// assert!(users.check(b"bob", b"hunter2"));
/// assert!(!users.check(b"alice", b"wrong"));
/// assert!(!format!("{users:?}").contains("s3cret"));
/// # Ok::<(), larder::memcached::CredentialsError>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// Each user's passwords: one from a password file (its first line for
    /// the user, as memcached reads it), any of several from an
    /// authentication file (memcached accepts any line that matches).
    users: HashMap<Vec<u8>, Vec<Vec<u8>>>,
    /// Where they came from, for `stats settings` (memcached shows the
    /// file of `-Y` there).
    source: Option<String>,
}

/// The users a store checks logins against, replaceable while it serves
/// ([`Store::set_sasl_users`](super::Store::set_sasl_users),
/// [`Store::set_ascii_users`](super::Store::set_ascii_users)). A login
/// checks against the users current when it arrives; connections that
/// authenticated before a change stay authenticated, as in memcached.
pub(super) struct Users(crate::sync::Mutex<crate::sync::Arc<Credentials>>);

impl Users {
    pub(super) fn new(users: Credentials) -> Users {
        Users(crate::sync::Mutex::new(crate::sync::Arc::new(users)))
    }

    /// The users now.
    pub(super) fn current(&self) -> crate::sync::Arc<Credentials> {
        crate::sync::Arc::clone(&self.0.lock())
    }

    pub(super) fn replace(&self, users: Credentials) {
        let old = std::mem::replace(&mut *self.0.lock(), crate::sync::Arc::new(users));
        // Freed after the lock.
        drop(old);
    }
}

impl fmt::Debug for Users {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.current().fmt(f)
    }
}

/// A password file line [`Credentials::parse`] cannot read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialsError {
    /// The line's number, from 1.
    pub line: usize,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for CredentialsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for CredentialsError {}

impl Credentials {
    /// No users (nobody can authenticate).
    pub fn new() -> Self {
        Credentials::default()
    }

    /// Reads memcached's password file format (its `MEMCACHED_SASL_PWDB`):
    /// one `user:password` per line; a further `:` ends the password (the
    /// rest of the line is ignored, as memcached ignores it); `\r\n` line
    /// ends are accepted. Blank lines and lines starting with `#` are
    /// skipped. As memcached reads the file, a user's first line is the
    /// one that counts. The bytes need not be UTF-8.
    ///
    /// # Errors
    ///
    /// A line without a `:`, or with an empty user name.
    pub fn parse(text: impl AsRef<[u8]>) -> Result<Self, CredentialsError> {
        Credentials::parse_lines(
            text.as_ref(),
            |rest| rest.split(|&b| b == b':').next().unwrap_or(b""),
            Repeat::FirstCounts,
        )
    }

    /// Reads memcached's `-Y` authentication file format: one
    /// `user:password` per line, the password being the rest of the line
    /// (it may hold `:`); `\r\n` line ends are accepted, blank lines and
    /// lines starting with `#` skipped. A user may have several lines: any
    /// of their passwords is accepted, as memcached accepts any matching
    /// entry. The bytes need not be UTF-8.
    ///
    /// # Errors
    ///
    /// A line without a `:`, or with an empty user name.
    ///
    /// ```
    /// use larder::memcached::Credentials;
    ///
    /// let users = Credentials::parse_authfile("app:pa:ss\napp:new\n")?;
    /// assert!(users.check(b"app", b"pa:ss") && users.check(b"app", b"new"));
    /// # Ok::<(), larder::memcached::CredentialsError>(())
    /// ```
    pub fn parse_authfile(text: impl AsRef<[u8]>) -> Result<Self, CredentialsError> {
        Credentials::parse_lines(text.as_ref(), |rest| rest, Repeat::AnyCounts)
    }

    /// The lines of `text` as `user:rest`, the password being `password(rest)`.
    fn parse_lines(
        text: &[u8],
        password: impl Fn(&[u8]) -> &[u8],
        repeat: Repeat,
    ) -> Result<Self, CredentialsError> {
        let mut users = Credentials::new();
        for (n, line) in text.split(|&b| b == b'\n').enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() || line.starts_with(b"#") {
                continue;
            }
            let error = |reason| CredentialsError {
                line: n + 1,
                reason,
            };
            let colon = line
                .iter()
                .position(|&b| b == b':')
                .ok_or(error("no ':' after the user name"))?;
            let (user, rest) = (&line[..colon], &line[colon + 1..]);
            if user.is_empty() {
                return Err(error("an empty user name"));
            }
            let passwords = users.users.entry(user.to_vec()).or_default();
            if passwords.is_empty() || repeat == Repeat::AnyCounts {
                passwords.push(password(rest).to_vec());
            }
        }
        Ok(users)
    }

    /// Names where these users came from (a file's path): `stats settings`
    /// shows it as `auth_enabled_ascii`, as memcached shows `-Y`'s file.
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Where these users came from, if [`with_source`](Self::with_source) said.
    pub fn source(&self) -> Option<&str> {
        self.source.as_deref()
    }

    /// Adds a user (or changes a user's password).
    pub fn insert(&mut self, user: impl AsRef<[u8]>, password: impl AsRef<[u8]>) {
        self.users
            .insert(user.as_ref().to_vec(), vec![password.as_ref().to_vec()]);
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether there are no users.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Whether `user` exists and has this password. The password is
    /// compared in time that does not depend on where it first differs.
    pub fn check(&self, user: &[u8], password: &[u8]) -> bool {
        self.users.get(user).is_some_and(|known| {
            // Every password is compared, so the time says nothing of which.
            known
                .iter()
                .fold(false, |found, known| same_bytes(known, password) | found)
        })
    }

    /// Checks a `PLAIN` message (RFC 4616): `authzid NUL authcid NUL
    /// password`. An authorization identity, if given, must be the user's
    /// own (there are no proxy rights).
    pub(super) fn check_plain(&self, message: &[u8]) -> bool {
        let mut parts = message.splitn(3, |&b| b == 0);
        let (Some(authzid), Some(user), Some(password)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        (authzid.is_empty() || authzid == user) && self.check(user, password)
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<_> = self
            .users
            .keys()
            .map(|u| String::from_utf8_lossy(u))
            .collect();
        names.sort();
        f.debug_struct("Credentials")
            .field("users", &names)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// How a user named on several lines is read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Repeat {
    /// The first line counts (memcached's password file).
    FirstCounts,
    /// Any line's password is accepted (memcached's `-Y` file).
    AnyCounts,
}

/// Byte equality that reads every byte of `b` whatever the contents (the
/// lengths are not hidden).
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(all(test, not(larder_loom)))]
mod tests {
    use super::*;

    #[test]
    fn memcacheds_pwdb_lines_are_read_as_memcached_reads_them() {
        let users =
            Credentials::parse("# users\r\nalice:pw\r\n\nbob:pw2:ignored\ncarol:\nalice:new\n")
                .unwrap();
        assert_eq!(users.len(), 3);
        // memcached stops at a user's first line.
        assert!(users.check(b"alice", b"pw") && !users.check(b"alice", b"new"));
        let raw = Credentials::parse(b"\xffuser:\xfe\n").unwrap();
        assert!(raw.check(b"\xffuser", b"\xfe"));
        assert!(users.check(b"bob", b"pw2"));
        assert!(users.check(b"carol", b""));
        assert!(!users.check(b"dave", b""));
        assert_eq!(
            Credentials::parse("ok:1\nnocolon\n").unwrap_err(),
            CredentialsError {
                line: 2,
                reason: "no ':' after the user name"
            }
        );
        assert_eq!(Credentials::parse(":pw").unwrap_err().line, 1);
    }

    #[test]
    fn authfile_passwords_run_to_the_end_of_the_line() {
        let users = Credentials::parse_authfile("a:b:c\r\nd:\na:x\n").unwrap();
        assert!(users.check(b"a", b"b:c") && users.check(b"d", b""));
        // Any of a user's lines lets them in, as memcached's `-Y` does.
        assert!(users.check(b"a", b"x") && !users.check(b"a", b"b"));
        assert_eq!(Credentials::parse_authfile("x\n").unwrap_err().line, 1);
    }

    #[test]
    fn plain_messages_name_the_user_and_may_repeat_it_as_authzid() {
        let mut users = Credentials::new();
        users.insert("u", "p");
        assert!(users.check_plain(b"\0u\0p"));
        assert!(users.check_plain(b"u\0u\0p"));
        assert!(!users.check_plain(b"admin\0u\0p"));
        assert!(!users.check_plain(b"\0u\0q"));
        assert!(!users.check_plain(b"\0u\0p\0"));
        assert!(!users.check_plain(b"\0u"));
        assert!(!users.check_plain(b""));
    }
}

/// The longest line a text connection may send before authenticating
/// without a newline: memcached closes it past this.
const AUTH_LINE_MAX: usize = 2048;

/// The largest token `user password` memcached's authentication file can
/// hold a match for (its entries are at most 256 bytes); a longer one is
/// skipped as it arrives, never buffered.
const AUTH_TOKEN_MAX: usize = 2048;

impl super::Store {
    /// Replaces the users SASL logins are checked against
    /// ([`StoreConfig::sasl`](super::StoreConfig::sasl)), for instance after
    /// the password file changed: logins from now on use them, connections
    /// already authenticated stay so. Returns `false`, changing nothing, when
    /// the store was built without SASL (authentication cannot be turned on
    /// while it serves).
    ///
    /// ```
    /// use larder::memcached::{Credentials, Protocols, Store, StoreConfig};
    /// let store = Store::new(StoreConfig {
    ///     protocols: Protocols::Binary,
    ///     sasl: Some(Credentials::parse("old:pw\n")?),
    ///     ..StoreConfig::default()
    /// })?;
    /// assert!(store.set_sasl_users(Credentials::parse("new:pw\n")?));
    /// assert!(!Store::new(StoreConfig::default())?.set_sasl_users(Credentials::new()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_sasl_users(&self, users: Credentials) -> bool {
        self.sasl.as_ref().map(|now| now.replace(users)).is_some()
    }

    /// Replaces the users ASCII authentication checks against
    /// ([`StoreConfig::ascii_auth`](super::StoreConfig::ascii_auth)), as
    /// memcached rereads its `-Y` file on `SIGHUP`: logins from now on use
    /// them, connections already authenticated stay so. Returns `false`,
    /// changing nothing, when the store was built without them.
    pub fn set_ascii_users(&self, users: Credentials) -> bool {
        self.ascii_auth
            .as_ref()
            .map(|now| now.replace(users))
            .is_some()
    }

    /// A text connection of a store with `-Y` users that has not
    /// authenticated yet: its first request must be `set <key> <flags>
    /// <exptime> <bytes>` whose data is `user password`, as memcached
    /// 1.6's ASCII authentication takes it. Answers `STORED` and lets the
    /// connection in when they match; anything else is answered with a
    /// `CLIENT_ERROR` and the connection stays unauthenticated (a line of
    /// over 2 KiB without a newline closes it). Returns the bytes used and
    /// whether to go on.
    pub(super) fn ascii_authenticate<S: Sink>(
        &self,
        users: &Users,
        session: &mut Session,
        input: &[u8],
        out: &mut S,
    ) -> (usize, Outcome) {
        let mut pos = session.swallow.min(input.len());
        session.swallow -= pos;
        let mut handled = 0;
        while !session.authenticated && session.swallow == 0 {
            // Refusals are replies too: the output limit and `-R` pause
            // them as they pause any (a client that sends lines without
            // reading must not grow the server's output).
            if session.requests_done(handled)
                || session
                    .output_limit()
                    .is_some_and(|limit| out.pending() >= limit)
            {
                return (pos, Outcome::Continue);
            }
            handled += 1;
            let rest = &input[pos..];
            let need = match session.auth_data {
                Some(need) => need,
                None => {
                    let Some(newline) = rest.iter().position(|&b| b == b'\n') else {
                        if rest.len() > AUTH_LINE_MAX {
                            return (input.len(), Outcome::Close);
                        }
                        return (pos, Outcome::Continue);
                    };
                    pos += newline + 1;
                    let line = &rest[..newline];
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    let tokens: Vec<&[u8]> = line
                        .split(|&b| b == b' ')
                        .filter(|t| !t.is_empty())
                        .collect();
                    let size = match tokens.as_slice() {
                        [b"set", _, _, _, size, ..] => std::str::from_utf8(size)
                            .ok()
                            .and_then(|s| s.parse::<u32>().ok()),
                        _ => None,
                    };
                    let Some(size) = size else {
                        Response::ClientError("unauthenticated").write_to(out.lines());
                        continue;
                    };
                    let need = size as usize + 2;
                    if need > AUTH_TOKEN_MAX {
                        // No user and password this long can match.
                        self.count_auth(false);
                        Response::ClientError("authentication failure").write_to(out.lines());
                        let skip = need.min(input.len() - pos);
                        pos += skip;
                        session.swallow = need - skip;
                        continue;
                    }
                    session.auth_data = Some(need);
                    need
                }
            };
            let rest = &input[pos..];
            if rest.len() < need {
                return (pos, Outcome::Continue);
            }
            session.auth_data = None;
            pos += need;
            let Some(token) = rest[..need].strip_suffix(b"\r\n") else {
                Response::ClientError("bad command line termination").write_to(out.lines());
                continue;
            };
            let parts: Vec<&[u8]> = token
                .split(|&b| b == b' ')
                .filter(|t| !t.is_empty())
                .collect();
            let [user, password, ..] = parts.as_slice() else {
                Response::ClientError("bad authentication token format").write_to(out.lines());
                continue;
            };
            let accepted = users.current().check(user, password);
            self.count_auth(accepted);
            if accepted {
                session.authenticated = true;
                Response::Stored.write_to(out.lines());
            } else {
                Response::ClientError("authentication failure").write_to(out.lines());
            }
        }
        (pos, Outcome::Continue)
    }

    /// Counts an authentication in `auth_cmds`, and a refused one in
    /// `auth_errors`.
    pub(super) fn count_auth(&self, accepted: bool) {
        self.counters.bump(Counter::AuthCmds);
        if !accepted {
            self.counters.bump(Counter::AuthErrors);
        }
    }
}
