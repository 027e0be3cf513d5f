//! Parse errors: what memcached would answer, and how the caller gets back in
//! step with the byte stream.

use std::fmt;

/// The kind of a parse error. Its [`Display`](fmt::Display) text (also
/// [`ErrorKind::as_str`]) is the exact line memcached sends for it, without
/// the trailing `\r\n`.
///
/// ```
/// use larder::memcached::ErrorKind;
///
/// assert_eq!(ErrorKind::UnknownCommand.to_string(), "ERROR");
/// assert_eq!(ErrorKind::BadDataChunk.as_str(), "CLIENT_ERROR bad data chunk");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Unknown command name, a wrong number of arguments, or an empty line.
    UnknownCommand,
    /// A malformed argument: a key that is too long or holds control bytes,
    /// a non-numeric or out-of-range flags/exptime/bytes/cas, and so on.
    BadFormat,
    /// The data block was not followed by `\r\n`.
    BadDataChunk,
    /// A command line (other than a `get`-family one, which may be any
    /// length) grew past [`Limits::max_line_len`](super::Limits). Fatal.
    LineTooLong,
    /// A value larger than [`Limits::max_item_size`](super::Limits). The
    /// parser reports this as [`Request::TooLarge`](super::Request::TooLarge)
    /// so the executor can also drop the old value; the kind exists so the
    /// executor can answer with [`Response::Error`](super::Response::Error).
    TooLarge,
    /// `touch`, `gat`, `gats` or `flush_all` with a non-numeric time.
    InvalidExptime,
    /// `incr`/`decr` with a delta that is not an unsigned 64-bit number.
    InvalidDelta,
    /// `delete` with extra arguments other than the legacy `0` and `noreply`.
    DeleteUsage,
    /// `shutdown` with an argument other than `graceful`.
    InvalidShutdownMode,
    /// A meta flag whose numeric token (`N`, `T`, `R`, `C`, `E`, `S`) is
    /// malformed.
    BadMetaToken,
    /// A meta flag given twice.
    DuplicateFlag,
    /// An unknown meta flag.
    InvalidFlag,
    /// `md`/`ma` with an unknown, duplicate or malformed flag (memcached
    /// reports all three with one message for these commands).
    InvalidOrDuplicateFlag,
    /// A `b` (base64) key that does not decode.
    KeyDecode,
    /// An `M` flag whose token is not exactly one character.
    ModeTokenLength,
    /// `ms` with a mode other than `E`, `A`, `P`, `R`, `S`.
    InvalidSetMode,
    /// `ma` with a mode other than `I`, `+`, `D`, `-`.
    InvalidArithmeticMode,
    /// `ma` with a malformed `J` (initial value) token.
    InvalidInitial,
    /// `ma` with a malformed `D` (delta) token.
    InvalidDeltaToken,
    /// An `O` (opaque) token longer than 32 bytes including the `O`.
    OpaqueTooLong,
    /// A meta command with more tokens than memcached accepts.
    TooManyFlags,
    /// An HTTP request line (an unknown command whose last token starts
    /// with `HTTP/`). memcached closes such a connection without writing a
    /// byte, so a browser tricked into talking to the cache gets nothing
    /// back; fatal and silent ([`as_str`](ErrorKind::as_str) is empty).
    HttpRequest,
}

