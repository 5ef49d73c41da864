//! Session codes: 9 digits from the OS CSPRNG, and the `CodeGuard` that makes guessing them not
//! pay — failed look-ups (info, signaling WebSocket, UDP hello) are limited per client address
//! and, across all addresses, per minute. Time is passed in (sans-IO), so the rules are tested
//! without sleeping.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::rngs::OsRng;
use rand::Rng;

/// A fresh 9-digit code (leading zeros kept).
pub fn generate_code() -> String {
    format!("{:09}", OsRng.gen_range(0..1_000_000_000u32))
}

/// Whether `text` looks like a session code at all (9 ASCII digits).
pub fn is_code(text: &str) -> bool {
    text.len() == 9 && text.bytes().all(|b| b.is_ascii_digit())
}

/// Compares secrets without an early exit.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

const WINDOW: Duration = Duration::from_secs(60);
/// Past this many tracked addresses, expired ones are swept before adding another.
const SWEEP_ABOVE: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    failures: u32,
}

impl Window {
    fn new(now: Instant) -> Self {
        Self {
            start: now,
            failures: 0,
        }
    }

    fn current(&mut self, now: Instant) -> &mut Self {
        if now.duration_since(self.start) >= WINDOW {
            *self = Window::new(now);
        }
        self
    }

    fn wait(&self, now: Instant) -> Duration {
        (self.start + WINDOW).saturating_duration_since(now)
    }
}

#[derive(Debug)]
struct GuardState {
    global: Window,
    per_addr: HashMap<IpAddr, Window>,
}

/// Failed code look-ups: `addr_limit` per address and `global_limit` across all addresses per
/// minute. Past either, look-ups answer 429 until the minute is over.
#[derive(Debug)]
pub struct CodeGuard {
    addr_limit: u32,
    global_limit: u32,
    state: Mutex<GuardState>,
}

/// Why a look-up is refused, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after: Duration,
    pub global: bool,
}

impl CodeGuard {
    pub fn new(addr_limit: u32, global_limit: u32, now: Instant) -> Self {
        Self {
            addr_limit: addr_limit.max(1),
            global_limit: global_limit.max(1),
            state: Mutex::new(GuardState {
                global: Window::new(now),
                per_addr: HashMap::new(),
            }),
        }
    }

    /// `Err` while look-ups from `addr` must wait.
    pub fn check(&self, addr: Option<IpAddr>, now: Instant) -> Result<(), Limited> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let global = state.global.current(now);
        if global.failures >= self.global_limit {
            return Err(Limited {
                retry_after: global.wait(now),
                global: true,
            });
        }
        if let Some(window) = addr.and_then(|addr| state.per_addr.get_mut(&addr)) {
            let window = window.current(now);
            if window.failures >= self.addr_limit {
                return Err(Limited {
                    retry_after: window.wait(now),
                    global: false,
                });
            }
        }
        Ok(())
    }

    /// Counts one failed look-up; logs when a limit is reached.
    pub fn record_failure(&self, addr: Option<IpAddr>, now: Instant) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let global = state.global.current(now);
        global.failures = global.failures.saturating_add(1);
        if global.failures == self.global_limit {
            tracing::warn!(
                limit = self.global_limit,
                "session code look-ups limited for everyone until the minute is over: \
                 too many failed look-ups across all addresses"
            );
        }
        let Some(addr) = addr else { return };
        if state.per_addr.len() > SWEEP_ABOVE {
            state
                .per_addr
                .retain(|_, window| now.duration_since(window.start) < WINDOW);
        }
        let window = state
            .per_addr
            .entry(addr)
            .or_insert_with(|| Window::new(now))
            .current(now);
        window.failures = window.failures.saturating_add(1);
        if window.failures == self.addr_limit {
            tracing::warn!(client = %addr, limit = self.addr_limit,
                "session code look-ups limited for one address: too many failed look-ups");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([192, 0, 2, last]))
    }

    #[test]
    fn codes_are_nine_digits() {
        for _ in 0..1000 {
            let code = generate_code();
            assert!(is_code(&code), "{code}");
        }
        assert!(!is_code("12345678"));
        assert!(!is_code("12345678a"));
        assert!(same_secret("123", "123"));
        assert!(!same_secret("123", "124"));
        assert!(!same_secret("123", "1234"));
    }

    #[test]
    fn limits_one_address_then_forgets() {
        let t0 = Instant::now();
        let guard = CodeGuard::new(3, 100, t0);
        for _ in 0..3 {
            assert!(guard.check(ip(1), t0).is_ok());
            guard.record_failure(ip(1), t0);
        }
        let limited = guard.check(ip(1), t0).unwrap_err();
        assert!(!limited.global);
        assert_eq!(limited.retry_after, WINDOW);
        assert!(guard.check(ip(2), t0).is_ok(), "other addresses go on");
        assert!(guard.check(ip(1), t0 + WINDOW).is_ok(), "a minute later");
    }

    #[test]
    fn limits_everyone_past_the_global_budget() {
        let t0 = Instant::now();
        let guard = CodeGuard::new(100, 5, t0);
        for last in 0..5 {
            guard.record_failure(ip(last), t0);
        }
        let limited = guard
            .check(ip(200), t0 + Duration::from_secs(10))
            .unwrap_err();
        assert!(limited.global);
        assert_eq!(limited.retry_after, Duration::from_secs(50));
        assert!(guard.check(None, t0 + WINDOW).is_ok());
    }
}
