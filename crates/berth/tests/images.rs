//! `berth` image commands end to end, as root, against a real registry on 127.0.0.1 and real
//! overlay snapshots: pull (tags, digests, indexes, platforms), push, save/load,
//! import/export, tag/rmi/prune, hostile layers, and pulls killed at random points.

mod support;

use std::time::Duration;

use support::{reference, registry::Auth, registry::Registry, tar_entries, Fixture, Root};

#[test]
fn pull_unpacks_whiteouts_and_opaque_dirs_and_records_names() {
    if !support::ready("pull_unpacks_whiteouts_and_opaque_dirs_and_records_names") {
        return;
    }
    let reg = Registry::start(Auth::None);
    let fixture = Fixture::new("amd64", &[300_000]);
    let name = format!("{}/app:1", reg.addr);
    let (digest, _) = fixture.push(&reference(&name), true);
    let root = Root::new();

    let out = root.ok(&["pull", &name]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("1: Pulling from {}/app", reg.addr), "{out}");
    for (layer, _) in &fixture.layers {
        let short = &layer.hex()[..12];
        assert!(out.contains(&format!("{short}: Pull complete")), "{out}");
        // Plain output: no byte counts.
        assert!(!out.contains(&format!("{short}: Downloading")), "{out}");
    }
    assert!(out.contains(&format!("Digest: {digest}\n")), "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {name}\n")),
        "{out}"
    );
    assert!(out.ends_with(&format!("{name}\n")), "{out}");

    // Pulled again: nothing to do.
    let again = root.ok(&["pull", &name]);
    assert!(
        again.contains(&format!("Status: Image is up to date for {name}")),
        "{again}"
    );
    assert!(!again.contains("Pull complete"), "{again}");

    // The merged root filesystem: the whiteout deleted, the opaque dir replaced.
    let tar = root.ok_bytes(&["image", "export", &name]);
    let entries = tar_entries(&tar);
    assert_eq!(entries["etc/new"].as_deref(), Some(&b"added by layer 2"[..]));
    assert!(!entries.contains_key("etc/gone"), "{:?}", entries.keys());
    assert!(!entries.contains_key("data/old"), "{:?}", entries.keys());
    assert_eq!(entries["data/fresh"].as_deref(), Some(&b"after the opaque marker"[..]));
    assert_eq!(
        entries["bin/busybox"].as_deref(),
        Some(&std::fs::read("/bin/busybox").unwrap()[..])
    );
    assert_eq!(entries["noise0"].as_ref().unwrap().len(), 300_000);

    // The ID is the config's digest; the repository digest is recorded.
    let ids = root.ok(&["images", "-q", "--no-trunc"]);
    assert_eq!(ids.trim(), fixture.id());
    let doc: serde_json::Value = serde_json::from_str(&root.ok(&["image", "inspect", &name])).unwrap();
    assert_eq!(doc[0]["Id"], fixture.id());
    assert_eq!(doc[0]["RepoTags"][0], name);
    assert_eq!(doc[0]["RepoDigests"][0], format!("{}/app@{digest}", reg.addr));
    assert_eq!(doc[0]["Config"]["Cmd"][0], "sh");
    assert_eq!(doc[0]["RootFS"]["Layers"].as_array().unwrap().len(), 4);

    // By digest, and by a short ID prefix.
    let by_digest = format!("{}/app@{digest}", reg.addr);
    root.ok(&["pull", &by_digest]);
    let short = &fixture.id()["sha256:".len()..][..8];
    let doc: serde_json::Value = serde_json::from_str(&root.ok(&["inspect", short])).unwrap();
    assert_eq!(doc[0]["Id"], fixture.id());

    // Everything goes when the image does.
    let removed = root.ok(&["rmi", &name]);
    assert!(removed.contains(&format!("Untagged: {name}")), "{removed}");
    assert!(removed.contains(&format!("Deleted: {}", fixture.id())), "{removed}");
    assert_eq!(root.leftovers(), Vec::<String>::new());
}

