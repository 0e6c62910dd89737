//! `engine image ...` and `engine volume ...` driven as a user would, each test with its
//! own temp `--root`. Tests that run containers need root and runc; they say so.

mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use common::{engine, is_root};
use predicates::prelude::*;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

/// The static binary the images run (the workspace `workload`) and the arguments that
/// make it print `READY`.
fn payload() -> (PathBuf, Vec<&'static str>) {
    (common::workload(), vec!["ready"])
}

fn have(tool: &str) -> bool {
    StdCommand::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Makes `exe` in the context executable, builds the context as image `tag` in a new
/// root and unpacks it there: the root and the bundle.
fn build_and_unpack(ctx: &TempDir, exe: &str, tag: &str) -> (TempDir, PathBuf) {
    fs::set_permissions(
        ctx.path().join(exe),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let root = tempfile::tempdir().unwrap();
    engine(root.path())
        .args(["image", "build", "-t", tag])
        .arg(ctx.path())
        .assert()
        .success();
    let bundle = root.path().join("bundle");
    engine(root.path())
        .args(["image", "unpack", tag])
        .arg(&bundle)
        .assert()
        .success();
    (root, bundle)
}

/// A build context holding `files` and a Containerfile.
fn context(containerfile: &str, files: &[(&str, &[u8])]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, data) in files {
        let path = dir.path().join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, data).unwrap();
    }
    fs::write(dir.path().join("Containerfile"), containerfile).unwrap();
    dir
}

fn tar_of(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data.as_bytes()).unwrap();
    }
    b.into_inner().unwrap()
}

fn inspect(root: &Path, image: &str) -> serde_json::Value {
    let out = engine(root)
        .args(["image", "inspect", image])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).unwrap()
}

#[test]
fn build_runs_each_instruction_and_reports_cache_reuse() {
    let root = tempfile::tempdir().unwrap();
    let file = "FROM scratch\nCOPY app.txt /app/\nADD bundle.tar /opt\nENV GREETING=\"hello world\"\n\
                WORKDIR data\nLABEL org.example.kind=test\nENTRYPOINT [\"/bin/tool\"]\nCMD [\"ready\"]\n";
    let ctx = context(
        file,
        &[
            ("app.txt", b"v1"),
            ("bundle.tar", &tar_of(&[("inner/x", "from tar")])),
        ],
    );
    engine(root.path())
        .args(["image", "build", "-t", "demo:1"])
        .arg(ctx.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("STEP 8/8: CMD [\"ready\"]"))
        .stdout(predicate::str::contains("Using cache").not())
        .stdout(predicate::str::contains("Successfully tagged demo:1"));

    let image = inspect(root.path(), "demo:1");
    let config = &image["config"]["config"];
    assert_eq!(config["Env"], serde_json::json!(["GREETING=hello world"]));
    assert_eq!(
        config["WorkingDir"], "/data",
        "relative WORKDIR resolves against /"
    );
    assert_eq!(config["Entrypoint"], serde_json::json!(["/bin/tool"]));
    assert_eq!(config["Cmd"], serde_json::json!(["ready"]));
    assert_eq!(config["Labels"]["org.example.kind"], "test");
    assert_eq!(
        image["manifest"]["layers"].as_array().unwrap().len(),
        3,
        "COPY, ADD, WORKDIR"
    );

    // Unchanged: every layer step reuses its layer, and the image id is the same.
    let again = engine(root.path())
        .args(["image", "build", "-t", "demo:2"])
        .arg(ctx.path())
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&again.get_output().stdout).into_owned();
    assert_eq!(stdout.matches("--> Using cache").count(), 3, "{stdout}");
    assert_eq!(inspect(root.path(), "demo:2")["id"], image["id"]);

    // One source changed: that step and the ones after it are rebuilt, the ones before reused.
    fs::write(
        ctx.path().join("bundle.tar"),
        tar_of(&[("inner/x", "changed")]),
    )
    .unwrap();
    let third = engine(root.path())
        .args(["image", "build", "-t", "demo:3"])
        .arg(ctx.path())
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&third.get_output().stdout).into_owned();
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("-->")).collect();
    assert!(lines[0].starts_with("--> Using cache"), "{stdout}");
    assert!(lines[1].starts_with("--> New layer"), "{stdout}");
    assert!(lines[2].starts_with("--> New layer"), "{stdout}");
}

