//! Request rate limits per tenant and per user, checked when a request's session is
//! resolved: one user cannot starve their colleagues, one tenant cannot starve the
//! others. Over the limit is a 429 with `Retry-After`. `serve` sets them; without a
//! limit set (tests, the CLI), nothing is limited.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::{Error, Result};

/// A sustained rate and the burst allowed above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate(Quota);

impl Rate {
    /// `per_second` requests a second with bursts of `burst`; `None` when either is 0.
    pub fn new(per_second: u32, burst: u32) -> Option<Rate> {
        Some(Rate(
            Quota::per_second(NonZeroU32::new(per_second)?).allow_burst(NonZeroU32::new(burst)?),
        ))
    }

    /// One request per `period` with bursts of `burst` (slow rates, as tests use).
    pub fn every(period: Duration, burst: u32) -> Option<Rate> {
        Some(Rate(
            Quota::with_period(period)?.allow_burst(NonZeroU32::new(burst)?),
        ))
    }

    fn limiter<K: std::hash::Hash + Eq + Clone>(self) -> DefaultKeyedRateLimiter<K> {
        RateLimiter::keyed(self.0)
    }
}

#[derive(Default)]
pub struct RateLimits {
    user: Option<DefaultKeyedRateLimiter<(String, i64)>>,
    tenant: Option<DefaultKeyedRateLimiter<String>>,
}

impl RateLimits {
    pub fn new(user: Option<Rate>, tenant: Option<Rate>) -> RateLimits {
        RateLimits {
            user: user.map(Rate::limiter),
            tenant: tenant.map(Rate::limiter),
        }
    }

    /// Counts one request of `user` in `tenant`, or says how long to wait.
    pub fn check(&self, tenant: &str, user: i64) -> Result<()> {
        let clock = DefaultClock::default();
        let wait = |not_until: governor::NotUntil<_>| Error::TooManyRequests {
            retry_after_secs: not_until.wait_time_from(clock.now()).as_secs().max(1),
        };
        if let Some(limiter) = &self.user {
            limiter
                .check_key(&(tenant.to_string(), user))
                .map_err(wait)?;
        }
        if let Some(limiter) = &self.tenant {
            limiter.check_key(&tenant.to_string()).map_err(wait)?;
        }
        Ok(())
    }
}
