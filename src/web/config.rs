//! The `--web.config.file` document, in the Prometheus exporter-toolkit's format: TLS
//! (certificate, key, client certificates, protocol versions) and basic-auth users with
//! bcrypt hashes. A pure function of the file's text; files it names are read elsewhere.
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.crt             # relative to this file's directory
//!   key_file: server.key
//!   client_auth_type: RequireAndVerifyClientCert
//!   client_ca_file: clients-ca.crt
//!   min_version: TLS12
//! basic_auth_users:
//!   prometheus: $2y$10$...            # bcrypt hash
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use saphyr::{LoadableYamlNode, Scalar, Yaml};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebConfig {
    pub tls: Option<TlsSettings>,
    /// User name → bcrypt hash.
    pub users: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub client_auth: ClientAuth,
    pub client_ca_file: Option<PathBuf>,
    pub min_version: TlsVersion,
    pub max_version: TlsVersion,
}

/// Which client certificates are asked for, in exporter-toolkit's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `NoClientCert` (the default).
    None,
    /// `VerifyClientCertIfGiven`: a certificate is optional, but one given must verify.
    VerifyIfGiven,
    /// `RequireAndVerifyClientCert`.
    RequireAndVerify,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

const TOP_KEYS: [&str; 3] = [
    "tls_server_config",
    "basic_auth_users",
    "http_server_config",
];
const TLS_KEYS: [&str; 10] = [
    "cert_file",
    "key_file",
    "client_auth_type",
    "client_ca_file",
    "min_version",
    "max_version",
    "prefer_server_cipher_suites",
    "cipher_suites",
    "curve_preferences",
    "client_allowed_sans",
];

/// Reads the text of a web configuration file; relative paths in it are taken from `dir`,
/// the file's directory, as exporter-toolkit does.
pub fn parse(text: &str, dir: &Path) -> Result<WebConfig, String> {
    let documents =
        Yaml::load_from_str(text).map_err(|error| format!("this is not valid YAML: {error}"))?;
    let mut config = WebConfig::default();
    let Some(document) = documents.first() else {
        // An empty file is a valid configuration: plain HTTP, no users.
        return Ok(config);
    };
    if document.is_null() {
        return Ok(config);
    }
    for (key, value) in mapping(document, "the file", &TOP_KEYS)? {
        match key.as_str() {
            "tls_server_config" => config.tls = tls_settings(value, dir)?,
            "basic_auth_users" => config.users = users(value)?,
            "http_server_config" => {
                return Err(
                    "`http_server_config` is not supported: stevedore serves HTTP/1.1 and sets no extra headers; remove it"
                        .to_owned(),
                );
            }
            _ => unreachable!("keys are checked against TOP_KEYS"),
        }
    }
    Ok(config)
}

/// The entries of a mapping whose keys are among `allowed`.
fn mapping<'a>(
    node: &'a Yaml<'a>,
    what: &str,
    allowed: &[&str],
) -> Result<Vec<(String, &'a Yaml<'a>)>, String> {
    if node.is_null() {
        return Ok(Vec::new());
    }
    let Yaml::Mapping(entries) = node else {
        return Err(format!(
            "{what} must be a mapping with the keys {}",
            allowed.join(", ")
        ));
    };
    entries
        .iter()
        .map(|(key, value)| {
            let key = text(key).ok_or_else(|| format!("keys of {what} are words"))?;
            if !allowed.contains(&key.as_str()) {
                return Err(format!(
                    "unknown key `{key}` in {what}; it takes {}",
                    allowed.join(", ")
                ));
            }
            Ok((key, value))
        })
        .collect()
}

fn text(node: &Yaml) -> Option<String> {
    match node {
        Yaml::Value(Scalar::String(text)) => Some(text.to_string()),
        Yaml::Value(Scalar::Integer(number)) => Some(number.to_string()),
        Yaml::Value(Scalar::Boolean(value)) => Some(value.to_string()),
        _ => None,
    }
}

fn tls_settings(node: &Yaml, dir: &Path) -> Result<Option<TlsSettings>, String> {
    let mut cert_file = None;
    let mut key_file = None;
    let mut client_auth = ClientAuth::None;
    let mut client_ca_file = None;
    let mut min_version = TlsVersion::Tls12;
    let mut max_version = TlsVersion::Tls13;
    let entries = mapping(node, "`tls_server_config`", &TLS_KEYS)?;
    if entries.is_empty() {
        return Ok(None);
    }
    for (key, value) in entries {
        let value_text =
            || text(value).ok_or_else(|| format!("`{key}` in `tls_server_config` is one value"));
        let path = |value: String| Some(dir.join(value));
        match key.as_str() {
            "cert_file" => cert_file = path(value_text()?),
            "key_file" => key_file = path(value_text()?),
            "client_ca_file" => client_ca_file = path(value_text()?),
            "client_auth_type" => client_auth = client_auth_type(&value_text()?)?,
            "min_version" => min_version = tls_version(&key, &value_text()?)?,
            "max_version" => max_version = tls_version(&key, &value_text()?)?,
            // A hint to Go's TLS stack; rustls always picks among its own strong suites.
            "prefer_server_cipher_suites" => {}
            unsupported => {
                return Err(format!(
                    "`{unsupported}` in `tls_server_config` is not supported: stevedore offers rustls' default suites and curves (TLS 1.2 ECDHE with AEAD ciphers, and TLS 1.3) and checks client certificates against `client_ca_file` only; remove it"
                ));
            }
        }
    }
    let (Some(cert_file), Some(key_file)) = (cert_file, key_file) else {
        return Err("`tls_server_config` needs both `cert_file` and `key_file`".to_owned());
    };
    if client_auth != ClientAuth::None && client_ca_file.is_none() {
        return Err(
            "`client_auth_type` verifies client certificates, which needs `client_ca_file`"
                .to_owned(),
        );
    }
    if min_version > max_version {
        return Err("`min_version` is above `max_version`".to_owned());
    }
    Ok(Some(TlsSettings {
        cert_file,
        key_file,
        client_auth,
        client_ca_file,
        min_version,
        max_version,
    }))
}

