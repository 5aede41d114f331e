//! Polling a service's own API until a lesson's signal shows.

use std::time::Duration;

use super::LessonError;

/// `until!(lesson, signal, timeout, every, { body })` evaluates `body` (an async block's contents
/// that yields `Result<T, String>`) every `every` until it is `Ok` (the signal, as seen) or
/// `timeout` passes: `Err(LessonError::NoSignal)` with the last thing seen instead.
/// A macro rather than a function taking a closure: the body may borrow the caller's probes
/// mutably, which a closure returning a future cannot.
macro_rules! until {
    ($lesson:expr, $signal:expr, $timeout:expr, $every:expr, $body:block) => {{
        let started = std::time::Instant::now();
        loop {
            let outcome: Result<_, String> = async { $body }.await;
            match outcome {
                Ok(seen) => break Ok(seen),
                Err(last) if started.elapsed() >= $timeout => {
                    break Err($crate::lesson::watch::no_signal($lesson, $signal, $timeout, last));
                }
                Err(_) => tokio::time::sleep($every).await,
            }
        }
    }};
}
pub(super) use until;

pub(super) fn no_signal(lesson: &'static str, signal: &str, waited: Duration, last: String) -> LessonError {
    LessonError::NoSignal {
        lesson,
        signal: signal.to_string(),
        waited,
        last,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn gives_up_with_the_last_observation() {
        let gave_up: Result<(), LessonError> =
            until!("l", "a signal", Duration::from_millis(30), Duration::from_millis(5), {
                Err("still 0".to_string())
            });
        let e = gave_up.unwrap_err().to_string();
        assert!(e.contains("did not see a signal") && e.contains("still 0"), "{e}");
        let mut n = 0;
        let got: Result<i32, LessonError> = until!("l", "three", Duration::from_secs(5), Duration::from_millis(1), {
            n += 1;
            if n >= 3 { Ok(n) } else { Err(format!("{n}")) }
        });
        assert_eq!(got.unwrap(), 3);
    }
}
