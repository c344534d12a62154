//! `[kafka.security]`: how every client of the process (run, simulate, console, report)
//! authenticates to the brokers and encrypts its traffic (docs/SECURITY.md).
//!
//! First-class keys rather than raw librdkafka options so that a mistake (a password
//! without SASL, a certificate without its key, an unreadable file) stops start-up naming
//! the key, and so that the secrets can be read from files and are known to be secret.
//! `kafka.options` still applies last and may override anything set here.
use std::fmt;
use std::path::PathBuf;

use super::settings::Reader;

/// `kafka.security.protocol`, librdkafka's `security.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslSsl,
    SaslPlaintext,
}

impl SecurityProtocol {
    fn librdkafka_name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "plaintext",
            SecurityProtocol::Ssl => "ssl",
            SecurityProtocol::SaslSsl => "sasl_ssl",
            SecurityProtocol::SaslPlaintext => "sasl_plaintext",
        }
    }

    fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslSsl | SecurityProtocol::SaslPlaintext
        )
    }
}

/// A secret value: never shown by `Debug`, only handed to librdkafka.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "********"
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sasl {
    pub mechanism: String,
    pub username: String,
    pub password: Secret,
}

/// A client certificate for mTLS, with its private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    pub certificate_file: PathBuf,
    pub key_file: PathBuf,
    pub key_password: Secret,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSecurity {
    pub protocol: SecurityProtocol,
    pub sasl: Option<Sasl>,
    /// The CAs that may sign the brokers' certificates; `None` = the system's store.
    pub ca_file: Option<PathBuf>,
    pub client_certificate: Option<ClientCertificate>,
    /// Whether the broker's certificate must name the host it was reached at.
    pub verify_hostname: bool,
}

impl Default for KafkaSecurity {
    fn default() -> Self {
        KafkaSecurity {
            protocol: SecurityProtocol::Plaintext,
            sasl: None,
            ca_file: None,
            client_certificate: None,
            verify_hostname: true,
        }
    }
}

pub(super) const SASL_MECHANISMS: [&str; 3] = ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"];

impl KafkaSecurity {
    /// The librdkafka properties, in the order they are set.
    pub fn client_properties(&self) -> Vec<(&'static str, String)> {
        let mut props = vec![("security.protocol", self.protocol.librdkafka_name().into())];
        if let Some(sasl) = &self.sasl {
            props.push(("sasl.mechanisms", sasl.mechanism.clone()));
            props.push(("sasl.username", sasl.username.clone()));
            props.push(("sasl.password", sasl.password.expose().to_owned()));
        }
        if self.protocol.uses_tls() {
            if let Some(ca) = &self.ca_file {
                props.push(("ssl.ca.location", ca.display().to_string()));
            }
            if let Some(c) = &self.client_certificate {
                props.push((
                    "ssl.certificate.location",
                    c.certificate_file.display().to_string(),
                ));
                props.push(("ssl.key.location", c.key_file.display().to_string()));
                if !c.key_password.expose().is_empty() {
                    props.push(("ssl.key.password", c.key_password.expose().to_owned()));
                }
            }
            let algorithm = if self.verify_hostname {
                "https"
            } else {
                "none"
            };
            props.push(("ssl.endpoint.identification.algorithm", algorithm.into()));
        }
        props
    }

    /// What start-up messages say about how this process authenticates.
    pub fn describe(&self) -> String {
        let mut parts = vec![self.protocol.librdkafka_name().to_owned()];
        if let Some(s) = &self.sasl {
            parts.push(format!("{} as {:?}", s.mechanism, s.username));
        }
        if let Some(c) = &self.client_certificate {
            parts.push(format!(
                "client certificate {}",
                c.certificate_file.display()
            ));
        }
        parts.join(", ")
    }
}

