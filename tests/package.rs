//! The Debian package: built by cargo-deb from the static binary, installed with `dpkg -i`,
//! its systemd unit verified and its hardening scored, the installed binary run with the
//! unit's capabilities, and the package purged again.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Containers, Exporter, IMAGE};

const TEST: &str = "deb-package";
const MIB: f64 = 1024.0 * 1024.0;
/// The Debian revision of the package this test builds, so that a package left installed by
/// an interrupted run is known for the test's own.
const TEST_REVISION: &str = "0~stevedoretest";
const UNIT: &str = "/usr/lib/systemd/system/stevedore.service";
/// `systemd-analyze security`'s exposure, out of 100 (it prints 2.2 for 22), above which the
/// unit counts as less hardened than shipped.
const MAX_EXPOSURE: u32 = 25;

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("run {program}: {error}"))
}

fn run_ok(program: &str, args: &[&str]) -> String {
    let output = run(program, args);
    assert!(
        output.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// cargo-deb is a cargo subcommand, not a Debian package.
fn require_cargo_deb(cargo: &str) {
    let found = Command::new(cargo)
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|output| output.status.success());
    assert!(
        found,
        "`cargo deb` is not installed: `cargo install cargo-deb --locked --version 3.8.0` \
         (`scripts/test` installs it)"
    );
}

/// Builds the `.deb` as a release would be packaged (`cargo deb --no-build` finds the binary
/// at the release path), from the static binary the tests already have: packaging takes a
/// second, where a release build would take minutes.
fn build_package(out: &Path) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    require_cargo_deb(&cargo);
    let target_dir = out.join("target");
    let release = target_dir.join("x86_64-unknown-linux-gnu/release");
    std::fs::create_dir_all(&release).unwrap();
    std::fs::copy(common::static_binary(), release.join("stevedore")).unwrap();
    let output = Command::new(&cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CARGO_TARGET_DIR", &target_dir)
        .args([
            "deb",
            "--no-build",
            "--target",
            "x86_64-unknown-linux-gnu",
            "--fast",
            "--deb-revision",
            TEST_REVISION,
            "--output",
        ])
        .arg(out)
        .output()
        .expect("run cargo deb");
    assert!(
        output.status.success(),
        "cargo deb: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let package = stdout
        .lines()
        .find(|line| line.ends_with(".deb"))
        .unwrap_or_else(|| panic!("cargo deb named no .deb: {stdout}"));
    PathBuf::from(package.trim())
}

/// The package installed by this test; purged when dropped, so that a failing test leaves
/// nothing installed.
struct Installed;

impl Installed {
    fn install(package: &Path) -> Installed {
        // A package of the same name that this test did not build (installed, or removed
        // with its configuration kept) is someone's real one: refuse to replace it, or
        // purge its configuration. One left by an interrupted run is replaced.
        let installed = run(
            "dpkg-query",
            &["--show", "--showformat=${Status} ${Version}", "stevedore"],
        );
        let installed = String::from_utf8_lossy(&installed.stdout);
        if !installed.trim().is_empty() {
            assert!(
                installed.ends_with(TEST_REVISION),
                "a stevedore package is installed here ({installed}); this test installs and \
                 purges its own, so it does not run beside it"
            );
        }
        let guard = Installed;
        run_ok("dpkg", &["-i", package.to_str().unwrap()]);
        guard
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = run("dpkg", &["--purge", "stevedore"]);
    }
}

/// The value of `key=` in the unit's `[Service]` lines (the last one, as systemd reads it).
fn unit_setting(unit: &str, key: &str) -> String {
    unit.lines()
        .filter_map(|line| line.strip_prefix(&format!("{key}=")))
        .next_back()
        .unwrap_or_else(|| panic!("the unit sets no {key}"))
        .to_owned()
}

#[test]
fn the_debian_package_installs_a_hardened_service_that_monitors() {
    common::require_program("dpkg", "dpkg");
    common::require_program("systemd-analyze", "systemd");
    common::require_program("setpriv", "util-linux");
    let containers = Containers::new(TEST);
    // A container with a memory limit, and 2 MiB its own user (uid 1000) keeps in a directory
    // only that user may enter: counted only when the walk may read any directory.
    let name = format!("{TEST}-workload");
    containers.run(&[
        "--name",
        &name,
        "--memory",
        "64m",
        IMAGE,
        "sh",
        "-c",
        "mkdir -p /home/user && dd if=/dev/zero of=/home/user/data bs=1M count=2 \
         && chown -R 1000:1000 /home/user && chmod 700 /home/user && touch /done \
         && exec sleep 100000",
    ]);
    common::wait_for_file_in(&name, "/done");

    let out = tempfile::tempdir().unwrap();
    let package = build_package(out.path());
    let contents = run_ok("dpkg-deb", &["--contents", package.to_str().unwrap()]);
    for path in [
        "./usr/bin/stevedore",
        &format!(".{UNIT}"),
        "./etc/default/stevedore",
        "./usr/share/doc/stevedore/examples/enforce.conf",
    ] {
        assert!(
            contents.contains(path),
            "no {path} in the package:\n{contents}"
        );
    }
    let conffiles = run_ok(
        "dpkg-deb",
        &["--info", package.to_str().unwrap(), "conffiles"],
    );
    assert_eq!(conffiles.trim(), "/etc/default/stevedore");

    let installed = Installed::install(&package);
    let version = run_ok("/usr/bin/stevedore", &["--version"]);
    assert_eq!(
        version.trim(),
        format!("stevedore {}", env!("CARGO_PKG_VERSION"))
    );

    // The unit as installed: systemd finds nothing wrong with it, and its hardening scores
    // no worse than shipped.
    let verify = run("systemd-analyze", &["verify", UNIT]);
    let complaints = String::from_utf8_lossy(&verify.stderr);
    assert!(
        verify.status.success() && !complaints.contains("stevedore"),
        "systemd-analyze verify: {complaints}"
    );
    let threshold = format!("--threshold={MAX_EXPOSURE}");
    let security = run(
        "systemd-analyze",
        &["security", "--offline=yes", &threshold, UNIT],
    );
    assert!(
        security.status.success(),
        "exposure above {MAX_EXPOSURE}/100:\n{}",
        String::from_utf8_lossy(&security.stdout)
    );

    // The installed binary, with no capability but the unit's and no new privileges, as
    // systemd starts it, scrapes the workload: its limit, and the bytes of the directory it
    // could enter only through the unit's capability.
    let unit = std::fs::read_to_string(UNIT).unwrap();
    assert_eq!(unit_setting(&unit, "User"), "root");
    assert_eq!(unit_setting(&unit, "NoNewPrivileges"), "yes");
    let capabilities = unit_setting(&unit, "CapabilityBoundingSet");
    let mut bounding = vec!["-all".to_owned()];
    for capability in capabilities.split_whitespace() {
        let capability = capability.strip_prefix("CAP_").expect("a CAP_ name");
        bounding.push(format!("+{}", capability.to_lowercase()));
    }
    let bounding = format!("--bounding-set={}", bounding.join(","));
    let exporter = Exporter::start_program(
        Path::new("/usr/bin/stevedore"),
        &[
            "setpriv",
            &bounding,
            "--inh-caps=-all",
            "--ambient-caps=-all",
            "--no-new-privs",
            "--",
        ],
        &[],
    );
    let scrape = common::wait_for(
        "the workload's writable layer to be walked",
        std::time::Duration::from_secs(30),
        || {
            let scrape = exporter.scrape();
            scrape
                .value("container_fs_usage_bytes", &[("name", &name)])
                .is_some()
                .then_some(scrape)
        },
    );
    assert_eq!(
        scrape.expect("container_spec_memory_limit_bytes", &[("name", &name)]),
        64.0 * MIB
    );
    let layer = scrape.expect("container_fs_usage_bytes", &[("name", &name)]);
    assert!(
        layer >= 2.0 * MIB,
        "the layer counts {layer} bytes: the unit's capabilities do not let the walk into \
         the user's directory"
    );
    for sample in scrape.find("stevedore_scrape_collector_success", &[]) {
        assert_eq!(sample.value, 1.0, "{sample:?}");
    }
    drop(exporter);

    drop(installed);
    assert!(
        !Path::new("/usr/bin/stevedore").exists() && !Path::new(UNIT).exists(),
        "the purge left the package's files"
    );
}
