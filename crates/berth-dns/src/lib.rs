//! berth-dns: the embedded DNS server of berth's user-defined networks.
//!
//! berth has no engine process, so each user-defined network with DNS gets a small server
//! of its own (as Podman's aardvark-dns), listening on the network's gateway address, which
//! the containers have as their `nameserver`. It answers the containers' names, aliases and
//! id prefixes (A, AAAA) and their addresses (PTR) from a JSON file the engine rewrites as
//! containers come and go ([`config`]), and forwards every other query to the host's
//! resolvers ([`server`]). The wire format is this crate's own ([`wire`]).
//!
//! The engine drives it with [`write_config`], [`spawn`], [`running`] and [`stop`].

#![deny(unsafe_code)]

pub mod config;
pub mod control;
#[allow(unsafe_code)]
pub mod daemon;
pub mod names;
pub mod query;
pub mod server;
pub mod wire;

pub use config::{write_config, Config, Entry};
pub use control::{running, spawn, stop};
