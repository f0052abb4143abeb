//! Start-up work the lambdas begin at process start, so that their first
//! invocation does not wait for it.
#![warn(missing_docs)]

use std::thread::JoinHandle;

/// Seeds AWS-LC's random generator on a thread of its own, and returns that
/// thread.
///
/// AWS-LC (behind rustls, the SDK's HTTPS client and lettre) seeds its
/// generator from CPU jitter the first time anything asks for random bytes,
/// and its jitter source is compiled without optimisation on purpose, in
/// release builds too. Measured here, that first draw takes 20–32 ms; the next
/// takes microseconds, on any thread. Without this, a cold lambda pays it
/// inside its first TLS handshake, in the middle of the invocation. Started
/// at process start, it runs while the runtime fetches the first event and
/// the function prepares its clients; a handshake that comes sooner waits for
/// the rest of it, never longer than without this.
pub fn seed_random_in_background() -> JoinHandle<Result<(), aws_lc_rs::error::Unspecified>> {
    std::thread::spawn(|| {
        let mut byte = [0u8; 1];
        aws_lc_rs::rand::fill(&mut byte)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_background_seed_draws_from_the_generator() {
        let seeded = seed_random_in_background()
            .join()
            .expect("the seeding thread panicked");
        assert_eq!(seeded, Ok(()));
        // The generator is usable from other threads afterwards.
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).unwrap();
        assert_ne!(bytes, [0u8; 32]);
    }
}
