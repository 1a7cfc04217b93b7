//! Images for berth: the content-addressed blob store and the OCI / Docker image formats.
//!
//! - [`store`] keeps blobs by sha256 digest under a root directory, verified on write, committed by
//!   an atomic rename so no half-written blob is ever visible, with resumable ingests.
//! - [`format`] parses OCI image manifests, indexes and configs and Docker v2 schema 2 manifests
//!   and manifest lists, and selects a platform's manifest from an index.
#![deny(unsafe_code)]

pub mod format;
pub mod store;
