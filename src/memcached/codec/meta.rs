//! Meta commands (`mg`, `ms`, `md`, `ma`, `mn`, `me`) and their flags.
//!
//! A meta command line is `<cmd> <key> [<datalen>] <flag>*`. Each flag is one
//! letter, optionally followed by a token (`T30`, `Oabc`). Flags are parsed
//! into a typed [`MetaFlags`] that also remembers the order they came in,
//! because memcached echoes return flags in request order.
//!
//! Error precedence follows memcached: the token count and the key are checked
//! first, then each flag in turn (an unknown or repeated flag stops at once; a
//! malformed token is remembered and the last one wins), then the mode, then
//! the opaque length. `md` and `ma` report every flag error as
//! [`ErrorKind::InvalidOrDuplicateFlag`].

use std::borrow::Cow;

use super::ascii::{parse_i64, parse_u32, parse_u64, valid_key, Words};
use super::error::{ErrorKind, ParseError};
use super::limits::Limits;
use super::request::{Request, TooLarge};
use super::{base64, data_block, Status};

/// Longest `O` token memcached accepts, counting the `O` itself.
const MAX_OPAQUE_TOKEN: usize = 32;
/// memcached rejects meta lines of 20 or more tokens (command and key
/// included).
const MAX_META_TOKENS: usize = 19;
/// Distinct flag letters a [`MetaFlags`] can hold.
const FLAG_SLOTS: usize = 23;

/// One meta flag, as sent on the wire.
///
/// Return flags ask for data in the reply; the others change what the command
/// does. Which commands honour which flag is up to the executor; memcached
/// accepts every known flag on every meta command and ignores the ones that do
/// not apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetaFlag<'a> {
    /// `b`: the key is base64; decode it (and base64-encode it when echoed).
    Base64Key,
    /// `c`: return the item's CAS value.
    ReturnCas,
    /// `f`: return the client flags.
    ReturnFlags,
    /// `h`: return whether the item was fetched before (`h0`/`h1`).
    ReturnHit,
    /// `k`: return the key.
    ReturnKey,
    /// `l`: return seconds since the last access.
    ReturnLastAccess,
    /// `s`: return the item size.
    ReturnSize,
    /// `t`: return the remaining TTL in seconds (`-1` for none).
    ReturnTtl,
    /// `v`: return the value (`VA` instead of `HD`).
    ReturnValue,
    /// `u`: do not bump the item in the eviction policy.
    NoBump,
    /// `q`: quiet mode; suppress the nominal reply (`EN` for `mg`, `HD` for
    /// `ms`/`md`/`ma`, and `NF` for `md`).
    Quiet,
    /// `I`: invalidate. `md` marks the item stale instead of removing it;
    /// `ms` with a stale CAS stores but keeps the item stale.
    Invalidate,
    /// `x`: `md` removes the value but keeps the item.
    RemoveValue,
    /// `O<token>`: opaque token echoed in the reply (without the `O`).
    Opaque(&'a [u8]),
    /// `N<ttl>`: on a miss, create the item with this TTL (vivify).
    Vivify(i64),
    /// `R<ttl>`: win the right to recache if the remaining TTL is below this.
    Recache(i64),
    /// `T<ttl>`: set the TTL.
    Ttl(i64),
    /// `C<cas>`: only act if the item's CAS equals this.
    CompareCas(u64),
    /// `E<cas>`: use this as the item's new CAS value.
    NewCas(u64),
    /// `F<flags>`: client flags to store (`ms`).
    ClientFlags(u32),
    /// `M<mode>`: mode switch, one byte. `ms`: `E` add, `A` append,
    /// `P` prepend, `R` replace, `S` set. `ma`: `I`/`+` incr, `D`/`-` decr.
    Mode(u8),
    /// `J<n>`: initial value when `ma` vivifies a missing item.
    Initial(u64),
    /// `D<n>`: delta for `ma` (default 1).
    Delta(u64),
}

