//! The key a subscription signs its deliveries with, one per signature scheme.
//!
//! `hmac-sha256` (the default) signs with a shared secret (`whsec_…`) that the receiver holds
//! too. `ed25519`, Standard Webhooks' asymmetric scheme, signs with a private key that only the
//! service holds; the receiver verifies with the public key (`whpk_…`), so whoever reads the
//! receiver's configuration still cannot forge a delivery. Both kinds are kept the same way: the
//! key's text form (`whsec_…` or `whsk_…`), AES-256-GCM-encrypted like every secret, which
//! [`SigningKey::parse`] turns back into a key by its prefix.

use crate::secret::{Secret, SigningSecret};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::Signer;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::fmt;

/// How a subscription's deliveries are signed; chosen at creation, never changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SignatureScheme {
    /// HMAC-SHA256 with a shared `whsec_` secret: `v1` signatures.
    #[default]
    #[serde(rename = "hmac-sha256")]
    HmacSha256,
    /// Ed25519 with a service-held private key: `v1a` signatures, verified with `public_key`.
    #[serde(rename = "ed25519")]
    Ed25519,
}

impl SignatureScheme {
    /// Every scheme, in the order messages list them.
    pub const ALL: [SignatureScheme; 2] = [SignatureScheme::HmacSha256, SignatureScheme::Ed25519];

    /// The wire name: `hmac-sha256` or `ed25519`.
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureScheme::HmacSha256 => "hmac-sha256",
            SignatureScheme::Ed25519 => "ed25519",
        }
    }

    /// Parses a wire name; the error is the message of a 400 on `signature_scheme`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|s| s.as_str()).collect();
            format!("signature_scheme {} must be one of {}", crate::validation::quoted(raw), names.join(", "))
        })
    }
}

/// An Ed25519 public key as shown to receivers: `whpk_` + standard base64 of its 32 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// The prefix of every public key (Standard Webhooks' convention).
    pub const PREFIX: &'static str = "whpk_";

    /// The raw 32 bytes, what an Ed25519 library verifies with.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", Self::PREFIX, STANDARD.encode(self.0))
    }
}

/// An Ed25519 private key. Prints as `***`; its text form is `whsk_` + base64 of the 32-byte seed.
#[derive(Clone)]
pub struct Ed25519Key(ed25519_dalek::SigningKey);

impl Ed25519Key {
    /// The prefix of the stored text form (Standard Webhooks' convention for secret keys).
    pub const PREFIX: &'static str = "whsk_";

    /// A fresh key pair from 32 random bytes.
    pub fn generate() -> Self {
        let mut seed = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut seed);
        Self(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// Reads the text form back; None unless it is `whsk_` + base64 of exactly 32 bytes.
    pub fn parse(text: &str) -> Option<Self> {
        let seed: [u8; 32] = STANDARD.decode(text.strip_prefix(Self::PREFIX)?).ok()?.try_into().ok()?;
        Some(Self(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    /// The text form, for encryption at rest only.
    pub fn expose(&self) -> Secret {
        Secret::new(format!("{}{}", Self::PREFIX, STANDARD.encode(self.0.to_bytes())))
    }

    /// The key receivers verify with.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// Base64 of the 64-byte Ed25519 signature of the concatenated `parts`.
    pub fn sign_base64(&self, parts: &[&[u8]]) -> String {
        STANDARD.encode(self.0.sign(&parts.concat()).to_bytes())
    }
}

impl fmt::Debug for Ed25519Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Ed25519Key(***)")
    }
}

/// The key one signature is made with.
#[derive(Debug, Clone)]
pub enum SigningKey {
    /// A shared secret: `v1` entries.
    Hmac(SigningSecret),
    /// A private key: `v1a` entries.
    Ed25519(Ed25519Key),
}

/// A stored key's plaintext is neither a `whsec_` secret nor a `whsk_` key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored signing key is not a whsec_ secret or a whsk_ key")]
pub struct InvalidStoredKey;

impl SigningKey {
    /// A fresh key of `scheme`.
    pub fn generate(scheme: SignatureScheme) -> Self {
        match scheme {
            SignatureScheme::HmacSha256 => Self::Hmac(SigningSecret::generate()),
            SignatureScheme::Ed25519 => Self::Ed25519(Ed25519Key::generate()),
        }
    }

    /// Reads a decrypted stored key; the prefix says which kind it is.
    pub fn parse(plaintext: &str) -> Result<Self, InvalidStoredKey> {
        if plaintext.starts_with(Ed25519Key::PREFIX) {
            return Ed25519Key::parse(plaintext).map(Self::Ed25519).ok_or(InvalidStoredKey);
        }
        SigningSecret::parse(plaintext).map(Self::Hmac).map_err(|_| InvalidStoredKey)
    }

    /// The text that is encrypted at rest.
    pub fn expose(&self) -> Secret {
        match self {
            Self::Hmac(s) => Secret::new(s.expose()),
            Self::Ed25519(k) => k.expose(),
        }
    }

    /// The public key of an Ed25519 key; None for a shared secret.
    pub fn public_key(&self) -> Option<PublicKey> {
        match self {
            Self::Hmac(_) => None,
            Self::Ed25519(k) => Some(k.public_key()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Verifier;

    #[test]
    fn scheme_parses_its_wire_names_and_names_the_field_otherwise() {
        assert_eq!(SignatureScheme::parse("ed25519"), Ok(SignatureScheme::Ed25519));
        assert_eq!(SignatureScheme::parse("hmac-sha256"), Ok(SignatureScheme::HmacSha256));
        assert_eq!(
            SignatureScheme::parse("rsa"),
            Err("signature_scheme \"rsa\" must be one of hmac-sha256, ed25519".to_owned())
        );
        assert_eq!(serde_json::to_value(SignatureScheme::default()).unwrap(), "hmac-sha256");
    }

    #[test]
    fn stored_text_round_trips_to_the_same_key_and_never_prints() {
        let key = Ed25519Key::generate();
        let text = key.expose();
        assert!(text.expose().starts_with("whsk_"));
        let SigningKey::Ed25519(back) = SigningKey::parse(text.expose()).unwrap() else { panic!("not ed25519") };
        assert_eq!(back.public_key(), key.public_key());
        assert!(!format!("{key:?} {:?}", SigningKey::Ed25519(key.clone())).contains(&text.expose()[5..]));
        let secret = SigningSecret::generate();
        assert!(matches!(SigningKey::parse(secret.expose()), Ok(SigningKey::Hmac(_))));
        assert_eq!(SigningKey::parse("whsk_AAAA").unwrap_err(), InvalidStoredKey);
        assert_eq!(SigningKey::parse("plain").unwrap_err(), InvalidStoredKey);
    }

    #[test]
    fn public_key_is_whpk_and_base64_of_32_bytes() {
        let shown = Ed25519Key::generate().public_key().to_string();
        let raw = STANDARD.decode(shown.strip_prefix("whpk_").unwrap()).unwrap();
        assert_eq!(raw.len(), 32);
    }

    #[test]
    fn signature_verifies_with_the_public_key_over_the_concatenated_parts() {
        let key = Ed25519Key::generate();
        let sig = STANDARD.decode(key.sign_base64(&[b"1700000000", b".", b"{}"])).unwrap();
        let sig = ed25519_dalek::Signature::from_slice(&sig).unwrap();
        let public = ed25519_dalek::VerifyingKey::from_bytes(key.public_key().as_bytes()).unwrap();
        assert!(public.verify(b"1700000000.{}", &sig).is_ok());
        assert!(public.verify(b"1700000000.{ }", &sig).is_err());
    }
}
