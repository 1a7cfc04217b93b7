//! Resource limits as the container sees them in its own cgroup files.

mod common;

use common::*;

#[test]
fn limits_visible_inside_the_container() {
    if !ready() {
        return;
    }
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.shares \
         /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us /sys/fs/cgroup/cpuset/cpuset.cpus",
    ]);
    b.config["linux"]["resources"] = serde_json::json!({
        "devices": [{"allow": false, "access": "rwm"}],
        "memory": {"limit": 67108864},
        "pids": {"limit": 42},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"}
    });
    b.write();
    let rt = Runtime::berth();
    let id = id("limits");
    let (code, out, err) = rt.run_fg(&b, &id);
    if !std::path::Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists() {
        eprintln!("skipping: this host has no cgroup v1 memory hierarchy");
        return;
    }
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        vec!["67108864", "42", "512", "50000", "100000", "0"]
    );
    assert_gone(&rt, &id, &b);
}

#[test]
fn pids_limit_is_enforced() {
    if !ready() {
        return;
    }
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "for i in 1 2 3 4 5 6 7 8; do sleep 5 & done 2>/dev/null; wait; echo done",
    ]);
    b.config["linux"]["resources"]["pids"] = serde_json::json!({"limit": 4});
    b.write();
    let rt = Runtime::berth();
    let id = id("pidslimit");
    let out = rt.run(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("can't fork") || err.contains("Resource temporarily unavailable") || !out.status.success(),
        "{err}"
    );
    assert_gone(&rt, &id, &b);
}

#[test]
fn device_cgroup_denies_what_is_not_allowed() {
    if !ready() {
        return;
    }
    // /dev/kmsg-like node the container may create but not open.
    let mut b = Bundle::new(&["sh", "-c", "cat /dev/mem 2>/dev/null && echo opened || echo denied"]);
    b.config["linux"]["devices"] = serde_json::json!([]);
    b.write();
    std::fs::create_dir_all(b.rootfs().join("dev")).unwrap();
    let mut b2 = b;
    let mounts = b2.config["mounts"].as_array_mut().unwrap();
    mounts.retain(|m| m["destination"] != "/dev");
    b2.write();
    // mknod the node in the rootfs: the device cgroup, not the file, must stop it.
    let _ = nix::sys::stat::mknod(
        &b2.rootfs().join("dev/mem"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 1),
    );
    let rt = Runtime::berth();
    let id = id("devcg");
    let (code, out, err) = rt.run_fg(&b2, &id);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "denied");
    assert_gone(&rt, &id, &b2);
}

#[test]
fn hugetlb_limit_goes_to_the_cgroup2_mount_of_a_hybrid_host() {
    if !ready() {
        return;
    }
    let unified = std::path::Path::new("/sys/fs/cgroup/unified/cgroup.controllers");
    let has = std::fs::read_to_string(unified).is_ok_and(|c| c.contains("hugetlb"));
    if !has || !std::path::Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists() {
        eprintln!("skipping: no hugetlb on a cgroup2 mount here");
        return;
    }
    let mut b = Bundle::new(&["cat", "/sys/fs/cgroup/unified/hugetlb.2MB.max"]);
    b.config["linux"]["resources"]["hugepageLimits"] = serde_json::json!([{"pageSize": "2MB", "limit": 4194304}]);
    b.write();
    let rt = Runtime::berth();
    let id = id("hugetlb");
    let (code, out, err) = rt.run_fg(&b, &id);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "4194304");
    assert_gone(&rt, &id, &b);
}
