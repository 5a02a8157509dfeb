//! Units shared by the config and the resources: byte sizes ([`ByteSize`]) and durations
//! ([`Millis`]), each read from a number or a human form and shown in the human form. No I/O and
//! no other part of dgate: both sides depend on this, never on each other for it.

mod duration;
pub mod nanos;
mod size;

#[cfg(test)]
mod tests;

pub use duration::Millis;
pub use size::{ByteSize, SizeError};
