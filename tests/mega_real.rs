//! Against the real Mega server (`mono`, `../shared/mega`, started per test by
//! `support::mono`): what Scorpio reads, pushes and layers over it. One module per flow; each
//! test returns early, saying why, where the server is absent (never where `.ci/run` finds it).

mod support;

#[path = "mega_real/cl_layer.rs"]
mod cl_layer;

#[path = "mega_real/modes.rs"]
mod modes;

#[path = "mega_real/packs.rs"]
mod packs;

#[path = "mega_real/push.rs"]
mod push;
