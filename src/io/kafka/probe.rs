//! The first contact with the brokers at start-up: connect, authenticate, and look up the
//! topics a command needs. Its point is the message when that fails. librdkafka retries
//! a refused password or an untrusted certificate for ever and reports it only to the
//! client's error callback; a plain metadata request just times out, as if the broker
//! were down. The probe listens to that callback and stops at the first error that
//! retrying cannot cure, saying which setting to look at (docs/SECURITY.md).
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::metadata::Metadata;

use super::client::client_config;
use crate::config::KafkaSettings;

/// How long the brokers may take to answer before start-up gives up on them.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Each metadata attempt; between attempts the callback's errors are looked at.
const ATTEMPT: Duration = Duration::from_millis(500);

/// A topic and the configuration key that names it.
pub type KeyedTopic<'a> = (&'a str, &'a str);

/// Whether this client may use a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicAccess {
    /// It exists and this principal may describe it; its partition count.
    Partitions(i32),
    /// It does not exist (and this principal may know that).
    Missing,
    /// The brokers' authorizer refused to describe it: no ACL for this principal.
    Denied,
}

/// Errors the client reported while connecting.
#[derive(Default)]
struct ProbeContext {
    errors: Mutex<Vec<(Option<RDKafkaErrorCode>, String)>>,
}

impl ClientContext for ProbeContext {
    /// Some causes (an untrusted broker certificate) reach only librdkafka's log.
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        tracing::debug!(?level, fac, log_message, "librdkafka log while connecting");
        use RDKafkaLogLevel::*;
        if matches!(level, Emerg | Alert | Critical | Error | Warning) {
            if let Ok(mut errors) = self.errors.lock() {
                errors.push((None, log_message.to_owned()));
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(error = %error, reason, "Kafka client error while connecting");
        let reason = if reason.is_empty() {
            error.to_string()
        } else {
            reason.to_owned()
        };
        if let Ok(mut errors) = self.errors.lock() {
            errors.push((error.rdkafka_error_code(), reason));
        }
    }
}

impl ConsumerContext for ProbeContext {}

/// A connected, authenticated metadata client.
pub struct Probe {
    client: BaseConsumer<ProbeContext>,
    servers: String,
}

impl Probe {
    /// Connects to `kafka.bootstrap_servers` with `[kafka.security]` and waits for a
    /// first metadata answer; an error naming the cause (and the key) otherwise.
    pub fn connect(k: &KafkaSettings) -> anyhow::Result<Probe> {
        let client: BaseConsumer<ProbeContext> = client_config(k, &[])
            .create_with_context(ProbeContext::default())
            .context("creating a Kafka metadata client (kafka.options, kafka.security)")?;
        let probe = Probe {
            client,
            servers: k.bootstrap_servers.clone(),
        };
        let started = Instant::now();
        loop {
            let attempt = probe.client.fetch_metadata(None, ATTEMPT);
            // librdkafka queues its client errors as events: polling serves them, to the
            // context's callback or as the poll's own result.
            while let Some(event) = probe.client.poll(Duration::ZERO) {
                if let Err(e) = event {
                    probe.client.context().error(e, "");
                }
            }
            let errors = std::mem::take(&mut *probe.client.context().errors.lock().unwrap());
            if let Some(cause) = errors
                .iter()
                .find_map(|(code, reason)| diagnose(k, *code, reason))
            {
                bail!("connecting to {}: {cause}", k.bootstrap_servers);
            }
            match attempt {
                Ok(_) => return Ok(probe),
                Err(e) if started.elapsed() >= CONNECT_TIMEOUT => {
                    let last = errors
                        .last()
                        .map(|(_, r)| format!(" (last: {r})"))
                        .unwrap_or_default();
                    bail!(
                        "no answer from the Kafka brokers at {} within {:?}: {e}{last}. Is the broker reachable, and does kafka.security.protocol ({}) match its listener?",
                        k.bootstrap_servers,
                        CONNECT_TIMEOUT,
                        k.security.describe()
                    );
                }
                Err(_) => {}
            }
        }
    }

    /// Every topic this principal may see, with its partition count.
    pub fn topics(&self) -> anyhow::Result<BTreeMap<String, i32>> {
        Ok(self
            .metadata(None)?
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .map(|t| (t.name().to_owned(), t.partitions().len() as i32))
            .collect())
    }

