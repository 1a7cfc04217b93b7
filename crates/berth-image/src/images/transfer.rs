//! Images in and out of files: `save` / `load` (Docker archives and OCI layouts, see
//! [`crate::archive`]), `import` of a root filesystem tarball as a one-layer image, and
//! `export` of an image's flattened root filesystem as a tarball.

use std::io::{self, Read, Write};
use std::path::Path;

use serde_json::json;

use super::{format_err, io_err, reference_key, store_err, wanted_platform, ImageError, Images, Result};
use crate::archive::{self, Format};
use crate::format::{media_type, ContainerConfig, Manifest, Platform};
use crate::layer::{self, ApplyOptions, Compression};
use crate::registry::Reference;
use crate::snapshot::Mount;
use crate::store::Digest;

/// How [`Images::import`] makes its image.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The name to give it (`repo[:tag]`); none leaves it dangling.
    pub reference: Option<String>,
    /// Dockerfile instructions applied to the config (`--change`): `CMD`, `ENTRYPOINT`, `ENV`,
    /// `EXPOSE`, `LABEL`, `USER`, `VOLUME`, `WORKDIR`, `STOPSIGNAL`.
    pub changes: Vec<String>,
    /// The history comment (`--message`).
    pub message: Option<String>,
    /// The platform recorded in the config; the host's by default.
    pub platform: Option<Platform>,
}

/// Formats seconds since the epoch as RFC 3339 in UTC.
pub fn format_rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

impl Images {
    /// Loads the images of a Docker archive or OCI layout tarball, unpacks their layers and
    /// records them under the names the archive gives. Returns `(name as Docker shows it, image
    /// ID)` per image.
    pub fn load(&mut self, reader: impl Read) -> Result<Vec<(Option<String>, String)>> {
        let _lock = self.lock_shared()?;
        let loaded = archive::load(reader, &self.store)?;
        let mut out = Vec::new();
        for image in loaded {
            let bytes = self.read_blob(&image.manifest, "manifest")?;
            let (resolved, extra) = match Manifest::parse(&bytes, None)
                .map_err(format_err(format!("manifest {}", image.manifest)))?
            {
                Manifest::Single(manifest) => (self.resolved(image.manifest.clone(), manifest)?, Vec::new()),
                Manifest::Index(index) => {
                    // As the archive chose: the host's image among those it holds, else the first.
                    let chosen = index
                        .select_present(&wanted_platform(None), |d| self.store.has(d))
                        .ok_or_else(|| ImageError::Invalid {
                            what: format!("image index {}", image.manifest),
                            reason: "none of its images is in the archive".into(),
                        })?;
                    let child = self.read_blob(&chosen.digest, "manifest")?;
                    match Manifest::parse(&child, Some(&chosen.media_type))
                        .map_err(format_err(format!("manifest {}", chosen.digest)))?
                    {
                        Manifest::Single(m) => (self.resolved(chosen.digest.clone(), m)?, vec![image.manifest.clone()]),
                        Manifest::Index(_) => {
                            return Err(ImageError::Invalid {
                                what: format!("image index {}", image.manifest),
                                reason: format!("its entry {} is another index", chosen.digest),
                            })
                        }
                    }
                }
            };
            let key = image
                .name
                .as_deref()
                .map(Reference::parse)
                .transpose()?
                .map(|r| reference_key(&r));
            let names = key.iter().map(|k| (k.clone(), true)).collect();
            self.unpack_and_record(&resolved, &extra, names, &|_, _| Ok(()), &|_, _| {})?;
            out.push((key.map(|k| super::display_name(&k)), resolved.config_digest.to_string()));
        }
        Ok(out)
    }

    /// Writes the images `names` (names or IDs) to `writer` as one archive in `format`.
    pub fn save(&self, names: &[&str], writer: impl Write, format: Format) -> Result<()> {
        let mut images = Vec::new();
        for name in names {
            let row = self.resolve(name)?;
            let by_name = Reference::parse(name)
                .ok()
                .filter(|r| r.digest().is_none())
                .filter(|r| self.db.image_by_name(&reference_key(r)).ok().flatten().as_deref() == Some(&row.id))
                .map(|r| super::display_name(&reference_key(&r)));
            let manifest = Digest::parse(&row.manifest).map_err(|e| ImageError::Invalid {
                what: format!("image {}", row.id),
                reason: e.to_string(),
            })?;
            images.push((by_name, manifest));
        }
        let refs: Vec<(Option<&str>, Digest)> = images.iter().map(|(n, d)| (n.as_deref(), d.clone())).collect();
        archive::save(&self.store, &refs, writer, format)?;
        Ok(())
    }

