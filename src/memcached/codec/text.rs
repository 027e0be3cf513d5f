//! The classic text commands.
//!
//! Argument counts, error kinds and `noreply` handling follow memcached's
//! `proto_text.c`: a wrong number of arguments is `ERROR`; for commands that
//! take `noreply`, the last token is `noreply` if it says so, and an optional
//! last token that says something else is ignored, as memcached does.

use super::admin;
use super::ascii::{parse_i64, parse_u32, parse_u64, valid_key, Words};
use super::error::{ErrorKind, ParseError};
use super::limits::Limits;
use super::meta::MAX_DECLARED_SIZE;
use super::request::{ArithmeticOp, GetRest, Request, StoreCommand, Tokens, TooLarge};
use super::{data_block, Status};

/// Arguments beyond this many are only counted, never looked at.
const MAX_ARGS: usize = 8;

/// A command's arguments: the first [`MAX_ARGS`] of them, and how many.
pub(crate) struct Args<'a> {
    pub(crate) items: [&'a [u8]; MAX_ARGS],
    pub(crate) count: usize,
}

impl<'a> Args<'a> {
    pub(crate) fn collect(words: Words<'a>) -> Self {
        let mut items: [&'a [u8]; MAX_ARGS] = [&[]; MAX_ARGS];
        let mut count = 0;
        for word in words {
            if count < MAX_ARGS {
                items[count] = word;
            }
            count += 1;
        }
        Args { items, count }
    }

    pub(crate) fn last_is_noreply(&self) -> bool {
        self.count > 0 && self.count <= MAX_ARGS && self.items[self.count - 1] == b"noreply"
    }
}

/// Parses a text command named `name`; `words` holds its arguments.
pub(crate) fn parse<'a>(
    name: &'a [u8],
    words: Words<'a>,
    input: &'a [u8],
    line_len: usize,
    limits: &Limits,
) -> Result<Status<Request<'a>>, ParseError> {
    let err = |kind| Err(ParseError::new(kind, line_len));
    let done = |request| Ok(Status::Complete(request, line_len));
    match name {
        b"get" => parse_get(false, None, words, line_len, limits),
        b"gets" => parse_get(true, None, words, line_len, limits),
        b"gat" | b"gats" => {
            let mut words = words;
            let Some(exptime) = words.next() else {
                return err(ErrorKind::UnknownCommand);
            };
            let Some(exptime) = parse_i64(exptime) else {
                return err(ErrorKind::InvalidExptime);
            };
            parse_get(name == b"gats", Some(exptime), words, line_len, limits)
        }
        b"set" => parse_store(StoreCommand::Set, words, input, line_len, limits),
        b"add" => parse_store(StoreCommand::Add, words, input, line_len, limits),
        b"replace" => parse_store(StoreCommand::Replace, words, input, line_len, limits),
        b"append" => parse_store(StoreCommand::Append, words, input, line_len, limits),
        b"prepend" => parse_store(StoreCommand::Prepend, words, input, line_len, limits),
        b"cas" => parse_store(
            StoreCommand::Cas { unique: 0 },
            words,
            input,
            line_len,
            limits,
        ),
        b"version" => done(Request::Version),
        b"quit" => done(Request::Quit),
        b"stats" => done(Request::Stats {
            args: Tokens::new(words.remainder()),
        }),
        _ => match admin::parse(name, Args::collect(words.clone()), line_len) {
            Some(Ok((command, noreply))) => done(Request::Admin { command, noreply }),
            Some(Err(error)) => Err(error),
            None => parse_simple(name, words, line_len, limits),
        },
    }
}

/// Longest token list (command name included) memcached's tokenizer splits
/// before it lumps the rest of the line into one last token.
const MAX_TOKENS: usize = 23;

/// Whether an unknown command line is an HTTP request line, by memcached's
/// rule: the last of at most [`MAX_TOKENS`] tokens starts with `HTTP/`
/// (`GET / HTTP/1.1`, `DELETE HTTP/1.0`), and the name does not begin with a
/// byte memcached dispatches on before it looks (`a`, `c`, `d`, `g`, `i`,
/// `s`, `t`: `get / HTTP/1.1` is a get, and `git x HTTP/1.1` is `ERROR`).
fn is_http_request(name: &[u8], words: Words<'_>) -> bool {
    if matches!(
        name.first(),
        Some(b'a' | b'c' | b'd' | b'g' | b'i' | b's' | b't')
    ) {
        return false;
    }
    let mut last = name;
    for (count, word) in words.enumerate() {
        if count + 2 > MAX_TOKENS {
            return false;
        }
        last = word;
    }
    last.starts_with(b"HTTP/")
}

