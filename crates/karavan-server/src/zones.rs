//! Time zones by IANA name (`Asia/Almaty`), from the tz database bundled with jiff so that a machine
//! without tzdata has them too: the checks and conversions behind a user's time-zone setting (the
//! newsroom shows times, and reads a wire day, in it).

use jiff::tz::TimeZone;

/// The zones of the member states first in the settings' list (the rest follow by name).
pub const MEMBER_ZONES: [&str; 9] = [
    "Asia/Shanghai",
    "Asia/Almaty",
    "Asia/Aqtobe",
    "Asia/Tashkent",
    "Asia/Bishkek",
    "Asia/Dushanbe",
    "Asia/Ashgabat",
    "Europe/Moscow",
    "UTC",
];

/// The longest name accepted (the database's longest is 32 characters).
const MAX_NAME: usize = 64;

/// A time zone's IANA name as the database spells it, or what is wrong with it.
pub fn check(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() || name.len() > MAX_NAME {
        return Err("time_zone: give an IANA time zone name such as Asia/Almaty".to_string());
    }
    let zone = TimeZone::get(name).map_err(|_| format!("time_zone: {name:?} is not a known IANA time zone"))?;
    Ok(zone.iana_name().unwrap_or(name).to_string())
}

/// Every zone a user may choose: the members' zones first, then the database's canonical-looking
/// names (`Region/City`, without the legacy `Etc/`, `US/` and `SystemV/` aliases) by name.
pub fn offered() -> Vec<String> {
    let mut names: Vec<String> = jiff::tz::db()
        .available()
        .map(|name| name.as_str().to_string())
        .filter(|name| {
            let region = name.split('/').next().unwrap_or_default();
            name.contains('/')
                && matches!(
                    region,
                    "Africa"
                        | "America"
                        | "Antarctica"
                        | "Arctic"
                        | "Asia"
                        | "Atlantic"
                        | "Australia"
                        | "Europe"
                        | "Indian"
                        | "Pacific"
                )
        })
        .filter(|name| !MEMBER_ZONES.contains(&name.as_str()))
        .collect();
    names.sort();
    names.dedup();
    MEMBER_ZONES.iter().map(|z| z.to_string()).chain(names).collect()
}

fn zone(name: Option<&str>) -> Option<TimeZone> {
    name.and_then(|name| TimeZone::get(name).ok())
}

/// A moment (µs since the epoch) in a zone: its offset from UTC in seconds and the zone's label
/// (`+05`, `CST`); UTC for no zone or one the database no longer knows.
pub fn local(name: Option<&str>, micros: i64) -> (i64, String) {
    let (Some(zone), Ok(at)) = (zone(name), jiff::Timestamp::from_microsecond(micros)) else {
        return (0, "UTC".to_string());
    };
    let info = zone.to_offset_info(at);
    (i64::from(info.offset().seconds()), info.abbreviation().to_string())
}

/// The first and the last µs of a `YYYY-MM-DD` day in a zone (23 or 25 hours long on a day the clocks
/// change); `None` for a bad day or zone.
pub fn day_bounds(name: &str, day: &str) -> Option<(i64, i64)> {
    let zone = zone(Some(name))?;
    let date: jiff::civil::Date = day.parse().ok()?;
    let start = date.to_zoned_datetime(zone.clone()).ok()?.timestamp().as_microsecond();
    let end = date.tomorrow().ok()?.to_zoned_datetime(zone).ok()?.timestamp().as_microsecond();
    Some((start, end - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_spelled_as_the_database_does() {
        assert_eq!(check(" Asia/Almaty ").unwrap(), "Asia/Almaty");
        assert_eq!(check("asia/tashkent").unwrap(), "Asia/Tashkent");
        assert!(check("Asia/Nowhere").unwrap_err().contains("Asia/Nowhere"));
        assert!(check("").is_err());
        assert!(check(&"A/".repeat(100)).is_err());
        let offered = offered();
        assert_eq!(offered[0], "Asia/Shanghai");
        assert!(offered.len() > 300, "{}", offered.len());
        assert!(offered.iter().all(|name| check(name).is_ok()));
        assert!(!offered.iter().any(|name| name.starts_with("Etc/") || name.starts_with("US/")));
    }

    #[test]
    fn moments_and_days_follow_the_zone_and_its_clock_changes() {
        // 2026-12-07 12:00 UTC.
        let noon = 1_796_644_800_000_000;
        assert_eq!(local(Some("Asia/Almaty"), noon).0, 5 * 3600);
        assert_eq!(local(Some("Asia/Shanghai"), noon), (8 * 3600, "CST".to_string()));
        assert_eq!(local(None, noon), (0, "UTC".to_string()));
        assert_eq!(local(Some("Mars/Olympus"), noon), (0, "UTC".to_string()));
        let (start, end) = day_bounds("Asia/Almaty", "2026-12-07").unwrap();
        assert_eq!(start, noon - 17 * 3_600_000_000);
        assert_eq!(end - start, 24 * 3_600_000_000 - 1);
        // Berlin's spring day has 23 hours.
        let (start, end) = day_bounds("Europe/Berlin", "2026-03-29").unwrap();
        assert_eq!(end - start, 23 * 3_600_000_000 - 1);
        assert!(day_bounds("Asia/Almaty", "2026-13-01").is_none());
    }
}