impl MetaFlag<'_> {
    /// The flag's letter on the wire.
    pub const fn letter(&self) -> u8 {
        match self {
            MetaFlag::Base64Key => b'b',
            MetaFlag::ReturnCas => b'c',
            MetaFlag::ReturnFlags => b'f',
            MetaFlag::ReturnHit => b'h',
            MetaFlag::ReturnKey => b'k',
            MetaFlag::ReturnLastAccess => b'l',
            MetaFlag::ReturnSize => b's',
            MetaFlag::ReturnTtl => b't',
            MetaFlag::ReturnValue => b'v',
            MetaFlag::NoBump => b'u',
            MetaFlag::Quiet => b'q',
            MetaFlag::Invalidate => b'I',
            MetaFlag::RemoveValue => b'x',
            MetaFlag::Opaque(_) => b'O',
            MetaFlag::Vivify(_) => b'N',
            MetaFlag::Recache(_) => b'R',
            MetaFlag::Ttl(_) => b'T',
            MetaFlag::CompareCas(_) => b'C',
            MetaFlag::NewCas(_) => b'E',
            MetaFlag::ClientFlags(_) => b'F',
            MetaFlag::Mode(_) => b'M',
            MetaFlag::Initial(_) => b'J',
            MetaFlag::Delta(_) => b'D',
        }
    }
}

/// Bit positions of the token-less flags inside `MetaFlags::bits`.
const SIMPLE: [u8; 13] = [
    b'b', b'c', b'f', b'h', b'k', b'l', b's', b't', b'v', b'u', b'q', b'I', b'x',
];

fn simple_bit(letter: u8) -> Option<u16> {
    SIMPLE.iter().position(|&l| l == letter).map(|i| 1u16 << i)
}

/// The flags of one meta command, typed, in the order they were given.
///
/// Build one with [`MetaFlags::with`]; read it with the accessors, or walk
/// [`MetaFlags::iter`] to emit return flags in request order as memcached
/// does. Setting a flag again replaces its token and keeps its position.
///
/// ```
/// use larder::memcached::{MetaFlag, MetaFlags};
///
/// let flags = MetaFlags::new()
///     .with(MetaFlag::ReturnValue)
///     .with(MetaFlag::Ttl(30))
///     .with(MetaFlag::Opaque(b"42"));
/// assert!(flags.return_value());
/// assert_eq!(flags.ttl(), Some(30));
/// assert_eq!(flags.opaque(), Some(&b"42"[..]));
/// let letters: Vec<u8> = flags.iter().map(|f| f.letter()).collect();
/// assert_eq!(letters, b"vTO");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MetaFlags<'a> {
    bits: u16,
    opaque: Option<&'a [u8]>,
    vivify: Option<i64>,
    recache: Option<i64>,
    ttl: Option<i64>,
    compare_cas: Option<u64>,
    new_cas: Option<u64>,
    client_flags: Option<u32>,
    mode: Option<u8>,
    initial: Option<u64>,
    delta: Option<u64>,
    order: [u8; FLAG_SLOTS],
    len: u8,
}

