//! Bytes in: transparent gzip and zip, hard caps on sizes, bounded line reading.
//!
//! Feed content is hostile until proven otherwise. Every byte a parser sees passes through a
//! [`Capped`] reader (decompressed size), lines longer than [`Limits::max_line`] are skipped
//! without being buffered, and whole-document formats are read only up to
//! [`Limits::max_document`]. Memory use is therefore bounded by the limits, not by the input.

use std::io::{self, BufRead, BufReader, Cursor, Read};

use super::{Limits, ParseError};

/// Counts decompressed bytes and fails (rather than truncating silently) past the limit.
pub(crate) struct Capped<R> {
    inner: R,
    read: u64,
    max: u64,
}

impl<R: Read> Capped<R> {
    pub(crate) fn new(inner: R, max: u64) -> Self {
        Capped {
            inner,
            read: 0,
            max,
        }
    }
}

/// The marker error a [`Capped`] reader returns; turned into [`ParseError::TooLarge`].
#[derive(Debug)]
pub(crate) struct OverLimit(pub(crate) u64);

impl std::fmt::Display for OverLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "more than {} bytes of content", self.0)
    }
}

impl std::error::Error for OverLimit {}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.max {
            return Err(io::Error::other(OverLimit(self.max)));
        }
        Ok(n)
    }
}

/// Maps an I/O error, recognising the cap marker.
pub(crate) fn io_error(e: io::Error) -> ParseError {
    if let Some(limit) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<OverLimit>())
    {
        return ParseError::TooLarge {
            what: "decompressed content",
            limit: limit.0,
        };
    }
    if e.kind() == io::ErrorKind::InvalidData || e.kind() == io::ErrorKind::InvalidInput {
        return ParseError::Corrupt(e.to_string());
    }
    ParseError::Io(e)
}

/// What [`documents`] calls for each document: its name inside an archive, and its bytes.
pub(crate) type DocumentFn<'a> =
    dyn FnMut(Option<&str>, &mut dyn BufRead) -> Result<(), ParseError> + 'a;

/// Hands each document inside `input` to `each`: the input itself, its gzip-decompressed
/// content, or every file member of a zip archive in order (with its name).
pub(crate) fn documents(
    input: &mut dyn Read,
    limits: &Limits,
    each: &mut DocumentFn<'_>,
) -> Result<(), ParseError> {
    let mut reader = BufReader::with_capacity(256 * 1024, input);
    let head = reader.fill_buf().map_err(io_error)?;
    if head.starts_with(&[0x1f, 0x8b]) {
        let gz = flate2::bufread::MultiGzDecoder::new(reader);
        let mut capped =
            BufReader::with_capacity(256 * 1024, Capped::new(gz, limits.max_decompressed));
        return each(None, &mut capped);
    }
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        // Zip needs random access: the archive is read into memory, bounded.
        let mut archive = Vec::new();
        Capped::new(reader, limits.max_document)
            .read_to_end(&mut archive)
            .map_err(|e| match io_error(e) {
                ParseError::TooLarge { limit, .. } => ParseError::TooLarge {
                    what: "zip archive",
                    limit,
                },
                other => other,
            })?;
        let mut zip = zip::ZipArchive::new(Cursor::new(archive))
            .map_err(|e| ParseError::Corrupt(format!("zip archive: {e}")))?;
        let mut budget = limits.max_decompressed;
        for i in 0..zip.len() {
            let member = zip
                .by_index(i)
                .map_err(|e| ParseError::Corrupt(format!("zip member {i}: {e}")))?;
            if member.is_dir() {
                continue;
            }
            let name = member.name().to_owned();
            // The declared size may lie; the cap counts what is really inflated.
            let capped = Capped::new(member, budget);
            let mut counted = CountingReader::new(capped);
            {
                let mut buffered = BufReader::with_capacity(256 * 1024, &mut counted);
                each(Some(&name), &mut buffered)?;
            }
            budget = budget.saturating_sub(counted.count);
        }
        return Ok(());
    }
    let mut capped =
        BufReader::with_capacity(256 * 1024, Capped::new(reader, limits.max_decompressed));
    each(None, &mut capped)
}

struct CountingReader<R> {
    inner: R,
    count: u64,
}