    /// One topic, asked for by name: unlike the full listing, this tells a topic that
    /// does not exist from one this principal may not see.
    pub fn access(&self, topic: &str) -> anyhow::Result<TopicAccess> {
        let md = self.metadata(Some(topic))?;
        let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
            return Ok(TopicAccess::Missing);
        };
        Ok(match t.error().map(RDKafkaErrorCode::from) {
            None if !t.partitions().is_empty() => {
                TopicAccess::Partitions(t.partitions().len() as i32)
            }
            None | Some(RDKafkaErrorCode::UnknownTopicOrPartition) => TopicAccess::Missing,
            Some(RDKafkaErrorCode::TopicAuthorizationFailed) => TopicAccess::Denied,
            Some(other) => bail!("looking up topic {topic} on {}: {other}", self.servers),
        })
    }

    /// Sorts `(key, topic)` pairs into those that do not exist and those this principal
    /// may not use (each as `topic (key)`).
    pub fn sort<'a>(
        &self,
        wanted: &[(&'a str, &'a str)],
    ) -> anyhow::Result<(Vec<KeyedTopic<'a>>, Vec<String>)> {
        let mut missing = Vec::new();
        let mut denied = Vec::new();
        for &(key, topic) in wanted {
            match self.access(topic)? {
                TopicAccess::Partitions(_) => {}
                TopicAccess::Missing => missing.push((key, topic)),
                TopicAccess::Denied => denied.push(format!("{topic} ({key})")),
            }
        }
        Ok((missing, denied))
    }

    /// Checks that each `(key, topic)` exists and may be used; an error naming every
    /// topic that may not, with its key (`what` says how the command uses them).
    pub fn require(&self, wanted: &[(&str, &str)], what: &str) -> anyhow::Result<()> {
        let (missing, denied) = self.sort(wanted)?;
        if !denied.is_empty() {
            bail!("{}", denied_message(&self.servers, &denied, what));
        }
        if !missing.is_empty() {
            let list: Vec<String> = missing
                .iter()
                .map(|(key, topic)| format!("{topic} ({key})"))
                .collect();
            bail!(
                "missing Kafka topics on {}: {}",
                self.servers,
                list.join(", ")
            );
        }
        Ok(())
    }

    fn metadata(&self, topic: Option<&str>) -> anyhow::Result<Metadata> {
        self.client
            .fetch_metadata(topic, CONNECT_TIMEOUT)
            .map_err(|e| anyhow!("fetching topic metadata from {}: {e}", self.servers))
    }
}

/// The message for topics the authorizer refused.
pub(crate) fn denied_message(servers: &str, denied: &[String], what: &str) -> String {
    format!(
        "not authorized on {servers}: {} — the brokers' ACLs do not let this principal {what} (docs/SECURITY.md, \"Kafka ACLs\"; scripts/kafka-acls)",
        denied.join(", ")
    )
}

