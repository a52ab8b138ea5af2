//! Per-tenant ingest rate: a token bucket over OTLP bytes.

use std::time::Instant;

/// Refills at `rate` bytes per second up to `burst` bytes.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn new(rate: u64, burst: u64, now: Instant) -> Self {
        Self {
            rate: rate as f64,
            burst: burst as f64,
            tokens: burst as f64,
            last: now,
        }
    }

    /// Takes `bytes` tokens if there are enough; otherwise takes none and says no.
    pub(crate) fn try_take(&mut self, bytes: u64, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        let want = bytes as f64;
        if want <= self.tokens {
            self.tokens -= want;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bursts_then_refills_at_the_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(100, 300, t0);
        assert!(bucket.try_take(300, t0));
        assert!(!bucket.try_take(1, t0));
        assert!(!bucket.try_take(60, t0 + Duration::from_millis(500)));
        assert!(bucket.try_take(50, t0 + Duration::from_millis(500)));
        assert!(bucket.try_take(300, t0 + Duration::from_secs(10)));
        assert!(
            !bucket.try_take(301, t0 + Duration::from_secs(100)),
            "never more than the burst"
        );
    }
}
