//! Identifiers and timestamps without pulling in uuid/chrono for two small jobs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A version-7 UUID (RFC 9562): 48 bits of Unix milliseconds first, then a per-process
/// sequence and mixed random bits. Time order matters to the store: new ids land at the end
/// of its B-tree indexes instead of on a random page each, which cut the pages a `$code`
/// commit writes several times over.
pub fn new_uuid() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let millis = now.as_millis() as u64 & 0xffff_ffff_ffff;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let r = splitmix(u64::from(now.subsec_nanos()) ^ (u64::from(std::process::id()) << 32) ^ n.rotate_left(23));
    let seq = n & 0x0fff;
    let hi = (millis << 16) | 0x7000 | seq;
    let lo = (r & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

/// SplitMix64's output for the state after `x` (shared with the tiny test model's weights).
pub(crate) fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Current UTC time as FHIR `instant` (RFC 3339, milliseconds, `Z`).
pub fn now_rfc3339() -> String {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    format_rfc3339(d.as_secs() as i64, d.subsec_millis())
}

pub fn format_rfc3339(secs: i64, millis: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
}

/// An RFC 3339 instant (`2026-12-01T17:00:00.123Z`, or with an offset) as the HTTP date
/// RFC 7231 asks of `Last-Modified` (`Tue, 01 Dec 2026 17:00:00 GMT`); `None` when it is not
/// one.
pub fn http_date(rfc3339: &str) -> Option<String> {
    let b = rfc3339.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> { rfc3339.get(r)?.parse().ok() };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d, h, mi, se) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    // The zone after the optional fraction: Z or ±hh:mm.
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    let offset = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let o = num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60;
            if *sign == b'+' { o } else { -o }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo as u32, d as u32) * 86_400 + h * 3600 + mi * 60 + se - offset;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let weekday = WEEKDAYS[days.rem_euclid(7) as usize];
    Some(format!("{weekday}, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT", MONTHS[(m - 1) as usize], rem / 3600, (rem % 3600) / 60, rem % 60))
}

/// Howard Hinnant's civil date → days since 1970-01-01.
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Howard Hinnant's days → civil date.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_follow_rfc_7231() {
        assert_eq!(http_date("2026-12-01T17:00:00.123Z").as_deref(), Some("Tue, 01 Dec 2026 17:00:00 GMT"));
        assert_eq!(http_date("1994-11-06T08:49:37Z").as_deref(), Some("Sun, 06 Nov 1994 08:49:37 GMT"));
        assert_eq!(http_date("2024-03-01T01:30:00+08:00").as_deref(), Some("Thu, 29 Feb 2024 17:30:00 GMT"));
        assert_eq!(http_date("2024-02-30"), None);
        assert_eq!(http_date("yesterday"), None);
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_rfc3339(1_795_840_646, 5), "2026-11-28T04:37:26.005Z");
    }

    #[test]
    fn uuids_are_distinct_and_shaped() {
        let a = new_uuid();
        let b = new_uuid();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "7");
        assert_eq!(&a[19..20].chars().next().map(|c| "89ab".contains(c)), &Some(true));
        // Later ids sort after earlier ones at millisecond resolution.
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(new_uuid()[..13] > a[..13]);
    }
}