#[test]
fn an_index_resolves_to_the_host_or_the_asked_platform() {
    if !support::ready("an_index_resolves_to_the_host_or_the_asked_platform") {
        return;
    }
    let reg = Registry::start(Auth::None);
    let amd = Fixture::new("amd64", &[]);
    let arm = Fixture::new("arm64", &[]);
    let repo = format!("{}/multi", reg.addr);
    let (amd_digest, amd_size) = amd.push(&reference(&format!("{repo}:amd64")), false);
    let (arm_digest, arm_size) = arm.push(&reference(&format!("{repo}:arm64")), false);
    let index = support::push_index(
        &reference(&format!("{repo}:1")),
        &[(&amd, amd_digest, amd_size), (&arm, arm_digest, arm_size)],
    );
    let root = Root::new();
    let out = root.ok(&["pull", &format!("{repo}:1")]);
    // The digest shown and recorded is the index's, as Docker does.
    assert!(out.contains(&format!("Digest: {index}")), "{out}");
    let host = root.ok_bytes(&["image", "export", &format!("{repo}:1")]);
    let host_arch = if cfg!(target_arch = "x86_64") { "amd64" } else { "arm64" };
    assert_eq!(tar_entries(&host)["etc/arch"].as_deref(), Some(host_arch.as_bytes()));

    let other = Root::new();
    other.ok(&["pull", "--platform", "linux/arm64", &format!("{repo}:1")]);
    let doc: serde_json::Value = serde_json::from_str(&other.ok(&["inspect", &format!("{repo}:1")])).unwrap();
    assert_eq!(doc[0]["Architecture"], "arm64");
    assert_eq!(doc[0]["Id"], arm.id());

    let err = other.fails(&["pull", "--platform", "linux/s390x", &format!("{repo}:1")]);
    assert!(err.contains("s390x"), "{err}");
}

#[test]
fn import_push_pull_save_load_round_trip() {
    if !support::ready("import_push_pull_save_load_round_trip") {
        return;
    }
    let reg = Registry::start(Auth::None);
    let a = Root::new();
    let tarball = a.dir.path().join("rootfs.tar.gz");
    std::fs::write(&tarball, support::layers::gzip(&support::busybox_rootfs_tar())).unwrap();
    let id = a.ok(&[
        "import",
        "-c",
        r#"CMD ["/bin/sh"]"#,
        "-c",
        "ENV GREETING=hi",
        "-m",
        "from a tarball",
        tarball.to_str().unwrap(),
        "bb:1",
    ]);
    let id = id.trim().to_owned();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    let doc: serde_json::Value = serde_json::from_str(&a.ok(&["inspect", "bb:1"])).unwrap();
    assert_eq!(doc[0]["Config"]["Cmd"][0], "/bin/sh");
    assert_eq!(doc[0]["Config"]["Env"][0], "GREETING=hi");
    assert_eq!(doc[0]["Comment"], "from a tarball");

    let remote = format!("{}/bb:1", reg.addr);
    a.ok(&["tag", "bb:1", &remote]);
    let out = a.ok(&["push", &remote]);
    assert!(
        out.contains(&format!("The push refers to repository [{}/bb]", reg.addr)),
        "{out}"
    );
    assert!(out.contains(": Pushed"), "{out}");
    assert!(out.contains("1: digest: sha256:"), "{out}");
    // The repository digest is recorded, as Docker records it.
    let pushed = out
        .split("1: digest: ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    assert_eq!(
        a.ok(&["image", "inspect", "--format", "{{json .RepoDigests}}", &remote])
            .trim(),
        format!(r#"["{}/bb@{pushed}"]"#, reg.addr)
    );
    // Pushed again: the registry has every blob.
    let again = a.ok(&["push", &remote]);
    assert!(again.contains("Layer already exists"), "{again}");

    let b = Root::new();
    b.ok(&["pull", &remote]);
    assert_eq!(b.ok(&["images", "-q", "--no-trunc"]).trim(), id);

    // save in each format, load into a fresh store: same image, same files.
    for format in ["combined", "docker", "oci"] {
        let archive = a.dir.path().join(format!("save-{format}.tar"));
        a.ok(&["save", "--format", format, "-o", archive.to_str().unwrap(), "bb:1"]);
        let c = Root::new();
        let out = c.ok(&["load", "-i", archive.to_str().unwrap()]);
        assert!(out.contains("Loaded image: bb:1"), "{format}: {out}");
        assert_eq!(c.ok(&["images", "-q", "--no-trunc"]).trim(), id, "{format}");
        let files = tar_entries(&c.ok_bytes(&["image", "export", "bb:1"]));
        assert_eq!(
            files["bin/busybox"].as_deref(),
            Some(&std::fs::read("/bin/busybox").unwrap()[..]),
            "{format}"
        );
    }
    // stdin and stdout work too.
    let saved = a.ok_bytes(&["save", "bb:1"]);
    let d = Root::new();
    let mut child = d
        .cmd()
        .arg("load")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &saved).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(d.ok(&["images", "-q", "--no-trunc"]).trim(), id);
}

