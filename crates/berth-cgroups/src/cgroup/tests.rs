//! Fixture tests: layouts pointing at temporary directories.

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::*;
use crate::fs::fixture;

const SELF: &str = "5:pids:/user/me\n4:memory:/user/me\n0::/user/me\n";

fn hybrid(root: &Path, unified_controllers: &str) -> Layout {
    let mut text = String::new();
    for (i, c) in [
        "cpu",
        "cpuacct",
        "cpuset",
        "memory",
        "devices",
        "freezer",
        "blkio",
        "pids",
        "name=systemd",
    ]
    .iter()
    .enumerate()
    {
        let dir = root.join(c.trim_start_matches("name="));
        std::fs::create_dir_all(&dir).unwrap();
        text.push_str(&format!(
            "{} 1 0:{i} / {} rw - cgroup cgroup rw,{c}\n",
            30 + i,
            dir.display()
        ));
    }
    let u = root.join("unified");
    fixture::set(&u, "cgroup.controllers", unified_controllers);
    text.push_str(&format!("99 1 0:99 / {} rw - cgroup2 cgroup2 rw\n", u.display()));
    Layout::from_mountinfo(&text, &|p| std::fs::read_to_string(p).ok()).unwrap()
}

fn unified(root: &Path) -> Layout {
    fixture::set(root, "cgroup.controllers", "cpuset cpu io memory hugetlb pids");
    fixture::set(root, "cgroup.subtree_control", "");
    let text = format!("27 20 0:26 / {} rw - cgroup2 cgroup2 rw\n", root.display());
    Layout::from_mountinfo(&text, &|p| std::fs::read_to_string(p).ok()).unwrap()
}

fn legacy(root: &Path) -> Layout {
    let mut text = String::new();
    for (i, c) in ["cpu,cpuacct", "memory", "pids"].iter().enumerate() {
        let dir = root.join(c);
        std::fs::create_dir_all(&dir).unwrap();
        text.push_str(&format!(
            "{} 1 0:{i} / {} rw - cgroup cgroup rw,{c}\n",
            30 + i,
            dir.display()
        ));
    }
    Layout::from_mountinfo(&text, &|_| None).unwrap()
}

fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

#[test]
fn resolve_each_mode() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let l = hybrid(root, "hugetlb");
    assert_eq!(l.mode(), Mode::Hybrid);
    let cg = Cgroup::resolve(&l, None, "abc", SELF).unwrap();
    assert_eq!(cg.mode(), Mode::Hybrid);
    assert_eq!(cg.path_for("memory").unwrap(), root.join("memory/abc"));
    assert_eq!(cg.path_for("name=systemd").unwrap(), root.join("systemd/abc"));
    assert_eq!(cg.path_for("").unwrap(), root.join("unified/abc"));
    // hugetlb only exists on the cgroup2 mount here
    assert_eq!(cg.path_for("hugetlb").unwrap(), root.join("unified/abc"));
    assert!(cg.has_controller("hugetlb") && !cg.has_controller("net_cls"));

    let cg = Cgroup::resolve(&l, Some(Path::new("/x/y")), "abc", SELF).unwrap();
    assert_eq!(cg.path_for("cpu").unwrap(), root.join("cpu/x/y"));
    let cg = Cgroup::resolve(&l, Some(Path::new("ctr")), "abc", SELF).unwrap();
    assert_eq!(cg.path_for("memory").unwrap(), root.join("memory/user/me/ctr"));
    assert_eq!(cg.path_for("pids").unwrap(), root.join("pids/user/me/ctr"));
    assert_eq!(cg.path_for("cpu").unwrap(), root.join("cpu/ctr")); // "/" in cpu
    assert_eq!(cg.path_for("").unwrap(), root.join("unified/user/me/ctr"));
    let cg = Cgroup::resolve(&l, Some(Path::new("")), "abc", SELF).unwrap();
    assert_eq!(cg.path_for("cpu").unwrap(), root.join("cpu/abc"));

    let e = Cgroup::resolve(&l, Some(Path::new("/../../etc")), "abc", SELF).unwrap_err();
    assert!(e.to_string().contains("escapes the root"), "{e}");
    let e = Cgroup::resolve(&l, Some(Path::new("../../../x")), "abc", SELF).unwrap_err();
    assert!(e.to_string().contains("escapes the root"), "{e}");
    let e = Cgroup::resolve(&l, Some(Path::new("system.slice:berth:abc")), "abc", SELF).unwrap_err();
    assert!(e.to_string().contains("system.slice:berth:abc") && e.to_string().contains("systemd"));
    assert!(Cgroup::resolve(&l, None, "a/b", SELF).is_err());
    assert!(Cgroup::resolve(&l, None, "..", SELF).is_err());

    let u = unified(&root.join("v2"));
    let cg = Cgroup::resolve(&u, Some(Path::new("ctr")), "abc", SELF).unwrap();
    assert_eq!(cg.mode(), Mode::Unified);
    assert_eq!(cg.path_for("memory").unwrap(), root.join("v2/user/me/ctr"));
    assert_eq!(cg.path_for("freezer").unwrap(), root.join("v2/user/me/ctr"));
    assert!(cg.v1.is_empty());

    let lg = legacy(&root.join("v1"));
    let cg = Cgroup::resolve(&lg, None, "abc", SELF).unwrap();
    assert_eq!(cg.mode(), Mode::Legacy);
    assert_eq!(cg.path_for("cpuacct").unwrap(), root.join("v1/cpu,cpuacct/abc"));
    assert!(cg.path_for("").is_none());
    // state.json round trip
    let json = serde_json::to_string(&cg).unwrap();
    assert_eq!(serde_json::from_str::<Cgroup>(&json).unwrap(), cg);
}