impl std::fmt::Debug for MetaFlags<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> MetaFlags<'a> {
    /// No flags.
    pub const fn new() -> Self {
        MetaFlags {
            bits: 0,
            opaque: None,
            vivify: None,
            recache: None,
            ttl: None,
            compare_cas: None,
            new_cas: None,
            client_flags: None,
            mode: None,
            initial: None,
            delta: None,
            order: [0; FLAG_SLOTS],
            len: 0,
        }
    }

    /// These flags plus `flag` (see [`MetaFlags::set`]).
    #[must_use]
    pub fn with(mut self, flag: MetaFlag<'a>) -> Self {
        self.set(flag);
        self
    }

    /// Sets `flag`. A flag already present keeps its position and takes the
    /// new token.
    pub fn set(&mut self, flag: MetaFlag<'a>) {
        let letter = flag.letter();
        if !self.contains(letter) {
            // Every letter has its own slot, so this never overflows.
            self.order[usize::from(self.len)] = letter;
            self.len += 1;
        }
        match flag {
            MetaFlag::Opaque(v) => self.opaque = Some(v),
            MetaFlag::Vivify(v) => self.vivify = Some(v),
            MetaFlag::Recache(v) => self.recache = Some(v),
            MetaFlag::Ttl(v) => self.ttl = Some(v),
            MetaFlag::CompareCas(v) => self.compare_cas = Some(v),
            MetaFlag::NewCas(v) => self.new_cas = Some(v),
            MetaFlag::ClientFlags(v) => self.client_flags = Some(v),
            MetaFlag::Mode(v) => self.mode = Some(v),
            MetaFlag::Initial(v) => self.initial = Some(v),
            MetaFlag::Delta(v) => self.delta = Some(v),
            simple => {
                if let Some(bit) = simple_bit(simple.letter()) {
                    self.bits |= bit;
                }
            }
        }
    }

    /// Whether the flag with this letter is present.
    pub fn contains(&self, letter: u8) -> bool {
        self.order[..usize::from(self.len)].contains(&letter)
    }

    /// Number of flags.
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether there are no flags.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The flags in the order they were given.
    pub fn iter(&self) -> impl Iterator<Item = MetaFlag<'a>> + '_ {
        self.order[..usize::from(self.len)]
            .iter()
            .filter_map(move |&letter| self.get(letter))
    }

    fn get(&self, letter: u8) -> Option<MetaFlag<'a>> {
        Some(match letter {
            b'O' => MetaFlag::Opaque(self.opaque?),
            b'N' => MetaFlag::Vivify(self.vivify?),
            b'R' => MetaFlag::Recache(self.recache?),
            b'T' => MetaFlag::Ttl(self.ttl?),
            b'C' => MetaFlag::CompareCas(self.compare_cas?),
            b'E' => MetaFlag::NewCas(self.new_cas?),
            b'F' => MetaFlag::ClientFlags(self.client_flags?),
            b'M' => MetaFlag::Mode(self.mode?),
            b'J' => MetaFlag::Initial(self.initial?),
            b'D' => MetaFlag::Delta(self.delta?),
            b'b' => MetaFlag::Base64Key,
            // The flags that carry no token.
            _ => return flag_from_letter(letter),
        })
    }

    fn bit(&self, letter: u8) -> bool {
        simple_bit(letter).is_some_and(|bit| self.bits & bit != 0)
    }

    /// `b`: the key was sent base64-encoded.
    pub fn base64_key(&self) -> bool {
        self.bit(b'b')
    }
    /// `c`: return the CAS value.
    pub fn return_cas(&self) -> bool {
        self.bit(b'c')
    }
    /// `f`: return the client flags.
    pub fn return_flags(&self) -> bool {
        self.bit(b'f')
    }
    /// `h`: return whether the item was hit before.
    pub fn return_hit(&self) -> bool {
        self.bit(b'h')
    }
    /// `k`: return the key.
    pub fn return_key(&self) -> bool {
        self.bit(b'k')
    }
    /// `l`: return seconds since last access.
    pub fn return_last_access(&self) -> bool {
        self.bit(b'l')
    }
    /// `s`: return the item size.
    pub fn return_size(&self) -> bool {
        self.bit(b's')
    }
    /// `t`: return the remaining TTL.
    pub fn return_ttl(&self) -> bool {
        self.bit(b't')
    }
    /// `v`: return the value.
    pub fn return_value(&self) -> bool {
        self.bit(b'v')
    }
    /// `u`: do not bump the item.
    pub fn no_bump(&self) -> bool {
        self.bit(b'u')
    }
    /// `q`: quiet mode.
    pub fn quiet(&self) -> bool {
        self.bit(b'q')
    }
    /// `I`: invalidate / mark stale.
    pub fn invalidate(&self) -> bool {
        self.bit(b'I')
    }
    /// `x`: remove the value but keep the item (`md`).
    pub fn remove_value(&self) -> bool {
        self.bit(b'x')
    }
    /// `O`: the opaque token, without its `O`.
    pub const fn opaque(&self) -> Option<&'a [u8]> {
        self.opaque
    }
    /// `N`: vivify-on-miss TTL.
    pub const fn vivify(&self) -> Option<i64> {
        self.vivify
    }
    /// `R`: recache threshold TTL.
    pub const fn recache(&self) -> Option<i64> {
        self.recache
    }
    /// `T`: new TTL.
    pub const fn ttl(&self) -> Option<i64> {
        self.ttl
    }
    /// `C`: CAS value to compare against.
    pub const fn compare_cas(&self) -> Option<u64> {
        self.compare_cas
    }
    /// `E`: explicit new CAS value.
    pub const fn new_cas(&self) -> Option<u64> {
        self.new_cas
    }
    /// `F`: client flags to store.
    pub const fn client_flags(&self) -> Option<u32> {
        self.client_flags
    }
    /// `M`: the raw mode byte. See [`MetaFlags::set_mode`] and
    /// [`MetaFlags::arithmetic_mode`] for the typed views.
    pub const fn mode(&self) -> Option<u8> {
        self.mode
    }
    /// `J`: initial value for `ma` vivify (default 0).
    pub const fn initial(&self) -> Option<u64> {
        self.initial
    }
    /// `D`: delta for `ma` (default 1).
    pub const fn delta(&self) -> Option<u64> {
        self.delta
    }

    /// The `ms` mode: [`SetMode::Set`] without an `M` flag. `None` if the `M`
    /// byte is not an `ms` mode (the parser rejects such an `ms`).
    pub const fn set_mode(&self) -> Option<SetMode> {
        match self.mode {
            None | Some(b'S' | b's') => Some(SetMode::Set),
            Some(b'E' | b'e') => Some(SetMode::Add),
            Some(b'A' | b'a') => Some(SetMode::Append),
            Some(b'P' | b'p') => Some(SetMode::Prepend),
            Some(b'R' | b'r') => Some(SetMode::Replace),
            Some(_) => None,
        }
    }

    /// The `ma` mode: [`ArithmeticMode::Incr`] without an `M` flag. `None` if
    /// the `M` byte is not an `ma` mode (the parser rejects such an `ma`).
    pub const fn arithmetic_mode(&self) -> Option<ArithmeticMode> {
        match self.mode {
            None | Some(b'I' | b'i' | b'+') => Some(ArithmeticMode::Incr),
            Some(b'D' | b'd' | b'-') => Some(ArithmeticMode::Decr),
            Some(_) => None,
        }
    }
}

