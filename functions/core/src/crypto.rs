//! Encryption at rest and keyed hashes, both derived from the service master key.
//!
//! The master key (Secrets Manager, read once per container) never encrypts anything itself: two
//! subkeys are derived from it with HMAC-SHA256 under fixed labels, one for AES-256-GCM
//! (subscription and provider signing secrets) and one for keyed lookup hashes (API keys and
//! inbound URL keys). A dump of the table therefore holds only ciphertext and hashes.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::fmt;

type HmacSha256 = Hmac<Sha256>;

const CIPHERTEXT_VERSION: &str = "v1";

/// Decrypting failed: wrong key, tampered or truncated ciphertext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored secret could not be decrypted")]
pub struct DecryptError;

/// The keys derived from the master key. Cheap to clone; build once per container.
#[derive(Clone)]
pub struct Keyring {
    cipher: Aes256Gcm,
    lookup_key: [u8; 32],
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keyring(***)")
    }
}

fn derive(master: &[u8], label: &str) -> [u8; 32] {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(master).expect("HMAC accepts any key length");
    mac.update(label.as_bytes());
    mac.finalize().into_bytes().into()
}

impl Keyring {
    /// Any master key of 32 bytes or more (the template generates a 64-character string).
    pub fn from_master_key(master: &[u8]) -> Self {
        let enc_key = derive(master, "puck/v1/encryption");
        Self {
            cipher: Aes256Gcm::new_from_slice(&enc_key).expect("32-byte key"),
            lookup_key: derive(master, "puck/v1/lookup-hash"),
        }
    }

    /// `v1.<base64 nonce>.<base64 ciphertext+tag>`. `context` (e.g. the owning object's id) is
    /// bound as associated data, so a ciphertext copied onto another row does not decrypt.
    pub fn encrypt(&self, plaintext: &str, context: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext.as_bytes(), aad: context.as_bytes() })
            .expect("AES-GCM encryption of in-memory data cannot fail");
        format!("{CIPHERTEXT_VERSION}.{}.{}", STANDARD_NO_PAD.encode(nonce), STANDARD_NO_PAD.encode(sealed))
    }

    /// Reverses [`Self::encrypt`]; fails unless `stored` was sealed with this key and the same `context`.
    pub fn decrypt(&self, stored: &str, context: &str) -> Result<String, DecryptError> {
        let mut parts = stored.splitn(3, '.');
        let (Some(CIPHERTEXT_VERSION), Some(nonce), Some(sealed)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(DecryptError);
        };
        let nonce = STANDARD_NO_PAD.decode(nonce).map_err(|_| DecryptError)?;
        let sealed = STANDARD_NO_PAD.decode(sealed).map_err(|_| DecryptError)?;
        if nonce.len() != 12 {
            return Err(DecryptError);
        }
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(&nonce), Payload { msg: &sealed, aad: context.as_bytes() })
            .map_err(|_| DecryptError)?;
        String::from_utf8(plain).map_err(|_| DecryptError)
    }

    /// Hex HMAC-SHA256 of a bearer credential under the lookup key: the only form in which API
    /// keys and URL keys are stored, and the DynamoDB key they are found by.
    pub fn lookup_hash(&self, credential: &str) -> String {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.lookup_key).expect("32-byte key");
        mac.update(credential.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring() -> Keyring {
        Keyring::from_master_key(b"0123456789abcdef0123456789abcdef")
    }

    #[test]
    fn encrypt_round_trips_and_hides_plaintext() {
        let k = keyring();
        let sealed = k.encrypt("whsec_topsecret", "sub_1");
        assert!(!sealed.contains("topsecret"));
        assert_eq!(k.decrypt(&sealed, "sub_1").unwrap(), "whsec_topsecret");
    }

    #[test]
    fn decrypt_fails_for_other_context_other_key_or_tampering() {
        let k = keyring();
        let sealed = k.encrypt("value", "sub_1");
        assert_eq!(k.decrypt(&sealed, "sub_2"), Err(DecryptError));
        let other = Keyring::from_master_key(b"another master key of 32 bytes!!");
        assert_eq!(other.decrypt(&sealed, "sub_1"), Err(DecryptError));
        let mut tampered = sealed.clone();
        let last = tampered.pop();
        tampered.push(if last == Some('A') { 'B' } else { 'A' });
        assert_eq!(k.decrypt(&tampered, "sub_1"), Err(DecryptError));
        assert_eq!(k.decrypt("garbage", "sub_1"), Err(DecryptError));
    }

    #[test]
    fn lookup_hash_is_stable_keyed_and_not_the_input() {
        let k = keyring();
        let h = k.lookup_hash("pck_test_abc");
        assert_eq!(h, k.lookup_hash("pck_test_abc"));
        assert_ne!(h, k.lookup_hash("pck_test_abd"));
        assert_ne!(h, Keyring::from_master_key(b"another master key of 32 bytes!!").lookup_hash("pck_test_abc"));
        assert_eq!(h.len(), 64);
    }
}
