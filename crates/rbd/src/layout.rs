//! Striping: image extents to object extents and back (ceph: src/osdc/Striper.cc
//! `file_to_extents`, `extent_to_file`, `get_num_objects`; kernel:
//! net/ceph/striper.c). Pure functions, no I/O.

/// How an image is laid out over its data objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Object size (2^order).
    pub object_size: u64,
    /// Stripe unit (a divisor of the object size).
    pub stripe_unit: u64,
    /// Objects a stripe spans.
    pub stripe_count: u64,
}

/// A piece of an image extent inside one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectExtent {
    /// Object number.
    pub object_no: u64,
    /// Offset inside the object.
    pub offset: u64,
    /// Length inside the object.
    pub length: u64,
    /// Where the bytes go in the caller's buffer: (buffer offset, length), in object order.
    pub buffer_extents: Vec<(u64, u64)>,
}

impl Layout {
    /// The default layout for `order`: one object per stripe unit.
    pub fn simple(order: u8) -> Layout {
        let os = 1u64 << order;
        Layout {
            object_size: os,
            stripe_unit: os,
            stripe_count: 1,
        }
    }

    /// From header values (0/0 = default).
    pub fn new(order: u8, stripe_unit: u64, stripe_count: u64) -> Layout {
        let os = 1u64 << order;
        if stripe_unit == 0 || stripe_count == 0 {
            Layout::simple(order)
        } else {
            Layout {
                object_size: os,
                stripe_unit,
                stripe_count,
            }
        }
    }

    /// True for the default layout (the STRIPINGV2 feature is not needed).
    pub fn is_simple(&self) -> bool {
        self.stripe_count == 1 && self.stripe_unit == self.object_size
    }

    /// Bytes in one object set (`object_size * stripe_count`).
    pub fn period(&self) -> u64 {
        self.object_size * self.stripe_count
    }

    /// Number of objects an image of `size` bytes spans (`Striper::get_num_objects`).
    pub fn num_objects(&self, size: u64) -> u64 {
        let period = self.period();
        let num_periods = size.div_ceil(period);
        let rem = size % period;
        let mut rem_objs = 0;
        if rem > 0 && rem < self.stripe_count * self.stripe_unit {
            rem_objs = self.stripe_count - rem.div_ceil(self.stripe_unit);
        }
        num_periods * self.stripe_count - rem_objs
    }

    /// The object extent (object number, offset inside it) holding the whole non-empty
    /// image extent (`off`, `len`) when it lies inside one stripe unit, else `None` (also
    /// for some extents that `file_to_extents` maps to one object). It is then what
    /// `file_to_extents` returns as its single extent with a single buffer piece, without
    /// the two allocations: every small I/O asks.
    pub fn within_one_object(&self, off: u64, len: u64) -> Option<(u64, u64)> {
        let su = self.stripe_unit;
        // an extent past the end of the u64 range is not one extent (and must not overflow)
        let last = len.checked_sub(1).and_then(|l| off.checked_add(l))?;
        if off / su != last / su {
            return None;
        }
        let blockno = off / su;
        let stripeno = blockno / self.stripe_count;
        let stripepos = blockno % self.stripe_count;
        let spo = self.object_size / su;
        let objectno = (stripeno / spo) * self.stripe_count + stripepos;
        Some((objectno, (stripeno % spo) * su + off % su))
    }