/// What an `ms` does, from its `M` flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SetMode {
    /// `MS` (default): store unconditionally (or compare-and-swap with `C`).
    Set,
    /// `ME`: store only if absent, like `add`.
    Add,
    /// `MA`: append to the existing value.
    Append,
    /// `MP`: prepend to the existing value.
    Prepend,
    /// `MR`: store only if present, like `replace`.
    Replace,
}

/// What an `ma` does, from its `M` flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArithmeticMode {
    /// `MI` or `M+` (default): increment.
    Incr,
    /// `MD` or `M-`: decrement.
    Decr,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Command {
    Get,
    Set,
    Delete,
    Arithmetic,
}

struct Parsed<'a> {
    flags: MetaFlags<'a>,
    key: Cow<'a, [u8]>,
    opaque_too_long: bool,
}

/// Parses the flag tokens in memcached's order of precedence (see the module
/// docs). `allow_size` admits the legacy `S<datalen>` flag of `ms`, which is
/// consumed here and not stored.
fn parse_flags<'a>(
    raw_key: &'a [u8],
    tokens: Words<'a>,
    allow_size: bool,
) -> Result<Parsed<'a>, ErrorKind> {
    let mut flags = MetaFlags::new();
    let mut key = Cow::Borrowed(raw_key);
    let mut seen: u128 = 0;
    let mut deferred = None;
    let mut opaque_too_long = false;
    for token in tokens {
        let letter = token[0];
        let arg = &token[1..];
        if letter >= 127 || seen & (1 << letter) != 0 {
            return Err(ErrorKind::DuplicateFlag);
        }
        seen |= 1 << letter;
        let mut numeric = |flag: Option<MetaFlag<'a>>, kind: ErrorKind| match flag {
            Some(flag) => flags.set(flag),
            None => deferred = Some(kind),
        };
        match letter {
            b'b' => {
                match base64::decode(raw_key) {
                    Some(decoded) => key = Cow::Owned(decoded),
                    None => deferred = Some(ErrorKind::KeyDecode),
                }
                flags.set(MetaFlag::Base64Key);
            }
            b'N' => numeric(
                parse_i64(arg).map(MetaFlag::Vivify),
                ErrorKind::BadMetaToken,
            ),
            b'R' => numeric(
                parse_i64(arg).map(MetaFlag::Recache),
                ErrorKind::BadMetaToken,
            ),
            b'T' => numeric(parse_i64(arg).map(MetaFlag::Ttl), ErrorKind::BadMetaToken),
            b'C' => numeric(
                parse_u64(arg).map(MetaFlag::CompareCas),
                ErrorKind::BadMetaToken,
            ),
            b'E' => numeric(
                parse_u64(arg).map(MetaFlag::NewCas),
                ErrorKind::BadMetaToken,
            ),
            b'F' => numeric(
                parse_u32(arg).map(MetaFlag::ClientFlags),
                ErrorKind::BadFormat,
            ),
            b'J' => numeric(
                parse_u64(arg).map(MetaFlag::Initial),
                ErrorKind::InvalidInitial,
            ),
            b'D' => numeric(
                parse_u64(arg).map(MetaFlag::Delta),
                ErrorKind::InvalidDeltaToken,
            ),
            b'M' => match arg {
                [mode] => flags.set(MetaFlag::Mode(*mode)),
                _ => deferred = Some(ErrorKind::ModeTokenLength),
            },
            b'O' => {
                opaque_too_long = token.len() > MAX_OPAQUE_TOKEN;
                flags.set(MetaFlag::Opaque(arg));
            }
            b'S' if allow_size => {
                if legacy_size(token).is_none() {
                    deferred = Some(ErrorKind::BadMetaToken);
                }
            }
            _ => match flag_from_letter(letter) {
                Some(flag) => flags.set(flag),
                None => return Err(ErrorKind::InvalidFlag),
            },
        }
    }
    match deferred {
        Some(kind) => Err(kind),
        None => Ok(Parsed {
            flags,
            key,
            opaque_too_long,
        }),
    }
}

