//! Response heads cut to size before hyper parses them.
//!
//! hyper refuses a response head over about 400 KB or 100 headers ("message head is too large").
//! A receiver that accepted a delivery but answered with such a head would then count as failed
//! and get the delivery again on every retry. So the connection is wrapped between TLS and hyper:
//! each response head passes with its status line, its framing headers (`content-length`,
//! `transfer-encoding`, `connection`), at most [`MAX_STORED_RESPONSE_HEADERS`] other headers and
//! [`MAX_STORED_RESPONSE_HEADER_BYTES`] of them, and a synthetic [`OMITTED_HEADER`] saying how many
//! it left out. Bodies pass untouched, and the status is read whatever the head's size.
//!
//! Where a response head starts is known from the requests written: hyper sends one request at a
//! time per connection, each body framed by `content-length`, and reuses a connection only once
//! the previous response is complete; so the bytes read after a request begins are its response
//! (1xx interim heads first).

use puck_core::ports::{MAX_STORED_RESPONSE_HEADERS, MAX_STORED_RESPONSE_HEADER_BYTES};
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The header the filter adds when it left headers out; its value is how many.
pub const OMITTED_HEADER: &str = "x-puck-omitted-headers";
/// Longest line kept; a longer header is left out, a longer status line is cut.
const MAX_LINE: usize = 8 * 1024;
/// Framing headers kept per head (a few are legitimate; thousands are an attack).
const MAX_FRAMING: usize = 8;

/// Where the request stream is: between requests, in a request head, or in its body.
#[derive(Debug, Default)]
enum Writing {
    #[default]
    Idle,
    Head(Vec<u8>),
    Body(u64),
}

impl Writing {
    /// Follows the bytes the transport accepted; true when a new request began among them.
    fn wrote(&mut self, mut bytes: &[u8]) -> bool {
        let mut started = false;
        while !bytes.is_empty() {
            match self {
                Self::Idle => {
                    started = true;
                    *self = Self::Head(Vec::new());
                }
                Self::Head(head) => {
                    let searched_from = head.len().saturating_sub(3);
                    let old = head.len();
                    head.extend_from_slice(bytes);
                    match find(&head[searched_from..], b"\r\n\r\n") {
                        Some(at) => {
                            let end = searched_from + at + 4;
                            bytes = &bytes[end - old..];
                            let length = content_length(&head[..end]);
                            *self = if length == 0 { Self::Idle } else { Self::Body(length) };
                        }
                        None => bytes = &[],
                    }
                }
                Self::Body(remaining) => {
                    let n = (*remaining).min(bytes.len() as u64);
                    *remaining -= n;
                    bytes = &bytes[n as usize..];
                    if *remaining == 0 {
                        *self = Self::Idle;
                    }
                }
            }
        }
        started
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The `content-length` of a request head (0 when absent: our requests always carry one).
fn content_length(head: &[u8]) -> u64 {
    String::from_utf8_lossy(head)
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0)
}

/// Where the response stream is.
#[derive(Debug, Default, PartialEq, Eq)]
enum Reading {
    /// A body, or anything before the first request: passed as is.
    #[default]
    Through,
    Status,
    Fields,
}

/// The response-head filter: a line machine over the bytes read.
#[derive(Debug, Default)]
pub struct Heads {
    state: Reading,
    line: Vec<u8>,
    line_cut: bool,
    status: u16,
    kept: usize,
    kept_bytes: usize,
    framing: usize,
    omitted: u32,
}

impl Heads {
    /// A request began: what is read next is its response head.
    pub fn expect_head(&mut self) {
        *self = Self { state: Reading::Status, ..Self::default() };
    }

    /// Filters `input`, appending what hyper should read to `out`.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        while !input.is_empty() {
            if self.state == Reading::Through {
                out.extend_from_slice(input);
                return;
            }
            let (chunk, complete) = match input.iter().position(|&b| b == b'\n') {
                Some(i) => (&input[..=i], true),
                None => (input, false),
            };
            input = &input[chunk.len()..];
            let room = MAX_LINE.saturating_sub(self.line.len());
            self.line_cut |= chunk.len() > room;
            self.line.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if complete {
                self.end_line(out);
            }
        }
    }

    fn end_line(&mut self, out: &mut Vec<u8>) {
        let raw = std::mem::take(&mut self.line);
        let cut = std::mem::take(&mut self.line_cut);
        let end = raw.iter().rposition(|&b| b != b'\r' && b != b'\n').map_or(0, |i| i + 1);
        let line = &raw[..end];
        if self.state == Reading::Status {
            self.status = line.get(9..12).and_then(|s| std::str::from_utf8(s).ok()?.parse().ok()).unwrap_or(0);
            emit(out, line);
            self.state = Reading::Fields;
            return;
        }
        if line.is_empty() {
            if self.omitted > 0 {
                out.extend_from_slice(format!("{OMITTED_HEADER}: {}\r\n", self.omitted).as_bytes());
            }
            out.extend_from_slice(b"\r\n");
            let interim = (100..200).contains(&self.status) && self.status != 101;
            if interim {
                self.expect_head();
            } else {
                self.state = Reading::Through;
            }
            return;
        }
        if self.keeps(line, cut) {
            emit(out, line);
        } else {
            self.omitted = self.omitted.saturating_add(1);
        }
    }

    /// Whether a header line passes (and counts it against the caps).
    fn keeps(&mut self, line: &[u8], cut: bool) -> bool {
        // A cut line, an obsolete folded continuation, or a forged marker never passes.
        if cut || line[0] == b' ' || line[0] == b'\t' {
            return false;
        }
        let name = line.split(|&b| b == b':').next().unwrap_or_default().trim_ascii().to_ascii_lowercase();
        match name.as_slice() {
            n if n == OMITTED_HEADER.as_bytes() => false,
            b"content-length" | b"transfer-encoding" | b"connection" => {
                self.framing += 1;
                self.framing <= MAX_FRAMING
            }
            _ => {
                let fits = self.kept < MAX_STORED_RESPONSE_HEADERS
                    && self.kept_bytes + line.len() <= MAX_STORED_RESPONSE_HEADER_BYTES;
                if fits {
                    self.kept += 1;
                    self.kept_bytes += line.len();
                }
                fits
            }
        }
    }
}

