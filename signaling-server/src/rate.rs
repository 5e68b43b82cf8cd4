//! Per-connection rate limiting: a token bucket, driven by the caller's clock.

use std::time::Instant;

/// Allows `rate_per_sec` messages a second on average and bursts of up to `burst`.
///
/// It also counts how many messages in a row it refused: a client that keeps sending
/// while refused is not bursting, it is flooding, and [`RateLimiter::is_abusive`] says so.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    rate_per_sec: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
    refused_in_a_row: u32,
    abuse_after: u32,
}

impl RateLimiter {
    /// A full bucket at `now`. The limiter calls a client abusive once it has refused
    /// `abuse_after` messages in a row.
    pub fn new(rate_per_sec: u32, burst: u32, abuse_after: u32, now: Instant) -> Self {
        RateLimiter {
            rate_per_sec: f64::from(rate_per_sec),
            burst: f64::from(burst.max(1)),
            tokens: f64::from(burst.max(1)),
            last: now,
            refused_in_a_row: 0,
            abuse_after,
        }
    }

    /// Takes a token for one message arriving at `now`; false means refuse it.
    pub fn allow(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now.max(self.last);
        self.tokens = (self.tokens + elapsed * self.rate_per_sec).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.refused_in_a_row = 0;
            true
        } else {
            self.refused_in_a_row = self.refused_in_a_row.saturating_add(1);
            false
        }
    }

    pub fn is_abusive(&self) -> bool {
        self.refused_in_a_row >= self.abuse_after
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn burst_then_steady_rate() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(10, 5, 100, t0);
        assert_eq!((0..8).filter(|_| limiter.allow(t0)).count(), 5);
        // 10/s refills one token every 100 ms.
        assert!(!limiter.allow(t0 + Duration::from_millis(50)));
        assert!(limiter.allow(t0 + Duration::from_millis(110)));
        assert!(!limiter.allow(t0 + Duration::from_millis(120)));
        // A long pause refills only up to the burst.
        let later = t0 + Duration::from_secs(60);
        assert_eq!((0..20).filter(|_| limiter.allow(later)).count(), 5);
    }

    #[test]
    fn sustained_refusals_are_abuse_and_a_pause_forgives() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(10, 2, 3, t0);
        limiter.allow(t0);
        limiter.allow(t0);
        for _ in 0..2 {
            assert!(!limiter.allow(t0));
        }
        assert!(!limiter.is_abusive());
        assert!(!limiter.allow(t0));
        assert!(limiter.is_abusive());
        assert!(limiter.allow(t0 + Duration::from_secs(1)));
        assert!(!limiter.is_abusive());
    }
}
