//! Reading the log from a point in time without reading all of it.
//!
//! Records are appended in time order: `time` is read from the clock just
//! before the record is appended, so two records can be out of order by at
//! most the time one request takes between reading the clock and appending
//! (plus any step back of the wall clock). Callers that search from a time
//! subtract a margin larger than that (see `recent::REPEAT_MARGIN_SECS`).
//!
//! [`first_at_or_after`] finds, by binary search over byte offsets, the first
//! line whose record's `time` is at or after a given time, reading
//! O(log n) lines; [`for_each_line_from`] then streams the lines from there.
//! Both look only at the bytes present when the caller measured the file,
//! and ignore a last line without its newline: the log may be appended to
//! while they read, and a line is complete only with its `\n`.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;

use serde::Deserialize;

/// The longest line the search reads; a record is a few KiB (its
/// certificate, base64), so a longer "line" means the file is not a log.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// The part of a record the binary search needs.
#[derive(Deserialize)]
struct Time {
    time: i64,
}

/// The start of the first line that begins at or after `pos` and is
/// complete within `len` bytes, if any: `pos` itself when it is 0 or
/// follows a newline, else the byte after the next newline.
fn line_start_at_or_after(file: &File, pos: u64, len: u64) -> io::Result<Option<u64>> {
    if pos == 0 {
        return Ok((len > 0).then_some(0));
    }
    let mut at = pos - 1;
    let mut buf = [0u8; 4096];
    while at < len {
        let want = usize::try_from((len - at).min(buf.len() as u64)).unwrap_or(buf.len());
        let n = file.read_at(&mut buf[..want], at)?;
        if n == 0 {
            return Ok(None);
        }
        if let Some(i) = buf[..n].iter().position(|b| *b == b'\n') {
            let start = at + i as u64 + 1;
            return Ok((start < len).then_some(start));
        }
        at += n as u64;
    }
    Ok(None)
}

/// The complete line starting at `start` (without its newline) and the
/// start of the next one, if the line ends within `len` bytes.
fn line_at(file: &File, start: u64, len: u64) -> io::Result<Option<(Vec<u8>, u64)>> {
    let mut line = Vec::new();
    let mut at = start;
    let mut buf = [0u8; 8192];
    while at < len {
        let want = usize::try_from((len - at).min(buf.len() as u64)).unwrap_or(buf.len());
        let n = file.read_at(&mut buf[..want], at)?;
        if n == 0 {
            return Ok(None);
        }
        if let Some(i) = buf[..n].iter().position(|b| *b == b'\n') {
            line.extend_from_slice(&buf[..i]);
            return Ok(Some((line, at + i as u64 + 1)));
        }
        line.extend_from_slice(&buf[..n]);
        if line.len() > MAX_LINE_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "audit log line longer than 1 MiB",
            ));
        }
        at += n as u64;
    }
    Ok(None)
}

/// The byte offset of the first line, among the first `len` bytes of
/// `file`, whose record's `time` is at or after `time` (`len` when there is
/// none). Binary search over byte offsets: it reads O(log n) lines.
pub fn first_at_or_after(file: &File, len: u64, time: i64) -> io::Result<u64> {
    // Invariant: `lo` is a line start and every line starting before it
    // has an earlier time; every line starting at or after `hi` is at or
    // after `time`.
    let (mut lo, mut hi) = (0u64, len);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let Some(start) = line_start_at_or_after(file, mid, len)?.filter(|s| *s < hi) else {
            // No line starts in [mid, hi).
            hi = mid;
            continue;
        };
        let Some((line, next)) = line_at(file, start, len)? else {
            // A torn last line: nothing at or after it counts.
            hi = start;
            continue;
        };
        let record: Time = serde_json::from_slice(&line).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("audit log line at byte {start} has no time: {e}"),
            )
        })?;
        if record.time < time {
            lo = next;
        } else {
            hi = start;
        }
    }
    Ok(lo)
}

/// Hands `f` each complete line (without its newline) from byte `start` up
/// to byte `len` of `file`, in order; a last line without a newline is
/// ignored. Memory stays flat: one line at a time.
pub fn for_each_line_from(
    file: &mut File,
    start: u64,
    len: u64,
    mut f: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    file.seek(SeekFrom::Start(start))?;
    let mut reader = BufReader::new(Read::take(&mut *file, len.saturating_sub(start)));
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        let Some(line) = buf.strip_suffix(b"\n") else {
            // Torn: being appended right now.
            return Ok(());
        };
        f(line)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A file of lines `{"time":t,"n":i}` for `times`, and its path.
    fn log_of(times: &[i64], torn_tail: &str) -> (tempfile::NamedTempFile, u64) {
        let mut f = tempfile::NamedTempFile::new().expect("temp");
        for (i, t) in times.iter().enumerate() {
            // Lines of different lengths, as real records are.
            let pad = "x".repeat(i * 37 % 200);
            writeln!(f, "{{\"seq\":{i},\"time\":{t},\"pad\":\"{pad}\"}}").expect("write");
        }
        f.write_all(torn_tail.as_bytes()).expect("write");
        f.flush().expect("flush");
        let len = f.as_file().metadata().expect("meta").len();
        (f, len)
    }

    fn times_from(file: &mut File, start: u64, len: u64) -> Vec<i64> {
        let mut out = Vec::new();
        for_each_line_from(file, start, len, |line| {
            let t: Time = serde_json::from_slice(line).expect("json");
            out.push(t.time);
            Ok(())
        })
        .expect("scan");
        out
    }

    #[test]
    fn finds_the_first_line_at_or_after_a_time() {
        let times: Vec<i64> = (0..500).map(|i| 1000 + i / 3).collect();
        for torn in ["", "{\"seq\":500,\"time\":99"] {
            let (f, len) = log_of(&times, torn);
            let mut file = f.reopen().expect("reopen");
            for target in [0, 999, 1000, 1001, 1050, 1166, 1167, 5000] {
                let start = first_at_or_after(&file, len, target).expect("search");
                let got = times_from(&mut file, start, len);
                let want: Vec<i64> = times.iter().copied().filter(|t| *t >= target).collect();
                assert_eq!(got, want, "target {target}, torn {torn:?}");
            }
        }
    }

    #[test]
    fn empty_and_single_line_logs() {
        let (f, len) = log_of(&[], "");
        let file = f.reopen().expect("reopen");
        assert_eq!(first_at_or_after(&file, len, 5).expect("search"), 0);
        let (f, len) = log_of(&[7], "");
        let file = f.reopen().expect("reopen");
        assert_eq!(first_at_or_after(&file, len, 7).expect("search"), 0);
        assert_eq!(first_at_or_after(&file, len, 8).expect("search"), len);
        let (f, len) = log_of(&[], "{\"time\":3");
        let mut file = f.reopen().expect("reopen");
        assert_eq!(times_from(&mut file, 0, len), Vec::<i64>::new());
    }
}