fn flag_from_letter(letter: u8) -> Option<MetaFlag<'static>> {
    Some(match letter {
        b'c' => MetaFlag::ReturnCas,
        b'f' => MetaFlag::ReturnFlags,
        b'h' => MetaFlag::ReturnHit,
        b'k' => MetaFlag::ReturnKey,
        b'l' => MetaFlag::ReturnLastAccess,
        b's' => MetaFlag::ReturnSize,
        b't' => MetaFlag::ReturnTtl,
        b'v' => MetaFlag::ReturnValue,
        b'u' => MetaFlag::NoBump,
        b'q' => MetaFlag::Quiet,
        b'I' => MetaFlag::Invalidate,
        b'x' => MetaFlag::RemoveValue,
        _ => return None,
    })
}

/// The data length of a legacy `S<datalen>` token, if well formed.
fn legacy_size(token: &[u8]) -> Option<usize> {
    parse_u64(&token[1..]).and_then(|v| usize::try_from(v).ok())
}

/// The largest data length memcached accepts at all (`INT_MAX - 2`); longer
/// ones are malformed rather than too large.
pub(crate) const MAX_DECLARED_SIZE: i64 = i32::MAX as i64 - 2;

/// Parses a meta command whose two-letter name is `m<sub>`.
pub(crate) fn parse<'a>(
    sub: u8,
    mut words: Words<'a>,
    input: &'a [u8],
    line_len: usize,
    limits: &Limits,
) -> Result<Status<Request<'a>>, ParseError> {
    let err = |kind| Err(ParseError::new(kind, line_len));
    let command = match sub {
        b'n' => return Ok(Status::Complete(Request::MetaNoop, line_len)),
        b'e' => return parse_debug(words, line_len, limits),
        b'g' => Command::Get,
        b's' => Command::Set,
        b'd' => Command::Delete,
        b'a' => Command::Arithmetic,
        _ => return err(ErrorKind::UnknownCommand),
    };
    let Some(raw_key) = words.next() else {
        return err(ErrorKind::UnknownCommand);
    };
    if !valid_key(raw_key, limits.max_key_len) {
        return err(ErrorKind::BadFormat);
    }
    if command == Command::Set {
        return parse_set(raw_key, words, input, line_len, limits);
    }
    if 2 + words.clone().count() > MAX_META_TOKENS {
        return err(ErrorKind::TooManyFlags);
    }
    let parsed = match parse_flags(raw_key, words, false) {
        Ok(parsed) => parsed,
        Err(_) if matches!(command, Command::Delete | Command::Arithmetic) => {
            return err(ErrorKind::InvalidOrDuplicateFlag);
        }
        Err(kind) => return err(kind),
    };
    if command == Command::Arithmetic && parsed.flags.arithmetic_mode().is_none() {
        return err(ErrorKind::InvalidArithmeticMode);
    }
    if parsed.opaque_too_long {
        return err(ErrorKind::OpaqueTooLong);
    }
    let Parsed { flags, key, .. } = parsed;
    let request = match command {
        Command::Get => Request::MetaGet { key, flags },
        Command::Delete => Request::MetaDelete { key, flags },
        _ => Request::MetaArithmetic { key, flags },
    };
    Ok(Status::Complete(request, line_len))
}

