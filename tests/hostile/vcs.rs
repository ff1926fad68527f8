//! Hostile cases: vcs (see tests/hostile.rs).