#[test]
fn unpacked_bundle_honours_whiteouts_and_carries_the_config() {
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("wh");
    let lower = tar_of(&[
        ("etc/a", "A"),
        ("etc/b", "B"),
        ("var/old/x", "X"),
        ("var/old/y", "Y"),
    ]);
    let upper = tar_of(&[
        ("etc/.wh.a", ""),
        ("var/old/.wh..wh..opq", ""),
        ("var/old/new", "N"),
    ]);
    foreign_layout(&layout, &[gzip(&lower), gzip(&upper)], "1");
    let root = tempfile::tempdir().unwrap();
    engine(root.path())
        .args(["image", "import"])
        .arg(&layout)
        .assert()
        .success();
    let bundle = root.path().join("bundle");
    engine(root.path())
        .args(["image", "unpack", "wh:1"])
        .arg(&bundle)
        .assert()
        .success();
    let rootfs = bundle.join("rootfs");
    assert!(
        !rootfs.join("etc/a").exists(),
        "the upper layer's whiteout deletes /etc/a"
    );
    assert_eq!(fs::read_to_string(rootfs.join("etc/b")).unwrap(), "B");
    assert!(
        !rootfs.join("var/old/x").exists(),
        "the opaque dir hides the lower layer's files"
    );
    assert_eq!(fs::read_to_string(rootfs.join("var/old/new")).unwrap(), "N");
    assert!(
        !rootfs.join("etc/.wh.a").exists(),
        "whiteout markers are not files in the rootfs"
    );
    let spec: serde_json::Value =
        serde_json::from_slice(&fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(spec["process"]["args"], serde_json::json!(["/bin/x"]));
    assert_eq!(spec["root"]["path"], "rootfs");

    // A bundle directory that is not empty is refused and left alone.
    engine(root.path())
        .args(["image", "unpack", "wh:1"])
        .arg(&bundle)
        .assert()
        .failure()
        .stderr(predicate::str::contains("exists and is not empty"));
    assert!(rootfs.join("etc/b").exists());
}

#[test]
fn built_image_runs_under_runc_and_engine_with_the_same_output_as_on_the_host() {
    if !is_root() || !have("runc") {
        eprintln!("skipping: needs root and runc");
        return;
    }
    let (binary, args) = payload();
    let args_json = serde_json::to_string(&args).unwrap();
    let file = format!(
        "FROM scratch\nCOPY payload /payload\nENTRYPOINT [\"/payload\"]\nCMD {args_json}\n"
    );
    let ctx = context(&file, &[("payload", &fs::read(&binary).unwrap())]);
    let (root, bundle) = build_and_unpack(&ctx, "payload", "payload");

    let id = format!("isolab-test-{}", std::process::id());
    let in_runc = StdCommand::new("runc")
        .args(["run", "--bundle"])
        .arg(&bundle)
        .arg(&id)
        .output()
        .unwrap();
    let _ = StdCommand::new("runc")
        .args(["delete", "--force", &id])
        .output();
    assert!(
        in_runc.status.success(),
        "runc: {}",
        String::from_utf8_lossy(&in_runc.stderr)
    );
    let on_host = StdCommand::new(&binary).args(&args).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&in_runc.stdout),
        String::from_utf8_lossy(&on_host.stdout)
    );
    assert!(String::from_utf8_lossy(&in_runc.stdout).contains("READY"));
    // And isolab's engine runs the same image to the same output.
    let in_engine = engine(root.path())
        .args(["run", "--rm", "payload"])
        .output()
        .unwrap();
    assert!(
        in_engine.status.success(),
        "engine: {}",
        String::from_utf8_lossy(&in_engine.stderr)
    );
    assert_eq!(in_engine.stdout, in_runc.stdout);
}