    /// Makes a one-layer image from a root filesystem tarball (plain, gzip or zstd), as
    /// `docker import` does. Returns the image ID.
    pub fn import(&mut self, reader: impl Read, opts: &ImportOptions) -> Result<String> {
        let _lock = self.lock_shared()?;
        let reference = opts.reference.as_deref().map(Reference::parse).transpose()?;
        let (layer_digest, layer_size) = self
            .store
            .write_blob(None, reader)
            .map_err(store_err("storing the imported tarball"))?;
        let mut prefix = [0u8; 8];
        let n = {
            let mut f = self
                .store
                .open_blob(&layer_digest)
                .map_err(store_err(format!("layer {layer_digest}")))?;
            read_up_to(&mut f, &mut prefix).map_err(io_err("read", &self.store.blob_path(&layer_digest)))?
        };
        let (compression, layer_type) = match Compression::detect(&prefix[..n]) {
            Compression::Gzip => (Compression::Gzip, media_type::OCI_LAYER_GZIP),
            Compression::Zstd => (Compression::Zstd, media_type::OCI_LAYER_ZSTD),
            _ => (Compression::None, media_type::OCI_LAYER),
        };
        // Unpack first: the diffID (and so the snapshot's name) comes out of it.
        let key = format!("extract-{}-import-{}", std::process::id(), layer_digest.hex());
        let _ = self.snapshots.remove(&key);
        self.snapshots.prepare(&key, None)?;
        let applied = (|| {
            let dir = self.snapshots.writable_dir(&key)?;
            let mut options = ApplyOptions::new(format!("imported tarball {layer_digest}"), self.snapshots.whiteouts());
            options.compression = compression;
            let file = self
                .store
                .open_blob(&layer_digest)
                .map_err(store_err(format!("layer {layer_digest}")))?;
            let applied = layer::apply(io::BufReader::new(file), &dir, &options).map_err(|e| {
                crate::snapshot::SnapshotError::Layer {
                    key: key.clone(),
                    source: Box::new(e),
                }
            })?;
            match self.snapshots.commit(&applied.diff_id, &key) {
                Ok(()) => Ok(applied),
                Err(crate::snapshot::SnapshotError::AlreadyExists { .. }) => {
                    self.snapshots.remove(&key)?;
                    Ok(applied)
                }
                Err(e) => Err(e.into()),
            }
        })();
        let applied: layer::Applied = match applied {
            Ok(a) => a,
            Err(e) => {
                let _ = self.snapshots.remove(&key);
                return Err(e);
            }
        };
        let diff_id = Digest::parse(&applied.diff_id).map_err(|e| ImageError::Invalid {
            what: "diffID of the imported tarball".into(),
            reason: e.to_string(),
        })?;
        let platform = wanted_platform(opts.platform.as_ref());
        let now = format_rfc3339(super::now() as i64);
        let mut container = ContainerConfig::default();
        for change in &opts.changes {
            apply_change(&mut container, change)?;
        }
        let config = json!({
            "created": now,
            "architecture": platform.architecture,
            "os": platform.os,
            "variant": platform.variant,
            "config": container,
            "rootfs": { "type": "layers", "diff_ids": [diff_id.to_string()] },
            "history": [{
                "created": now,
                "created_by": "berth import",
                "comment": opts.message.clone().unwrap_or_else(|| "Imported from -".into()),
            }],
        });
        let mut config = config;
        if platform.variant.is_none() {
            config.as_object_mut().expect("object").remove("variant");
        }
        let config_bytes = serde_json::to_vec(&config).expect("JSON of a value");
        let layers = json!([{ "mediaType": layer_type, "digest": layer_digest, "size": layer_size }]);
        self.record_built("the imported image", config_bytes, layers, false, reference.as_ref())
    }