fn emit(out: &mut Vec<u8>, line: &[u8]) {
    out.extend_from_slice(line);
    out.extend_from_slice(b"\r\n");
}

/// A connection whose response heads go through [`Heads`].
#[derive(Debug)]
pub struct Filtered<T> {
    inner: T,
    writing: Writing,
    heads: Heads,
    pending: Vec<u8>,
    pending_at: usize,
}

impl<T> Filtered<T> {
    pub fn new(inner: T) -> Self {
        Self { inner, writing: Writing::default(), heads: Heads::default(), pending: Vec::new(), pending_at: 0 }
    }

    /// The wrapped connection.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Filtered<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.pending_at < this.pending.len() {
                let n = buf.remaining().min(this.pending.len() - this.pending_at);
                buf.put_slice(&this.pending[this.pending_at..this.pending_at + n]);
                this.pending_at += n;
                if this.pending_at == this.pending.len() {
                    this.pending.clear();
                    this.pending_at = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.heads.state == Reading::Through {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            let mut scratch = [0u8; 8192];
            let mut read = ReadBuf::new(&mut scratch);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            if read.filled().is_empty() {
                return Poll::Ready(Ok(()));
            }
            this.heads.feed(read.filled(), &mut this.pending);
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Filtered<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
        if this.writing.wrote(&buf[..n]) {
            this.heads.expect_head();
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(heads: &mut Heads, input: &[u8], chunk: usize) -> String {
        let mut out = Vec::new();
        for piece in input.chunks(chunk) {
            heads.feed(piece, &mut out);
        }
        String::from_utf8(out).unwrap()
    }

    fn huge_head(headers: usize, value_len: usize) -> Vec<u8> {
        let mut head = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n".to_vec();
        for i in 0..headers {
            head.extend_from_slice(format!("x-h{i}: {}\r\n", "v".repeat(value_len)).as_bytes());
        }
        head.extend_from_slice(b"\r\nok");
        head
    }

    #[test]
    fn a_small_head_passes_unchanged_in_any_chunking() {
        let response = b"HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello";
        for chunk in [1, 3, 7, 1000] {
            let mut heads = Heads::default();
            heads.expect_head();
            assert_eq!(filter(&mut heads, response, chunk).as_bytes(), response, "chunk {chunk}");
        }
    }

    #[test]
    fn a_huge_head_is_cut_to_the_caps_with_the_count_of_what_was_left_out() {
        for (count, len) in [(5_000, 10), (200, 3_000), (3, 100_000)] {
            let mut heads = Heads::default();
            heads.expect_head();
            let out = filter(&mut heads, &huge_head(count, len), 4096);
            let (head, body) = out.split_once("\r\n\r\n").unwrap();
            assert_eq!(body, "ok");
            let lines: Vec<&str> = head.lines().collect();
            assert_eq!(lines[0], "HTTP/1.1 200 OK");
            assert_eq!(lines[1], "content-length: 2");
            let marker = lines.last().unwrap().strip_prefix("x-puck-omitted-headers: ").unwrap();
            let kept = lines.len() - 3;
            assert_eq!(kept + marker.parse::<usize>().unwrap(), count, "{count}x{len}");
            assert!(kept <= MAX_STORED_RESPONSE_HEADERS && head.len() < 2 * MAX_STORED_RESPONSE_HEADER_BYTES);
        }
    }

    #[test]
    fn interim_heads_are_followed_by_the_final_one_and_forged_markers_dropped() {
        let mut heads = Heads::default();
        heads.expect_head();
        let input = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nx-puck-omitted-headers: 9\r\n \tfolded\r\ncontent-length: 0\r\n\r\n";
        let out = filter(&mut heads, input, 5);
        assert_eq!(
            out,
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 0\r\nx-puck-omitted-headers: 2\r\n\r\n"
        );
        // What follows the head is body, passed through even if it looks like headers.
        assert_eq!(filter(&mut heads, b"x: y\r\n\r\n", 3), "x: y\r\n\r\n");
    }

    #[test]
    fn requests_are_followed_through_head_and_content_length_body() {
        let mut writing = Writing::default();
        let request = b"POST /hook HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\n\r\nbody";
        assert!(writing.wrote(&request[..10]));
        assert!(!writing.wrote(&request[10..50]));
        assert!(!writing.wrote(&request[50..]));
        assert!(matches!(writing, Writing::Idle));
        // Head and body in one write, then the next request.
        assert!(writing.wrote(request));
        assert!(writing.wrote(b"POST / HTTP/1.1\r\n"));
    }
}