#[test]
fn tags_rmi_and_prune_behave_like_docker() {
    if !support::ready("tags_rmi_and_prune_behave_like_docker") {
        return;
    }
    let root = Root::new();
    let tarball = root.dir.path().join("rootfs.tar");
    std::fs::write(&tarball, support::busybox_rootfs_tar()).unwrap();
    let id = root
        .ok(&["import", tarball.to_str().unwrap(), "one:1"])
        .trim()
        .to_owned();
    root.ok(&["tag", "one:1", "two:2"]);
    // By ID with two names: refused without -f.
    let err = root.fails(&["rmi", &id]);
    assert!(
        err.contains("must be forced") && err.contains("multiple repositories"),
        "{err}"
    );
    // By name: only untagged.
    assert_eq!(root.ok(&["rmi", "two:2"]), "Untagged: two:2\n");
    assert_eq!(root.ok(&["images", "-q"]).trim(), &id[7..19]);
    // A second, different image, then untag it: dangling, pruned.
    let other = root.dir.path().join("other.tar");
    std::fs::write(
        &other,
        support::layers::Layer::new().file("x", b"x", 0o644, (0, 0)).finish(),
    )
    .unwrap();
    let id2 = root
        .ok(&["import", other.to_str().unwrap(), "dang:1"])
        .trim()
        .to_owned();
    root.ok(&["import", tarball.to_str().unwrap(), "dang:1"]);
    assert_eq!(
        root.ok(&["images", "-q", "--filter", "dangling=true"]).trim(),
        &id2[7..19]
    );
    let out = root.ok(&["image", "prune", "-f"]);
    assert!(out.contains(&format!("Deleted: {id2}")), "{out}");
    assert!(out.contains("Total reclaimed space:"), "{out}");
    assert_eq!(root.ok(&["images", "-q", "--filter", "dangling=true"]), "");
    // Errors name the image.
    let err = root.fails(&["rmi", "nosuch:1"]);
    assert!(err.contains("No such image: nosuch:1"), "{err}");
    let err = root.fails(&["tag", "one:1", "Bad Name"]);
    assert!(err.contains("Bad Name"), "{err}");
    root.ok(&["rmi", "-f", &id]);
    root.ok(&["image", "prune", "-a", "-f"]);
    assert_eq!(root.leftovers(), Vec::<String>::new());
}

#[test]
fn a_hostile_layer_is_refused_by_name_and_leaves_no_image() {
    if !support::ready("a_hostile_layer_is_refused_by_name_and_leaves_no_image") {
        return;
    }
    let reg = Registry::start(Auth::None);
    let root = Root::new();
    let tar = support::layers::Layer::new()
        .raw(b"../escape", tar::EntryType::Regular, b"", b"boom", 4)
        .finish();
    let rootfs = root.dir.path().join("evil.tar");
    std::fs::write(&rootfs, &tar).unwrap();
    let err = root.fails(&["import", rootfs.to_str().unwrap(), "evil:1"]);
    assert!(err.contains("../escape"), "{err}");
    assert!(!root.dir.path().join("escape").exists());
    assert_eq!(root.ok(&["images", "-q"]), "");

    // The same through a registry: the pull fails naming layer and entry, records nothing,
    // and prune leaves nothing behind.
    let good = support::busybox_rootfs_tar();
    let fixture = Fixture::from_layers("amd64", &[good, tar]);
    let name = format!("{}/evil:1", reg.addr);
    fixture.push(&reference(&name), false);
    let err = root.fails(&["pull", &name]);
    let evil_layer = fixture.layers[1].0.to_string();
    assert!(err.contains(&evil_layer) && err.contains("../escape"), "{err}");
    assert_eq!(root.ok(&["images", "-q"]), "");
    root.ok(&["image", "prune", "-a", "-f"]);
    assert_eq!(root.leftovers(), Vec::<String>::new());
}

