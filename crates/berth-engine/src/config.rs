//! A container's settings in Docker's shape (the `Config` and `HostConfig`
//! of the Engine API's create body), as recorded and as `inspect` shows
//! them. The CLI fills them from flags; the API server will take them as
//! they come.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use berth_image::format::HealthConfig;

/// What runs: the image's defaults overridden by the user.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Config {
    pub hostname: String,
    pub domainname: String,
    pub user: String,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    pub env: Vec<String>,
    pub cmd: Option<Vec<String>>,
    pub image: String,
    pub volumes: Option<BTreeMap<String, Value>>,
    pub working_dir: String,
    pub entrypoint: Option<Vec<String>>,
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
}

/// How it runs on this host.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    pub binds: Vec<String>,
    pub log_config: LogConfig,
    pub network_mode: String,
    pub restart_policy: RestartPolicy,
    pub auto_remove: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub group_add: Vec<String>,
    pub extra_hosts: Vec<String>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub privileged: bool,
    pub readonly_rootfs: bool,
    pub security_opt: Vec<String>,
    pub tmpfs: BTreeMap<String, String>,
    pub shm_size: i64,
    pub sysctls: BTreeMap<String, String>,
    pub init: Option<bool>,
    pub memory: i64,
    pub memory_swap: i64,
    pub nano_cpus: i64,
    pub cpu_shares: i64,
    pub cpuset_cpus: String,
    pub pids_limit: Option<i64>,
    pub devices: Vec<DeviceMapping>,
    pub ulimits: Vec<Ulimit>,
    pub mounts: Vec<MountPoint>,
    /// `-p`: container port (`80/tcp`) to host bindings.
    pub port_bindings: BTreeMap<String, Vec<PortBinding>>,
    /// `-P`: every exposed port on a random host port.
    pub publish_all_ports: bool,
}

/// A host address and port a container port is published on; empty means
/// every address / a random port.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortBinding {
    pub host_ip: String,
    pub host_port: String,
}