fn client_auth_type(text: &str) -> Result<ClientAuth, String> {
    match text {
        "" | "NoClientCert" => Ok(ClientAuth::None),
        "VerifyClientCertIfGiven" => Ok(ClientAuth::VerifyIfGiven),
        "RequireAndVerifyClientCert" => Ok(ClientAuth::RequireAndVerify),
        "RequestClientCert" | "RequireAnyClientCert" => Err(format!(
            "`client_auth_type: {text}` accepts certificates nobody verified, which stevedore does not do; use VerifyClientCertIfGiven or RequireAndVerifyClientCert with `client_ca_file`"
        )),
        other => Err(format!(
            "`client_auth_type: {other}` is not one of NoClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert"
        )),
    }
}

fn tls_version(key: &str, text: &str) -> Result<TlsVersion, String> {
    match text {
        "TLS12" => Ok(TlsVersion::Tls12),
        "TLS13" => Ok(TlsVersion::Tls13),
        "TLS10" | "TLS11" => Err(format!(
            "`{key}: {text}`: TLS 1.0 and 1.1 are not offered; use TLS12 or TLS13"
        )),
        other => Err(format!("`{key}: {other}` is not TLS12 or TLS13")),
    }
}

fn users(node: &Yaml) -> Result<BTreeMap<String, String>, String> {
    let Yaml::Mapping(entries) = node else {
        if node.is_null() {
            return Ok(BTreeMap::new());
        }
        return Err("`basic_auth_users` maps user names to bcrypt hashes".to_owned());
    };
    let mut users = BTreeMap::new();
    for (name, hash) in entries {
        let name = text(name).ok_or("user names in `basic_auth_users` are words")?;
        let hash = text(hash)
            .ok_or_else(|| format!("the password of user `{name}` must be a bcrypt hash"))?;
        if hash.parse::<bcrypt::HashParts>().is_err() {
            return Err(format!(
                "the password of user `{name}` is not a bcrypt hash (`$2y$10$…`; make one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`)"
            ));
        }
        users.insert(name, hash);
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$2b$04$0FJMJxmxq7CTZcm5bwpcDuyXUWkKYmdg32vAUZ6yOrQsjRlbthmHi";

    #[test]
    fn a_full_configuration_reads_with_paths_from_the_files_directory() {
        let config = parse(
            &format!(
                "tls_server_config:
  cert_file: server.crt
  key_file: /etc/keys/server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.crt
  min_version: TLS13
  prefer_server_cipher_suites: true
basic_auth_users:
  prometheus: \"{HASH}\"
"
            ),
            Path::new("/etc/stevedore"),
        )
        .unwrap();
        let tls = config.tls.unwrap();
        assert_eq!(tls.cert_file, Path::new("/etc/stevedore/server.crt"));
        assert_eq!(tls.key_file, Path::new("/etc/keys/server.key"));
        assert_eq!(tls.client_auth, ClientAuth::RequireAndVerify);
        assert_eq!(
            tls.client_ca_file.as_deref(),
            Some(Path::new("/etc/stevedore/ca.crt"))
        );
        assert_eq!(tls.min_version, TlsVersion::Tls13);
        assert_eq!(config.users["prometheus"], HASH);
    }

    #[test]
    fn empty_and_auth_only_files_are_plain_http() {
        assert_eq!(parse("", Path::new("/")).unwrap(), WebConfig::default());
        let config = parse(
            &format!("basic_auth_users:\n  a: \"{HASH}\"\n"),
            Path::new("/"),
        )
        .unwrap();
        assert!(config.tls.is_none());
        assert_eq!(config.users.len(), 1);
    }

    #[test]
    fn mistakes_are_named() {
        let error = |text: &str| parse(text, Path::new("/")).unwrap_err();
        assert!(error("tls_server_config:\n  cert_file: a\n").contains("both `cert_file`"));
        assert!(error("tls_sever_config: {}\n").contains("unknown key `tls_sever_config`"));
        assert!(
            error("tls_server_config: {cert_file: a, key_file: b, client_auth_type: RequireAndVerifyClientCert}\n")
                .contains("needs `client_ca_file`")
        );
        assert!(
            error("tls_server_config: {cert_file: a, key_file: b, min_version: TLS10}\n")
                .contains("TLS 1.0 and 1.1")
        );
        assert!(
            error("tls_server_config: {cert_file: a, key_file: b, cipher_suites: [X]}\n")
                .contains("`cipher_suites` in `tls_server_config` is not supported")
        );
        assert!(error("basic_auth_users:\n  a: secret\n").contains("not a bcrypt hash"));
        assert!(error("http_server_config: {http2: true}\n").contains("not supported"));
        assert!(error("[unclosed\n").contains("not valid YAML"));
    }
}
