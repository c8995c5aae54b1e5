//! `--web.config.file`: TLS with a certificate the test makes (openssl), basic auth with a
//! bcrypt hash, client certificates, and refusals of bad files, checked with a real client
//! (curl).

mod common;

use std::path::Path;
use std::process::Command;

use common::Exporter;

/// A CA, a server certificate for 127.0.0.1 and a client certificate it signed, and a
/// self-signed client certificate, made by openssl in `dir`.
fn make_certificates(dir: &Path) {
    common::require_program("openssl", "openssl");
    let openssl = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let new_key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend_from_slice(&new_key);
    ca.extend_from_slice(&[
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=stevedore test CA",
    ]);
    openssl(&ca);
    // A self-signed client certificate, which the CA never signed.
    let mut stranger = vec!["req", "-x509"];
    stranger.extend_from_slice(&new_key);
    stranger.extend_from_slice(&[
        "-keyout",
        "stranger.key",
        "-out",
        "stranger.crt",
        "-days",
        "2",
        "-subj",
        "/CN=stevedore test stranger",
        "-addext",
        "basicConstraints=critical,CA:FALSE",
        "-addext",
        "extendedKeyUsage=clientAuth",
    ]);
    openssl(&stranger);
    for (name, extensions) in [
        (
            "server",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        ),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), extensions).unwrap();
        let (key, csr, crt, ext, subject) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
            format!("{name}.ext"),
            format!("/CN=stevedore test {name}"),
        );
        let mut request = vec!["req"];
        request.extend_from_slice(&new_key);
        request.extend_from_slice(&["-keyout", &key, "-out", &csr, "-subj", &subject]);
        openssl(&request);
        openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "2",
            "-extfile",
            &ext,
        ]);
    }
}

/// curl's exit code and the HTTP status it got (`000` when none).
fn curl(args: &[&str]) -> (i32, String) {
    common::require_program("curl", "curl");
    let output = Command::new("curl")
        .args([
            "--silent",
            "--output",
            "/dev/null",
            "--write-out",
            "%{http_code}",
        ])
        .args(["--max-time", "20"])
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

fn exporter_with(config: &Path) -> Exporter {
    common::fixture_exporter(
        &common::v2_fixture_tree(),
        &[&format!("--web.config.file={}", config.display())],
    )
}

#[test]
fn tls_and_basic_auth_let_only_the_right_credentials_in() {
    let dir = tempfile::tempdir().unwrap();
    make_certificates(dir.path());
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let config = dir.path().join("web.yml");
    // Relative paths: taken from the configuration file's directory.
    std::fs::write(
        &config,
        format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  prometheus: '{hash}'\n"
        ),
    )
    .unwrap();
    let exporter = exporter_with(&config);
    let https = format!("https://{}/metrics", exporter.address);
    let ca = dir.path().join("ca.crt");
    let ca = ca.to_str().unwrap();

    assert_eq!(curl(&["--cacert", ca, &https]), (0, "401".to_owned()));
    assert_eq!(
        curl(&["--cacert", ca, "--user", "prometheus:wrong", &https]),
        (0, "401".to_owned())
    );
    assert_eq!(
        curl(&["--cacert", ca, "--user", "grafana:s3cret", &https]),
        (0, "401".to_owned())
    );
    assert_eq!(
        curl(&["--cacert", ca, "--user", "prometheus:s3cret", &https]),
        (0, "200".to_owned())
    );
    let body = Command::new("curl")
        .args([
            "--silent",
            "--cacert",
            ca,
            "--user",
            "prometheus:s3cret",
            &https,
        ])
        .output()
        .unwrap()
        .stdout;
    let scrape = common::Scrape::parse(&String::from_utf8_lossy(&body));
    assert_eq!(scrape.expect("docker_up", &[]), 0.0);

    // Plain HTTP to the TLS port gets no HTTP answer.
    let (code, status) = curl(&[&format!("http://{}/metrics", exporter.address)]);
    assert_ne!(code, 0, "plain HTTP was answered with {status}");
    assert_eq!(status, "000");
    // Nor does a client that does not trust the certificate.
    let (code, _) = curl(&["--user", "prometheus:s3cret", &https]);
    assert_ne!(code, 0);
}

#[test]
fn client_certificates_are_required_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    make_certificates(dir.path());
    let config = dir.path().join("web.yml");
    std::fs::write(
        &config,
        "tls_server_config:
  cert_file: server.crt
  key_file: server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.crt
  min_version: TLS13
",
    )
    .unwrap();
    let exporter = exporter_with(&config);
    let https = format!("https://{}/metrics", exporter.address);
    let file = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let ca = file("ca.crt");

    let (code, status) = curl(&["--cacert", &ca, &https]);
    assert_ne!(code, 0, "answered {status} without a client certificate");
    let with_certificate = [
        "--cacert",
        &ca,
        "--cert",
        &file("client.crt"),
        "--key",
        &file("client.key"),
    ];
    let mut args = with_certificate.to_vec();
    args.push(&https);
    assert_eq!(curl(&args), (0, "200".to_owned()));
    // A client certificate the CA did not sign.
    let (stranger_cert, stranger_key) = (file("stranger.crt"), file("stranger.key"));
    let (code, _) = curl(&[
        "--cacert",
        &ca,
        "--cert",
        &stranger_cert,
        "--key",
        &stranger_key,
        &https,
    ]);
    assert_ne!(code, 0, "a certificate the CA did not sign was accepted");
    // TLS 1.2 is refused under `min_version: TLS13`.
    let mut args = with_certificate.to_vec();
    args.extend_from_slice(&["--tls-max", "1.2", &https]);
    let (code, _) = curl(&args);
    assert_ne!(code, 0, "TLS 1.2 was accepted");
}

#[test]
fn a_bad_web_configuration_stops_the_exporter_with_its_path_and_problem() {
    let dir = tempfile::tempdir().unwrap();
    make_certificates(dir.path());
    let cases = [
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: missing.key\n",
            "missing.key",
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: client.key\n",
            "do not make a certificate and its key",
        ),
        (
            "basic_auth_users:\n  prometheus: plain\n",
            "not a bcrypt hash",
        ),
        ("tls_config: {}\n", "unknown key `tls_config`"),
    ];
    for (text, problem) in cases {
        let config = dir.path().join("web.yml");
        std::fs::write(&config, text).unwrap();
        let tree = common::v2_fixture_tree();
        let output = Command::new(common::stevedore_binary())
            .arg(format!("--web.config.file={}", config.display()))
            .arg(format!("--path.cgroupfs={}", tree.join("cgroup").display()))
            .arg("--web.listen-address=127.0.0.1:0")
            .output()
            .unwrap();
        assert!(!output.status.success(), "{text}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("--web.config.file={}", config.display()))
                && stderr.contains(problem),
            "{text}: {stderr}"
        );
    }
    let missing = Command::new(common::stevedore_binary())
        .arg("--web.config.file=/nonexistent/web.yml")
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/web.yml"));
}
