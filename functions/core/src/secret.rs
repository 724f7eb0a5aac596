//! Secret values that cannot be printed by accident.
//!
//! `Debug` and `Display` print `***`, so a secret inside a struct that gets logged stays hidden.
//! The only way to the bytes is an explicit `expose()`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;
use std::fmt;

/// A string that must never reach a log line or a list/get response.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`; from here on it prints as `***`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The raw value; call it only where the bytes are used (signing, encryption), never for logging.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A subscription signing secret: `whsec_` + base64 of 24 to 64 random bytes.
///
/// The base64 part is what Standard Webhooks libraries use as the HMAC key; the Puck signature
/// uses the whole string, prefix included (docs/receiving.md), so both schemes verify with one value.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret {
    text: Secret,
    key: Vec<u8>,
}

/// Why a caller-supplied secret was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSecret {
    /// Does not start with `whsec_`.
    #[error("secret must start with whsec_")]
    MissingPrefix,
    /// The part after `whsec_` is not standard base64.
    #[error("secret must be whsec_ followed by base64")]
    NotBase64,
    /// The decoded key is shorter than 24 or longer than 64 bytes.
    #[error("secret must encode between 24 and 64 bytes")]
    BadLength,
}

impl SigningSecret {
    /// The prefix of every signing secret.
    pub const PREFIX: &'static str = "whsec_";

    /// 32 fresh random bytes.
    pub fn generate() -> Self {
        let mut key = vec![0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        Self { text: Secret::new(format!("{}{}", Self::PREFIX, STANDARD.encode(&key))), key }
    }

    /// Accepts `whsec_` + standard base64 of 24 to 64 bytes; the error is the message of a 400 on `secret`.
    pub fn parse(raw: &str) -> Result<Self, InvalidSecret> {
        let encoded = raw.strip_prefix(Self::PREFIX).ok_or(InvalidSecret::MissingPrefix)?;
        let key = STANDARD.decode(encoded).map_err(|_| InvalidSecret::NotBase64)?;
        if !(24..=64).contains(&key.len()) {
            return Err(InvalidSecret::BadLength);
        }
        Ok(Self { text: Secret::new(raw), key })
    }

    /// The secret as issued (`whsec_…`), the HMAC key of `X-Puck-Signature`.
    pub fn expose(&self) -> &str {
        self.text.expose()
    }

    /// The decoded bytes, the HMAC key of `webhook-signature`.
    pub fn standard_key(&self) -> &[u8] {
        &self.key
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = SigningSecret::generate();
        assert!(!format!("{s:?}").contains(s.expose()));
        let plain = Secret::new("hunter2");
        assert_eq!(format!("{plain:?} {plain}"), "*** ***");
    }

    #[test]
    fn generated_secret_parses_back_to_the_same_key() {
        let s = SigningSecret::generate();
        let parsed = SigningSecret::parse(s.expose()).unwrap();
        assert_eq!(parsed.standard_key(), s.standard_key());
        assert_eq!(s.standard_key().len(), 32);
    }

    #[test]
    fn parse_refuses_bad_secrets() {
        assert_eq!(SigningSecret::parse("abc"), Err(InvalidSecret::MissingPrefix));
        assert_eq!(SigningSecret::parse("whsec_!!!"), Err(InvalidSecret::NotBase64));
        assert_eq!(SigningSecret::parse("whsec_AAAA"), Err(InvalidSecret::BadLength));
    }
}
