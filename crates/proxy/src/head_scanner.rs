//! Seeing the request heads hyper hides: a client connection's bytes are
//! followed on their way to hyper's HTTP/1 server, so that a request carrying
//! both `Content-Length` and `Transfer-Encoding` (or `Content-Length` values
//! that differ) can be refused with 400 before anything goes upstream.
//!
//! hyper removes such a `Content-Length` from the request it hands over (or
//! skips it when it comes after `Transfer-Encoding`), so the request path
//! cannot see it. [`HeadScanner`] wraps the connection's I/O below hyper,
//! passes every byte through unchanged and, on the side, parses each request
//! head with `httparse` (the parser hyper uses, with the same settings) and
//! skips each body by its framing to find the next head. It records a
//! [`HeadVerdict`] per head in [`HeadVerdicts`], which the request path reads
//! once per request, in order: HTTP/1.1 handles requests one after another,
//! and every byte reaches the scanner before hyper, so the verdict on a head
//! is in place before hyper hands its request over.
//!
//! It fails open: on anything it does not follow (bytes that are not HTTP, a
//! head over the size limit, framing hyper refuses, an upgrade or CONNECT,
//! after which the bytes are not HTTP), it stops and records no more
//! verdicts; later requests count as clean and hyper's own handling applies
//! (RFC 9112 §6.1-safe: with both headers it reads the body as chunked and
//! closes the connection afterwards). It stops after a conflicting head too:
//! that request is refused and its connection closed.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use http::HeaderMap;
use http::header::{CONTENT_LENGTH, HeaderName, TRANSFER_ENCODING};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Most header lines in a request head; hyper is given the same limit.
pub const MAX_HEADERS: usize = 100;

/// What the scanner made of one request head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadVerdict {
    /// Nothing ambiguous about the body's length (or the head was not seen).
    Clean,
    /// The head frames its body in two ways: a smuggling attempt.
    Conflicting(Conflict),
}

/// How a head framed its body ambiguously.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conflict {
    /// Both `Content-Length` and `Transfer-Encoding`.
    LengthWithTransferEncoding,
    /// Several `Content-Length` values that differ.
    DifferingLengths,
}

impl Conflict {
    /// The 400 answer's message.
    pub fn message(self) -> &'static str {
        match self {
            Conflict::LengthWithTransferEncoding => {
                "bad request: Content-Length together with Transfer-Encoding"
            }
            Conflict::DifferingLengths => "bad request: conflicting Content-Length headers",
        }
    }
}

impl HeadVerdict {
    /// The verdict on headers received as they are (HTTP/2, where nothing is
    /// dropped before the request path sees them).
    pub fn of_headers(headers: &HeaderMap) -> HeadVerdict {
        let lines = |name: &'static HeaderName| {
            headers
                .get_all(name)
                .into_iter()
                .map(|value| (name.as_str(), value.as_bytes()))
        };
        Framing::read(lines(&CONTENT_LENGTH).chain(lines(&TRANSFER_ENCODING))).verdict()
    }
}

/// The verdicts on one connection's request heads, shared between its
/// [`HeadScanner`] and the request path.
///
/// A queue of verdicts, kept as two numbers: scanning stops at the first
/// conflicting head, so every head before it is clean and every one after it
/// is unseen (clean too). The request path only needs to count requests.
#[derive(Debug)]
pub struct HeadVerdicts {
    /// Requests the request path has taken a verdict for.
    taken: AtomicU64,
    /// The conflicting head's index, shifted left by two, or'ed with the
    /// conflict's code; [`NO_CONFLICT`] when there is none.
    conflict: AtomicU64,
}

const NO_CONFLICT: u64 = u64::MAX;

impl Default for HeadVerdicts {
    fn default() -> Self {
        HeadVerdicts {
            taken: AtomicU64::new(0),
            conflict: AtomicU64::new(NO_CONFLICT),
        }
    }
}