#[test]
fn run_step_layer_holds_its_changes_and_deletions_as_root() {
    if !is_root() || !have("runc") {
        eprintln!("skipping: needs root and runc");
        return;
    }
    let busybox = fs::read("/bin/busybox").unwrap();
    let file = "FROM scratch\nCOPY busybox /bin/busybox\nCOPY gone /etc/gone\n\
                RUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox mkdir /out && echo $((6*7)) > /out/f && /bin/busybox rm /etc/gone\"]\nCMD [\"/bin/busybox\", \"true\"]\n";
    let ctx = context(file, &[("busybox", &busybox), ("gone", b"x")]);
    let (root, bundle) = build_and_unpack(&ctx, "busybox", "ran");
    assert_eq!(
        fs::read_to_string(bundle.join("rootfs/out/f")).unwrap(),
        "42\n"
    );
    assert!(
        !bundle.join("rootfs/etc/gone").exists(),
        "the RUN layer whites out /etc/gone"
    );
    assert!(
        !bundle.join("rootfs/proc").exists(),
        "mount points the runtime made are not in the layer"
    );
    // The second build reuses the RUN layer.
    engine(root.path())
        .args(["image", "build", "-t", "ran"])
        .arg(ctx.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("--> Using cache").count(3));
    // A failing RUN fails the build, naming the line, with isolab's runtime and with runc.
    let bad = context(
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"false\"]\n",
        &[("busybox", &busybox)],
    );
    fs::set_permissions(
        bad.path().join("busybox"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    for runtime in [None, Some("runc")] {
        let mut cmd = engine(root.path());
        cmd.args(["image", "build", "-t", "bad"]);
        if let Some(runtime) = runtime {
            cmd.args(["--runtime", runtime]);
        }
        cmd.arg(bad.path())
            .assert()
            .failure()
            .stderr(predicate::str::contains("Containerfile line 3: RUN"));
    }
    // runc runs RUN steps too when asked.
    let ctx_runc = context(&file_runc(), &[("busybox", &busybox)]);
    fs::set_permissions(
        ctx_runc.path().join("busybox"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    engine(root.path())
        .args(["image", "build", "--runtime", "runc", "-t", "viarunc"])
        .arg(ctx_runc.path())
        .assert()
        .success();
    let bundle = root.path().join("bundle-runc");
    engine(root.path())
        .args(["image", "unpack", "viarunc"])
        .arg(&bundle)
        .assert()
        .success();
    assert_eq!(
        fs::read_to_string(bundle.join("rootfs/made")).unwrap(),
        "by runc\n"
    );
}

fn file_runc() -> String {
    "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo by runc > /made\"]\nCMD [\"/bin/busybox\", \"true\"]\n".into()
}

/// Writes a blob into a layout and returns its descriptor.
fn put_blob(layout: &Path, media_type: &str, bytes: &[u8]) -> serde_json::Value {
    let hex = hex::encode(Sha256::digest(bytes));
    fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    fs::write(layout.join("blobs/sha256").join(&hex), bytes).unwrap();
    serde_json::json!({"mediaType": media_type, "digest": format!("sha256:{hex}"), "size": bytes.len()})
}

/// An OCI layout as skopeo writes one (`oci:DIR:TAG`): one manifest whose ref name is
/// only a tag, each layer given as raw bytes (possibly hostile).
fn foreign_layout(dir: &Path, layers: &[Vec<u8>], ref_name: &str) {
    let layer_descs: Vec<_> = layers
        .iter()
        .map(|l| put_blob(dir, "application/vnd.oci.image.layer.v1.tar+gzip", l))
        .collect();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/x"]},
        "rootfs": {"type": "layers", "diff_ids": []}
    });
    let config_desc = put_blob(
        dir,
        "application/vnd.oci.image.config.v1+json",
        config.to_string().as_bytes(),
    );
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config_desc, "layers": layer_descs
    });
    let mut manifest_desc = put_blob(
        dir,
        "application/vnd.oci.image.manifest.v1+json",
        manifest.to_string().as_bytes(),
    );
    manifest_desc["annotations"] =
        serde_json::json!({"org.opencontainers.image.ref.name": ref_name});
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [manifest_desc]});
    fs::write(dir.join("index.json"), index.to_string()).unwrap();
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

#[test]
fn import_of_a_layout_dir_and_tar() {
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("myapp");
    foreign_layout(&layout, &[gzip(&tar_of(&[("hello", "hi")]))], "v1");
    let root = tempfile::tempdir().unwrap();
    engine(root.path())
        .args(["image", "import"])
        .arg(&layout)
        .assert()
        .success()
        .stdout(predicate::str::contains("Imported myapp:v1"));
    let bundle = root.path().join("b");
    engine(root.path())
        .args(["image", "unpack", "myapp:v1"])
        .arg(&bundle)
        .assert()
        .success();
    assert_eq!(
        fs::read_to_string(bundle.join("rootfs/hello")).unwrap(),
        "hi"
    );

    // The same layout as a tar (what `skopeo copy ... oci-archive:` writes), renamed.
    let archive = work.path().join("archive.tar");
    let status = StdCommand::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(&archive)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    let root2 = tempfile::tempdir().unwrap();
    engine(root2.path())
        .args(["image", "import", "-t", "other:2"])
        .arg(&archive)
        .assert()
        .success()
        .stdout(predicate::str::contains("Imported other:2"));
    engine(root2.path())
        .args(["image", "ls"])
        .assert()
        .success()
        .stdout(predicate::str::contains("other"));

    // A tampered blob is refused on import.
    let blobs = layout.join("blobs/sha256");
    let layer = fs::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| fs::read(p).unwrap().starts_with(&[0x1f, 0x8b]))
        .unwrap();
    fs::write(&layer, gzip(b"tampered")).unwrap();
    engine(tempfile::tempdir().unwrap().path())
        .args(["image", "import"])
        .arg(&layout)
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("does not match").or(predicate::str::contains("hashes to")),
        );
}