fn touch(dir: &Path, files: &[&str]) {
    for f in files {
        fixture::set(dir, f, "0\n");
    }
}

#[test]
fn apply_routes_each_controller() {
    let t = tempfile::tempdir().unwrap();
    let l = hybrid(t.path(), "hugetlb");
    let cg = Cgroup::resolve(&l, None, "c1", SELF).unwrap();
    cg.create().unwrap();
    let p = |c: &str| -> PathBuf { cg.path_for(c).unwrap().to_path_buf() };
    touch(&p("memory"), &["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]);
    touch(&p("cpu"), &["cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us"]);
    touch(&p("pids"), &["pids.max"]);
    touch(&p("cpuset"), &["cpuset.cpus", "cpuset.mems"]);
    touch(&p("hugetlb"), &["hugetlb.2MB.max"]);
    let r = res(r#"{"memory": {"limit": 1000000, "swap": 2000000}, "pids": {"limit": 7},
            "cpu": {"shares": 100, "quota": 1000, "period": 10000, "cpus": "0"},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}]}"#);
    cg.apply(&r).unwrap();
    assert_eq!(fixture::get(&p("memory"), "memory.limit_in_bytes"), "1000000");
    assert_eq!(fixture::get(&p("memory"), "memory.memsw.limit_in_bytes"), "2000000");
    assert_eq!(fixture::get(&p("cpu"), "cpu.shares"), "100");
    assert_eq!(fixture::get(&p("pids"), "pids.max"), "7");
    assert_eq!(fixture::get(&p("cpuset"), "cpuset.cpus"), "0");
    assert_eq!(fixture::get(&p(""), "hugetlb.2MB.max"), "2097152");
    // unified keys: only for controllers on the cgroup2 mount
    let e = cg.apply(&res(r#"{"unified": {"memory.high": "100"}}"#)).unwrap_err();
    assert!(e.to_string().contains("memory.high"), "{e}");
    touch(&p(""), &["hugetlb.2MB.max"]);
    cg.apply(&res(r#"{"unified": {"hugetlb.2MB.max": "4194304"}}"#))
        .unwrap();
    assert_eq!(fixture::get(&p(""), "hugetlb.2MB.max"), "4194304");
    // v1-only controller on this host: unset is fine, set is an error naming it
    cg.apply(&res(r#"{"network": {}}"#)).unwrap();
    let e = cg.apply(&res(r#"{"network": {"classID": 5}}"#)).unwrap_err();
    assert!(e.to_string().contains("net_cls"), "{e}");
}

#[test]
fn apply_pure_v2() {
    let t = tempfile::tempdir().unwrap();
    let l = unified(t.path());
    let cg = Cgroup::resolve(&l, None, "c2", SELF).unwrap();
    cg.create().unwrap();
    let d = cg.path_for("").unwrap().to_path_buf();
    assert_eq!(fixture::get(t.path(), "cgroup.subtree_control"), "+pids");
    touch(
        &d,
        &[
            "memory.max",
            "memory.swap.max",
            "cpu.weight",
            "cpu.max",
            "pids.max",
            "io.weight",
            "cpuset.cpus",
            "memory.high",
        ],
    );
    cg.apply(&res(
        r#"{"memory": {"limit": 1048576, "swap": 1048576}, "cpu": {"shares": 1024, "quota": 5000, "cpus": "1"},
            "pids": {"limit": -1}, "blockIO": {"weight": 10}, "unified": {"memory.high": "524288"}}"#,
    ))
    .unwrap();
    assert_eq!(fixture::get(&d, "memory.max"), "1048576");
    assert_eq!(fixture::get(&d, "memory.swap.max"), "0");
    assert_eq!(fixture::get(&d, "cpu.weight"), "39");
    assert_eq!(fixture::get(&d, "cpu.max"), "5000");
    assert_eq!(fixture::get(&d, "pids.max"), "max");
    assert_eq!(fixture::get(&d, "io.weight"), "1");
    assert_eq!(fixture::get(&d, "cpuset.cpus"), "1");
    assert_eq!(fixture::get(&d, "memory.high"), "524288");
    // freezer via cgroup.freeze
    fixture::set(&d, "cgroup.freeze", "0");
    fixture::set(&d, "cgroup.events", "populated 0\nfrozen 1\n");
    cg.freeze().unwrap();
    assert_eq!(cg.freezer_state().unwrap(), FreezerState::Frozen);
    fixture::set(&d, "memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n");
    assert_eq!(cg.oom_kill_count().unwrap(), 2);
    fixture::set(&d, "cgroup.procs", "10\n11\n");
    fixture::set(&d.join("sub"), "cgroup.procs", "12\n");
    assert_eq!(cg.pids().unwrap(), vec![10, 11, 12]);
}

#[test]
fn legacy_missing_controllers() {
    let t = tempfile::tempdir().unwrap();
    let l = legacy(t.path());
    let cg = Cgroup::resolve(&l, None, "c3", SELF).unwrap();
    cg.create().unwrap();
    // unset / default values for absent controllers are skipped
    cg.apply(&res(r#"{"hugepageLimits": [], "blockIO": {}, "cpu": {"cpus": ""}}"#))
        .unwrap();
    let e = cg
        .apply(&res(r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 1}]}"#))
        .unwrap_err();
    assert!(
        e.to_string().contains("the hugetlb cgroup controller is not available"),
        "{e}"
    );
    let e = cg.apply(&res(r#"{"blockIO": {"weight": 100}}"#)).unwrap_err();
    assert!(e.to_string().contains("blkio"), "{e}");
    let e = cg.apply(&res(r#"{"unified": {"memory.high": "1"}}"#)).unwrap_err();
    assert!(e.to_string().contains("memory.high"), "{e}");
    assert!(matches!(cg.freeze(), Err(crate::Error::Cgroup(CgroupError::NoFreezer))));
    fixture::set(
        cg.path_for("memory").unwrap(),
        "memory.oom_control",
        "oom_kill_disable 0\nunder_oom 0\noom_kill 4\n",
    );
    assert_eq!(cg.oom_kill_count().unwrap(), 4);
}

#[test]
fn destroy_fixture_dirs() {
    let t = tempfile::tempdir().unwrap();
    let l = unified(t.path());
    let cg = Cgroup::resolve(&l, Some(Path::new("/a/b")), "x", SELF).unwrap();
    cg.create().unwrap();
    std::fs::create_dir_all(cg.path_for("").unwrap().join("c/d")).unwrap();
    cg.destroy().unwrap();
    assert!(!t.path().join("a/b").exists());
    assert!(t.path().join("a").exists()); // parents are left, as runc does
    cg.destroy().unwrap();
}
