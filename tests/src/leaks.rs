//! Leak checks (docs/security.md): the secrets and keys a test issued must appear neither in any log
//! line this test binary captured nor in a raw dump of the stack's table.

use crate::{captured_logs, TestStack};

/// The strings to look for in place of `secret`: itself, and for `whsec_…` secrets also the
/// key material after the prefix (the Standard Webhooks key).
pub fn needles(secret: &str) -> Vec<&str> {
    match secret.strip_prefix("whsec_") {
        Some(material) => vec![secret, material],
        None => vec![secret],
    }
}

/// Asserts that none of `secrets` (label, value) appears in the captured logs or in a raw scan
/// of `stack`'s tables.
///
/// # Panics
/// Naming the secret and where it was found.
pub async fn assert_not_leaked(stack: &TestStack, secrets: &[(String, String)]) {
    let dump = stack.table_dump().await;
    let logs = captured_logs();
    for (what, secret) in secrets {
        assert!(!secret.is_empty(), "{what}: an empty secret proves nothing");
        for needle in needles(secret) {
            assert!(!dump.contains(needle), "{what} appears in a raw scan of the table");
            let leaked: Vec<&str> = logs.lines().filter(|l| l.contains(needle)).take(3).collect();
            assert!(leaked.is_empty(), "{what} appears in the logs:\n{}", leaked.join("\n"));
        }
    }
}