fn parse_set<'a>(
    raw_key: &'a [u8],
    mut words: Words<'a>,
    input: &'a [u8],
    line_len: usize,
    limits: &Limits,
) -> Result<Status<Request<'a>>, ParseError> {
    let err = |kind| Err(ParseError::new(kind, line_len));
    let flag_words = words.clone();
    let Some(first) = words.next() else {
        return err(ErrorKind::BadFormat);
    };
    if 2 + flag_words.clone().count() > MAX_META_TOKENS {
        return err(ErrorKind::TooManyFlags);
    }
    // `ms <key> <datalen> <flags>*` is the current syntax; early 1.6 releases
    // sent the length as an `S<datalen>` flag instead.
    let (declared, flag_words) = if first[0].is_ascii_digit() || first[0] == b'-' {
        (parse_i64(first), words)
    } else {
        let size = flag_words
            .clone()
            .find(|t| t[0] == b'S')
            .map(|t| legacy_size(t).and_then(|s| i64::try_from(s).ok()));
        match size {
            Some(Some(size)) => (Some(size), flag_words),
            Some(None) => return err(ErrorKind::BadMetaToken),
            None => return err(ErrorKind::BadFormat),
        }
    };
    let size = match declared {
        Some(size @ 0..=MAX_DECLARED_SIZE) => size as usize,
        _ => return err(ErrorKind::BadFormat),
    };
    // From here on memcached knows the length, so errors swallow the data.
    let swallow = |kind| Err(ParseError::new(kind, line_len + size + 2));
    let parsed = match parse_flags(raw_key, flag_words, true) {
        Ok(parsed) => parsed,
        Err(kind) => return swallow(kind),
    };
    if parsed.flags.set_mode().is_none() {
        return swallow(ErrorKind::InvalidSetMode);
    }
    if parsed.opaque_too_long {
        return swallow(ErrorKind::OpaqueTooLong);
    }
    let Parsed { flags, key, .. } = parsed;
    if size > limits.max_item_size {
        let too_large = TooLarge::Meta { key, flags, size };
        return Ok(Status::Complete(Request::TooLarge(too_large), line_len));
    }
    match data_block(input, line_len, size) {
        None => Ok(Status::Partial),
        Some(Err(end)) => Err(ParseError::new(ErrorKind::BadDataChunk, end)),
        Some(Ok(data)) => Ok(Status::Complete(
            Request::MetaSet { key, flags, data },
            line_len + size + 2,
        )),
    }
}

fn parse_debug<'a>(
    mut words: Words<'a>,
    line_len: usize,
    limits: &Limits,
) -> Result<Status<Request<'a>>, ParseError> {
    let err = |kind| Err(ParseError::new(kind, line_len));
    let Some(raw_key) = words.next() else {
        return err(ErrorKind::BadFormat);
    };
    if !valid_key(raw_key, limits.max_key_len) {
        return err(ErrorKind::BadFormat);
    }
    let base64 = words.next() == Some(b"b");
    let key = if base64 {
        match base64::decode(raw_key) {
            Some(decoded) => Cow::Owned(decoded),
            None => return err(ErrorKind::BadFormat),
        }
    } else {
        Cow::Borrowed(raw_key)
    };
    Ok(Status::Complete(
        Request::MetaDebug { key, base64 },
        line_len,
    ))
}