impl<R> CountingReader<R> {
    fn new(inner: R) -> Self {
        CountingReader { inner, count: 0 }
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// Reads a whole document (JSON formats) into memory, up to the document limit.
pub(crate) fn read_document(
    input: &mut dyn BufRead,
    limits: &Limits,
) -> Result<Vec<u8>, ParseError> {
    let mut out = Vec::new();
    Capped::new(input, limits.max_document)
        .read_to_end(&mut out)
        .map_err(|e| match io_error(e) {
            ParseError::TooLarge { limit, .. } => ParseError::TooLarge {
                what: "JSON document",
                limit,
            },
            other => other,
        })?;
    Ok(out)
}

/// One line as the reader found it.
pub(crate) enum Line {
    /// A line of valid UTF-8, without its line ending (read it with [`Lines::text`]).
    Text,
    /// A line longer than the limit (its length), skipped without being kept.
    TooLong(u64),
    /// A line that is not UTF-8 (the offset of the first bad byte).
    NotUtf8(usize),
}

/// Line reader with a length cap: memory stays at `max_line` whatever the input.
pub(crate) struct Lines<'r> {
    inner: &'r mut dyn BufRead,
    buf: Vec<u8>,
    max: usize,
    /// 1-based number of the line last returned.
    pub(crate) number: u64,
}

impl<'r> Lines<'r> {
    pub(crate) fn new(inner: &'r mut dyn BufRead, limits: &Limits) -> Self {
        Lines {
            inner,
            buf: Vec::new(),
            max: limits.max_line,
            number: 0,
        }
    }

    /// The next line, or `None` at the end.
    pub(crate) fn next_line(&mut self) -> Result<Option<Line>, ParseError> {
        self.buf.clear();
        let mut total: u64 = 0;
        let mut too_long = false;
        loop {
            let available = self.inner.fill_buf().map_err(io_error)?;
            if available.is_empty() {
                if total == 0 {
                    return Ok(None);
                }
                break;
            }
            let (chunk, found) = match memchr_newline(available) {
                Some(i) => (&available[..i], true),
                None => (available, false),
            };
            total += chunk.len() as u64;
            if !too_long {
                if self.buf.len() + chunk.len() > self.max {
                    too_long = true;
                    self.buf.clear();
                } else {
                    self.buf.extend_from_slice(chunk);
                }
            }
            let consumed = chunk.len() + usize::from(found);
            self.inner.consume(consumed);
            if found {
                total += 1;
                break;
            }
        }
        self.number += 1;
        if too_long {
            return Ok(Some(Line::TooLong(total)));
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        match std::str::from_utf8(&self.buf) {
            Ok(_) => Ok(Some(Line::Text)),
            Err(e) => Ok(Some(Line::NotUtf8(e.valid_up_to()))),
        }
    }
}

impl Lines<'_> {
    /// Moves to the next line that is valid UTF-8 within the length limit, reporting every line
    /// skipped on the way. `false` at the end of the input; the line is then [`Lines::text`].
    pub(crate) fn advance(&mut self, ctx: &mut super::Ctx<'_>) -> Result<bool, ParseError> {
        loop {
            let number = self.number + 1;
            match self.next_line()? {
                None => return Ok(false),
                Some(Line::Text) => return Ok(true),
                Some(Line::TooLong(len)) => {
                    let max = ctx.limits().max_line;
                    ctx.problem(
                        number,
                        None,
                        format!("line of {len} bytes exceeds the limit of {max}; skipped"),
                    );
                }
                Some(Line::NotUtf8(at)) => ctx.problem(
                    number,
                    None,
                    format!("not valid UTF-8 (byte {at}); skipped"),
                ),
            }
        }
    }

    /// The line [`Lines::advance`] moved to.
    pub(crate) fn text(&self) -> &str {
        std::str::from_utf8(&self.buf).unwrap_or_default()
    }
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

/// The 1-based line of byte `offset` in `text`, counted incrementally: callers walk a
/// document's objects in order, so each call only scans the bytes since the previous one.
pub(crate) struct LineCounter<'a> {
    text: &'a [u8],
    offset: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    pub(crate) fn new(text: &'a [u8]) -> Self {
        LineCounter {
            text,
            offset: 0,
            line: 1,
        }
    }

    /// The line on which the sub-slice `part` of the document starts.
    pub(crate) fn line_of(&mut self, part: &str) -> u64 {
        let start = (part.as_ptr() as usize).saturating_sub(self.text.as_ptr() as usize);
        let start = start.min(self.text.len());
        if start < self.offset {
            self.offset = 0;
            self.line = 1;
        }
        self.line += self.text[self.offset..start]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64;
        self.offset = start;
        self.line
    }
}
