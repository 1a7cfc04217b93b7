//! The image config (OCI `application/vnd.oci.image.config.v1+json`, Docker
//! `application/vnd.docker.container.image.v1+json`): the platform, the container defaults and
//! the layer chain's uncompressed digests.

use std::collections::BTreeMap;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use super::{null_default, FormatError, Platform};
use crate::store::Digest;

/// An image config. Docker's extra fields (`container_config`, `docker_version`, …) are not kept;
/// the config's bytes are, by the caller, since its digest is the image id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    pub architecture: String,
    pub os: String,
    #[serde(rename = "os.version", default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    #[serde(
        rename = "os.features",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    pub rootfs: RootFs,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
}

/// The defaults a container of the image starts with (Docker's field names, as both families
/// use them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub exposed_ports: BTreeMap<String, EmptyObject>,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// `None` (absent or null) and an empty list differ for Docker: unset versus cleared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub volumes: BTreeMap<String, EmptyObject>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Docker only: the command line is already escaped (Windows).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub args_escaped: bool,
    /// Docker only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    /// Docker only.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub on_build: Vec<String>,
    /// Docker only.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub shell: Vec<String>,
}

/// `{}`: the value of the `ExposedPorts` and `Volumes` sets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmptyObject {}

/// A Docker health check; durations in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
}

/// The layer chain: the digests of the uncompressed layer tars, base first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, deserialize_with = "null_default")]
    pub diff_ids: Vec<Digest>,
}

/// One step of the image's history; `empty_layer` steps made no layer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// The required fields, checked before the document so a missing one is named.
#[derive(Deserialize)]
struct Required {
    architecture: Option<IgnoredAny>,
    os: Option<IgnoredAny>,
    rootfs: Option<IgnoredAny>,
}

const WHAT: &str = "image config";

impl ImageConfig {
    /// Reads an image config of either family.
    pub fn parse(bytes: &[u8]) -> Result<ImageConfig, FormatError> {
        let required: Required =
            serde_json::from_slice(bytes).map_err(|source| FormatError::Json { what: WHAT, source })?;
        for (present, field) in [
            (required.architecture.is_some(), "architecture"),
            (required.os.is_some(), "os"),
            (required.rootfs.is_some(), "rootfs"),
        ] {
            if !present {
                return Err(FormatError::MissingField { what: WHAT, field });
            }
        }
        let config: ImageConfig =
            serde_json::from_slice(bytes).map_err(|source| FormatError::Json { what: WHAT, source })?;
        if config.rootfs.kind != "layers" {
            return Err(FormatError::RootfsType {
                found: config.rootfs.kind,
            });
        }
        Ok(config)
    }

    /// The platform the image was built for.
    pub fn platform(&self) -> Platform {
        Platform {
            architecture: self.architecture.clone(),
            os: self.os.clone(),
            os_version: self.os_version.clone(),
            os_features: self.os_features.clone(),
            variant: self.variant.clone(),
            features: Vec::new(),
        }
        .normalize()
    }

    /// How many history steps made a layer: must equal the number of `diff_ids`.
    pub fn layer_history_len(&self) -> usize {
        self.history.iter().filter(|h| !h.empty_layer).count()
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
