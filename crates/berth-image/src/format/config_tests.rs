use std::error::Error as _;

use super::*;

const DOCKER_CONFIG_JSON: &str = include_str!("testdata/docker-config.json");

#[test]
fn docker_config_with_nulls_and_extra_fields() {
    let config = ImageConfig::parse(DOCKER_CONFIG_JSON.as_bytes()).unwrap();
    assert_eq!(config.platform().to_string(), "linux/amd64");
    let c = config.config.as_ref().unwrap();
    assert_eq!(c.user.as_deref(), Some("nobody"));
    assert_eq!(c.exposed_ports.keys().collect::<Vec<_>>(), ["443/tcp", "80/tcp"]);
    assert!(c.volumes.is_empty() && c.on_build.is_empty());
    assert_eq!(c.entrypoint.as_deref(), Some(&["/docker-entrypoint.sh".to_owned()][..]));
    assert_eq!(c.cmd.as_ref().unwrap()[0], "nginx");
    assert_eq!(c.working_dir.as_deref(), Some(""));
    assert_eq!(c.stop_signal.as_deref(), Some("SIGQUIT"));
    assert!(c.args_escaped);
    let health = c.healthcheck.as_ref().unwrap();
    assert_eq!(
        (health.interval, health.retries, health.timeout),
        (Some(30_000_000_000), Some(3), None)
    );
    assert_eq!(config.rootfs.diff_ids.len(), 2);
    assert_eq!(config.history.len(), 3);
    assert_eq!(config.layer_history_len(), config.rootfs.diff_ids.len());
}

#[test]
fn minimal_oci_config() {
    let json = br#"{"architecture":"arm64","variant":"v8","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config = ImageConfig::parse(json).unwrap();
    assert_eq!(config.platform().to_string(), "linux/arm64/v8");
    assert!(config.config.is_none());
    assert_eq!(
        serde_json::to_string(&config).unwrap(),
        r#"{"architecture":"arm64","os":"linux","variant":"v8","rootfs":{"type":"layers","diff_ids":[]}}"#
    );
}

#[test]
fn bad_configs_are_named() {
    let no_rootfs = br#"{"architecture":"amd64","os":"linux"}"#;
    assert_eq!(
        ImageConfig::parse(no_rootfs).unwrap_err().to_string(),
        "image config has no `rootfs`"
    );
    let no_os = br#"{"architecture":"amd64","rootfs":{"type":"layers"}}"#;
    assert_eq!(
        ImageConfig::parse(no_os).unwrap_err().to_string(),
        "image config has no `os`"
    );
    let wrong_type = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"squashfs","diff_ids":[]}}"#;
    assert_eq!(
        ImageConfig::parse(wrong_type).unwrap_err().to_string(),
        "image config has rootfs type \"squashfs\"; only \"layers\" is supported"
    );
    let bad_diff = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:00"]}}"#;
    let err = ImageConfig::parse(bad_diff).unwrap_err();
    assert_eq!(err.to_string(), "invalid image config");
    assert!(err.source().unwrap().to_string().contains("has 2 hex digits"));
}
