//! Tests on this machine's real cgroup hierarchies. They need root and skip (with a message)
//! otherwise. Every cgroup made is removed by a guard, even when an assertion fails.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use berth_cgroups::layout::Unified;
use berth_cgroups::{Cgroup, FreezerState, Layout, Mode};
use oci_spec::runtime::LinuxResources;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn unique_name() -> String {
    format!(
        "berth-test-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

fn host_layout(test: &str) -> Option<Layout> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping {test}: needs root");
        return None;
    }
    match Layout::detect() {
        Ok(l) => Some(l),
        Err(e) => {
            eprintln!("skipping {test}: no cgroups: {e}");
            None
        }
    }
}

/// A layout with only the host's cgroup2 mount (pure v2 view, also on a hybrid host).
fn unified_layout(test: &str) -> Option<Layout> {
    let l = host_layout(test)?;
    match l.unified() {
        Some(u) => Some(Layout::new(Vec::new(), Some(Unified::clone(u)))),
        None => {
            eprintln!("skipping {test}: no cgroup2 mount");
            None
        }
    }
}

fn self_cgroup() -> String {
    std::fs::read_to_string("/proc/self/cgroup").unwrap()
}

/// Removes the cgroup (killing what is left in it) when dropped.
struct Guard {
    cg: Cgroup,
    children: Vec<Child>,
}

impl Guard {
    fn new(layout: &Layout) -> Guard {
        let cg = Cgroup::resolve(layout, None, &unique_name(), &self_cgroup()).unwrap();
        let g = Guard {
            cg,
            children: Vec::new(),
        };
        g.cg.create().unwrap();
        g
    }

    fn spawn(&mut self, cmd: &mut Command) -> u32 {
        let child = cmd.spawn().unwrap();
        let pid = child.id();
        self.children.push(child);
        self.cg.add_process(pid as i32).unwrap();
        pid
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.cg.thaw();
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Err(e) = self.cg.destroy() {
            eprintln!("cleanup of {:?} failed: {e}", self.cg);
        }
    }
}

fn resources(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap().trim().to_string()
}

fn sleeper() -> Command {
    let mut c = Command::new("sleep");
    c.arg("30");
    c
}

#[test]
fn v1_limits_freeze_kill_destroy() {
    let Some(layout) = host_layout("v1_limits_freeze_kill_destroy") else {
        return;
    };
    if layout.mode() == Mode::Unified {
        eprintln!("skipping v1_limits_freeze_kill_destroy: no v1 hierarchies");
        return;
    }
    let mut g = Guard::new(&layout);
    let cg = g.cg.clone();
    for d in cg.dirs() {
        assert!(d.is_dir(), "{} not created", d.display());
    }
    let r = resources(
        r#"{"pids": {"limit": 50},
            "memory": {"limit": 67108864, "reservation": 33554432},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
            "devices": [{"allow": false, "access": "rwm"},
                        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]}"#,
    );
    cg.apply(&r).unwrap();
    if let Some(d) = cg.path_for("pids") {
        assert_eq!(read(d, "pids.max"), "50");
    }
    if let Some(d) = cg.path_for("memory") {
        assert_eq!(read(d, "memory.limit_in_bytes"), "67108864");
        assert_eq!(read(d, "memory.soft_limit_in_bytes"), "33554432");
    }
    if let Some(d) = cg.path_for("cpu") {
        assert_eq!(read(d, "cpu.shares"), "512");
        assert_eq!(read(d, "cpu.cfs_quota_us"), "50000");
        assert_eq!(read(d, "cpu.cfs_period_us"), "100000");
    }
    if let Some(d) = cg.path_for("cpuset") {
        assert_eq!(read(d, "cpuset.cpus"), "0");
    }
    if let Some(d) = cg.path_for("devices") {
        assert_eq!(read(d, "devices.list"), "c 1:3 rwm");
    }
    // pids unset/0 -> max
    cg.apply(&resources(r#"{"pids": {"limit": 0}}"#)).unwrap();
    if let Some(d) = cg.path_for("pids") {
        assert_eq!(read(d, "pids.max"), "max");
    }

    let pid = g.spawn(&mut sleeper()) as i32;
    assert_eq!(cg.pids().unwrap(), vec![pid]);
    if cg.has_controller("freezer") {
        cg.freeze().unwrap();
        assert_eq!(cg.freezer_state().unwrap(), FreezerState::Frozen);
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        assert!(stat.contains(") S ") || stat.contains(") D "), "{stat}");
        cg.thaw().unwrap();
        assert_eq!(cg.freezer_state().unwrap(), FreezerState::Thawed);
    }
    let stats = cg.stats().unwrap();
    if cg.has_controller("pids") {
        assert_eq!(stats.pids.current, 1);
    }
    if cg.has_controller("memory") {
        assert_eq!(stats.memory.usage.limit, 67108864);
    }
    let json = serde_json::to_value(&stats).unwrap();
    assert!(json["memory"]["usage"].get("limit").is_some());
    assert_eq!(cg.oom_kill_count().unwrap(), 0);

    // SIGTERM goes through the freeze / signal / thaw path
    cg.kill_all(libc::SIGTERM).unwrap();
    let status = g.children[0].wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGTERM));
    g.children.clear();

    // a nested cgroup made inside the container is removed too
    let nested = cg.path_for("memory").or(cg.path_for("")).unwrap().join("nested");
    std::fs::create_dir(&nested).unwrap();
    cg.destroy().unwrap();
    for d in cg.dirs() {
        assert!(!d.exists(), "{} left behind", d.display());
    }
    // destroying again is fine
    cg.destroy().unwrap();
}

