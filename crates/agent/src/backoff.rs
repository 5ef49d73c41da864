//! Reconnect delays: exponential backoff with jitter, capped. Sans-IO: the random draw is
//! passed in, so the schedule is tested without clocks or sockets.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Self {
        Backoff {
            base,
            cap,
            attempt: 0,
        }
    }

    /// The agent's reconnect schedule: from 0.5 s, doubling, never above 60 s.
    pub fn reconnect() -> Self {
        Backoff::new(Duration::from_millis(500), Duration::from_secs(60))
    }

    /// The ceiling of the next delay: `base · 2^attempt`, capped.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32 << self.attempt.min(20);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The next delay for a draw `unit` in `[0, 1)`: between half the ceiling and the ceiling
    /// ("equal jitter": agents that lost the same server spread out, yet none retries at once).
    pub fn delay_with(&mut self, unit: f64) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let unit = unit.clamp(0.0, 1.0);
        ceiling / 2 + ceiling.mul_f64(unit / 2.0)
    }

    pub fn next_delay(&mut self) -> Duration {
        self.delay_with(rand::random::<f64>())
    }

    /// After a success: the next failure starts from the base again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_then_caps_at_sixty_seconds() {
        let mut backoff = Backoff::reconnect();
        let ceilings: Vec<_> = (0..10)
            .map(|_| {
                let ceiling = backoff.ceiling();
                backoff.delay_with(0.5);
                ceiling.as_millis()
            })
            .collect();
        assert_eq!(
            ceilings,
            [500, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]
        );
        for _ in 0..100 {
            assert!(backoff.next_delay() <= Duration::from_secs(60));
        }
    }

    #[test]
    fn jitter_stays_between_half_and_full() {
        let mut low = Backoff::reconnect();
        let mut high = Backoff::reconnect();
        for _ in 0..5 {
            low.delay_with(0.0);
            high.delay_with(0.999);
        }
        assert_eq!(low.delay_with(0.0), Duration::from_secs(8));
        let top = high.delay_with(0.999);
        assert!(top > Duration::from_millis(15_900) && top <= Duration::from_secs(16));
    }

    #[test]
    fn reset_starts_over() {
        let mut backoff = Backoff::reconnect();
        for _ in 0..30 {
            backoff.next_delay();
        }
        assert_eq!(backoff.ceiling(), Duration::from_secs(60));
        backoff.reset();
        assert_eq!(backoff.ceiling(), Duration::from_millis(500));
    }
}
