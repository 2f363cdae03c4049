//! SHARED TEST SUPPORT — walk the pre-auth part of a recorded msgr2 (rev1) byte stream.
//!
//! Before AUTH_DONE every frame is in CRC framing, whatever mode is negotiated, so the
//! banner and the HELLO / AUTH_* frames of both CRC and SECURE sessions can be read here.
//! Checks the banner, the preamble crc (crc32c seed 0) and the segment crcs (seed -1).
//! Depends on `ceph_encoding::ceph_crc32c` only.

#![allow(dead_code)]

use ceph_encoding::{ceph_crc32c, Decoder};
use std::ops::Range;

/// msgr2 frame tags used before authentication completes.
pub mod tag {
    /// HELLO.
    pub const HELLO: u8 = 1;
    /// AUTH_REQUEST.
    pub const AUTH_REQUEST: u8 = 2;
    /// AUTH_BAD_METHOD.
    pub const AUTH_BAD_METHOD: u8 = 3;
    /// AUTH_REPLY_MORE.
    pub const AUTH_REPLY_MORE: u8 = 4;
    /// AUTH_REQUEST_MORE.
    pub const AUTH_REQUEST_MORE: u8 = 5;
    /// AUTH_DONE.
    pub const AUTH_DONE: u8 = 6;
    /// AUTH_SIGNATURE.
    pub const AUTH_SIGNATURE: u8 = 7;
}

/// One CRC-mode frame.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Frame tag.
    pub tag: u8,
    /// Segment contents (1..=4).
    pub segments: Vec<Vec<u8>>,
    /// Where the whole frame (preamble to last crc/epilogue) lies in the stream.
    pub span: Range<usize>,
}

/// Length of the banner (prefix + u16 length + payload) at the start of `stream`.
pub fn banner_len(stream: &[u8]) -> Result<usize, String> {
    if stream.get(..8) != Some(b"ceph v2\n".as_slice()) {
        return Err("stream does not start with the msgr2 banner".into());
    }
    let n =
        u16::from_le_bytes(stream.get(8..10).ok_or("short banner")?.try_into().unwrap()) as usize;
    if stream.len() < 10 + n {
        return Err("short banner".into());
    }
    Ok(10 + n)
}

/// Read one CRC-mode (rev1) frame at `off`.
pub fn crc_frame_at(stream: &[u8], off: usize) -> Result<Frame, String> {
    let pre = stream
        .get(off..off + 32)
        .ok_or_else(|| format!("truncated preamble at {off}"))?;
    let crc = u32::from_le_bytes(pre[28..32].try_into().unwrap());
    if ceph_crc32c(0, &pre[..28]) != crc {
        return Err(format!("bad preamble crc at {off}"));
    }
    let tag = pre[0];
    let nseg = pre[1] as usize;
    if !(1..=4).contains(&nseg) {
        return Err(format!("bad segment count {nseg} at {off}"));
    }
    let lens: Vec<usize> = (0..nseg)
        .map(|i| u32::from_le_bytes(pre[2 + 6 * i..6 + 6 * i].try_into().unwrap()) as usize)
        .collect();
    let mut p = off + 32;
    let mut segments = Vec::with_capacity(nseg);
    let seg0 = stream
        .get(p..p + lens[0])
        .ok_or("truncated segment 0")?
        .to_vec();
    p += lens[0];
    if lens[0] > 0 {
        let c = u32::from_le_bytes(
            stream
                .get(p..p + 4)
                .ok_or("truncated crc")?
                .try_into()
                .unwrap(),
        );
        if ceph_crc32c(u32::MAX, &seg0) != c {
            return Err(format!("bad segment 0 crc at {off}"));
        }
        p += 4;
    }
    segments.push(seg0);
    if nseg > 1 {
        for &len in &lens[1..] {
            segments.push(stream.get(p..p + len).ok_or("truncated segment")?.to_vec());
            p += len;
        }
        let epi = stream.get(p..p + 13).ok_or("truncated epilogue")?;
        for (i, seg) in segments.iter().enumerate().skip(1) {
            let c = u32::from_le_bytes(epi[1 + 4 * (i - 1)..5 + 4 * (i - 1)].try_into().unwrap());
            if ceph_crc32c(u32::MAX, seg) != c {
                return Err(format!("bad segment {i} crc at {off}"));
            }
        }
        p += 13;
    }
    Ok(Frame {
        tag,
        segments,
        span: off..p,
    })
}

/// The pre-auth frames of the server side of a session: up to and including AUTH_DONE (or
/// AUTH_BAD_METHOD).
pub fn server_pre_auth(stream: &[u8]) -> Result<Vec<Frame>, String> {
    let mut off = banner_len(stream)?;
    let mut out = Vec::new();
    loop {
        let f = crc_frame_at(stream, off)?;
        off = f.span.end;
        let last = f.tag == tag::AUTH_DONE || f.tag == tag::AUTH_BAD_METHOD;
        out.push(f);
        if last {
            return Ok(out);
        }
    }
}

/// The pre-auth frames of the client side: HELLO, AUTH_REQUEST and `more` AUTH_REQUEST_MORE
/// frames (one per server AUTH_REPLY_MORE).
pub fn client_pre_auth(stream: &[u8], more: usize) -> Result<Vec<Frame>, String> {
    let mut off = banner_len(stream)?;
    let mut out = Vec::new();
    let mut auth_frames = 0;
    while auth_frames < 1 + more {
        let f = crc_frame_at(stream, off)?;
        off = f.span.end;
        if f.tag == tag::AUTH_REQUEST || f.tag == tag::AUTH_REQUEST_MORE {
            auth_frames += 1;
        }
        out.push(f);
    }
    Ok(out)
}

/// The bufferlist payload of AUTH_REPLY_MORE / AUTH_REQUEST_MORE.
pub fn bl_payload(frame: &Frame) -> Result<Vec<u8>, String> {
    let mut d = Decoder::new(&frame.segments[0]);
    Ok(d.blob("auth payload").map_err(|e| e.to_string())?.to_vec())
}

/// AUTH_REQUEST: (method, preferred modes, payload).
pub fn auth_request(frame: &Frame) -> Result<(u32, Vec<u32>, Vec<u8>), String> {
    let mut d = Decoder::new(&frame.segments[0]);
    let method = d.u32().map_err(|e| e.to_string())?;
    let modes = d.vec::<u32>(4, "modes").map_err(|e| e.to_string())?;
    let payload = d.blob("auth payload").map_err(|e| e.to_string())?.to_vec();
    Ok((method, modes, payload))
}

/// AUTH_DONE: (global_id, con_mode, payload).
pub fn auth_done(frame: &Frame) -> Result<(u64, u32, Vec<u8>), String> {
    let mut d = Decoder::new(&frame.segments[0]);
    let gid = d.u64().map_err(|e| e.to_string())?;
    let mode = d.u32().map_err(|e| e.to_string())?;
    let payload = d.blob("auth payload").map_err(|e| e.to_string())?.to_vec();
    Ok((gid, mode, payload))
}