    /// Map the image extent (`off`, `len`) to object extents, sorted by object number.
    /// Callers clip extents to the image size first; one reaching past the u64 range is
    /// cut at its end rather than overflowing.
    pub fn file_to_extents(&self, off: u64, len: u64) -> Vec<ObjectExtent> {
        let mut out: Vec<ObjectExtent> = Vec::new();
        let len = len.min(u64::MAX - off);
        if len == 0 {
            return out;
        }
        if self.is_simple() {
            // fast path: one extent per object, in order
            let os = self.object_size;
            let mut cur = off;
            let end = off + len;
            while cur < end {
                let ono = cur / os;
                let o_off = cur % os;
                let l = (os - o_off).min(end - cur);
                out.push(ObjectExtent {
                    object_no: ono,
                    offset: o_off,
                    length: l,
                    buffer_extents: vec![(cur - off, l)],
                });
                cur += l;
            }
            return out;
        }
        let su = self.stripe_unit;
        let sc = self.stripe_count;
        let spo = self.object_size / su;
        let mut cur = off;
        let mut left = len;
        while left > 0 {
            let blockno = cur / su;
            let stripeno = blockno / sc;
            let stripepos = blockno % sc;
            let objectsetno = stripeno / spo;
            let objectno = objectsetno * sc + stripepos;
            let block_start = (stripeno % spo) * su;
            let block_off = cur % su;
            let x_off = block_start + block_off;
            let x_len = left.min(su - block_off);
            let buf = (cur - off, x_len);
            match out.iter_mut().find(|e| e.object_no == objectno) {
                Some(e) if e.offset + e.length == x_off => {
                    e.length += x_len;
                    match e.buffer_extents.last_mut() {
                        Some(last) if last.0 + last.1 == buf.0 => last.1 += x_len,
                        _ => e.buffer_extents.push(buf),
                    }
                }
                _ => out.push(ObjectExtent {
                    object_no: objectno,
                    offset: x_off,
                    length: x_len,
                    buffer_extents: vec![buf],
                }),
            }
            cur += x_len;
            left -= x_len;
        }
        out.sort_by_key(|e| (e.object_no, e.offset));
        out
    }

    /// Map an object extent back to image extents (`Striper::extent_to_file`).
    pub fn object_to_image(&self, object_no: u64, off: u64, len: u64) -> Vec<(u64, u64)> {
        let mut out: Vec<(u64, u64)> = Vec::new();
        let su = self.stripe_unit;
        let sc = self.stripe_count;
        let spo = self.object_size / su;
        let mut off = off;
        let mut len = len;
        while len > 0 {
            let stripepos = object_no % sc;
            let objectsetno = object_no / sc;
            let stripeno = off / su + objectsetno * spo;
            let blockno = stripeno * sc + stripepos;
            let e_off = off % su;
            let e_len = len.min(su - e_off);
            let img = blockno * su + e_off;
            match out.last_mut() {
                Some(l) if l.0 + l.1 == img => l.1 += e_len,
                _ => out.push((img, e_len)),
            }
            off += e_len;
            len -= e_len;
        }
        out
    }

    /// How many leading bytes of object `object_no` lie inside an image of `size` bytes
    /// (0: the object is entirely beyond the end).
    pub fn object_bytes_within(&self, object_no: u64, size: u64) -> u64 {
        if self.is_simple() {
            let start = object_no * self.object_size;
            return size.saturating_sub(start).min(self.object_size);
        }
        let su = self.stripe_unit;
        let spo = self.object_size / su;
        let mut valid = 0;
        for u in 0..spo {
            let img = self.object_to_image(object_no, u * su, 1)[0].0;
            if img >= size {
                break;
            }
            valid = u * su + (size - img).min(su);
        }
        valid
    }
}

