//! Hostile cases: api (see tests/hostile.rs).
