//! Standard error for the log, one event at a time and never longer than [`MAX_LINE`]: whatever
//! ends up in a field (a target's error, a rejected request, a label value quoted in a message) is
//! bounded here once, instead of trusting every call site to cut its own input.

use std::io::Write;

use tracing_subscriber::fmt::MakeWriter;

/// Longest log line written; the rest is replaced by a note of how many bytes were cut.
pub const MAX_LINE: usize = 16 * 1024;

/// A [`MakeWriter`] giving each event a buffer that goes to stderr, cut, in one write when dropped.
#[derive(Debug, Clone, Copy, Default)]
pub struct BoundedStderr;

impl<'a> MakeWriter<'a> for BoundedStderr {
    type Writer = EventBuffer;

    fn make_writer(&'a self) -> EventBuffer {
        EventBuffer(Vec::new())
    }
}

/// One event's formatted bytes.
#[derive(Debug)]
pub struct EventBuffer(Vec<u8>);

impl Write for EventBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for EventBuffer {
    fn drop(&mut self) {
        cut(&mut self.0, MAX_LINE);
        // Nowhere to report a failure to write the log.
        let _ = std::io::stderr().lock().write_all(&self.0);
    }
}

/// Cuts `line` to `max` bytes (at a UTF-8 character boundary) plus a note, keeping its newline.
fn cut(line: &mut Vec<u8>, max: usize) {
    if line.len() <= max {
        return;
    }
    let mut end = max;
    while end > 0 && (line[end] & 0xc0) == 0x80 {
        end -= 1;
    }
    let removed = line.len() - end;
    line.truncate(end);
    line.extend_from_slice(format!("…[{removed} bytes cut]\n").as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_lines_pass_unchanged() {
        let mut l = b"level=info msg=hello\n".to_vec();
        cut(&mut l, 64);
        assert_eq!(l, b"level=info msg=hello\n");
    }

    #[test]
    fn long_lines_are_cut_at_a_character_boundary_with_a_note() {
        let mut l = format!("msg=\"{}\"\n", "é".repeat(100)).into_bytes();
        let len = l.len();
        cut(&mut l, 10);
        let s = String::from_utf8(l).expect("still UTF-8");
        // "msg=\"" is 5 bytes, then two-byte characters: byte 10 is inside the third one.
        assert_eq!(s, format!("msg=\"éé…[{} bytes cut]\n", len - 9));
    }

    #[test]
    fn a_megabyte_field_becomes_a_bounded_line() {
        let mut l = format!("error=\"{}\"\n", "x".repeat(1 << 20)).into_bytes();
        cut(&mut l, MAX_LINE);
        assert!(l.len() < MAX_LINE + 64, "{}", l.len());
        assert!(l.ends_with(b" bytes cut]\n"));
    }
}
