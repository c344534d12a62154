//! Keyed pseudonyms for personal data (plates) in alert ids and log lines.
//!
//! An unkeyed hash does not hide a plate: the plate space of a province (a letter and
//! five characters from 34) is a few hundred million strings, which a laptop hashes in
//! minutes, so anyone holding an alert id could recover its plate. A keyed hash
//! (HMAC-SHA256) cannot be recomputed without the key, which lives in configuration
//! (`privacy.plate_key`, docs/SECURITY.md). The key is an input like any setting: the
//! core stays pure, and the same key gives the same ids in `run` and `replay`.
use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of a configured key: HMAC-SHA256's block-sized security needs no more, and
/// fewer than 16 would make the key itself the thing to brute-force.
pub const KEY_BYTES_MIN: usize = 16;

/// Hex characters of a pseudonym: 64 bits. Without the key there is nothing to test a
/// guess against, so the length only has to keep ids of different plates apart (a
/// collision among a city's million plates has odds of about 1 in 36 million).
const PSEUDONYM_HEX: usize = 16;

/// The secret behind every pseudonym. Never printed: `Debug` shows only that it is set.
#[derive(Clone, PartialEq, Eq)]
pub struct PseudonymKey {
    bytes: Vec<u8>,
}

impl PseudonymKey {
    /// A key from its bytes (configuration checks the length, `KEY_BYTES_MIN`).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        PseudonymKey {
            bytes: bytes.to_vec(),
        }
    }

    /// A key from hex, as configuration holds it; `None` if it is not even-length hex.
    pub fn from_hex(text: &str) -> Option<Self> {
        hex::decode(text.trim())
            .ok()
            .map(|bytes| Self::from_bytes(&bytes))
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The key as hex, for handing it to another process of the same deployment (a test
    /// harness, an operator who saves a generated key). Named so that a call stands out
    /// in review: nothing that logs or serves may use it.
    pub fn reveal_hex(&self) -> String {
        hex::encode(&self.bytes)
    }

    /// The pseudonym of `text` (a plate): 16 hex characters, the same for the same key.
    pub fn pseudonym(&self, text: &str) -> String {
        let mut full = self.mac_hex(text.as_bytes());
        full.truncate(PSEUDONYM_HEX);
        full
    }

    /// The whole HMAC-SHA256 of `data`, hex.
    fn mac_hex(&self, data: &[u8]) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.bytes).expect("HMAC takes any key length");
        mac.update(data);
        hex::encode(mac.finalize().into_bytes())
    }
}

impl fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PseudonymKey(<{} bytes, not shown>)", self.bytes.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_hmac_sha256() {
        // RFC 4231, test case 2: a real HMAC, not a look-alike.
        let key = PseudonymKey::from_bytes(b"Jefe");
        assert_eq!(
            key.mac_hex(b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            key.pseudonym("what do ya want for nothing?"),
            "5bdcc146bf60754e"
        );
    }

    #[test]
    fn same_key_same_pseudonym_other_key_other_pseudonym() {
        let a = PseudonymKey::from_hex(&"11".repeat(32)).unwrap();
        let b = PseudonymKey::from_hex(&"12".repeat(32)).unwrap();
        assert_eq!(a.pseudonym("贵F12345"), a.clone().pseudonym("贵F12345"));
        assert_ne!(a.pseudonym("贵F12345"), a.pseudonym("贵F12346"));
        assert_ne!(a.pseudonym("贵F12345"), b.pseudonym("贵F12345"));
        assert_eq!(a.pseudonym("贵F12345").len(), 16);
    }

    /// What an attacker holding an alert id can do: enumerate plates and compare. With
    /// an unkeyed hash (the FNV-1a ids had before) that finds the plate; with the wrong
    /// key, or none, no candidate matches; only the key finds it.
    #[test]
    fn a_pseudonym_cannot_be_recomputed_without_the_key() {
        let key = PseudonymKey::from_hex(&"a7".repeat(32)).unwrap();
        let plate = "贵F03721";
        let id_part = key.pseudonym(plate);
        let candidates = || (0..100_000).map(|n| format!("贵F{n:05}"));
        let fnv = |s: &str| {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in s.as_bytes() {
                h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
            }
            format!("{h:016x}")
        };
        let sha = |s: &str| {
            use sha2::Digest as _;
            hex::encode(Sha256::digest(s.as_bytes()))[..PSEUDONYM_HEX].to_owned()
        };
        // The unkeyed scheme is reversible by enumeration: the test would notice if the
        // enumeration itself were broken.
        let old_id = fnv(plate);
        assert_eq!(
            candidates().find(|c| fnv(c) == old_id).as_deref(),
            Some(plate)
        );
        assert!(candidates().all(|c| fnv(&c) != id_part && sha(&c) != id_part));
        for guess in ["", "00", "roadwatch", "a7a7a7a7"] {
            let wrong = PseudonymKey::from_bytes(guess.as_bytes());
            assert!(candidates().all(|c| wrong.pseudonym(&c) != id_part));
        }
        let wrong = PseudonymKey::from_hex(&"a6".repeat(32)).unwrap();
        assert!(candidates().all(|c| wrong.pseudonym(&c) != id_part));
        assert_eq!(
            candidates()
                .find(|c| key.pseudonym(c) == id_part)
                .as_deref(),
            Some(plate)
        );
    }

    #[test]
    fn hex_round_trip_and_debug_hides_the_key() {
        let key = PseudonymKey::from_hex("00ff10Ab").unwrap();
        assert_eq!(key.reveal_hex(), "00ff10ab");
        assert!(!format!("{key:?}").contains("00ff"));
        assert!(PseudonymKey::from_hex("abc").is_none());
        assert!(PseudonymKey::from_hex("zz").is_none());
    }
}
