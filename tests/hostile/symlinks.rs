//! Hostile cases: symlinks (see tests/hostile.rs).
