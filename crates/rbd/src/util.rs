//! Object names, id generation, time formatting and a small concurrent-join helper.

use crate::error::{RbdError, Result};
use ceph_encoding::UTime;
use std::future::Future;
use std::pin::Pin;

/// `rbd_directory`: name ↔ id map of a pool/namespace.
pub const RBD_DIRECTORY: &str = "rbd_directory";
/// `rbd_children`: clone-v1 children registry (in the child's pool).
pub const RBD_CHILDREN: &str = "rbd_children";
/// `rbd_trash`: trash entries.
pub const RBD_TRASH: &str = "rbd_trash";
/// `rbd_info`: pool validation marker.
pub const RBD_INFO: &str = "rbd_info";
/// Longest image id librbd generates.
pub const MAX_IMAGE_ID_LENGTH: usize = 14;
/// Longest object prefix librbd accepts (`RBD_MAX_BLOCK_NAME_PREFIX_LENGTH`... minus NUL).
pub const MAX_BLOCK_NAME_PREFIX_LENGTH: usize = 31;

/// "Already gone" counts as done: for removals and cleanups that a retry, another
/// client or an interrupted earlier run may have done already (librbd ignores ENOENT
/// in the same places). The value, if any, is dropped.
pub(crate) trait GoneOk {
    fn gone_ok(self) -> Result<()>;
}

