//! The sign-in throttle: after `limit` failures for one key (an account, or a client address)
//! within the window, that key must wait before trying again, twice as long after each further
//! failure (1 s, 2 s, 4 s … up to 15 min). A success clears the key. Time is passed in, so the
//! rules are tested without sleeping.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures older than this are forgotten.
const WINDOW: Duration = Duration::from_secs(15 * 60);
const FIRST_WAIT: Duration = Duration::from_secs(1);
const LONGEST_WAIT: Duration = Duration::from_secs(15 * 60);
/// Past this many tracked keys, forgotten ones are swept out before adding another.
const SWEEP_ABOVE: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: Instant,
    blocked_until: Option<Instant>,
}

#[derive(Debug)]
pub struct Throttle {
    limit: u32,
    entries: Mutex<HashMap<String, Entry>>,
}

impl Throttle {
    pub fn new(limit: u32) -> Self {
        Self {
            limit: limit.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(wait)` while `key` must still wait.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(key).and_then(|entry| entry.blocked_until) {
            Some(until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    pub fn record_failure(&self, key: &str, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() > SWEEP_ABOVE {
            entries.retain(|_, entry| {
                now.duration_since(entry.last_failure) < WINDOW
                    || entry.blocked_until.is_some_and(|until| until > now)
            });
        }
        let entry = entries.entry(key.to_owned()).or_insert(Entry {
            failures: 0,
            last_failure: now,
            blocked_until: None,
        });
        if now.duration_since(entry.last_failure) >= WINDOW {
            entry.failures = 0;
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.last_failure = now;
        if entry.failures >= self.limit {
            let doublings = (entry.failures - self.limit).min(20);
            let wait = FIRST_WAIT.saturating_mul(1 << doublings).min(LONGEST_WAIT);
            entry.blocked_until = Some(now + wait);
        }
    }

    pub fn reset(&self, key: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_limit_and_doubles() {
        let throttle = Throttle::new(3);
        let t0 = Instant::now();
        for _ in 0..2 {
            throttle.record_failure("alice", t0);
            assert!(throttle.check("alice", t0).is_ok());
        }
        throttle.record_failure("alice", t0);
        assert_eq!(throttle.check("alice", t0), Err(Duration::from_secs(1)));
        assert!(throttle.check("bob", t0).is_ok());
        let t1 = t0 + Duration::from_secs(1);
        assert!(throttle.check("alice", t1).is_ok());
        throttle.record_failure("alice", t1);
        assert_eq!(throttle.check("alice", t1), Err(Duration::from_secs(2)));
    }

    #[test]
    fn success_and_time_forget() {
        let throttle = Throttle::new(2);
        let t0 = Instant::now();
        throttle.record_failure("k", t0);
        throttle.record_failure("k", t0);
        assert!(throttle.check("k", t0).is_err());
        throttle.reset("k");
        assert!(throttle.check("k", t0).is_ok());

        throttle.record_failure("k", t0);
        let later = t0 + WINDOW;
        throttle.record_failure("k", later);
        assert!(
            throttle.check("k", later).is_ok(),
            "old failures are forgotten"
        );
    }

    #[test]
    fn wait_is_capped() {
        let throttle = Throttle::new(1);
        let t0 = Instant::now();
        for _ in 0..100 {
            throttle.record_failure("k", t0);
        }
        assert_eq!(throttle.check("k", t0), Err(LONGEST_WAIT));
    }
}