pub(super) fn read(r: &mut Reader<'_>) -> KafkaSecurity {
    const PROTOCOL: &str = "kafka.security.protocol";
    let protocol = match r.string(PROTOCOL).to_ascii_lowercase().as_str() {
        "plaintext" => SecurityProtocol::Plaintext,
        "ssl" => SecurityProtocol::Ssl,
        "sasl_ssl" => SecurityProtocol::SaslSsl,
        "sasl_plaintext" => SecurityProtocol::SaslPlaintext,
        other => {
            r.fail(
                PROTOCOL,
                format!("{other:?} is not one of \"plaintext\", \"ssl\", \"sasl_ssl\", \"sasl_plaintext\""),
            );
            SecurityProtocol::Plaintext
        }
    };

    let username = r.string("kafka.security.sasl_username");
    let password = secret(
        r,
        "kafka.security.sasl_password",
        "kafka.security.sasl_password_file",
    );
    let mechanism = r
        .string("kafka.security.sasl_mechanism")
        .to_ascii_uppercase();
    let sasl = if protocol.uses_sasl() {
        if username.trim().is_empty() {
            r.fail(
                "kafka.security.sasl_username",
                format!(
                    "must be set when {PROTOCOL} is {:?}",
                    protocol.librdkafka_name()
                ),
            );
        }
        if password.0.is_empty() {
            r.fail(
                "kafka.security.sasl_password",
                "must be set (or kafka.security.sasl_password_file) when SASL is used",
            );
        }
        if !SASL_MECHANISMS.contains(&mechanism.as_str()) {
            r.fail(
                "kafka.security.sasl_mechanism",
                format!("{mechanism:?} is not one of {}", SASL_MECHANISMS.join(", ")),
            );
        }
        Some(Sasl {
            mechanism,
            username,
            password,
        })
    } else {
        // A credential that would silently go unused is a mistake worth stopping for:
        // the operator believes the connection is authenticated.
        if !username.is_empty() || !password.0.is_empty() {
            r.fail(
                "kafka.security.sasl_username",
                format!(
                    "SASL credentials are set but {PROTOCOL} is {:?}; use \"sasl_ssl\"",
                    protocol.librdkafka_name()
                ),
            );
        }
        None
    };

    let ca_file = readable_file(r, "kafka.security.ca_file");
    let certificate_file = readable_file(r, "kafka.security.certificate_file");
    let key_file = readable_file(r, "kafka.security.key_file");
    let key_password = secret(
        r,
        "kafka.security.key_password",
        "kafka.security.key_password_file",
    );
    let client_certificate = match (certificate_file, key_file) {
        (Some(certificate_file), Some(key_file)) => Some(ClientCertificate {
            certificate_file,
            key_file,
            key_password,
        }),
        (None, None) => None,
        (Some(_), None) => {
            r.fail(
                "kafka.security.key_file",
                "must be set with kafka.security.certificate_file (the certificate's private key)",
            );
            None
        }
        (None, Some(_)) => {
            r.fail(
                "kafka.security.certificate_file",
                "must be set with kafka.security.key_file",
            );
            None
        }
    };
    if !protocol.uses_tls() && (ca_file.is_some() || client_certificate.is_some()) {
        r.fail(
            PROTOCOL,
            format!(
                "TLS files are set (kafka.security.ca_file, certificate_file, key_file) but the protocol is {:?}, which does not use TLS; use \"ssl\" or \"sasl_ssl\"",
                protocol.librdkafka_name()
            ),
        );
    }
    KafkaSecurity {
        protocol,
        sasl,
        ca_file,
        client_certificate,
        verify_hostname: r.boolean("kafka.security.verify_hostname"),
    }
}

/// A path key whose file must be readable now: a typo stops start-up here, naming the
/// key, rather than as a TLS error from librdkafka later.
fn readable_file(r: &mut Reader<'_>, key: &str) -> Option<PathBuf> {
    let path = r.optional_path(key)?;
    if let Err(e) = std::fs::File::open(&path) {
        r.fail(key, format!("cannot read {}: {e}", path.display()));
    }
    Some(path)
}

/// A secret given inline (best from the environment) or in a file (one line; the
/// newline that editors and `echo` add is not part of it).
fn secret(r: &mut Reader<'_>, key: &str, file_key: &str) -> Secret {
    let inline = r.string(key);
    match (inline.is_empty(), r.optional_path(file_key)) {
        (_, None) => Secret(inline),
        (false, Some(_)) => {
            r.fail(key, format!("set either {key} or {file_key}, not both"));
            Secret::default()
        }
        (true, Some(path)) => match std::fs::read_to_string(&path) {
            Ok(text) => Secret(text.trim_end_matches(['\r', '\n']).to_owned()),
            Err(e) => {
                r.fail(file_key, format!("cannot read {}: {e}", path.display()));
                Secret::default()
            }
        },
    }
}