impl HeadVerdicts {
    /// The verdict on the next request, in the order the connection carried
    /// them. Called exactly once per request.
    pub fn next(&self) -> HeadVerdict {
        let index = self.taken.fetch_add(1, Ordering::Relaxed);
        let conflict = self.conflict.load(Ordering::Acquire);
        if conflict == NO_CONFLICT || conflict >> 2 != index {
            return HeadVerdict::Clean;
        }
        HeadVerdict::Conflicting(match conflict & 0b11 {
            0 => Conflict::LengthWithTransferEncoding,
            _ => Conflict::DifferingLengths,
        })
    }

    fn record_conflict(&self, index: u64, conflict: Conflict) {
        let code = match conflict {
            Conflict::LengthWithTransferEncoding => 0,
            Conflict::DifferingLengths => 1,
        };
        let index = index.min(u64::MAX >> 3);
        self.conflict.store((index << 2) | code, Ordering::Release);
    }
}

/// A client connection's I/O, passed through unchanged while its request
/// heads are judged on the side.
pub struct HeadScanner<T> {
    io: T,
    scan: Scan,
}

impl<T> HeadScanner<T>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    /// Wraps `io`; heads of up to `max_head` bytes are followed, verdicts go
    /// to `verdicts`.
    pub fn new(io: T, max_head: usize, verdicts: Arc<HeadVerdicts>) -> Self {
        HeadScanner {
            io,
            scan: Scan::new(max_head, verdicts),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for HeadScanner<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        if !this.scan.stopped() {
            this.scan.feed(&buf.filled()[before..]);
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for HeadScanner<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// Where in the request stream the scanner is. The chunked states follow
/// hyper's chunked decoder, so both agree on where a body ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// At (or inside) a request head.
    Head,
    /// Inside a `Content-Length` body: bytes left.
    Body(u64),
    /// At (or inside) a chunk-size line.
    ChunkSize,
    /// Inside a chunk's data: bytes left.
    ChunkData(u64),
    /// After a chunk's data: its CR, then its LF.
    ChunkCr,
    ChunkLf,
    /// After the last chunk: at the start of a trailer line (or of the
    /// empty line ending the body).
    LineStart,
    /// Inside a trailer line, then at its LF.
    Trailer,
    TrailerLf,
    /// The empty line's LF, ending the body.
    EndLf,
    /// Gave up: passes bytes through and judges nothing more.
    Stopped,
}

/// The scanning itself, apart from the I/O.
struct Scan {
    state: State,
    /// The start of a head or chunk-size line that a read cut off; kept
    /// (and its allocation reused) until the rest arrives.
    pending: Vec<u8>,
    /// Largest head or chunk-size line followed across reads.
    max_pending: usize,
    /// Heads judged so far.
    heads: u64,
    verdicts: Arc<HeadVerdicts>,
}

/// What a parse of the bytes at hand found.
enum Parsed<T> {
    /// The item, and how many bytes it took.
    Complete(usize, T),
    /// The bytes end inside the item.
    Partial,
    /// Not what was expected.
    Invalid,
}

impl Scan {
    fn new(max_pending: usize, verdicts: Arc<HeadVerdicts>) -> Self {
        Scan {
            state: State::Head,
            pending: Vec::new(),
            max_pending,
            heads: 0,
            verdicts,
        }
    }

    fn stopped(&self) -> bool {
        self.state == State::Stopped
    }

    fn stop(&mut self) {
        self.state = State::Stopped;
        self.pending = Vec::new();
    }

    /// Follows `input`, the next bytes the client sent.
    fn feed(&mut self, mut input: &[u8]) {
        while !input.is_empty() {
            let used = match self.state {
                State::Head => self.head(input),
                State::Body(left) => {
                    let used = skip(left, input.len());
                    self.state = match left - used as u64 {
                        0 => State::Head,
                        left => State::Body(left),
                    };
                    used
                }
                State::ChunkSize => self.chunk_size(input),
                State::ChunkData(left) => {
                    let used = skip(left, input.len());
                    self.state = match left - used as u64 {
                        0 => State::ChunkCr,
                        left => State::ChunkData(left),
                    };
                    used
                }
                State::ChunkCr => self.expect(input[0], b'\r', State::ChunkLf),
                State::ChunkLf => self.expect(input[0], b'\n', State::ChunkSize),
                State::LineStart => match input[0] {
                    b'\r' => {
                        self.state = State::EndLf;
                        1
                    }
                    _ => {
                        self.state = State::Trailer;
                        0
                    }
                },
                State::Trailer => match input.iter().position(|&byte| byte == b'\r') {
                    Some(cr) => {
                        self.state = State::TrailerLf;
                        cr + 1
                    }
                    None => input.len(),
                },
                State::TrailerLf => self.expect(input[0], b'\n', State::LineStart),
                State::EndLf => self.expect(input[0], b'\n', State::Head),
                State::Stopped => return,
            };
            input = &input[used..];
        }
    }

    /// One byte of framing: `byte` must be `wanted`.
    fn expect(&mut self, byte: u8, wanted: u8, then: State) -> usize {
        if byte == wanted {
            self.state = then;
        } else {
            self.stop();
        }
        1
    }

    fn head(&mut self, input: &[u8]) -> usize {
        let Some((used, head)) = self.parse_across_reads(input, parse_head) else {
            return input.len();
        };
        let index = self.heads;
        self.heads += 1;
        if let HeadVerdict::Conflicting(conflict) = head.verdict {
            self.verdicts.record_conflict(index, conflict);
        }
        match head.next {
            Some(state) => self.state = state,
            None => self.stop(),
        }
        used
    }

    fn chunk_size(&mut self, input: &[u8]) -> usize {
        let Some((used, size)) = self.parse_across_reads(input, parse_chunk_size) else {
            return input.len();
        };
        self.state = match size {
            0 => State::LineStart,
            size => State::ChunkData(size),
        };
        used
    }

    /// Parses an item (a head, a chunk-size line) at the start of `input`,
    /// or of what an earlier read left pending followed by `input`. Returns
    /// the item and the bytes of `input` it took; `None` when it is not
    /// complete yet (all of `input` is then pending) or scanning stopped.
    fn parse_across_reads<T>(
        &mut self,
        input: &[u8],
        parse: impl Fn(&[u8]) -> Parsed<T>,
    ) -> Option<(usize, T)> {
        if self.pending.is_empty() {
            // The usual case: the whole item came in one read.
            return match parse(input) {
                Parsed::Complete(used, item) => Some((used, item)),
                Parsed::Partial if input.len() < self.max_pending => {
                    self.pending.extend_from_slice(input);
                    None
                }
                Parsed::Partial | Parsed::Invalid => {
                    self.stop();
                    None
                }
            };
        }
        let before = self.pending.len();
        let taken = input.len().min(self.max_pending.saturating_sub(before));
        let added = &input[..taken];
        self.pending.extend_from_slice(added);
        // Both items end with a line feed: without one there is no need
        // to parse again.
        let parsed = if added.contains(&b'\n') {
            parse(&self.pending)
        } else {
            Parsed::Partial
        };
        match parsed {
            Parsed::Complete(length, item) => {
                self.pending.clear();
                match length.checked_sub(before) {
                    Some(used) => Some((used, item)),
                    None => {
                        self.stop();
                        None
                    }
                }
            }
            Parsed::Partial if self.pending.len() < self.max_pending => None,
            Parsed::Partial | Parsed::Invalid => {
                self.stop();
                None
            }
        }
    }
}

/// How many of `available` bytes belong to a body part with `left` to go.
fn skip(left: u64, available: usize) -> usize {
    usize::try_from(left).map_or(available, |left| left.min(available))
}

/// A judged head, and where scanning goes after it (`None`: stop).
struct Head {
    verdict: HeadVerdict,
    next: Option<State>,
}

fn parse_head(bytes: &[u8]) -> Parsed<Head> {
    let mut headers = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    // The configuration hyper's server uses by default.
    let parsed = httparse::ParserConfig::default().parse_request_with_uninit_headers(
        &mut request,
        bytes,
        &mut headers,
    );
    match parsed {
        Ok(httparse::Status::Complete(length)) => {
            let framing = Framing::read(
                request
                    .headers
                    .iter()
                    .map(|header| (header.name, header.value)),
            );
            let verdict = framing.verdict();
            let next = match verdict {
                // The request is refused and its connection closed.
                HeadVerdict::Conflicting(_) => None,
                HeadVerdict::Clean => {
                    let upgrade = framing.upgrade || request.method == Some("CONNECT");
                    let http_11 = request.version == Some(1);
                    framing.body_state(http_11).filter(|_| !upgrade)
                }
            };
            Parsed::Complete(length, Head { verdict, next })
        }
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Err(_) => Parsed::Invalid,
    }
}

fn parse_chunk_size(bytes: &[u8]) -> Parsed<u64> {
    match httparse::parse_chunk_size(bytes) {
        Ok(httparse::Status::Complete((length, size))) => Parsed::Complete(length, size),
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Err(_) => Parsed::Invalid,
    }
}

/// What a head's header lines say about its body.
#[derive(Default)]
struct Framing<'a> {
    /// The first `Content-Length` value.
    length: Option<&'a [u8]>,
    /// Another `Content-Length` value differs from the first.
    lengths_differ: bool,
    transfer_encoding: bool,
    /// The last `Transfer-Encoding` line ends with `chunked` (as in hyper).
    chunked: bool,
    upgrade: bool,
}

impl<'a> Framing<'a> {
    fn read(headers: impl Iterator<Item = (&'a str, &'a [u8])>) -> Self {
        let mut framing = Framing::default();
        for (name, value) in headers {
            if name.eq_ignore_ascii_case("content-length") {
                match framing.length {
                    None => framing.length = Some(value),
                    Some(first) => framing.lengths_differ |= first != value,
                }
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                framing.transfer_encoding = true;
                framing.chunked = ends_chunked(value);
            } else if name.eq_ignore_ascii_case("upgrade") {
                framing.upgrade = true;
            }
        }
        framing
    }

    fn verdict(&self) -> HeadVerdict {
        if self.transfer_encoding && self.length.is_some() {
            HeadVerdict::Conflicting(Conflict::LengthWithTransferEncoding)
        } else if self.lengths_differ {
            HeadVerdict::Conflicting(Conflict::DifferingLengths)
        } else {
            HeadVerdict::Clean
        }
    }

    /// Where the body starts being followed; `None` for framing hyper
    /// refuses (the connection then ends).
    fn body_state(&self, http_11: bool) -> Option<State> {
        if self.transfer_encoding {
            return (self.chunked && http_11).then_some(State::ChunkSize);
        }
        match self.length {
            None => Some(State::Head),
            Some(value) => match decimal(value)? {
                0 => Some(State::Head),
                length => Some(State::Body(length)),
            },
        }
    }
}

/// A `Content-Length` value as hyper reads it: digits only.
fn decimal(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0u64, |number, &byte| {
        let digit = byte.is_ascii_digit().then(|| u64::from(byte - b'0'))?;
        number.checked_mul(10)?.checked_add(digit)
    })
}