fn parse_get<'a>(
    cas: bool,
    touch: Option<i64>,
    words: Words<'a>,
    line_len: usize,
    limits: &Limits,
) -> Result<Status<Request<'a>>, ParseError> {
    let raw = words.remainder();
    if !valid_keys(raw, limits) {
        return Err(ParseError::new(ErrorKind::BadFormat, line_len));
    }
    if raw.is_empty() && touch.is_none() {
        return Err(ParseError::new(ErrorKind::UnknownCommand, line_len));
    }
    let keys = Tokens::new(raw);
    Ok(Status::Complete(
        Request::Get { cas, touch, keys },
        line_len,
    ))
}

fn valid_keys(raw: &[u8], limits: &Limits) -> bool {
    Words::new(raw).all(|key| valid_key(key, limits.max_key_len))
}

/// Splits `raw`, a stretch of a get line without its end, into the keys
/// that have fully arrived and the length of input they use (through the
/// space after the last of them). Fails if a key, even the one still
/// arriving, is already invalid.
fn complete_keys<'a>(raw: &'a [u8], limits: &Limits) -> Result<(Tokens<'a>, usize), ()> {
    let cut = raw
        .iter()
        .rposition(|&b| b == b' ')
        .map_or(0, |space| space + 1);
    let (complete, arriving) = raw.split_at(cut);
    // A trailing `\r` may be the start of the line end.
    let arriving = arriving.strip_suffix(b"\r").unwrap_or(arriving);
    // As `valid_key`, but it may still be empty.
    let arriving_ok = arriving.len() <= limits.max_key_len && !arriving.contains(&0);
    if !arriving_ok || !valid_keys(complete, limits) {
        return Err(());
    }
    Ok((Tokens::new(complete), cut))
}

/// The first `max_get_line_len` bytes of a longer `get`-family line (no
/// `\n` among them): the command, and the keys that have fully arrived.
pub(crate) fn parse_long_get<'a>(
    head: &'a [u8],
    limits: &Limits,
) -> Result<Status<Request<'a>>, ParseError> {
    let refuse = |kind| Err(ParseError::new(kind, head.len()).with_rest_of_line());
    let mut words = Words::new(head);
    let name = words.next().unwrap_or_default();
    let touch = if name.starts_with(b"gat") {
        // The exptime is complete: the line goes on after it.
        let exptime = words.next();
        if words.remainder().is_empty() {
            return refuse(ErrorKind::UnknownCommand);
        }
        match exptime.and_then(parse_i64) {
            Some(exptime) => Some(exptime),
            None => return refuse(ErrorKind::InvalidExptime),
        }
    } else {
        None
    };
    let raw = words.remainder();
    let Ok((keys, used)) = complete_keys(raw, limits) else {
        return refuse(ErrorKind::BadFormat);
    };
    let consumed = head.len() - raw.len() + used;
    let cas = name.ends_with(b"s");
    Ok(Status::Complete(
        Request::LongGet { cas, touch, keys },
        consumed,
    ))
}

/// See [`parse_get_rest`](super::parse_get_rest).
pub(crate) fn parse_get_rest<'a>(
    input: &'a [u8],
    limits: &Limits,
) -> Result<Status<GetRest<'a>>, ParseError> {
    if let Some(newline) = input.iter().position(|&b| b == b'\n') {
        let line = &input[..newline];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if !valid_keys(line, limits) {
            return Err(ParseError::new(ErrorKind::BadFormat, newline + 1));
        }
        let keys = Tokens::new(line);
        return Ok(Status::Complete(GetRest { keys, last: true }, newline + 1));
    }
    match complete_keys(input, limits) {
        Err(()) => Err(ParseError::new(ErrorKind::BadFormat, input.len()).with_rest_of_line()),
        Ok((_, 0)) => Ok(Status::Partial),
        Ok((keys, used)) => Ok(Status::Complete(GetRest { keys, last: false }, used)),
    }
}

fn parse_store<'a>(
    command: StoreCommand,
    words: Words<'a>,
    input: &'a [u8],
    line_len: usize,
    limits: &Limits,
) -> Result<Status<Request<'a>>, ParseError> {
    let args = Args::collect(words);
    let base = if matches!(command, StoreCommand::Cas { .. }) {
        5
    } else {
        4
    };
    if args.count != base && args.count != base + 1 {
        return Err(ParseError::new(ErrorKind::UnknownCommand, line_len));
    }
    let noreply = args.last_is_noreply();
    let bad = || Err(ParseError::new(ErrorKind::BadFormat, line_len).with_noreply(noreply));
    let [key, flags, exptime, size, cas, ..] = args.items;
    if !valid_key(key, limits.max_key_len) {
        return bad();
    }
    let (Some(flags), Some(exptime), Some(size)) =
        (parse_u32(flags), parse_i64(exptime), parse_i64(size))
    else {
        return bad();
    };
    let command = match command {
        StoreCommand::Cas { .. } => match parse_u64(cas) {
            Some(unique) => StoreCommand::Cas { unique },
            None => return bad(),
        },
        other => other,
    };
    let size = match size {
        0..=MAX_DECLARED_SIZE => size as usize,
        _ => return bad(),
    };
    if size > limits.max_item_size {
        let too_large = TooLarge::Text {
            command,
            key,
            flags,
            exptime,
            size,
            noreply,
        };
        return Ok(Status::Complete(Request::TooLarge(too_large), line_len));
    }
    match data_block(input, line_len, size) {
        None => Ok(Status::Partial),
        Some(Err(end)) => Err(ParseError::new(ErrorKind::BadDataChunk, end).with_noreply(noreply)),
        Some(Ok(data)) => Ok(Status::Complete(
            Request::Store {
                command,
                key,
                flags,
                exptime,
                data,
                noreply,
            },
            line_len + size + 2,
        )),
    }
}