/// Layers are applied at once, each into a snapshot of its own, and stacked when all are in:
/// an image that lists one layer twice (as images with repeated empty layers do) gets both
/// copies, in their places, from a pull and from a load.
#[test]
fn a_layer_listed_twice_is_stacked_twice_in_its_places() {
    if !support::ready("a_layer_listed_twice_is_stacked_twice_in_its_places") {
        return;
    }
    let reg = Registry::start(Auth::None);
    let set = |value: &[u8]| {
        support::layers::Layer::new()
            .file("value", value, 0o644, (0, 0))
            .finish()
    };
    let tars = [support::busybox_rootfs_tar(), set(b"one"), set(b"two"), set(b"one")];
    let fixture = Fixture::from_layers("amd64", &tars);
    assert_eq!(fixture.layers[1], fixture.layers[3]);
    let name = format!("{}/twice:1", reg.addr);
    fixture.push(&reference(&name), false);
    let root = Root::new();
    let out = root.ok(&["pull", &name]);
    // One progress line per layer ID, as Docker shows it: the repeated layer shares its line,
    // and its blob is downloaded once.
    assert_eq!(out.matches(": Pull complete").count(), 3, "{out}");
    let twice = &fixture.layers[1].0.hex()[..12];
    assert_eq!(out.matches(&format!("{twice}: Download complete")).count(), 1, "{out}");
    let doc: serde_json::Value = serde_json::from_str(&root.ok(&["image", "inspect", &name])).unwrap();
    assert_eq!(doc[0]["RootFS"]["Layers"].as_array().unwrap().len(), 4, "{doc}");
    let files = tar_entries(&root.ok_bytes(&["image", "export", &name]));
    assert_eq!(files["value"].as_deref(), Some(&b"one"[..]));

    let archive = root.dir.path().join("twice.tar");
    std::fs::write(&archive, fixture.archive(&name, support::ArchiveForm::Docker)).unwrap();
    let loaded = Root::new();
    loaded.ok(&["load", "-i", archive.to_str().unwrap()]);
    let files = tar_entries(&loaded.ok_bytes(&["image", "export", &name]));
    assert_eq!(files["value"].as_deref(), Some(&b"one"[..]));

    for r in [&root, &loaded] {
        r.ok(&["rmi", &name]);
        assert_eq!(r.leftovers(), Vec::<String>::new());
    }
}

#[test]
fn a_pull_killed_at_any_point_leaves_a_consistent_store() {
    if !support::ready("a_pull_killed_at_any_point_leaves_a_consistent_store") {
        return;
    }
    let reg = Registry::start(Auth::None);
    let fixture = Fixture::new("amd64", &[3_000_000, 3_000_000, 3_000_000]);
    let name = format!("{}/big:1", reg.addr);
    fixture.push(&reference(&name), true);
    let root = Root::new();
    // Deterministic kill points spread over the pull (a few ms to a good part of a second).
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..12 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let delay = Duration::from_millis(2 + x % 400);
        let mut child = root
            .cmd()
            .args(["pull", &name])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let status = child.wait().unwrap();
        // Whatever happened, the store answers and holds the whole image or none.
        let ids = root.ok(&["images", "-q", "--no-trunc"]);
        match ids.trim() {
            "" => {}
            id => {
                assert_eq!(id, fixture.id(), "round {round} ({delay:?}, {status})");
                let files = tar_entries(&root.ok_bytes(&["image", "export", &name]));
                assert_eq!(files["noise2"].as_ref().unwrap().len(), 3_000_000, "round {round}");
                root.ok(&["rmi", &name]);
            }
        }
    }
    // The next pull completes; then nothing is left once the image is gone.
    root.ok(&["pull", &name]);
    let files = tar_entries(&root.ok_bytes(&["image", "export", &name]));
    assert_eq!(files["noise1"].as_deref(), Some(&support::noise(3_000_000, 8)[..]));
    root.ok(&["rmi", &name]);
    root.ok(&["image", "prune", "-a", "-f"]);
    assert_eq!(root.leftovers(), Vec::<String>::new());
}

#[test]
fn concurrent_pulls_of_one_image_share_the_work() {
    if !support::ready("concurrent_pulls_of_one_image_share_the_work") {
        return;
    }
    let reg = Registry::start(Auth::None);
    let fixture = Fixture::new("amd64", &[2_000_000, 2_000_000]);
    let name = format!("{}/shared:1", reg.addr);
    fixture.push(&reference(&name), false);
    let root = Root::new();
    let children: Vec<_> = (0..4)
        .map(|_| {
            root.cmd()
                .args(["pull", "-q", &name])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), name);
    }
    assert_eq!(root.ok(&["images", "-q", "--no-trunc"]).trim(), fixture.id());
    root.ok(&["rmi", &name]);
    assert_eq!(root.leftovers(), Vec::<String>::new());
}

