//! Decoding server messages into a caller's [`ServerMsg`], reusing its storage.
//!
//! A [`ServerMsg`] is about 8 KB (room for [`crate::MAX_DETECTIONS`] detections with keypoints), and
//! serde builds each decoded value on the stack and moves it out, several times over, even for
//! a 48-byte result. [`ServerMsg::decode_prefix_into`] fills a [`ResultMsg`] in place instead
//! (the mirror of the hand-written [`crate::encode_result`]); every other message goes through
//! serde. It accepts exactly what postcard accepts, with the same values (a property test
//! compares the two on valid and corrupted packets).

use crate::{
    ClassScore, Detection, Name, Packet, Point, ResultMsg, SERVER_TAG_RESULT, SensorEvent,
    ServerMsg, WireError, decode_prefix,
};

/// A postcard reader over one packet.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// Bytes of the longest varint of an integer of `bits` bits, and the largest last byte.
const fn varint_limits(bits: u32) -> (usize, u8) {
    (bits.div_ceil(7) as usize, ((1u32 << (bits % 7)) - 1) as u8)
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self.pos.checked_add(n).ok_or(WireError::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(WireError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }

    /// Postcard's varint for an integer of `bits` bits: at most as many bytes as the type
    /// needs, the last one within the type's range.
    fn varint(&mut self, bits: u32) -> Result<u64, WireError> {
        let (max_bytes, last_max) = varint_limits(bits);
        let mut out = 0u64;
        for i in 0..max_bytes {
            let b = self.byte()?;
            out |= u64::from(b & 0x7F) << (7 * i);
            if b & 0x80 == 0 {
                if i == max_bytes - 1 && b > last_max {
                    return Err(WireError::Invalid);
                }
                return Ok(out);
            }
        }
        Err(WireError::Invalid)
    }

    fn u16(&mut self) -> Result<u16, WireError> {
        self.varint(16).map(|v| v as u16)
    }

    fn u32(&mut self) -> Result<u32, WireError> {
        self.varint(32).map(|v| v as u32)
    }

    fn u64(&mut self) -> Result<u64, WireError> {
        self.varint(64)
    }

    /// A length (postcard's `usize` varint).
    fn len(&mut self) -> Result<usize, WireError> {
        self.varint(usize::BITS).map(|v| v as usize)
    }

    fn f32(&mut self) -> Result<f32, WireError> {
        let b = self.take(4)?;
        Ok(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn name(&mut self) -> Result<Name, WireError> {
        let n = self.len()?;
        let s = core::str::from_utf8(self.take(n)?).map_err(|_| WireError::Invalid)?;
        Name::try_from_str(s).map_err(|_| WireError::Invalid)
    }

    fn detection(&mut self) -> Result<Detection, WireError> {
        let mut d = Detection {
            class: self.u16()?,
            score: self.f32()?,
            ..Detection::default()
        };
        d.bbox.x_min = self.f32()?;
        d.bbox.y_min = self.f32()?;
        d.bbox.x_max = self.f32()?;
        d.bbox.y_max = self.f32()?;
        self.list(&mut d.keypoints.0, |r| {
            Ok(Point {
                x: r.f32()?,
                y: r.f32()?,
            })
        })?;
        Ok(d)
    }

    /// A bounded list into `out`: a length (at most `N`, else `Invalid`), then its items.
    fn list<T, const N: usize>(
        &mut self,
        out: &mut heapless::Vec<T, N>,
        mut item: impl FnMut(&mut Self) -> Result<T, WireError>,
    ) -> Result<(), WireError> {
        out.clear();
        let n = self.len()?;
        if n > N {
            return Err(WireError::Invalid);
        }
        for _ in 0..n {
            let v = item(self)?;
            out.push(v).map_err(|_| WireError::Invalid)?;
        }
        Ok(())
    }

    /// The fields of a [`ResultMsg`] (after its tag) into `out`.
    fn result(&mut self, out: &mut ResultMsg) -> Result<(), WireError> {
        out.stream = self.u16()?;
        out.seq = self.u64()?;
        out.capture_ns = self.u64()?;
        out.inference_ns = self.u64()?;
        out.publish_ns = self.u64()?;
        out.model.id = self.name()?;
        out.model.version = self.u32()?;
        self.list(&mut out.detections.0, Reader::detection)?;
        self.list(&mut out.class_scores.0, |r| {
            Ok(ClassScore {
                class: r.u16()?,
                score: r.f32()?,
            })
        })?;
        self.list(&mut out.events.0, |r| {
            Ok(SensorEvent {
                sensor: r.u16()?,
                kind: r.u16()?,
                value: r.f32()?,
                timestamp_ns: r.u64()?,
            })
        })?;
        Ok(())
    }
}

impl ServerMsg {
    /// Decode one message from the front of `bytes` into `out`; returns the bytes after it.
    /// A result is decoded in place into `out` (made a [`ServerMsg::Result`] first if it is
    /// not one), so a client that keeps one `ServerMsg` decodes without building and moving
    /// an 8 KB value per message. Accepts and yields exactly what [`crate::decode_prefix`]
    /// does; after an error `out` holds some valid but unspecified message.
    pub fn decode_prefix_into<'a>(
        bytes: &'a [u8],
        out: &mut ServerMsg,
    ) -> Result<&'a [u8], WireError> {
        if bytes.first() != Some(&SERVER_TAG_RESULT) {
            let (msg, rest) = decode_prefix::<ServerMsg>(bytes)?;
            *out = msg;
            return Ok(rest);
        }
        if !matches!(out, ServerMsg::Result(_)) {
            *out = ServerMsg::Result(ResultMsg::default());
        }
        let ServerMsg::Result(r) = out else {
            unreachable!("made a result above")
        };
        let mut reader = Reader { buf: bytes, pos: 1 };
        reader.result(r)?;
        Ok(&bytes[reader.pos..])
    }
}

impl Packet<'_> {
    /// The next message of the packet, decoded into `out` ([`ServerMsg::decode_prefix_into`]);
    /// `None` at the end. Like the iterator, yields `Err` once and then ends.
    pub fn next_into(&mut self, out: &mut ServerMsg) -> Option<Result<(), WireError>> {
        if self.rest.is_empty() {
            return None;
        }
        match ServerMsg::decode_prefix_into(self.rest, out) {
            Ok(rest) => {
                self.rest = rest;
                Some(Ok(()))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}