impl<T> GoneOk for std::result::Result<T, ceph_rados::Error> {
    fn gone_ok(self) -> Result<()> {
        match self {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

impl<T> GoneOk for Result<T> {
    fn gone_ok(self) -> Result<()> {
        match self {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// `rbd_id.<name>`.
pub fn id_obj_name(name: &str) -> String {
    format!("rbd_id.{name}")
}

/// `rbd_header.<id>`.
pub fn header_name(id: &str) -> String {
    format!("rbd_header.{id}")
}

/// `<prefix>.<object number as 16 hex digits>`.
pub fn data_object_name(prefix: &str, object_no: u64) -> String {
    prefixed_hex(prefix, object_no, 16)
}

/// `{prefix}.{n:0width$x}` in one allocation of the exact size, without the formatting
/// machinery: every object I/O names its object this way.
pub(crate) fn prefixed_hex(prefix: &str, n: u64, width: usize) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // both object-name formats pad to at most the 16 digits a u64 has
    debug_assert!(width <= 16);
    let digits = (64 - n.leading_zeros() as usize).div_ceil(4).max(width);
    let mut s = String::with_capacity(prefix.len() + 1 + digits);
    s.push_str(prefix);
    s.push('.');
    for i in (0..digits).rev() {
        s.push(HEX[((n >> (4 * i)) & 0xf) as usize] as char);
    }
    s
}

/// librbd's `generate_image_id`: hex(instance id) ++ hex(random u32), last 14 chars.
pub fn generate_image_id(instance_id: u64) -> String {
    let mut r = [0u8; 4];
    let _ = getrandom::getrandom(&mut r);
    let id = format!("{:x}{:x}", instance_id, u32::from_le_bytes(r));
    if id.len() > MAX_IMAGE_ID_LENGTH {
        id[id.len() - MAX_IMAGE_ID_LENGTH..].to_string()
    } else {
        id
    }
}

/// Validate an image or snapshot name the way `rbd` does: non-empty, no `/` or `@`,
/// no NUL, and short enough for an object name.
pub fn validate_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(RbdError::InvalidArgument(format!("{what} name is empty")));
    }
    if name.contains('/') || name.contains('@') || name.contains('\0') {
        return Err(RbdError::InvalidArgument(format!(
            "{what} name '{name}' contains '/', '@' or NUL"
        )));
    }
    if name.len() > 1024 {
        return Err(RbdError::refused(
            format!("{what} name is longer than 1024 bytes"),
            ceph_rados::Errno::ENAMETOOLONG,
        ));
    }
    Ok(())
}

/// Now as a `utime_t`.
pub fn now() -> UTime {
    UTime::from_system(std::time::SystemTime::now())
}

/// Format a time the way `rbd info` does (`ctime(3)`, e.g. `Wed Nov 25 01:23:25 2026`),
/// in UTC.
pub fn format_ctime(t: UTime) -> String {
    let secs = t.sec as i64;
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // civil from days (Howard Hinnant's algorithm)
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mon = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if mon <= 2 { 1 } else { 0 };
    let wday = (days + 4).rem_euclid(7); // 1970-01-01 was a Thursday
    const WD: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MN: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {}",
        WD[wday as usize],
        MN[(mon - 1) as usize],
        d,
        h,
        m,
        s,
        y
    )
}

/// A boxed, sendable future.
pub(crate) type BoxFut<T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'static>>;

/// Run futures as tasks, at most `limit` at once; results in input order.
///
/// On the first error no further future is started, but those already running are
/// awaited before the error is returned: an object write that was handed to the objecter
/// must have landed (or failed) by the time the caller hears "failed", never after it
/// (aborting the task would only stop waiting; an op already sent can still land later,
/// over a newer write of the caller's). librbd's AioCompletion waits for every object
/// request in the same way.
pub(crate) async fn run_all<T: Send + 'static>(
    futs: Vec<BoxFut<T>>,
    limit: usize,
) -> Result<Vec<T>> {
    let n = futs.len();
    if n == 1 {
        // no task needed for the common single-object case
        let f = futs.into_iter().next().expect("one future");
        return Ok(vec![f.await?]);
    }
    let mut out: Vec<Option<T>> = (0..n).map(|_| None).collect();
    let mut set = tokio::task::JoinSet::new();
    let mut it = futs.into_iter().enumerate();
    let limit = limit.max(1);
    for (i, f) in it.by_ref().take(limit) {
        set.spawn(async move { (i, f.await) });
    }
    let mut first_err = None;
    while let Some(j) = set.join_next().await {
        let r = match j {
            Ok((i, Ok(v))) => {
                out[i] = Some(v);
                Ok(())
            }
            Ok((_, Err(e))) => Err(e),
            Err(e) => Err(RbdError::Stream(format!("I/O task failed: {e}"))),
        };
        match r {
            Ok(()) if first_err.is_none() => {
                if let Some((i, f)) = it.next() {
                    set.spawn(async move { (i, f.await) });
                }
            }
            Ok(()) => {}
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    Ok(out
        .into_iter()
        .map(|v| v.expect("every task finished"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            data_object_name("rbd_data.abc", 0x1f),
            "rbd_data.abc.000000000000001f"
        );
        assert_eq!(header_name("x"), "rbd_header.x");
        let id = generate_image_id(0x1234_5678_9abc);
        assert!(id.len() <= MAX_IMAGE_ID_LENGTH && !id.contains('.'));
        assert!(validate_name("image", "a/b").is_err());
        assert!(validate_name("image", "").is_err());
        assert!(validate_name("image", "ok-name_1").is_ok());
    }

    /// The hand-written hex matches `format!` for both widths, numbers wider than the
    /// width included (format 1 pads to 12 digits only).
    #[test]
    fn prefixed_hex_matches_format() {
        let mut ns = vec![
            0,
            1,
            0xf,
            0x10,
            0x1f,
            0xfff_ffff_ffff,
            0x1_0000_0000_0000,
            u64::MAX,
        ];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..1000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ns.push(x >> (x % 64));
        }
        for n in ns {
            assert_eq!(prefixed_hex("p", n, 16), format!("p.{n:016x}"));
            assert_eq!(prefixed_hex("rb.0.1", n, 12), format!("rb.0.1.{n:012x}"));
        }
    }

    #[test]
    fn ctime() {
        // 0x6b06388d = the create_timestamp seen on the test cluster, "Wed Nov 25 01:23:25 2026"
        assert_eq!(
            format_ctime(UTime {
                sec: 0x6b06388d,
                nsec: 0
            }),
            "Wed Nov 25 01:23:25 2026"
        );
        assert_eq!(
            format_ctime(UTime { sec: 0, nsec: 0 }),
            "Thu Jan  1 00:00:00 1970"
        );
    }

    #[tokio::test]
    async fn run_all_keeps_order() {
        let futs: Vec<BoxFut<usize>> = (0..10usize)
            .map(|i| {
                Box::pin(async move {
                    tokio::time::sleep(std::time::Duration::from_millis((10 - i) as u64)).await;
                    Ok(i)
                }) as BoxFut<usize>
            })
            .collect();
        assert_eq!(run_all(futs, 3).await.unwrap(), (0..10).collect::<Vec<_>>());
    }

    /// A failure is reported only once every future already running has finished (their
    /// writes cannot land after the caller was told "failed"); none is started after it.
    #[tokio::test]
    async fn run_all_waits_for_running_futures_before_failing() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let finished = Arc::new(AtomicUsize::new(0));
        let started = Arc::new(AtomicUsize::new(0));
        let futs: Vec<BoxFut<()>> = (0..6usize)
            .map(|i| {
                let finished = finished.clone();
                let started = started.clone();
                Box::pin(async move {
                    started.fetch_add(1, Ordering::SeqCst);
                    if i == 0 {
                        return Err(RbdError::InvalidArgument("object 0 failed".into()));
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    finished.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }) as BoxFut<()>
            })
            .collect();
        let r = run_all(futs, 3).await;
        assert!(matches!(r, Err(RbdError::InvalidArgument(_))), "{r:?}");
        // objects 1 and 2 were running with 0: both finished before the error came back
        assert_eq!(finished.load(Ordering::SeqCst), 2);
        assert_eq!(started.load(Ordering::SeqCst), 3);
    }
}