/// Whether a `Transfer-Encoding` value's last coding is `chunked`.
fn ends_chunked(value: &[u8]) -> bool {
    value
        .rsplit(|&byte| byte == b',')
        .next()
        .is_some_and(|coding| coding.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    const LIMIT: usize = 64 * 1024;
    const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    const CONFLICTING: HeadVerdict = HeadVerdict::Conflicting(Conflict::LengthWithTransferEncoding);

    fn new_scan() -> Scan {
        Scan::new(LIMIT, Arc::new(HeadVerdicts::default()))
    }

    /// Feeds `input` in pieces of `piece` bytes.
    fn feed_in_pieces(scan: &mut Scan, input: &[u8], piece: usize) {
        for part in input.chunks(piece) {
            scan.feed(part);
        }
    }

    /// The verdicts on the first `count` requests.
    fn verdicts(scan: &Scan, count: usize) -> Vec<HeadVerdict> {
        (0..count).map(|_| scan.verdicts.next()).collect()
    }

    #[test]
    fn a_clean_get_is_clean() {
        let mut scan = new_scan();
        scan.feed(GET);
        assert_eq!(scan.heads, 1);
        assert_eq!(scan.state, State::Head);
        assert!(scan.pending.is_empty());
        assert_eq!(verdicts(&scan, 1), [HeadVerdict::Clean]);
    }

    #[test]
    fn pipelined_requests_get_their_verdicts_in_order() {
        let mut scan = new_scan();
        let mut input = Vec::new();
        input.extend_from_slice(GET);
        input.extend_from_slice(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
        input.extend_from_slice(GET);
        input.extend_from_slice(
            b"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        );
        scan.feed(&input);
        assert_eq!(scan.heads, 4);
        assert!(scan.stopped(), "a conflicting head ends the scan");
        assert_eq!(
            verdicts(&scan, 5),
            [
                HeadVerdict::Clean,
                HeadVerdict::Clean,
                HeadVerdict::Clean,
                CONFLICTING,
                HeadVerdict::Clean,
            ]
        );
    }

    #[test]
    fn length_with_transfer_encoding_conflicts_in_either_order() {
        for head in [
            &b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n",
            b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: gzip\r\ncontent-length: 4\r\n\r\n",
        ] {
            let mut scan = new_scan();
            scan.feed(head);
            assert_eq!(verdicts(&scan, 1), [CONFLICTING], "{head:?}");
        }
    }

    #[test]
    fn differing_content_lengths_conflict_and_equal_ones_do_not() {
        let mut scan = new_scan();
        scan.feed(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n");
        assert_eq!(
            verdicts(&scan, 1),
            [HeadVerdict::Conflicting(Conflict::DifferingLengths)]
        );

        let mut scan = new_scan();
        scan.feed(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
        );
        scan.feed(GET);
        assert_eq!(scan.heads, 2);
        assert_eq!(verdicts(&scan, 2), [HeadVerdict::Clean; 2]);
    }

    #[test]
    fn a_chunked_body_with_extensions_and_trailers_is_skipped_to_the_next_head() {
        let chunked = b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n\
            5;name=value;other\r\nhello\r\n\
            A \t; ext=\"quoted\"\r\n0123456789\r\n\
            0;last\r\nX-Trailer: 1\r\nX-Other: two\r\n\r\n";
        let conflicting =
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let mut input = Vec::new();
        input.extend_from_slice(chunked);
        input.extend_from_slice(conflicting);
        for piece in [input.len(), 1, 2, 3, 7, 16] {
            let mut scan = new_scan();
            feed_in_pieces(&mut scan, &input, piece);
            assert_eq!(scan.heads, 2, "pieces of {piece}");
            assert_eq!(
                verdicts(&scan, 2),
                [HeadVerdict::Clean, CONFLICTING],
                "pieces of {piece}"
            );
        }
        // Without trailers, too.
        let mut scan = new_scan();
        scan.feed(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
        scan.feed(GET);
        assert_eq!(scan.heads, 2);
        assert_eq!(scan.state, State::Head);
    }

    #[test]
    fn every_split_of_two_requests_finds_both_heads() {
        let mut input = Vec::new();
        input.extend_from_slice(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
        input.extend_from_slice(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2;x\r\nab\r\n0\r\nT: 1\r\n\r\n");
        input.extend_from_slice(
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        );
        for split in 0..=input.len() {
            let mut scan = new_scan();
            scan.feed(&input[..split]);
            scan.feed(&input[split..]);
            assert_eq!(scan.heads, 3, "split at {split}");
            assert_eq!(
                verdicts(&scan, 3),
                [
                    HeadVerdict::Clean,
                    HeadVerdict::Clean,
                    HeadVerdict::Conflicting(Conflict::DifferingLengths)
                ],
                "split at {split}"
            );
        }
    }

    #[test]
    fn a_content_length_body_split_across_many_small_reads_is_skipped() {
        // A body that looks like conflicting heads: none of it may be judged.
        let fake = b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let body: Vec<u8> = fake.iter().copied().cycle().take(1000).collect();
        let mut scan = new_scan();
        scan.feed(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n");
        assert_eq!(scan.state, State::Body(1000));
        feed_in_pieces(&mut scan, &body, 3);
        assert_eq!(scan.state, State::Head);
        scan.feed(GET);
        assert_eq!(scan.heads, 2);
        assert_eq!(verdicts(&scan, 2), [HeadVerdict::Clean; 2]);
    }

    #[test]
    fn a_head_split_across_reads_is_judged_once_whole() {
        let head =
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n";
        for piece in [1, 2, 5, 40] {
            let mut scan = new_scan();
            feed_in_pieces(&mut scan, &head[..head.len() - 1], piece);
            assert_eq!(scan.heads, 0, "judged before the head was whole");
            assert!(!scan.pending.is_empty());
            scan.feed(&head[head.len() - 1..]);
            assert_eq!(scan.heads, 1);
            assert_eq!(verdicts(&scan, 1), [CONFLICTING]);
        }
    }

    #[test]
    fn garbage_stops_the_scan() {
        for garbage in [
            &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"[..],
            b"GET / HTTP/1.1\r\nBad Name: 1\r\n\r\n",
            b"GET / HTTP/2.0\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcd\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            let mut scan = new_scan();
            scan.feed(garbage);
            assert!(scan.stopped(), "{garbage:?}");
            let heads = scan.heads;
            scan.feed(
                b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            );
            assert_eq!(scan.heads, heads, "judged a head after stopping");
            assert_eq!(verdicts(&scan, 3), [HeadVerdict::Clean; 3]);
        }
    }

    #[test]
    fn a_head_over_the_limit_stops_the_scan() {
        let mut scan = Scan::new(64, Arc::new(HeadVerdicts::default()));
        scan.feed(b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: ");
        scan.feed(&[b'a'; 40]);
        assert!(scan.stopped());
        assert_eq!(scan.pending.capacity(), 0, "the buffer was kept");
    }

    #[test]
    fn an_upgrade_or_connect_stops_the_scan() {
        for head in [
            &b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"[..],
            b"CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n",
        ] {
            let mut scan = new_scan();
            scan.feed(head);
            assert_eq!(scan.heads, 1);
            assert!(scan.stopped(), "{head:?}");
            // What follows is not HTTP, even if it looks like it.
            scan.feed(
                b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            );
            assert_eq!(verdicts(&scan, 2), [HeadVerdict::Clean; 2]);
        }
    }

    #[test]
    fn headers_received_whole_are_judged_alike() {
        let mut headers = HeaderMap::new();
        headers.append(http::header::CONTENT_LENGTH, "5".parse().unwrap());
        assert_eq!(HeadVerdict::of_headers(&headers), HeadVerdict::Clean);
        headers.append(http::header::CONTENT_LENGTH, "5".parse().unwrap());
        assert_eq!(HeadVerdict::of_headers(&headers), HeadVerdict::Clean);
        headers.append(http::header::CONTENT_LENGTH, "6".parse().unwrap());
        assert_eq!(
            HeadVerdict::of_headers(&headers),
            HeadVerdict::Conflicting(Conflict::DifferingLengths)
        );
        headers.append(http::header::TRANSFER_ENCODING, "chunked".parse().unwrap());
        assert_eq!(HeadVerdict::of_headers(&headers), CONFLICTING);
    }

    #[tokio::test]
    async fn bytes_pass_through_unchanged_both_ways() {
        let (client, server) = tokio::io::duplex(64);
        let verdicts = Arc::new(HeadVerdicts::default());
        let mut scanner = HeadScanner::new(server, LIMIT, Arc::clone(&verdicts));
        let mut sent = Vec::new();
        for _ in 0..20 {
            sent.extend_from_slice(GET);
            sent.extend_from_slice(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
        }
        sent.extend_from_slice(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        );
        let (mut client_read, mut client_write) = tokio::io::split(client);
        let writer = {
            let sent = sent.clone();
            tokio::spawn(async move {
                // Written in uneven pieces; the duplex splits them further.
                for piece in sent.chunks(13) {
                    client_write.write_all(piece).await.unwrap();
                }
                client_write.shutdown().await.unwrap();
            })
        };
        let mut received = Vec::new();
        let mut buffer = [0u8; 7];
        loop {
            let read = scanner.read(&mut buffer).await.unwrap();
            if read == 0 {
                break;
            }
            received.extend_from_slice(&buffer[..read]);
        }
        writer.await.unwrap();
        assert_eq!(received, sent);
        let mut expected = vec![HeadVerdict::Clean; 40];
        expected.push(CONFLICTING);
        assert_eq!(
            (0..41).map(|_| verdicts.next()).collect::<Vec<_>>(),
            expected
        );

        scanner
            .write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            .await
            .unwrap();
        scanner.flush().await.unwrap();
        let mut answer = [0u8; 28];
        client_read.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"HTTP/1.1 400 Bad Request\r\n\r\n");
    }

    /// hyper's own server reads the same stream and asks for a verdict per
    /// request: the two agree on where every request starts.
    #[tokio::test]
    async fn hyper_takes_one_verdict_per_request_in_step_with_the_scanner() {
        use std::convert::Infallible;

        use hyper::service::service_fn;
        use hyper_util::rt::TokioIo;

        let (client, server) = tokio::io::duplex(16);
        let verdicts = Arc::new(HeadVerdicts::default());
        let io = HeadScanner::new(server, LIMIT, Arc::clone(&verdicts));
        let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
            let verdict = verdicts.next();
            async move {
                use http_body_util::BodyExt;
                let path = request.uri().path().to_string();
                let body = request
                    .into_body()
                    .collect()
                    .await
                    .map(|body| body.to_bytes().len());
                let answer = format!("{path} {verdict:?} {body:?}");
                Ok::<_, Infallible>(http::Response::new(http_body_util::Full::new(
                    bytes::Bytes::from(answer),
                )))
            }
        });
        let connection = tokio::spawn(
            hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(io), service),
        );
        let requests: &[&[u8]] = &[
            b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n",
            b"POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
            b"POST /3 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
              4;ext=1\r\nabcd\r\n0\r\nX-Trailer: yes\r\n\r\n",
            b"POST /4 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n\
              0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
        ];
        let writer = tokio::spawn({
            let sent: Vec<u8> = requests.concat();
            let (mut read_half, mut write_half) = tokio::io::split(client);
            async move {
                let mut answers = Vec::new();
                let (written, read) = tokio::join!(
                    write_half.write_all(&sent),
                    read_half.read_to_end(&mut answers)
                );
                // hyper closes after the conflicting request: the rest of
                // the bytes may find the connection gone.
                let _ = written;
                read.unwrap();
                answers
            }
        });
        let answers = writer.await.unwrap();
        connection.await.unwrap().unwrap();
        let answers = String::from_utf8(answers).unwrap();
        for expected in [
            "/1 Clean Ok(0)",
            "/2 Clean Ok(5)",
            "/3 Clean Ok(4)",
            "/4 Conflicting(LengthWithTransferEncoding) Ok(0)",
        ] {
            assert!(answers.contains(expected), "{expected} not in {answers}");
        }
        assert!(!answers.contains("/smuggled"), "{answers}");
    }
}
