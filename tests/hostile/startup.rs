//! Hostile cases: startup (see tests/hostile.rs).
