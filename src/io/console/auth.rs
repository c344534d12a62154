//! Who may use the console: operator accounts (passwords hashed with argon2) and unit
//! tokens (random secrets, stored as SHA-256: a token is not a password a person picks,
//! so it cannot be guessed from a fast hash, and a Bearer request finds its unit in one
//! lookup), signed session cookies, CSRF tokens and the failed-login limit.
use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Who a request comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Operator(String),
    Unit(String),
}

impl Principal {
    fn tag(&self) -> (&'static str, &str) {
        match self {
            Principal::Operator(id) => ("o", id),
            Principal::Unit(id) => ("u", id),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountsFile {
    #[serde(default)]
    operators: Vec<OperatorAccount>,
    #[serde(default)]
    units: Vec<UnitAccount>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OperatorAccount {
    id: String,
    /// argon2 PHC string (`roadwatch accounts hash-password`).
    password_hash: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitAccount {
    unit_id: String,
    /// Hex SHA-256 of the unit's token (`roadwatch accounts new-token`).
    token_sha256: String,
}

#[derive(Default)]
pub struct Accounts {
    operators: HashMap<String, String>,
    /// Token hash → unit id.
    units_by_token: HashMap<String, String>,
    units: HashMap<String, String>,
}

impl Accounts {
    /// Reads and checks an accounts file; a bad one stops start-up, naming the entry.
    pub fn load(path: &Path) -> anyhow::Result<Accounts> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading console.accounts_file {}", path.display()))?;
        let file: AccountsFile = toml::from_str(&text)
            .with_context(|| format!("console.accounts_file {}", path.display()))?;
        let mut a = Accounts::default();
        for o in file.operators {
            if PasswordHash::new(&o.password_hash).is_err() {
                bail!(
                    "console.accounts_file {}: operator {:?}: password_hash is not an argon2 hash",
                    path.display(),
                    o.id
                );
            }
            a.operators.insert(o.id, o.password_hash);
        }
        for u in file.units {
            let h = u.token_sha256.to_ascii_lowercase();
            if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                bail!(
                    "console.accounts_file {}: unit {:?}: token_sha256 is not 64 hex digits",
                    path.display(),
                    u.unit_id
                );
            }
            a.units_by_token.insert(h.clone(), u.unit_id.clone());
            a.units.insert(u.unit_id, h);
        }
        Ok(a)
    }

    pub fn add_operator(&mut self, id: &str, password: &str) {
        self.operators
            .insert(id.to_owned(), hash_password(password));
    }

    pub fn add_unit(&mut self, unit_id: &str, token: &str) {
        let h = token_sha256(token);
        self.units_by_token.insert(h.clone(), unit_id.to_owned());
        self.units.insert(unit_id.to_owned(), h);
    }

    pub fn operator(&self, id: &str, password: &str) -> Option<Principal> {
        let hash = self.operators.get(id)?;
        let parsed = PasswordHash::new(hash).ok()?;
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .ok()?;
        Some(Principal::Operator(id.to_owned()))
    }

    pub fn unit(&self, unit_id: &str, token: &str) -> Option<Principal> {
        let want = self.units.get(unit_id)?;
        constant_time_eq(want.as_bytes(), token_sha256(token).as_bytes())
            .then(|| Principal::Unit(unit_id.to_owned()))
    }

    /// A script's `Authorization: Bearer <token>`: a unit's token.
    pub fn bearer(&self, token: &str) -> Option<Principal> {
        self.units_by_token
            .get(&token_sha256(token))
            .map(|u| Principal::Unit(u.clone()))
    }
}

pub fn hash_password(password: &str) -> String {
    let salt = SaltString::encode_b64(&random_bytes::<16>()).expect("16 bytes make a salt");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters")
        .to_string()
}

pub fn token_sha256(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random secret, URL-safe (unit tokens, demo passwords, session keys).
pub fn new_secret() -> String {
    B64.encode(random_bytes::<24>())
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("the operating system's random source");
    b
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Signs and checks session cookies: `<payload>.<mac>`, the payload naming the
/// principal and the expiry. Stateless, so consoles that share the key share sessions,
/// and a restarted console keeps them.
pub struct Sessions {
    key: Vec<u8>,
    ttl_ms: i64,
}

impl Sessions {
    pub fn new(secret: &str, ttl_ms: u64) -> Sessions {
        Sessions {
            key: secret.as_bytes().to_vec(),
            ttl_ms: ttl_ms as i64,
        }
    }

    pub fn ttl_ms(&self) -> u64 {
        self.ttl_ms as u64
    }

    fn mac(&self, purpose: &str, payload: &str) -> String {
        let mut m = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        m.update(purpose.as_bytes());
        m.update(b"|");
        m.update(payload.as_bytes());
        B64.encode(m.finalize().into_bytes())
    }

    /// A session cookie value for `who`, valid from `now_ms` for the configured time.
    pub fn issue(&self, who: &Principal, now_ms: i64) -> String {
        let (role, id) = who.tag();
        let payload = B64.encode(format!("{role}|{id}|{}", now_ms + self.ttl_ms));
        let mac = self.mac("session", &payload);
        format!("{payload}.{mac}")
    }

    /// The principal of a cookie value, if it is ours and not expired.
    pub fn check(&self, cookie: &str, now_ms: i64) -> Option<Principal> {
        let (payload, mac) = cookie.split_once('.')?;
        if !constant_time_eq(self.mac("session", payload).as_bytes(), mac.as_bytes()) {
            return None;
        }
        let text = String::from_utf8(B64.decode(payload).ok()?).ok()?;
        let mut parts = text.splitn(3, '|');
        let (role, id, exp) = (parts.next()?, parts.next()?, parts.next()?);
        if exp.parse::<i64>().ok()? <= now_ms {
            return None;
        }
        match role {
            "o" => Some(Principal::Operator(id.to_owned())),
            "u" => Some(Principal::Unit(id.to_owned())),
            _ => None,
        }
    }

    /// The CSRF token that goes with a session cookie: a page reads it from the login
    /// answer or `/api/me` and sends it in `X-CSRF-Token`; another site can do neither.
    pub fn csrf(&self, cookie: &str) -> String {
        self.mac("csrf", cookie)
    }

    pub fn csrf_ok(&self, cookie: &str, token: &str) -> bool {
        constant_time_eq(self.csrf(cookie).as_bytes(), token.as_bytes())
    }
}

/// Failed logins per address and per account within a window; past the limit, logins
/// from there are refused (429) until the window has moved on.
pub struct LoginLimiter {
    max: usize,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl LoginLimiter {
    pub fn new(max: u32, window: Duration) -> LoginLimiter {
        LoginLimiter {
            max: max as usize,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    pub fn blocked(&self, keys: &[&str], now: Instant) -> bool {
        let Ok(mut f) = self.failures.lock() else {
            return true;
        };
        keys.iter().any(|k| {
            f.get_mut(*k).is_some_and(|q| {
                while q
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > self.window)
                {
                    q.pop_front();
                }
                q.len() >= self.max
            })
        })
    }

    pub fn failed(&self, keys: &[&str], now: Instant) {
        if let Ok(mut f) = self.failures.lock() {
            // Bounded: a flood of made-up account names cannot grow the map without end.
            if f.len() > 100_000 {
                f.retain(|_, q| {
                    q.back()
                        .is_some_and(|t| now.duration_since(*t) <= self.window)
                });
            }
            for k in keys {
                f.entry((*k).to_owned()).or_default().push_back(now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_tokens_are_checked_against_their_hashes() {
        let mut a = Accounts::default();
        a.add_operator("op.zhang", "s3cret pass");
        a.add_unit("P-12", "tok-12");
        assert_eq!(
            a.operator("op.zhang", "s3cret pass"),
            Some(Principal::Operator("op.zhang".into()))
        );
        assert_eq!(a.operator("op.zhang", "s3cret"), None);
        assert_eq!(a.operator("op.li", "s3cret pass"), None);
        assert_eq!(
            a.unit("P-12", "tok-12"),
            Some(Principal::Unit("P-12".into()))
        );
        assert_eq!(a.unit("P-13", "tok-12"), None);
        assert_eq!(a.bearer("tok-12"), Some(Principal::Unit("P-12".into())));
        assert_eq!(a.bearer("tok-13"), None);
    }

    #[test]
    fn a_session_is_ours_unexpired_and_untampered() {
        let s = Sessions::new("key", 1_000);
        let who = Principal::Unit("P-12".into());
        let c = s.issue(&who, 5_000);
        assert_eq!(s.check(&c, 5_999), Some(who.clone()));
        assert_eq!(s.check(&c, 6_000), None, "expired");
        assert_eq!(Sessions::new("other key", 1_000).check(&c, 5_001), None);
        // Another unit's id in the payload, the old signature: refused.
        let (_, mac) = c.split_once('.').unwrap();
        let forged = format!("{}.{mac}", B64.encode("u|P-13|9999999"));
        assert_eq!(s.check(&forged, 5_001), None);
        assert!(s.csrf_ok(&c, &s.csrf(&c)));
        assert!(!s.csrf_ok(&c, &s.csrf(&s.issue(&who, 5_001))));
    }

    #[test]
    fn failed_logins_block_until_the_window_moves_on() {
        let l = LoginLimiter::new(2, Duration::from_secs(300));
        let t0 = Instant::now();
        l.failed(&["ip", "op.zhang"], t0);
        assert!(!l.blocked(&["ip", "op.zhang"], t0));
        l.failed(&["ip", "op.zhang"], t0);
        assert!(l.blocked(&["other-ip", "op.zhang"], t0));
        assert!(!l.blocked(&["other-ip", "op.li"], t0));
        assert!(!l.blocked(&["ip"], t0 + Duration::from_secs(301)));
    }

    #[test]
    fn a_bad_accounts_file_names_the_entry() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("accounts.toml");
        std::fs::write(
            &p,
            "[[operators]]\nid = \"op.zhang\"\npassword_hash = \"plain\"\n",
        )
        .unwrap();
        let e = Accounts::load(&p).err().unwrap().to_string();
        assert!(e.contains("op.zhang") && e.contains("password_hash"), "{e}");
        let good = format!(
            "[[operators]]\nid = \"op.zhang\"\npassword_hash = \"{}\"\n[[units]]\nunit_id = \"P-1\"\ntoken_sha256 = \"{}\"\n",
            hash_password("pw"),
            token_sha256("t")
        );
        std::fs::write(&p, good).unwrap();
        let a = Accounts::load(&p).unwrap();
        assert!(a.operator("op.zhang", "pw").is_some() && a.unit("P-1", "t").is_some());
    }
}
