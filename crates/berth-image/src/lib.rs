//! Images for berth: unpacking layer tarballs into snapshots, and the snapshotters that stack them.
#![deny(unsafe_code)]

pub mod layer;
pub mod snapshot;