#[test]
fn hostile_layers_are_refused_at_unpack_and_leave_nothing() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "corrupt layer archive",
            b"\x1f\x8b\x08\x00garbage garbage garbage".repeat(10),
        ),
        (
            "escapes the root",
            gzip(&raw_tar("../../isolab-escape", tar::EntryType::Regular, "")),
        ),
        (
            "absolute paths",
            gzip(&raw_tar("/isolab-abs", tar::EntryType::Regular, "")),
        ),
        (
            "points outside the root",
            gzip(&raw_tar("link", tar::EntryType::Symlink, "../..")),
        ),
        (
            "device nodes",
            gzip(&raw_tar("dev/sda", tar::EntryType::Block, "")),
        ),
    ];
    for (want, layer) in cases {
        let work = tempfile::tempdir().unwrap();
        let layout = work.path().join("evil");
        foreign_layout(&layout, &[layer], "1");
        let root = tempfile::tempdir().unwrap();
        engine(root.path())
            .args(["image", "import"])
            .arg(&layout)
            .assert()
            .success();
        let bundle = work.path().join("bundle");
        engine(root.path())
            .args(["image", "unpack", "evil:1"])
            .arg(&bundle)
            .assert()
            .failure()
            .stderr(predicate::str::contains(want));
        assert!(!bundle.exists(), "{want}: the half-made bundle is removed");
        assert!(!work.path().join("isolab-escape").exists());
    }
}

/// A tar with one entry whose name is written raw (the tar crate refuses `..` itself).
fn raw_tar(name: &str, kind: tar::EntryType, link: &str) -> Vec<u8> {
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(0);
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, &[][..]).unwrap();
    b.into_inner().unwrap()
}

#[test]
fn cli_errors_are_clear_and_fail() {
    let root = tempfile::tempdir().unwrap();
    engine(root.path())
        .args(["image", "inspect", "nosuch:tag"])
        .assert()
        .failure()
        .stderr(predicate::str::starts_with(
            "error: no such image: nosuch:tag",
        ));
    engine(root.path())
        .args(["image", "unpack", "Bad_Name!", "/tmp/isolab-never"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("invalid image name"));
    let ctx = context("FROM scratch\nCOPY ../outside /x\n", &[]);
    engine(root.path())
        .args(["image", "build", "-t", "x"])
        .arg(ctx.path())
        .assert()
        .failure()
        .stderr(predicate::str::contains("Containerfile line 2"));
    let ctx = context("FROM nosuchbase\n", &[]);
    engine(root.path())
        .args(["image", "build", "-t", "x"])
        .arg(ctx.path())
        .assert()
        .failure()
        .stderr(predicate::str::contains("base image nosuchbase"));
    engine(root.path())
        .args(["image", "import", "/nonexistent/layout"])
        .assert()
        .failure();
    engine(root.path())
        .args(["image", "rm", "nosuch"])
        .assert()
        .failure();
}

#[test]
fn image_rm_untags_and_collects_blobs() {
    let root = tempfile::tempdir().unwrap();
    let ctx = context("FROM scratch\nCOPY a /a\n", &[("a", b"a")]);
    engine(root.path())
        .args(["image", "build", "-t", "one"])
        .arg(ctx.path())
        .assert()
        .success();
    engine(root.path())
        .args(["image", "build", "-t", "two"])
        .arg(ctx.path())
        .assert()
        .success();
    let blobs = root.path().join("images/blobs/sha256");
    let count = || fs::read_dir(&blobs).unwrap().count();
    let before = count();
    engine(root.path())
        .args(["image", "rm", "one"])
        .assert()
        .success()
        .stdout("Untagged: one:latest\n");
    assert_eq!(count(), before, "two still uses every blob");
    engine(root.path())
        .args(["image", "rm", "two"])
        .assert()
        .success();
    assert_eq!(count(), 0);
    engine(root.path())
        .args(["image", "ls"])
        .assert()
        .success()
        .stdout(predicate::str::contains("two").not());
}

#[test]
fn named_volumes_are_listed_and_removed() {
    let root = tempfile::tempdir().unwrap();
    engine(root.path())
        .args(["volume", "create", "data"])
        .assert()
        .success();
    engine(root.path())
        .args(["volume", "ls"])
        .assert()
        .success()
        .stdout(predicate::str::contains("data"));
    engine(root.path())
        .args(["volume", "rm", "data"])
        .assert()
        .success();
    engine(root.path())
        .args(["volume", "rm", "data"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no such volume: data"));
    engine(root.path())
        .args(["volume", "create", "../x"])
        .assert()
        .failure();
}
