//! Stats parsing on sample files.

use std::path::Path;

use crate::cgroup::{Cgroup, UnifiedDir, V1Dir};
use crate::fs::fixture;

fn v1dir(root: &Path, c: &str) -> V1Dir {
    V1Dir {
        controllers: vec![c.to_string()],
        mount_point: root.join(c),
        path: root.join(c).join("ctr"),
    }
}

#[test]
fn v1_stats() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    let cg = Cgroup {
        v1: ["cpu", "cpuacct", "memory", "pids", "blkio", "hugetlb"]
            .iter()
            .map(|c| v1dir(r, c))
            .collect(),
        unified: None,
    };
    let p = |c: &str| cg.path_for(c).unwrap().to_path_buf();
    fixture::set(&p("cpuacct"), "cpuacct.usage", "3000\n");
    fixture::set(&p("cpuacct"), "cpuacct.usage_percpu", "1000 2000 \n");
    fixture::set(&p("cpuacct"), "cpuacct.stat", "user 5\nsystem 7\n");
    fixture::set(
        &p("cpu"),
        "cpu.stat",
        "nr_periods 10\nnr_throttled 2\nthrottled_time 999\n",
    );
    fixture::set(&p("memory"), "memory.usage_in_bytes", "4096\n");
    fixture::set(&p("memory"), "memory.max_usage_in_bytes", "8192\n");
    fixture::set(&p("memory"), "memory.limit_in_bytes", "9223372036854771712\n");
    fixture::set(&p("memory"), "memory.failcnt", "1\n");
    fixture::set(&p("memory"), "memory.memsw.usage_in_bytes", "5000\n");
    fixture::set(&p("memory"), "memory.stat", "cache 100\nrss 200\n");
    fixture::set(
        &p("memory"),
        "memory.oom_control",
        "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
    );
    fixture::set(&p("pids"), "pids.current", "4\n");
    fixture::set(&p("pids"), "pids.max", "max\n");
    fixture::set(
        &p("blkio"),
        "blkio.throttle.io_service_bytes_recursive",
        "8:0 Read 4096\n8:0 Write 512\n8:0 Total 4608\nTotal 4608\n",
    );
    fixture::set(&p("blkio"), "blkio.throttle.io_serviced_recursive", "8:0 Read 1\n");
    fixture::set(&p("hugetlb"), "hugetlb.2MB.limit_in_bytes", "0\n");
    fixture::set(&p("hugetlb"), "hugetlb.2MB.rsvd.limit_in_bytes", "0\n");
    fixture::set(&p("hugetlb"), "hugetlb.2MB.usage_in_bytes", "2097152\n");
    fixture::set(&p("hugetlb"), "hugetlb.2MB.failcnt", "2\n");
    let s = cg.stats().unwrap();
    assert_eq!(s.cpu.usage.percpu, vec![1000, 2000]);
    assert_eq!(s.cpu.usage.user, 50_000_000);
    assert_eq!(s.cpu.throttling.throttled_periods, 2);
    assert_eq!(s.memory.oom_kill, 3);
    assert_eq!(s.pids.limit, 0);
    assert_eq!(s.blkio.io_service_bytes_recursive.len(), 3);
    assert_eq!(s.hugetlb.len(), 1);
    let j = serde_json::to_value(&s).unwrap();
    assert_eq!(j["cpu"]["usage"]["total"], 3000);
    assert_eq!(j["cpu"]["usage"]["percpu"][1], 2000);
    assert_eq!(j["cpu"]["usage"]["kernel"], 70_000_000u64);
    assert_eq!(j["cpu"]["throttling"]["throttledTime"], 999);
    assert_eq!(j["memory"]["usage"]["usage"], 4096);
    assert_eq!(j["memory"]["usage"]["max"], 8192);
    assert_eq!(j["memory"]["usage"]["failcnt"], 1);
    assert_eq!(j["memory"]["usage"]["limit"], 9223372036854771712u64);
    assert_eq!(j["memory"]["swap"]["usage"], 5000);
    assert_eq!(j["memory"]["cache"], 100);
    assert_eq!(j["memory"]["raw"]["rss"], 200);
    assert!(j["memory"].get("kernelTCP").is_some());
    assert_eq!(j["pids"]["current"], 4);
    assert!(j["pids"].get("limit").is_none());
    assert_eq!(j["blkio"]["ioServiceBytesRecursive"][0]["op"], "Read");
    assert_eq!(j["blkio"]["ioServicedRecursive"][0]["value"], 1);
    assert_eq!(j["hugetlb"]["2MB"]["usage"], 2097152);
    assert_eq!(j["hugetlb"]["2MB"]["failcnt"], 2);
}

#[test]
fn v2_stats() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("ctr");
    let cg = Cgroup {
        v1: Vec::new(),
        unified: Some(UnifiedDir {
            controllers: ["cpu", "memory", "pids", "io", "hugetlb"].map(String::from).to_vec(),
            mount_point: t.path().to_path_buf(),
            path: d.clone(),
        }),
    };
    fixture::set(
        &d,
        "cpu.stat",
        "usage_usec 10\nuser_usec 6\nsystem_usec 4\nnr_periods 3\nnr_throttled 1\nthrottled_usec 7\n",
    );
    fixture::set(&d, "memory.current", "1000\n");
    fixture::set(&d, "memory.max", "max\n");
    fixture::set(&d, "memory.swap.current", "24\n");
    fixture::set(&d, "memory.swap.max", "max\n");
    fixture::set(&d, "memory.stat", "anon 10\nfile 20\n");
    fixture::set(&d, "memory.events", "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\n");
    fixture::set(&d, "pids.current", "2\n");
    fixture::set(&d, "pids.max", "100\n");
    fixture::set(
        &d,
        "io.stat",
        "8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n",
    );
    fixture::set(&d, "hugetlb.1GB.max", "max\n");
    fixture::set(&d, "hugetlb.1GB.current", "0\n");
    fixture::set(&d, "hugetlb.1GB.events", "max 1\n");
    let s = cg.stats().unwrap();
    let j = serde_json::to_value(&s).unwrap();
    assert_eq!(j["cpu"]["usage"]["total"], 10_000);
    assert_eq!(j["cpu"]["usage"]["user"], 6_000);
    assert_eq!(j["cpu"]["throttling"]["periods"], 3);
    assert_eq!(j["memory"]["usage"]["usage"], 1000);
    assert_eq!(j["memory"]["usage"]["limit"], u64::MAX);
    assert_eq!(j["memory"]["usage"]["failcnt"], 5);
    assert_eq!(j["memory"]["swap"]["usage"], 1024);
    assert_eq!(j["memory"]["cache"], 20);
    assert_eq!(j["pids"]["limit"], 100);
    assert_eq!(j["blkio"]["ioServiceBytesRecursive"][1]["op"], "Write");
    assert_eq!(j["blkio"]["ioServiceBytesRecursive"][1]["value"], 200);
    assert_eq!(j["blkio"]["ioServicedRecursive"][0]["value"], 1);
    assert_eq!(j["hugetlb"]["1GB"]["failcnt"], 1);
    assert_eq!(cg.oom_kill_count().unwrap(), 1);
}