/// The create body's `NetworkingConfig`: per network, the endpoint asked for.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkingConfig {
    pub endpoints_config: BTreeMap<String, EndpointSettings>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointSettings {
    pub aliases: Vec<String>,
    #[serde(rename = "IPAMConfig", skip_serializing_if = "Option::is_none")]
    pub ipam_config: Option<EndpointIpam>,
    pub mac_address: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct EndpointIpam {
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
    #[serde(rename = "IPv6Address")]
    pub ipv6_address: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogConfig {
    #[serde(rename = "Type")]
    pub kind: String,
    pub config: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    pub name: String,
    pub maximum_retry_count: i64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeviceMapping {
    pub path_on_host: String,
    pub path_in_container: String,
    pub cgroup_permissions: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// A mount of `--mount` (or `-v`, or `--tmpfs`), in the API's form.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct MountPoint {
    /// `bind`, `volume` or `tmpfs`.
    #[serde(rename = "Type")]
    pub kind: String,
    pub source: String,
    pub target: String,
    pub read_only: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind_options: Option<BindOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tmpfs_options: Option<TmpfsOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_options: Option<VolumeOptions>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct BindOptions {
    pub propagation: String,
}

/// A volume mount's options (`--mount type=volume,volume-nocopy,volume-label=…,volume-opt=…`):
/// labels and driver options apply when the mount creates the volume.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeOptions {
    /// Do not copy the image's content at the target into an empty volume.
    pub no_copy: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver_config: Option<Driver>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Driver {
    pub name: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct TmpfsOptions {
    pub size_bytes: i64,
    pub mode: u32,
}

/// The parts of an image's config a container starts from.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageDefaults {
    pub env: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub working_dir: String,
    pub user: String,
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    pub volumes: Option<BTreeMap<String, Value>>,
    pub labels: Option<BTreeMap<String, String>>,
    pub stop_signal: Option<String>,
    pub healthcheck: Option<HealthConfig>,
}

impl ImageDefaults {
    /// The `config` section of an image config blob.
    pub fn from_image_config(bytes: &[u8]) -> Result<ImageDefaults, serde_json::Error> {
        #[derive(Deserialize)]
        struct Outer {
            #[serde(default)]
            config: Option<ImageDefaults>,
        }
        Ok(serde_json::from_slice::<Outer>(bytes)?.config.unwrap_or_default())
    }
}

/// Merges the image's defaults into a user's config as Docker does: an
/// entrypoint given by the user drops the image's cmd; env is the image's
/// then the user's; labels, ports and volumes add up; the rest is the
/// user's when set.
pub fn merge(user: &mut Config, image: &ImageDefaults) {
    if user.entrypoint.is_none() {
        user.entrypoint = image.entrypoint.clone();
        if user.cmd.is_none() {
            user.cmd = image.cmd.clone();
        }
    } else if user.entrypoint.as_ref().is_some_and(|e| e.is_empty()) {
        // `--entrypoint ""`: no entrypoint, and the image's cmd only when
        // the user gave none.
        user.entrypoint = None;
        if user.cmd.is_none() {
            user.cmd = image.cmd.clone();
        }
    }
    let mut env = image.env.clone().unwrap_or_default();
    for kv in user.env.drain(..) {
        let key = kv.split('=').next().unwrap_or_default().to_owned();
        env.retain(|e| e.split('=').next() != Some(key.as_str()));
        env.push(kv);
    }
    user.env = env;
    if user.working_dir.is_empty() {
        user.working_dir = image.working_dir.clone();
    }
    if user.user.is_empty() {
        user.user = image.user.clone();
    }
    let mut labels = image.labels.clone().unwrap_or_default();
    labels.append(&mut user.labels);
    user.labels = labels;
    for (src, dst) in [
        (&image.exposed_ports, &mut user.exposed_ports),
        (&image.volumes, &mut user.volumes),
    ] {
        if let Some(src) = src {
            let d = dst.get_or_insert_with(BTreeMap::new);
            for (k, v) in src {
                d.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
    if user.stop_signal.is_none() {
        user.stop_signal = image.stop_signal.clone();
    }
    // The user's health check settings win field by field; the image's test
    // serves when the user gave only timings.
    if let Some(img) = &image.healthcheck {
        match &mut user.healthcheck {
            None => user.healthcheck = Some(img.clone()),
            Some(h) => {
                if h.test.is_empty() {
                    h.test = img.test.clone();
                }
                for (mine, theirs) in [
                    (&mut h.interval, img.interval),
                    (&mut h.timeout, img.timeout),
                    (&mut h.start_period, img.start_period),
                    (&mut h.start_interval, img.start_interval),
                    (&mut h.retries, img.retries),
                ] {
                    if mine.is_none_or(|v| v == 0) {
                        *mine = theirs;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> ImageDefaults {
        ImageDefaults {
            env: Some(vec!["PATH=/bin".into(), "A=1".into()]),
            cmd: Some(vec!["sh".into()]),
            entrypoint: Some(vec!["/init".into()]),
            working_dir: "/srv".into(),
            labels: Some([("a".into(), "image".into()), ("b".into(), "image".into())].into()),
            ..Default::default()
        }
    }

    #[test]
    fn entrypoint_and_cmd_merge_as_docker_does() {
        let mut c = Config::default();
        merge(&mut c, &image());
        assert_eq!(c.entrypoint, Some(vec!["/init".to_string()]));
        assert_eq!(c.cmd, Some(vec!["sh".to_string()]));

        let mut c = Config {
            cmd: Some(vec!["ls".into()]),
            ..Default::default()
        };
        merge(&mut c, &image());
        assert_eq!(c.entrypoint, Some(vec!["/init".to_string()]));
        assert_eq!(c.cmd, Some(vec!["ls".to_string()]));

        let mut c = Config {
            entrypoint: Some(vec!["/bin/echo".into()]),
            ..Default::default()
        };
        merge(&mut c, &image());
        assert_eq!(c.cmd, None, "a user entrypoint drops the image's cmd");

        let mut c = Config {
            entrypoint: Some(vec![]),
            ..Default::default()
        };
        merge(&mut c, &image());
        assert_eq!((c.entrypoint, c.cmd), (None, Some(vec!["sh".to_string()])));
    }

    #[test]
    fn env_labels_and_workdir_merge() {
        let mut c = Config {
            env: vec!["A=2".into(), "B=3".into()],
            labels: [("b".into(), "user".into())].into(),
            ..Default::default()
        };
        merge(&mut c, &image());
        assert_eq!(c.env, ["PATH=/bin", "A=2", "B=3"]);
        assert_eq!(c.labels["a"], "image");
        assert_eq!(c.labels["b"], "user");
        assert_eq!(c.working_dir, "/srv");
    }

    #[test]
    fn image_config_sections_parse() {
        let d = ImageDefaults::from_image_config(
            br#"{"architecture":"amd64","config":{"Env":["X=1"],"Cmd":["sh"],"WorkingDir":"/w"}}"#,
        )
        .unwrap();
        assert_eq!(d.cmd, Some(vec!["sh".to_string()]));
        assert_eq!(d.working_dir, "/w");
        assert_eq!(
            ImageDefaults::from_image_config(b"{}").unwrap(),
            ImageDefaults::default()
        );
    }
}
