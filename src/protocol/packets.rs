//! Typed packets (filled in next).
