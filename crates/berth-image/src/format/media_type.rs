//! Media types of the OCI image spec and of Docker's image manifest v2 schema 2, and what a
//! layer's media type says about its compression and distribution.

use super::FormatError;

/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI content descriptor (as a document of its own).
pub const OCI_DESCRIPTOR: &str = "application/vnd.oci.descriptor.v1+json";
/// OCI image layout header (`oci-layout`).
pub const OCI_LAYOUT_HEADER: &str = "application/vnd.oci.layout.header.v1+json";
/// The OCI empty descriptor's type (`{}`), used as the config of artifacts.
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// OCI layer, uncompressed tar.
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI layer, gzip-compressed tar.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI layer, zstd-compressed tar.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// OCI non-distributable layer, uncompressed (deprecated by the spec, still found in images).
pub const OCI_LAYER_NONDISTRIBUTABLE: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
/// OCI non-distributable layer, gzip.
pub const OCI_LAYER_NONDISTRIBUTABLE_GZIP: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
/// OCI non-distributable layer, zstd.
pub const OCI_LAYER_NONDISTRIBUTABLE_ZSTD: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";

/// Docker manifest list (the Docker family's index).
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker image manifest, schema 1 (refused).
pub const DOCKER_MANIFEST_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
/// Docker image manifest, schema 1, signed (refused).
pub const DOCKER_MANIFEST_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker layer, gzip-compressed tar (the usual one).
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker layer, uncompressed tar.
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// Docker layer, zstd (written by BuildKit with Docker media types).
pub const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";
/// Docker foreign layer, gzip (Windows base layers), fetched from its `urls`.
pub const DOCKER_LAYER_FOREIGN_GZIP: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/// Docker foreign layer, uncompressed.
pub const DOCKER_LAYER_FOREIGN: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar";

/// Whether `media_type` is a manifest or index type berth parses.
pub fn is_manifest(media_type: &str) -> bool {
    matches!(
        media_type,
        OCI_INDEX | OCI_MANIFEST | DOCKER_MANIFEST_LIST | DOCKER_MANIFEST
    )
}

/// Whether `media_type` is an index (OCI index or Docker manifest list).
pub fn is_index(media_type: &str) -> bool {
    matches!(media_type, OCI_INDEX | DOCKER_MANIFEST_LIST)
}

/// Whether `media_type` belongs to the Docker family.
pub fn is_docker(media_type: &str) -> bool {
    media_type.starts_with("application/vnd.docker.")
}

/// How a layer's tar stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LayerCompression {
    None,
    Gzip,
    Zstd,
}

/// What a layer's media type says: its compression, and whether it may be distributed.
///
/// A non-distributable (OCI) or foreign (Docker) layer may be skipped when pushing, and when
/// pulling must be fetched from the descriptor's `urls` rather than from the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LayerMediaType {
    pub compression: LayerCompression,
    pub distributable: bool,
}

impl LayerMediaType {
    /// Reads a layer's media type; an unknown one (not a tar layer of either family) is an error.
    pub fn parse(media_type: &str) -> Result<LayerMediaType, FormatError> {
        let (compression, distributable) = match media_type {
            OCI_LAYER | DOCKER_LAYER => (LayerCompression::None, true),
            OCI_LAYER_GZIP | DOCKER_LAYER_GZIP => (LayerCompression::Gzip, true),
            OCI_LAYER_ZSTD | DOCKER_LAYER_ZSTD => (LayerCompression::Zstd, true),
            OCI_LAYER_NONDISTRIBUTABLE | DOCKER_LAYER_FOREIGN => (LayerCompression::None, false),
            OCI_LAYER_NONDISTRIBUTABLE_GZIP | DOCKER_LAYER_FOREIGN_GZIP => (LayerCompression::Gzip, false),
            OCI_LAYER_NONDISTRIBUTABLE_ZSTD => (LayerCompression::Zstd, false),
            _ => {
                return Err(FormatError::UnknownLayerMediaType {
                    media_type: media_type.to_owned(),
                })
            }
        };
        Ok(LayerMediaType {
            compression,
            distributable,
        })
    }
}

impl LayerCompression {
    /// The compression of a layer of media type `media_type`.
    pub fn from_media_type(media_type: &str) -> Result<LayerCompression, FormatError> {
        LayerMediaType::parse(media_type).map(|layer| layer.compression)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_from_media_type() {
        for (media_type, compression, distributable) in [
            (OCI_LAYER, LayerCompression::None, true),
            (OCI_LAYER_GZIP, LayerCompression::Gzip, true),
            (OCI_LAYER_ZSTD, LayerCompression::Zstd, true),
            (OCI_LAYER_NONDISTRIBUTABLE, LayerCompression::None, false),
            (OCI_LAYER_NONDISTRIBUTABLE_GZIP, LayerCompression::Gzip, false),
            (OCI_LAYER_NONDISTRIBUTABLE_ZSTD, LayerCompression::Zstd, false),
            (DOCKER_LAYER, LayerCompression::None, true),
            (DOCKER_LAYER_GZIP, LayerCompression::Gzip, true),
            (DOCKER_LAYER_ZSTD, LayerCompression::Zstd, true),
            (DOCKER_LAYER_FOREIGN, LayerCompression::None, false),
            (DOCKER_LAYER_FOREIGN_GZIP, LayerCompression::Gzip, false),
        ] {
            assert_eq!(
                LayerMediaType::parse(media_type).unwrap(),
                LayerMediaType {
                    compression,
                    distributable
                },
                "{media_type}"
            );
            assert_eq!(LayerCompression::from_media_type(media_type).unwrap(), compression);
        }
    }

    #[test]
    fn unknown_layer_media_type_is_named() {
        let err = LayerCompression::from_media_type(OCI_CONFIG).unwrap_err();
        assert_eq!(err.to_string(), format!("unknown layer media type {OCI_CONFIG:?}"));
        assert!(LayerMediaType::parse("application/vnd.oci.image.layer.v1.tar+bzip2").is_err());
    }

    #[test]
    fn families() {
        assert!(is_manifest(DOCKER_MANIFEST) && is_manifest(OCI_INDEX) && !is_manifest(OCI_CONFIG));
        assert!(is_index(DOCKER_MANIFEST_LIST) && is_index(OCI_INDEX) && !is_index(OCI_MANIFEST));
        assert!(is_docker(DOCKER_LAYER_FOREIGN_GZIP) && !is_docker(OCI_LAYER));
    }
}
