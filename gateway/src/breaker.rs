//! A circuit breaker per service: after a run of failures it opens, and calls to that service fail
//! at once (its GraphQL fields answer SERVICE_UNAVAILABLE) instead of piling up on a dead backend;
//! after a pause one trial call is let through, and a success closes it again.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Consecutive failures that open the breaker.
pub const FAILURE_THRESHOLD: u32 = 5;
/// How long an open breaker refuses calls before a trial.
pub const OPEN_FOR: Duration = Duration::from_secs(5);

/// The breaker's state, as metrics and tests see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Calls flow.
    Closed,
    /// Calls fail fast until the pause ends.
    Open,
    /// One trial call is in flight.
    HalfOpen,
}

#[derive(Debug)]
struct Inner {
    failures: u32,
    opened_at: Option<Instant>,
    trial_in_flight: bool,
}

/// A circuit breaker.
#[derive(Debug)]
pub struct Breaker {
    inner: Mutex<Inner>,
    open_for: Duration,
}

impl Default for Breaker {
    fn default() -> Self {
        Self::new(OPEN_FOR)
    }
}

impl Breaker {
    /// A closed breaker that stays open for `open_for` once tripped.
    pub fn new(open_for: Duration) -> Self {
        Self {
            inner: Mutex::new(Inner {
                failures: 0,
                opened_at: None,
                trial_in_flight: false,
            }),
            open_for,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether a call may go out now.
    pub fn allow(&self) -> bool {
        let mut s = self.lock();
        match s.opened_at {
            None => true,
            Some(at) if at.elapsed() >= self.open_for && !s.trial_in_flight => {
                s.trial_in_flight = true;
                true
            }
            Some(_) => false,
        }
    }

    /// Records a call that reached a healthy service.
    pub fn success(&self) {
        let mut s = self.lock();
        *s = Inner {
            failures: 0,
            opened_at: None,
            trial_in_flight: false,
        };
    }

    /// Records a call that failed because of the service.
    pub fn failure(&self) {
        let mut s = self.lock();
        s.failures += 1;
        if s.trial_in_flight || s.failures >= FAILURE_THRESHOLD {
            s.opened_at = Some(Instant::now());
            s.trial_in_flight = false;
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        let s = self.lock();
        match s.opened_at {
            None => State::Closed,
            Some(_) if s.trial_in_flight => State::HalfOpen,
            Some(_) => State::Open,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_failures_and_closes_after_a_good_trial() {
        let b = Breaker::new(Duration::from_millis(0));
        for _ in 0..FAILURE_THRESHOLD - 1 {
            assert!(b.allow());
            b.failure();
        }
        assert_eq!(b.state(), State::Closed);
        b.failure();
        assert_eq!(b.state(), State::Open);
        assert!(b.allow(), "the pause is over: one trial");
        assert_eq!(b.state(), State::HalfOpen);
        assert!(!b.allow(), "only one trial at a time");
        b.failure();
        assert_eq!(b.state(), State::Open, "a failed trial opens it again");
        assert!(b.allow());
        b.success();
        assert_eq!(b.state(), State::Closed);
    }

    #[test]
    fn open_breaker_refuses_during_the_pause() {
        let b = Breaker::new(Duration::from_secs(60));
        for _ in 0..FAILURE_THRESHOLD {
            b.failure();
        }
        assert!(!b.allow());
    }
}