#[test]
fn login_lets_pull_and_push_through_basic_auth_and_logout_forgets() {
    if !support::ready("login_lets_pull_and_push_through_basic_auth_and_logout_forgets") {
        return;
    }
    let reg = Registry::start(Auth::Basic {
        user: "alice".into(),
        password: "s3cret".into(),
    });
    let root = Root::new();
    let tarball = root.dir.path().join("rootfs.tar");
    std::fs::write(&tarball, support::busybox_rootfs_tar()).unwrap();
    let name = format!("{}/private:1", reg.addr);
    root.ok(&["import", tarball.to_str().unwrap(), &name]);
    let err = root.fails(&["push", &name]);
    assert!(
        err.to_lowercase().contains("unauthorized") || err.contains("401"),
        "{err}"
    );

    let login = |password: &str| {
        let mut child = root
            .cmd()
            .args(["login", "-u", "alice", "--password-stdin", &reg.addr])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), format!("{password}\n").as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let bad = login("wrong");
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("incorrect username or password"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let good = login("s3cret");
    assert!(good.status.success(), "{}", String::from_utf8_lossy(&good.stderr));
    assert_eq!(String::from_utf8_lossy(&good.stdout), "Login Succeeded\n");
    let config = root.dir.path().join("docker-config/config.json");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&config).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);

    root.ok(&["push", &name]);
    let other = Root::new();
    // Another store, same credentials file: the pull authenticates.
    let pulled = other
        .cmd()
        .env("DOCKER_CONFIG", root.dir.path().join("docker-config"))
        .args(["pull", "-q", &name])
        .output()
        .unwrap();
    assert!(pulled.status.success(), "{}", String::from_utf8_lossy(&pulled.stderr));

    assert_eq!(
        root.ok(&["logout", &reg.addr]),
        format!("Removing login credentials for {}\n", reg.addr)
    );
    assert_eq!(
        root.ok(&["logout", &reg.addr]),
        format!("Not logged in to {}\n", reg.addr)
    );
    root.fails(&["push", &name]);
}

#[test]
fn listings_print_as_docker_does() {
    if !support::ready("listings_print_as_docker_does") {
        return;
    }
    let reg = Registry::start(Auth::None);
    let fixture = Fixture::new("amd64", &[]);
    let name = format!("{}/team/app:1", reg.addr);
    let (digest, _) = fixture.push(&reference(&name), true);
    let root = Root::new();
    root.ok(&["pull", "-q", &name]);
    root.ok(&["tag", &name, "app:latest"]);
    let short = &fixture.id()[7..19];

    let table = root.ok(&["images"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    let header = format!(
        "{:<width$}   TAG       IMAGE ID       CREATED       SIZE",
        "REPOSITORY",
        width = format!("{}/team/app", reg.addr).len()
    );
    assert_eq!(lines[0], header, "{table}");
    assert!(
        lines[1].starts_with(&format!("{}/team/app   1         {short}   ", reg.addr)),
        "{table}"
    );
    assert!(lines[1].contains("years ago"), "{table}");
    assert!(lines[2].starts_with("app "), "{table}");

    let digests = root.ok(&["images", "--digests", &name]);
    assert!(digests.lines().next().unwrap().contains("DIGEST"), "{digests}");
    assert!(digests.contains(&digest.to_string()), "{digests}");

    assert_eq!(
        root.ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}", "app"]),
        format!("app:latest {short}\n")
    );
    let json = root.ok(&["images", "--format", "json", "app"]);
    let row: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(row["Repository"], "app");
    assert_eq!(row["CreatedAt"], "2024-01-05 00:00:00 +0000 UTC");
    assert_eq!(
        root.ok(&["images", "--filter", "label=fixture=yes", "-q"]).trim(),
        short
    );
    assert_eq!(root.ok(&["images", "--filter", "label=fixture=no", "-q"]), "");
    assert_eq!(
        root.ok(&["images", "--filter", "reference=app", "--format", "{{.Repository}}"]),
        "app\n"
    );
    let err = root.fails(&["images", "--filter", "bogus=1"]);
    assert!(err.contains("invalid filter 'bogus'"), "{err}");

    assert_eq!(
        root.ok(&[
            "inspect",
            "-f",
            "{{.Os}}/{{.Architecture}} {{index .Config.Labels \"fixture\"}}",
            "app"
        ]),
        "linux/amd64 yes\n"
    );
    let err = root.fails(&["inspect", "-f", "{{.Nope", "app"]);
    assert!(err.contains("--format"), "{err}");

    let history = root.ok(&["history", "app"]);
    let lines: Vec<&str> = history.lines().collect();
    assert!(lines[0].starts_with("IMAGE          CREATED"), "{history}");
    assert!(lines[1].starts_with(short) && lines[1].contains("step 2"), "{history}");
    assert!(
        lines[3].starts_with("<missing>") && lines[3].contains("step 0"),
        "{history}"
    );
    assert_eq!(root.ok(&["history", "-q", "app"]).lines().count(), 3);

    let df = root.ok(&["system", "df"]);
    assert!(df.starts_with("TYPE            TOTAL     ACTIVE    SIZE"), "{df}");
    assert!(
        df.lines().nth(1).unwrap().starts_with("Images          1         0"),
        "{df}"
    );
}
