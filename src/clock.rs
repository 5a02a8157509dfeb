//! Cheap, coarse readings of the clocks, for what the proxy counts in seconds: an idle pooled
//! connection's age, a client's header-read deadline, an upstream request's time limit, the
//! `Date` of a response.
//!
//! `Instant::now()` reads `CLOCK_MONOTONIC`, which costs 50-80 ns a read on this project's VMs
//! (measured); a request on a module route read it about fifteen times, six on the plain route.
//! `CLOCK_MONOTONIC_COARSE` is the same clock as of the kernel's last tick (1-10 ms ago), read
//! from the vDSO page without the time-stamp counter: about 20 ns. As nginx does with its cached
//! time, the timeouts use it; what is measured to the microsecond (hook calls, request
//! durations) keeps `Instant::now()`.

use std::time::{Instant, SystemTime};

/// `clock`'s time, as a duration since its zero.
#[cfg(target_os = "linux")]
fn read(clock: libc::clockid_t) -> Option<std::time::Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; clock_gettime writes only it.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return None;
    }
    Some(std::time::Duration::new(
        u64::try_from(ts.tv_sec).ok()?,
        u32::try_from(ts.tv_nsec).ok()?,
    ))
}

/// Now, as of the kernel's last tick: never later than `Instant::now()`, and earlier by about
/// one tick at most (see `clock_getres(CLOCK_MONOTONIC_COARSE)`).
#[cfg(target_os = "linux")]
pub fn coarse_now() -> Instant {
    use std::sync::OnceLock;
    use std::time::Duration;

    /// An `Instant` and the `CLOCK_MONOTONIC` time read just after it, once: a coarse reading
    /// becomes an `Instant` by its distance from that time (so a little earlier than it was).
    static BASE: OnceLock<Option<(Instant, Duration)>> = OnceLock::new();

    let base = BASE.get_or_init(|| {
        let base = Instant::now();
        Some((base, read(libc::CLOCK_MONOTONIC)?))
    });
    match (base, read(libc::CLOCK_MONOTONIC_COARSE)) {
        (Some((base, at)), Some(coarse)) if coarse >= *at => *base + (coarse - *at),
        (Some((base, at)), Some(coarse)) => base.checked_sub(*at - coarse).unwrap_or(*base),
        _ => Instant::now(),
    }
}

/// Elsewhere, the precise clock.
#[cfg(not(target_os = "linux"))]
pub fn coarse_now() -> Instant {
    Instant::now()
}

/// [`coarse_now`] as tokio's `Instant`, for deadlines that tokio's timers wait on.
pub fn coarse_tokio_now() -> tokio::time::Instant {
    tokio::time::Instant::from_std(coarse_now())
}

/// The wall clock as of the kernel's last tick (`CLOCK_REALTIME_COARSE`), for what is
/// counted in seconds: a response's `Date`.
#[cfg(target_os = "linux")]
pub fn coarse_system_now() -> SystemTime {
    read(libc::CLOCK_REALTIME_COARSE).map_or_else(SystemTime::now, |d| SystemTime::UNIX_EPOCH + d)
}

/// Elsewhere, the precise clock.
#[cfg(not(target_os = "linux"))]
pub fn coarse_system_now() -> SystemTime {
    SystemTime::now()
}

#[cfg(test)]
mod tests {
    use super::coarse_now;
    use std::time::{Duration, Instant};

    #[test]
    fn coarse_now_follows_the_precise_clock_within_a_tick() {
        // A kernel tick is at most 10 ms (HZ=100); the bound leaves room for a busy machine
        // descheduling the test between reads.
        let slack = Duration::from_millis(200);
        for _ in 0..1000 {
            let before = Instant::now();
            let coarse = coarse_now();
            let after = Instant::now();
            assert!(coarse <= after, "{coarse:?} after {after:?}");
            assert!(
                coarse + slack >= before,
                "{coarse:?} long before {before:?}"
            );
        }
        let wall = super::coarse_system_now();
        let precise = std::time::SystemTime::now();
        let behind = precise.duration_since(wall).unwrap_or_default();
        assert!(behind < slack, "the coarse wall clock is {behind:?} behind");
        // And it moves.
        let start = coarse_now();
        let deadline = Instant::now() + Duration::from_secs(10);
        while coarse_now() == start {
            assert!(
                Instant::now() < deadline,
                "the coarse clock did not move in 10 s"
            );
            std::thread::yield_now();
        }
    }
}
