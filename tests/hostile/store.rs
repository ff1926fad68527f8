//! Hostile cases: store (see tests/hostile.rs).