    /// Writes the image's root filesystem, all layers merged, to `writer` as a tar.
    pub fn export(&self, name: &str, writer: impl Write + Send) -> Result<()> {
        let row = self.resolve(name)?;
        let mut builder = tar::Builder::new(writer);
        builder.follow_symlinks(false);
        builder.mode(tar::HeaderMode::Complete);
        match &row.top {
            None => {}
            Some(top) => {
                let key = format!("export-{}-{}", std::process::id(), super::short_id(&row.id));
                let _ = self.snapshots.remove(&key);
                let mounts = self.snapshots.view(&key, Some(top))?;
                let result = with_mounted(&mounts, &self.root, |dir| builder.append_dir_all(".", dir))
                    .map_err(io_err("archive the root filesystem of", Path::new(&row.id)));
                self.snapshots.remove(&key)?;
                result?;
            }
        }
        builder
            .into_inner()
            .and_then(|mut w| w.flush())
            .map_err(io_err("write the tarball of", Path::new(&row.id)))?;
        Ok(())
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Runs `f` with `mounts` mounted on a fresh directory under `scratch`, in a mount namespace
/// of a thread of its own: the mounts vanish with the thread, whatever happens to the process.
fn with_mounted<T: Send>(
    mounts: &[Mount],
    scratch: &Path,
    f: impl FnOnce(&Path) -> io::Result<T> + Send,
) -> io::Result<T> {
    let dir = tempfile::Builder::new().prefix("mnt-").tempdir_in(scratch)?;
    let target = dir.path().to_owned();
    std::thread::scope(|s| {
        s.spawn(|| {
            crate::snapshot::private_mount_namespace()?;
            for m in mounts {
                m.mount_at(&target)?;
            }
            f(&target)
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the export thread panicked")))
    })
}

/// Applies one `--change` instruction to the config (`import`, `commit`).
pub(crate) fn apply_change(config: &mut ContainerConfig, change: &str) -> Result<()> {
    let bad = |reason: &str| ImageError::Invalid {
        what: format!("--change {change:?}"),
        reason: reason.to_owned(),
    };
    let change = change.trim();
    let (keyword, rest) = change.split_once(char::is_whitespace).unwrap_or((change, ""));
    let rest = rest.trim();
    let list = |rest: &str, shell: bool| -> Result<Vec<String>> {
        if rest.starts_with('[') {
            serde_json::from_str::<Vec<String>>(rest).map_err(|e| bad(&format!("not a JSON list of strings: {e}")))
        } else if shell {
            Ok(vec!["/bin/sh".into(), "-c".into(), rest.to_owned()])
        } else {
            Ok(rest.split_whitespace().map(str::to_owned).collect())
        }
    };
    let pairs = |rest: &str| -> Result<Vec<(String, String)>> {
        if !rest.contains('=') {
            let (k, v) = rest
                .split_once(char::is_whitespace)
                .ok_or_else(|| bad("expected KEY=VALUE"))?;
            return Ok(vec![(k.to_owned(), v.trim().to_owned())]);
        }
        shell_words(rest)
            .into_iter()
            .map(|w| {
                w.split_once('=')
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .ok_or_else(|| bad(&format!("{w:?} is not KEY=VALUE")))
            })
            .collect()
    };
    if rest.is_empty() {
        return Err(bad("missing arguments"));
    }
    match keyword.to_ascii_uppercase().as_str() {
        "CMD" => config.cmd = Some(list(rest, true)?),
        "ENTRYPOINT" => config.entrypoint = Some(list(rest, true)?),
        "ENV" => {
            for (k, v) in pairs(rest)? {
                config.env.retain(|e| e.split('=').next() != Some(k.as_str()));
                config.env.push(format!("{k}={v}"));
            }
        }
        "LABEL" => {
            for (k, v) in pairs(rest)? {
                config.labels.insert(k, v);
            }
        }
        "EXPOSE" => {
            for port in rest.split_whitespace() {
                let port = if port.contains('/') { port.to_owned() } else { format!("{port}/tcp") };
                config.exposed_ports.insert(port, Default::default());
            }
        }
        "VOLUME" => {
            for v in list(rest, false)? {
                config.volumes.insert(v, Default::default());
            }
        }
        "USER" => config.user = Some(rest.to_owned()),
        "WORKDIR" => config.working_dir = Some(rest.to_owned()),
        "STOPSIGNAL" => config.stop_signal = Some(rest.to_owned()),
        other => {
            return Err(bad(&format!(
                "{other} cannot be applied to an image config (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR and STOPSIGNAL can)"
            )))
        }
    }
    Ok(())
}

/// Splits on whitespace, keeping double- or single-quoted parts together (quotes removed).
fn shell_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote = None;
    let mut any = false;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        words.push(cur);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(1_709_208_000), "2024-02-29T12:00:00Z");
        for t in [0, 86_399, 951_782_400, 1_709_208_000, 4_102_444_800] {
            assert_eq!(super::super::inspect::parse_rfc3339(&format_rfc3339(t)), Some(t));
        }
    }

    #[test]
    fn changes_apply_like_dockers() {
        let mut c = ContainerConfig::default();
        apply_change(&mut c, "CMD echo hi").unwrap();
        assert_eq!(c.cmd.as_deref().unwrap(), ["/bin/sh", "-c", "echo hi"]);
        apply_change(&mut c, r#"ENTRYPOINT ["/bin/app", "-x"]"#).unwrap();
        assert_eq!(c.entrypoint.as_deref().unwrap(), ["/bin/app", "-x"]);
        apply_change(&mut c, r#"ENV A=1 B="two words""#).unwrap();
        apply_change(&mut c, "ENV A 3").unwrap();
        assert_eq!(c.env, ["B=two words", "A=3"]);
        apply_change(&mut c, "EXPOSE 80 53/udp").unwrap();
        assert!(c.exposed_ports.contains_key("80/tcp") && c.exposed_ports.contains_key("53/udp"));
        apply_change(&mut c, "workdir /srv").unwrap();
        assert_eq!(c.working_dir.as_deref(), Some("/srv"));
        let err = apply_change(&mut c, "RUN make").unwrap_err().to_string();
        assert!(err.contains("RUN cannot be applied"), "{err}");
        let err = apply_change(&mut c, "CMD [oops").unwrap_err().to_string();
        assert!(err.contains("not a JSON list"), "{err}");
    }
}
