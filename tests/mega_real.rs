//! Against the real Mega server (`mono`, `../shared/mega`, started per test by
//! `support::mono`): what Scorpio reads, pushes and layers over it. One module per flow; each
//! test returns early, saying why, where the server is absent (never under `CI=true`).

mod support;

#[path = "mega_real/push.rs"]
mod push;
