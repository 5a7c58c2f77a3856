//! The tenant's clock and calendar: the one source of "now" and "today" for
//! expressions (`today()`, `now()`), auto-number dates and relative filter dates.
//! Our tenants are in mainland China: tenant time is China Standard Time (UTC+8, no
//! daylight saving), so "today" and the date of an instant are taken in that offset.

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};

/// China Standard Time, the offset tenant dates are taken in.
pub fn offset() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("valid offset")
}

/// The current instant.
pub fn now() -> DateTime<Utc> {
    Utc::now()
}

/// Today's date for the tenant.
pub fn today() -> NaiveDate {
    date_of(now())
}

/// The tenant-local date of an instant (in any offset).
pub fn date_of<Tz: TimeZone>(instant: DateTime<Tz>) -> NaiveDate {
    instant.with_timezone(&offset()).date_naive()
}

/// The instant a tenant-local day begins.
pub fn start_of_day(date: NaiveDate) -> DateTime<Utc> {
    offset()
        .from_local_datetime(&date.and_hms_opt(0, 0, 0).expect("midnight exists"))
        .single()
        .expect("fixed offsets are unambiguous")
        .with_timezone(&Utc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instant(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn the_tenant_day_begins_at_midnight_china_time() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        // 16:00 UTC is midnight in China: the date changes there, not at 00:00 UTC.
        assert_eq!(date_of(instant("2024-05-05T15:59:59Z")), day(2024, 5, 5));
        assert_eq!(date_of(instant("2024-05-05T16:00:00Z")), day(2024, 5, 6));
        assert_eq!(date_of(instant("2024-12-31T16:30:00Z")), day(2025, 1, 1));
        // An instant written in another offset is the same instant.
        assert_eq!(
            date_of(DateTime::parse_from_rfc3339("2024-11-30T20:00:00-05:00").unwrap()),
            day(2024, 12, 1)
        );
        assert_eq!(
            start_of_day(day(2024, 5, 6)),
            instant("2024-05-05T16:00:00Z")
        );
        assert_eq!(date_of(start_of_day(day(2024, 5, 6))), day(2024, 5, 6));
    }

    #[test]
    fn today_is_the_date_of_now() {
        let before = date_of(Utc::now());
        let today = today();
        let after = date_of(Utc::now());
        assert!(today == before || today == after);
    }
}