impl ErrorKind {
    /// The exact reply line for this error, without `\r\n`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::UnknownCommand => "ERROR",
            ErrorKind::BadFormat => "CLIENT_ERROR bad command line format",
            ErrorKind::BadDataChunk => "CLIENT_ERROR bad data chunk",
            ErrorKind::LineTooLong => "CLIENT_ERROR line too long",
            ErrorKind::TooLarge => "SERVER_ERROR object too large for cache",
            ErrorKind::InvalidExptime => "CLIENT_ERROR invalid exptime argument",
            ErrorKind::InvalidDelta => "CLIENT_ERROR invalid numeric delta argument",
            ErrorKind::DeleteUsage => {
                "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]"
            }
            ErrorKind::InvalidShutdownMode => "CLIENT_ERROR invalid shutdown mode",
            ErrorKind::BadMetaToken => "CLIENT_ERROR bad token in command line format",
            ErrorKind::DuplicateFlag => "CLIENT_ERROR duplicate flag",
            ErrorKind::InvalidFlag => "CLIENT_ERROR invalid flag",
            ErrorKind::InvalidOrDuplicateFlag => "CLIENT_ERROR invalid or duplicate flag",
            ErrorKind::KeyDecode => "CLIENT_ERROR error decoding key",
            ErrorKind::ModeTokenLength => "CLIENT_ERROR incorrect length for M token",
            ErrorKind::InvalidSetMode => "CLIENT_ERROR invalid mode for ms M token",
            ErrorKind::InvalidArithmeticMode => "CLIENT_ERROR invalid mode for ma M token",
            ErrorKind::InvalidInitial => "CLIENT_ERROR invalid numeric initial value",
            ErrorKind::InvalidDeltaToken => "CLIENT_ERROR invalid numeric delta value",
            ErrorKind::OpaqueTooLong => "CLIENT_ERROR opaque token too long",
            ErrorKind::TooManyFlags => "CLIENT_ERROR options flags too long",
            ErrorKind::HttpRequest => "",
        }
    }

    /// Whether the connection must be closed after reporting this error.
    ///
    /// [`ErrorKind::LineTooLong`] is fatal because the end of the offending
    /// line has not been seen, so there is no point at which parsing could
    /// resume; [`ErrorKind::HttpRequest`] because the peer is not a
    /// memcached client.
    pub const fn is_fatal(self) -> bool {
        matches!(self, ErrorKind::LineTooLong | ErrorKind::HttpRequest)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A malformed request, with what the caller must do to resynchronise.
///
/// - Answer with [`kind`](ParseError::kind)'s line (see
///   [`Response::Error`](super::Response::Error)), unless
///   [`noreply`](ParseError::noreply) says memcached would stay silent.
/// - If [`is_fatal`](ParseError::is_fatal), send that line and close the
///   connection.
/// - Otherwise drop [`discard`](ParseError::discard) bytes from the front of
///   the input and parse again. `discard` can be larger than the input that
///   was passed to [`parse`](super::parse): a rejected `ms` whose data block
///   has not fully arrived yet must have the rest of that block skipped as it
///   comes in.
///
/// ```
/// use larder::memcached::{parse, ErrorKind, Limits};
///
/// let err = parse(b"bogus\r\nget a\r\n", &Limits::default()).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::UnknownCommand);
/// assert_eq!(err.discard(), 7);
/// assert!(!err.is_fatal());
/// assert_eq!(err.to_string(), "ERROR");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ParseError {
    kind: ErrorKind,
    discard: usize,
    noreply: bool,
    rest_of_line: bool,
}

impl ParseError {
    pub(crate) const fn new(kind: ErrorKind, discard: usize) -> Self {
        ParseError {
            kind,
            discard,
            noreply: false,
            rest_of_line: false,
        }
    }

    pub(crate) const fn with_rest_of_line(mut self) -> Self {
        self.rest_of_line = true;
        self
    }

    pub(crate) const fn with_noreply(mut self, noreply: bool) -> Self {
        self.noreply = noreply;
        self
    }

    /// What went wrong, and the line to answer with.
    pub const fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// How many bytes, from the start of the input given to
    /// [`parse`](super::parse), belong to the rejected request and must be
    /// dropped before parsing resumes. May exceed the input's length (the
    /// excess must be skipped as it arrives). Meaningless when
    /// [`is_fatal`](ParseError::is_fatal).
    pub const fn discard(&self) -> usize {
        self.discard
    }

    /// Whether the refused request is a `get`-family line whose end has not
    /// arrived (see [`Request::LongGet`](super::Request::LongGet)): after
    /// dropping [`discard`](ParseError::discard) bytes, also drop everything
    /// up to and including the next `\n` before parsing resumes.
    pub const fn rest_of_line(&self) -> bool {
        self.rest_of_line
    }

    /// Whether the connection cannot continue (send the error, then close).
    pub const fn is_fatal(&self) -> bool {
        self.kind.is_fatal()
    }

    /// Whether nothing must be sent for this error: the rejected text
    /// command ended in `noreply`, or it is an [`ErrorKind::HttpRequest`].
    /// Always `false` for meta commands, whose errors are sent even in
    /// quiet mode, and for [`ErrorKind::LineTooLong`].
    pub const fn noreply(&self) -> bool {
        self.noreply
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.kind, f)
    }
}

impl std::error::Error for ParseError {}