/// Whether a client error is one that retrying cannot cure, and if so what to tell the
/// operator. Pure, so that the wording can be tested against librdkafka's own reasons.
pub(crate) fn diagnose(
    k: &KafkaSettings,
    code: Option<RDKafkaErrorCode>,
    reason: &str,
) -> Option<String> {
    let r = reason.to_ascii_lowercase();
    let s = &k.security;
    if code == Some(RDKafkaErrorCode::Authentication) || r.contains("sasl authentication") {
        let user = s
            .sasl
            .as_ref()
            .map(|x| x.username.as_str())
            .unwrap_or_default();
        let mechanism = s
            .sasl
            .as_ref()
            .map(|x| x.mechanism.as_str())
            .unwrap_or_default();
        return Some(format!(
            "the brokers refused the SASL credentials of kafka.security.sasl_username = {user:?} ({mechanism}): check kafka.security.sasl_password and kafka.security.sasl_mechanism. librdkafka: {reason}"
        ));
    }
    if r.contains("certificate verify failed") || r.contains("unable to get local issuer") {
        let ca = s
            .ca_file
            .as_ref()
            .map(|p| format!("the CA in kafka.security.ca_file ({})", p.display()))
            .unwrap_or_else(|| {
                "a CA of the system's store (kafka.security.ca_file is not set)".into()
            });
        return Some(format!(
            "the brokers' TLS certificate is not signed by {ca}, or does not name the host (kafka.security.verify_hostname). librdkafka: {reason}"
        ));
    }
    let refused_certificate = [
        "unknown ca",
        "bad certificate",
        "certificate required",
        "certificate unknown",
        "access denied",
        "handshake failure",
    ];
    if s.client_certificate.is_some() && refused_certificate.iter().any(|m| r.contains(m)) {
        let cert = s
            .client_certificate
            .as_ref()
            .map(|c| c.certificate_file.display().to_string())
            .unwrap_or_default();
        return Some(format!(
            "the brokers refused this client's certificate (kafka.security.certificate_file = {cert}); it must be signed by a CA the brokers trust. librdkafka: {reason}"
        ));
    }
    if r.contains("certificate required") || r.contains("bad certificate") {
        return Some(format!(
            "the brokers require a client certificate (mTLS): set kafka.security.certificate_file and kafka.security.key_file. librdkafka: {reason}"
        ));
    }
    if r.contains("wrong version number")
        || r.contains("packet length too long")
        || r.contains("record layer failure")
    {
        return Some(format!(
            "kafka.security.protocol ({}) does not match the brokers' listener: a TLS client reached a plaintext listener, or the other way round. librdkafka: {reason}",
            s.describe()
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ClientCertificate, Sasl, Secret, SecurityProtocol};

    fn settings(certificate: bool) -> KafkaSettings {
        let mut k = crate::config::defaults().kafka;
        k.security.protocol = SecurityProtocol::SaslSsl;
        k.security.sasl = Some(Sasl {
            mechanism: "SCRAM-SHA-512".into(),
            username: "roadwatch".into(),
            password: Secret::new("pw"),
        });
        k.security.ca_file = Some("/etc/roadwatch/ca.crt".into());
        if certificate {
            k.security.client_certificate = Some(ClientCertificate {
                certificate_file: "/etc/roadwatch/rw.crt".into(),
                key_file: "/etc/roadwatch/rw.key".into(),
                key_password: Secret::default(),
            });
        }
        k
    }

    // The reasons are librdkafka 2.x's own words, as the security test saw them.
    #[test]
    fn each_cause_is_named_with_its_key() {
        let k = settings(false);
        let wrong_password = "sasl_ssl://127.0.0.1:9092/bootstrap: SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512 (after 320ms in state AUTH_REQ)";
        let m = diagnose(&k, None, wrong_password).unwrap();
        assert!(
            m.contains("kafka.security.sasl_username = \"roadwatch\""),
            "{m}"
        );
        assert!(!m.contains("pw\""), "{m}");
        let m = diagnose(&k, Some(RDKafkaErrorCode::Authentication), "").unwrap();
        assert!(m.contains("refused the SASL credentials"), "{m}");

        let untrusted = "sasl_ssl://127.0.0.1:9092/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: broker certificate could not be verified";
        let m = diagnose(&k, None, untrusted).unwrap();
        assert!(
            m.contains("kafka.security.ca_file (/etc/roadwatch/ca.crt)"),
            "{m}"
        );

        let refused = "ssl://127.0.0.1:9094/bootstrap: Receive failed: error:0A000412:SSL routines::sslv3 alert bad certificate: SSL alert number 42";
        let m = diagnose(&settings(true), None, refused).unwrap();
        assert!(
            m.contains("kafka.security.certificate_file = /etc/roadwatch/rw.crt"),
            "{m}"
        );
        // The same alert without a certificate: the brokers want one.
        let m = diagnose(&k, None, refused).unwrap();
        assert!(m.contains("require a client certificate"), "{m}");
    }

    #[test]
    fn passing_trouble_is_not_a_diagnosis() {
        let k = settings(false);
        for reason in [
            "1/1 brokers are down",
            "127.0.0.1:9092/bootstrap: Connect to ipv4#127.0.0.1:9092 failed: Connection refused",
            "",
        ] {
            assert_eq!(diagnose(&k, None, reason), None, "{reason}");
        }
        assert_eq!(
            diagnose(
                &k,
                Some(RDKafkaErrorCode::AllBrokersDown),
                "0/1 brokers are down"
            ),
            None
        );
    }
}