/// Clip a list of (offset, length) extents to `[0, limit)`.
pub fn clip_extents(ext: &[(u64, u64)], limit: u64) -> Vec<(u64, u64)> {
    ext.iter()
        .filter(|(o, _)| *o < limit)
        .map(|&(o, l)| (o, l.min(limit - o)))
        .filter(|(_, l)| *l > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_mapping() {
        let l = Layout::simple(22);
        let os = 4 << 20;
        let e = l.file_to_extents(os - 10, 30);
        assert_eq!(e.len(), 2);
        assert_eq!((e[0].object_no, e[0].offset, e[0].length), (0, os - 10, 10));
        assert_eq!((e[1].object_no, e[1].offset, e[1].length), (1, 0, 20));
        assert_eq!(e[1].buffer_extents, vec![(10, 20)]);
        assert_eq!(l.num_objects(100 << 20), 25);
        assert_eq!(l.num_objects(1), 1);
        assert_eq!(l.num_objects(0), 0);
        assert_eq!(l.object_to_image(1, 5, 7), vec![(os + 5, 7)]);
        assert_eq!(l.object_bytes_within(1, os + 3), 3);
        assert_eq!(l.object_bytes_within(2, os + 3), 0);
    }

    #[test]
    fn within_one_object_agrees_with_the_general_mapping() {
        let layouts = [
            Layout::simple(12),
            Layout::new(16, 16384, 3),
            Layout::new(16, 4096, 1),
            Layout::new(13, 8192, 5),
        ];
        let mut seen = 0;
        for l in layouts {
            for off in (0..300_000u64).step_by(1_531) {
                for len in [0u64, 1, 511, 4096, 5000, 16384, 70_000] {
                    let ex = l.file_to_extents(off, len);
                    match l.within_one_object(off, len) {
                        Some((ono, o)) => {
                            seen += 1;
                            assert_eq!(ex.len(), 1, "{l:?} {off}+{len}");
                            let e = &ex[0];
                            assert_eq!((e.object_no, e.offset, e.length), (ono, o, len));
                            assert_eq!(e.buffer_extents, vec![(0, len)]);
                        }
                        // only a crossing of stripe units (or nothing) is refused
                        None => assert!(
                            len == 0 || off / l.stripe_unit != (off + len - 1) / l.stripe_unit,
                            "{l:?} {off}+{len}"
                        ),
                    }
                }
            }
        }
        assert!(seen > 1000, "{seen}");
    }

    /// Extents are clipped to the image before mapping, but one reaching past the u64
    /// range must not overflow: it is cut at its end, or not one object's.
    #[test]
    fn extents_at_the_end_of_the_u64_range_do_not_overflow() {
        for l in [Layout::simple(22), Layout::new(16, 16384, 3)] {
            let e = l.file_to_extents(u64::MAX - 10, 100);
            assert_eq!(e.iter().map(|e| e.length).sum::<u64>(), 10, "{l:?}");
            assert_eq!(l.within_one_object(u64::MAX - 10, 100), None, "{l:?}");
            let whole = l.file_to_extents(u64::MAX - 10, 10);
            let one = l
                .within_one_object(u64::MAX - 10, 10)
                .expect("inside one unit");
            assert_eq!((whole[0].object_no, whole[0].offset), one, "{l:?}");
        }
    }

    #[test]
    fn striped_roundtrip() {
        // 64 KiB objects, 16 KiB units, 3 objects per stripe
        let l = Layout {
            object_size: 65536,
            stripe_unit: 16384,
            stripe_count: 3,
        };
        let (off, len) = (10_000, 300_000);
        let ex = l.file_to_extents(off, len);
        let mut covered = vec![false; len as usize];
        for e in &ex {
            let back = l.object_to_image(e.object_no, e.offset, e.length);
            let total: u64 = e.buffer_extents.iter().map(|b| b.1).sum();
            assert_eq!(total, e.length);
            let mut bi = e.buffer_extents.iter();
            let mut img = back.iter().flat_map(|&(o, l)| o..o + l);
            for &(bo, bl) in bi.by_ref() {
                for i in bo..bo + bl {
                    assert_eq!(img.next().unwrap(), off + i);
                    assert!(!covered[i as usize]);
                    covered[i as usize] = true;
                }
            }
        }
        assert!(covered.iter().all(|c| *c));
        // num_objects: 5 periods of 196608 + remainder
        assert_eq!(l.num_objects(196608), 3);
        assert_eq!(l.num_objects(196608 + 1), 4);
        assert_eq!(l.num_objects(196608 + 16384 * 3), 6);
        // valid bytes: object 1 at size 16384*2 (covers unit 0 of obj 0 and 1) -> 16384
        assert_eq!(l.object_bytes_within(1, 16384 * 2), 16384);
        assert_eq!(l.object_bytes_within(2, 16384 * 2), 0);
        assert_eq!(l.object_bytes_within(0, 16384 * 4 + 5), 32768);
        assert_eq!(l.object_bytes_within(1, 16384 * 4 + 5), 16384 + 5);
    }
}
