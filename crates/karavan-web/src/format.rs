//! Dates and numbers written the way each UI language writes them (times in UTC, said so).

const MONTHS: [(&str, [&str; 12]); 7] = [
    ("en", ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]),
    (
        "ru",
        [
            "января",
            "февраля",
            "марта",
            "апреля",
            "мая",
            "июня",
            "июля",
            "августа",
            "сентября",
            "октября",
            "ноября",
            "декабря",
        ],
    ),
    (
        "kk",
        [
            "қаңтар",
            "ақпан",
            "наурыз",
            "сәуір",
            "мамыр",
            "маусым",
            "шілде",
            "тамыз",
            "қыркүйек",
            "қазан",
            "қараша",
            "желтоқсан",
        ],
    ),
    (
        "ky",
        [
            "январь",
            "февраль",
            "март",
            "апрель",
            "май",
            "июнь",
            "июль",
            "август",
            "сентябрь",
            "октябрь",
            "ноябрь",
            "декабрь",
        ],
    ),
    ("tg", ["январ", "феврал", "март", "апрел", "май", "июн", "июл", "август", "сентябр", "октябр", "ноябр", "декабр"]),
    (
        "tk",
        [
            "ýanwar",
            "fewral",
            "mart",
            "aprel",
            "maý",
            "iýun",
            "iýul",
            "awgust",
            "sentýabr",
            "oktýabr",
            "noýabr",
            "dekabr",
        ],
    ),
    (
        "uz",
        ["yanvar", "fevral", "mart", "aprel", "may", "iyun", "iyul", "avgust", "sentabr", "oktabr", "noyabr", "dekabr"],
    ),
];

/// (year, month 1–12, day) of a count of days since 1970-01-01 (Howard Hinnant's civil calendar).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// A moment (µs since the epoch) as the locale writes a date and time, in UTC.
pub fn date_time(locale: &str, micros: i64) -> String {
    date_time_in(locale, micros, 0, "UTC")
}

/// A moment (µs since the epoch) as the locale writes a date and time in a zone: `offset` seconds
/// ahead of UTC, named by `label` (`+05`, `CST`).
pub fn date_time_in(locale: &str, micros: i64, offset: i64, label: &str) -> String {
    let seconds = micros.div_euclid(1_000_000) + offset;
    let (year, month, day) = civil(seconds.div_euclid(86_400));
    let minute_of_day = seconds.rem_euclid(86_400) / 60;
    let time = format!("{:02}:{:02}", minute_of_day / 60, minute_of_day % 60);
    let name =
        |code: &str| MONTHS.iter().find(|(c, _)| *c == code).map_or("", |(_, names)| names[(month - 1) as usize]);
    match locale {
        "zh" => format!("{year}年{month}月{day}日 {time} {label}"),
        "kk" => format!("{year} ж. {day} {}, {time} {label}", name("kk")),
        "ky" => format!("{year}-ж., {day}-{}, {time} {label}", name("ky")),
        "uz" => format!("{day}-{}, {year}, {time} {label}", name("uz")),
        "ru" | "tg" | "tk" => format!("{day} {} {year}, {time} {label}", name(locale)),
        _ => format!("{day} {} {year}, {time} {label}", name("en")),
    }
}

/// A day (µs since the epoch, any moment of it, in UTC) as the locale writes a date.
pub fn date(locale: &str, micros: i64) -> String {
    let (year, month, day) = civil(micros.div_euclid(1_000_000).div_euclid(86_400));
    let name =
        |code: &str| MONTHS.iter().find(|(c, _)| *c == code).map_or("", |(_, names)| names[(month - 1) as usize]);
    match locale {
        "zh" => format!("{year}年{month}月{day}日"),
        "kk" => format!("{year} ж. {day} {}", name("kk")),
        "ky" => format!("{year}-ж., {day}-{}", name("ky")),
        "uz" => format!("{day}-{}, {year}", name("uz")),
        "ru" | "tg" | "tk" => format!("{day} {} {year}", name(locale)),
        _ => format!("{day} {} {year}", name("en")),
    }
}

/// A whole number with the locale's digit grouping (a comma, or a no-break space).
pub fn number(locale: &str, value: u64) -> String {
    let separator = match locale {
        "en" | "zh" => ',',
        _ => '\u{a0}',
    };
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(separator);
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_numbers_per_locale() {
        // 2026-11-21T10:25:00Z
        let at = 1_795_256_700_000_000;
        assert_eq!(date_time("en", at), "21 Nov 2026, 10:25 UTC");
        assert_eq!(date_time("ru", at), "21 ноября 2026, 10:25 UTC");
        assert_eq!(date_time("zh", at), "2026年11月21日 10:25 UTC");
        assert_eq!(date_time("kk", at), "2026 ж. 21 қараша, 10:25 UTC");
        assert_eq!(date_time("ky", at), "2026-ж., 21-ноябрь, 10:25 UTC");
        assert_eq!(date_time("uz", at), "21-noyabr, 2026, 10:25 UTC");
        assert_eq!(date_time("tk", at), "21 noýabr 2026, 10:25 UTC");
        assert_eq!(date_time("tg", at), "21 ноябр 2026, 10:25 UTC");
        assert_eq!(date_time("en", 0), "1 Jan 1970, 00:00 UTC");
        assert_eq!(date_time("en", 951_782_400_000_000), "29 Feb 2000, 00:00 UTC");
        // Almaty is five hours ahead: past midnight there when it is 19:30 UTC.
        assert_eq!(
            date_time_in("kk", at + 9 * 3_600_000_000 + 5 * 60_000_000, 5 * 3600, "+05"),
            "2026 ж. 22 қараша, 00:30 +05"
        );
        assert_eq!(date("en", at), "21 Nov 2026");
        assert_eq!(date("zh", at), "2026年11月21日");
        assert_eq!(date("ru", 0), "1 января 1970");
        assert_eq!(number("en", 1_234_567), "1,234,567");
        assert_eq!(number("ru", 1_234_567), "1\u{a0}234\u{a0}567");
        assert_eq!(number("kk", 999), "999");
        assert_eq!(number("zh", 1000), "1,000");
    }
}