/// The one-line commands with a fixed argument list.
fn parse_simple<'a>(
    name: &'a [u8],
    words: Words<'a>,
    line_len: usize,
    limits: &Limits,
) -> Result<Status<Request<'a>>, ParseError> {
    let args = Args::collect(words.clone());
    let n = args.count;
    let noreply = args.last_is_noreply();
    let fail = |kind| Err(ParseError::new(kind, line_len).with_noreply(noreply));
    let unknown = Err(ParseError::new(ErrorKind::UnknownCommand, line_len));
    let [first, second, ..] = args.items;
    let key_ok = valid_key(first, limits.max_key_len);
    let request = match name {
        b"delete" => {
            if !(1..=3).contains(&n) {
                return unknown;
            }
            if n > 1 {
                let hold_is_zero = second == b"0";
                let valid =
                    (n == 2 && (hold_is_zero || noreply)) || (n == 3 && hold_is_zero && noreply);
                if !valid {
                    return fail(ErrorKind::DeleteUsage);
                }
            }
            if !key_ok {
                return fail(ErrorKind::BadFormat);
            }
            Request::Delete {
                key: first,
                // `delete noreply` deletes the key "noreply": memcached only looks
                // for the flag after the key.
                noreply: n > 1 && noreply,
            }
        }
        b"incr" | b"decr" => {
            if n != 2 && n != 3 {
                return unknown;
            }
            if !key_ok {
                return fail(ErrorKind::BadFormat);
            }
            let Some(delta) = parse_u64(second) else {
                return fail(ErrorKind::InvalidDelta);
            };
            let op = if name == b"incr" {
                ArithmeticOp::Incr
            } else {
                ArithmeticOp::Decr
            };
            Request::Arithmetic {
                op,
                key: first,
                delta,
                noreply,
            }
        }
        b"touch" => {
            if n != 2 && n != 3 {
                return unknown;
            }
            if !key_ok {
                return fail(ErrorKind::BadFormat);
            }
            let Some(exptime) = parse_i64(second) else {
                return fail(ErrorKind::InvalidExptime);
            };
            Request::Touch {
                key: first,
                exptime,
                noreply,
            }
        }
        b"flush_all" => {
            if n > 2 {
                return unknown;
            }
            let has_delay = n != usize::from(noreply);
            let delay = if has_delay {
                match parse_i64(first) {
                    Some(delay) => Some(delay),
                    None => return fail(ErrorKind::InvalidExptime),
                }
            } else {
                None
            };
            Request::FlushAll { delay, noreply }
        }
        b"verbosity" => {
            if n != 1 && n != 2 {
                return unknown;
            }
            // memcached reads a 64-bit number and ignores its size.
            let Some(level) = parse_u64(first) else {
                return fail(ErrorKind::BadFormat);
            };
            let level = u32::try_from(level).unwrap_or(u32::MAX);
            Request::Verbosity { level, noreply }
        }
        b"cache_memlimit" => {
            if n != 1 && n != 2 {
                return unknown;
            }
            let Some(megabytes) = parse_u64(first) else {
                return fail(ErrorKind::UnknownCommand);
            };
            // Any size past u32::MAX is refused as "not megabytes" all the same.
            let megabytes = u32::try_from(megabytes).unwrap_or(u32::MAX);
            Request::CacheMemlimit { megabytes, noreply }
        }
        b"shutdown" => match (n, first) {
            (0, _) => Request::Shutdown { graceful: false },
            (1, b"graceful") => Request::Shutdown { graceful: true },
            _ => return Err(ParseError::new(ErrorKind::InvalidShutdownMode, line_len)),
        },
        _ if is_http_request(name, words) => {
            return Err(ParseError::new(ErrorKind::HttpRequest, line_len).with_noreply(true));
        }
        _ => return unknown,
    };
    Ok(Status::Complete(request, line_len))
}