#[test]
fn v2_freeze_kill_hugetlb() {
    let Some(layout) = unified_layout("v2_freeze_kill_hugetlb") else {
        return;
    };
    let mut g = Guard::new(&layout);
    let cg = g.cg.clone();
    let dir = cg.path_for("").unwrap().to_path_buf();
    assert!(dir.is_dir());
    let pid = g.spawn(&mut sleeper()) as i32;
    assert_eq!(read(&dir, "cgroup.procs"), pid.to_string());
    assert_eq!(cg.pids().unwrap(), vec![pid]);

    cg.freeze().unwrap();
    assert_eq!(cg.freezer_state().unwrap(), FreezerState::Frozen);
    assert!(read(&dir, "cgroup.events").contains("frozen 1"));
    cg.thaw().unwrap();
    assert_eq!(cg.freezer_state().unwrap(), FreezerState::Thawed);

    if cg.has_controller("hugetlb") {
        let sizes: Vec<String> = std::fs::read_dir("/sys/kernel/mm/hugepages")
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| {
                        let n = e.file_name().to_string_lossy().into_owned();
                        let kb: u64 = n.strip_prefix("hugepages-")?.strip_suffix("kB")?.parse().ok()?;
                        Some(if kb >= 1 << 20 {
                            format!("{}GB", kb >> 20)
                        } else if kb >= 1 << 10 {
                            format!("{}MB", kb >> 10)
                        } else {
                            format!("{kb}KB")
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        for size in sizes {
            if !dir.join(format!("hugetlb.{size}.max")).exists() {
                eprintln!("no hugetlb.{size}.max in {}", dir.display());
                continue;
            }
            let r = resources(&format!(
                r#"{{"hugepageLimits": [{{"pageSize": "{size}", "limit": 1073741824}}]}}"#
            ));
            cg.apply(&r).unwrap();
            assert_eq!(read(&dir, &format!("hugetlb.{size}.max")), "1073741824");
            let stats = cg.stats().unwrap();
            assert!(stats.hugetlb.contains_key(&size), "{:?}", stats.hugetlb);
        }
        let bad = resources(r#"{"hugepageLimits": [{"pageSize": "3MB", "limit": 1}]}"#);
        assert!(cg.apply(&bad).unwrap_err().to_string().contains("3MB"));
    }

    cg.kill_all(libc::SIGKILL).unwrap();
    let status = g.children[0].wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    g.children.clear();
    cg.destroy().unwrap();
    assert!(!dir.exists());
}

/// Runs `sh` in the cgroup, waits until it is inside, then lets it open /dev/null for writing.
fn dev_null_verdict(g: &mut Guard, rules: &str) -> String {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("read x; if echo hi > /dev/null; then echo ok; else echo denied; fi")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    g.cg.add_process(child.id() as i32).unwrap();
    g.cg.apply(&resources(&format!(r#"{{"devices": {rules}}}"#))).unwrap();
    // The shell blocks in `read` until now: it is already in the cgroup with the program attached.
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    child.wait().unwrap();
    line.trim().to_string()
}

#[test]
fn v2_device_ebpf() {
    let Some(layout) = unified_layout("v2_device_ebpf") else {
        return;
    };
    let mut g = Guard::new(&layout);
    let deny_null = r#"[{"allow": true, "access": "rwm"},
                        {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "w"}]"#;
    assert_eq!(dev_null_verdict(&mut g, deny_null), "denied");
    // update: the new program replaces ours (only one attached)
    let allow_null = r#"[{"allow": false, "access": "rwm"},
                         {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]"#;
    assert_eq!(dev_null_verdict(&mut g, allow_null), "ok");
    let cgroup = berth_cgroups::bpf_syscall::open_cgroup(g.cg.path_for("").unwrap()).unwrap();
    let ids = berth_cgroups::bpf_syscall::query_device_progs(&cgroup, Path::new("x")).unwrap();
    assert_eq!(ids.len(), 1, "{ids:?}");
    // default deny: nothing listed for /dev/null
    assert_eq!(dev_null_verdict(&mut g, r#"[]"#), "denied");
}

#[test]
fn relative_and_nested_paths() {
    let Some(layout) = host_layout("relative_and_nested_paths") else {
        return;
    };
    let name = unique_name();
    let path = format!("/{name}/a/b");
    let cg = Cgroup::resolve(&layout, Some(Path::new(&path)), "id", &self_cgroup()).unwrap();
    struct Clean(Vec<std::path::PathBuf>);
    impl Drop for Clean {
        fn drop(&mut self) {
            for p in &self.0 {
                let _ = std::fs::remove_dir(p.join("a/b"));
                let _ = std::fs::remove_dir(p.join("a"));
                let _ = std::fs::remove_dir(p);
            }
        }
    }
    let _clean = Clean(
        cg.dirs()
            .map(|d| d.parent().unwrap().parent().unwrap().to_path_buf())
            .collect(),
    );
    cg.create().unwrap();
    if let Some(d) = cg
        .path_for("cpuset")
        .filter(|_| layout.v1_hierarchy("cpuset").is_some())
    {
        // intermediate levels got the parent's cpus, so the leaf is usable (v1: a group
        // starts empty; v2's are inherited)
        assert!(!read(d.parent().unwrap().parent().unwrap(), "cpuset.cpus").is_empty());
        assert!(!read(d, "cpuset.cpus").is_empty());
    }
    cg.destroy().unwrap();
    for d in cg.dirs() {
        assert!(!d.exists());
    }
    let escaping = Cgroup::resolve(&layout, Some(Path::new("../../../../../../../x")), "id", &self_cgroup());
    assert!(escaping.is_err());
}

/// An engine removes its shared parent group once it is unused, possibly while another
/// process creates a child in it: the child is then made in a parent made again, and on v1
/// cpuset filled from it (an unfilled one refuses tasks with ENOSPC).
#[test]
fn children_made_while_their_parent_is_removed_are_usable() {
    let Some(layout) = host_layout("children_made_while_their_parent_is_removed_are_usable") else {
        return;
    };
    let name = unique_name();
    let parent = Cgroup::resolve(&layout, Some(Path::new(&format!("/{name}"))), "p", &self_cgroup()).unwrap();
    // Whatever a failure leaves: the children, then the parent.
    struct Clean<'a>(&'a Cgroup);
    impl Drop for Clean<'_> {
        fn drop(&mut self) {
            for dir in self.0.dirs() {
                for child in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                    let _ = std::fs::remove_dir(child.path());
                }
            }
            self.0.remove_if_unused();
        }
    }
    let _clean = Clean(&parent);
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                parent.remove_if_unused();
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
        });
        let made = (|| {
            for i in 0..300 {
                let path = format!("/{name}/c{i}");
                let child = Cgroup::resolve(&layout, Some(Path::new(&path)), "c", &self_cgroup()).unwrap();
                child.create().map_err(|e| format!("{path}: {e:?}"))?;
                // A v1 cpuset group starts empty and must be filled (v2's are inherited).
                let v1 = layout.v1_hierarchy("cpuset").is_some();
                let cpus = child.path_for("cpuset").filter(|_| v1).map(|d| read(d, "cpuset.cpus"));
                child.destroy().unwrap();
                if cpus.is_some_and(|c| c.is_empty()) {
                    return Err(format!("{path}: cpuset.cpus left empty"));
                }
            }
            Ok(())
        })();
        stop.store(true, Ordering::Relaxed);
        made.unwrap();
    });
    parent.remove_if_unused();
    assert!(parent.dirs().all(|d| !d.exists()));
}
