//! Device nodes under the container's /dev and the standard symlinks.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::paths::secure_join;
use crate::error::{Error, IoContext, Result};

/// One node to create: path inside the container, kind, numbers, mode, owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub path: String,
    pub kind: char,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The devices every container gets, as runc creates them.
pub fn default_nodes() -> Vec<Node> {
    [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ]
    .into_iter()
    .map(|(path, major, minor)| Node {
        path: path.into(),
        kind: 'c',
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

/// A spec device as a node.
pub fn node_from_spec(d: &LinuxDevice) -> Result<Node> {
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => 'c',
        LinuxDeviceType::B => 'b',
        LinuxDeviceType::P => 'p',
        LinuxDeviceType::A => {
            return Err(Error::Invalid(format!(
                "device {} has type \"a\", which is not a node",
                d.path().display()
            )))
        }
    };
    Ok(Node {
        path: d.path().to_string_lossy().into_owned(),
        kind,
        major: d.major() as u64,
        minor: d.minor() as u64,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    })
}

/// Create the nodes under `rootfs`. In a user namespace mknod is not
/// allowed, so the host's node is bind-mounted instead, as runc does.
pub fn create_nodes(rootfs: &Path, nodes: &[Node], bind: bool) -> Result<()> {
    for n in nodes {
        let dest = secure_join(rootfs, Path::new(&n.path)).at("resolving device path", &n.path)?;
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).at("creating", parent)?;
        }
        if bind {
            super::create_file(&dest)?;
            mount(
                Some(n.path.as_str()),
                &dest,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .at("bind-mounting device", &n.path)?;
            continue;
        }
        let kind = match n.kind {
            'b' => SFlag::S_IFBLK,
            'p' => SFlag::S_IFIFO,
            _ => SFlag::S_IFCHR,
        };
        let _ = fs::remove_file(&dest);
        mknod(&dest, kind, Mode::from_bits_truncate(n.mode), makedev(n.major, n.minor))
            .at("creating device", &n.path)?;
        // mknod honours the umask; set the mode exactly.
        nix::sys::stat::fchmodat(
            nix::fcntl::AT_FDCWD,
            &dest,
            Mode::from_bits_truncate(n.mode),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )
        .at("chmod device", &n.path)?;
        nix::unistd::chown(&dest, Some(n.uid.into()), Some(n.gid.into())).at("chown device", &n.path)?;
    }
    Ok(())
}

/// /dev/fd, /dev/std{in,out,err}, /dev/core and /dev/ptmx -> pts/ptmx.
pub fn create_symlinks(rootfs: &Path) -> Result<()> {
    let dev = rootfs.join("dev");
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        let path = dev.join(name);
        match symlink(target, &path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::path("creating symlink", path, e)),
        }
    }
    let ptmx = dev.join("ptmx");
    let _ = fs::remove_file(&ptmx);
    symlink("pts/ptmx", &ptmx).at("creating symlink", ptmx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_device_modes_and_types() {
        let d: LinuxDevice = serde_json::from_str(
            r#"{"path":"/dev/fuse","type":"c","major":10,"minor":229,"fileMode":8630,"uid":0,"gid":0}"#,
        )
        .unwrap();
        let n = node_from_spec(&d).unwrap();
        assert_eq!((n.kind, n.major, n.minor, n.mode), ('c', 10, 229, 0o666));
    }

    #[test]
    fn symlinks_are_made_in_a_temp_dev() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("dev")).unwrap();
        create_symlinks(root.path()).unwrap();
        assert_eq!(
            fs::read_link(root.path().join("dev/ptmx")).unwrap(),
            Path::new("pts/ptmx")
        );
        assert_eq!(
            fs::read_link(root.path().join("dev/stderr")).unwrap(),
            Path::new("/proc/self/fd/2")
        );
    }
}
