//! One direction of a TCP connection put back in order, enough to read what an app says
//! first: segments are delivered in sequence order; retransmissions and overlaps are
//! trimmed to the bytes not yet delivered; segments ahead of a gap wait, within
//! [`MAX_PENDING_BYTES`] and [`MAX_PENDING_SEGMENTS`] (beyond, they are dropped, as a
//! receiver with a full window would). Sequence numbers wrap (RFC 9293 section 3.4).

/// Out-of-order bytes held per direction at most.
pub const MAX_PENDING_BYTES: usize = 64 * 1024;
/// Out-of-order segments held per direction at most.
pub const MAX_PENDING_SEGMENTS: usize = 32;
/// Segments further ahead than this are not of this connection (or garbage): ignored.
const MAX_AHEAD: u32 = 1 << 20;

/// One direction's reassembly state.
#[derive(Debug, Clone, Default)]
pub struct Stream {
    /// The next sequence number to deliver, once known (from the SYN, or the first
    /// segment when the capture started after it).
    next: Option<u32>,
    /// Segments ahead of `next`: (sequence number, bytes).
    pending: Vec<(u32, Vec<u8>)>,
    pending_bytes: usize,
    /// Bytes delivered so far.
    delivered: u64,
    /// The reader wants no more.
    closed: bool,
}

impl Stream {
    /// The SYN of this direction: data starts at `isn + 1`.
    pub fn syn(&mut self, isn: u32) {
        if self.next.is_none() {
            self.next = Some(isn.wrapping_add(1));
        }
    }

    /// Whether the reader stopped it.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Bytes delivered so far.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Stops delivering and frees what is held.
    pub fn close(&mut self) {
        self.closed = true;
        self.pending = Vec::new();
        self.pending_bytes = 0;
    }

    /// A segment's payload at `seq`: delivers to `read` every byte that is now in order.
    /// `read` returns `false` to stop the stream.
    pub fn segment(&mut self, seq: u32, data: &[u8], read: &mut impl FnMut(&[u8]) -> bool) {
        if self.closed || data.is_empty() {
            return;
        }
        let next = *self.next.get_or_insert(seq);
        let ahead = seq.wrapping_sub(next);
        if ahead == 0 || ahead > u32::MAX / 2 {
            // In order, or starting before `next`: a retransmission, maybe with new bytes.
            let behind = next.wrapping_sub(seq) as usize;
            if behind >= data.len() {
                return;
            }
            self.deliver(&data[behind..], read);
            self.drain(read);
        } else if ahead < MAX_AHEAD
            && self.pending.len() < MAX_PENDING_SEGMENTS
            && self.pending_bytes + data.len() <= MAX_PENDING_BYTES
            && !self
                .pending
                .iter()
                .any(|(s, d)| *s == seq && d.len() >= data.len())
        {
            self.pending_bytes += data.len();
            self.pending.push((seq, data.to_vec()));
        }
    }

    fn deliver(&mut self, bytes: &[u8], read: &mut impl FnMut(&[u8]) -> bool) {
        let next = self.next.unwrap_or(0);
        self.next = Some(next.wrapping_add(bytes.len() as u32));
        self.delivered += bytes.len() as u64;
        if !read(bytes) {
            self.close();
        }
    }

    /// Delivers held segments that the last delivery reached.
    fn drain(&mut self, read: &mut impl FnMut(&[u8]) -> bool) {
        loop {
            if self.closed {
                return;
            }
            let Some(next) = self.next else { return };
            // The held segment starting at or before `next` (wrapping), if any.
            let Some(i) = self
                .pending
                .iter()
                .position(|(s, _)| next.wrapping_sub(*s) <= u32::MAX / 2)
            else {
                return;
            };
            let (seq, data) = self.pending.swap_remove(i);
            self.pending_bytes -= data.len();
            let behind = next.wrapping_sub(seq) as usize;
            if behind < data.len() {
                self.deliver(&data[behind..], read);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stream: &mut Stream, segments: &[(u32, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (seq, data) in segments {
            stream.segment(*seq, data, &mut |b: &[u8]| {
                out.extend_from_slice(b);
                true
            });
        }
        out
    }

    #[test]
    fn in_order_out_of_order_and_retransmitted() {
        let mut s = Stream::default();
        s.syn(99);
        let out = run(
            &mut s,
            &[
                (106, b"world"),
                (100, b"hel"),
                (100, b"hel"),
                (103, b"lo "),
                (104, b"o wor"),
                (111, b"!"),
            ],
        );
        assert_eq!(out, b"hello world!");
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut s = Stream::default();
        s.syn(u32::MAX - 2);
        let out = run(&mut s, &[(1, b"def"), (u32::MAX - 1, b"abc")]);
        assert_eq!(out, b"abcdef");
    }

    #[test]
    fn pending_is_bounded() {
        let mut s = Stream::default();
        s.syn(0);
        let big = vec![b'x'; 1000];
        for i in 0..100u32 {
            run(&mut s, &[(1 + 2000 * (i + 1), &big)]);
        }
        assert!(s.pending.len() <= MAX_PENDING_SEGMENTS);
        assert!(s.pending_bytes <= MAX_PENDING_BYTES);
    }

    #[test]
    fn without_a_syn_the_first_segment_starts_the_stream() {
        let mut s = Stream::default();
        let out = run(&mut s, &[(5000, b"ab"), (5002, b"cd"), (4990, b"zz")]);
        assert_eq!(out, b"abcd");
    }

    #[test]
    fn a_reader_can_stop_the_stream() {
        let mut s = Stream::default();
        s.syn(0);
        let mut seen = 0;
        for (seq, d) in [(1u32, b"ab"), (3, b"cd")] {
            s.segment(seq, d, &mut |b: &[u8]| {
                seen += b.len();
                false
            });
        }
        assert_eq!(seen, 2);
        assert!(s.is_closed());
    }
}
