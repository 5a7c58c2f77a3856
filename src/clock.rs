//! The tenant's calendar. Our tenants are in mainland China (UTC+8, no daylight
//! saving), so "today" and relative dates are computed in that offset.

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};

fn offset() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("valid offset")
}

/// Today's date for the tenant.
pub fn today() -> NaiveDate {
    date_of(Utc::now())
}

/// The tenant's calendar date at an instant.
pub fn date_of(instant: DateTime<Utc>) -> NaiveDate {
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
