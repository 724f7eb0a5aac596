//! `signature_scheme: "ed25519"` from the receiver's side: deliveries and test events signed with
//! `v1a` entries in both signature headers, verified here by an independent Ed25519
//! implementation (Python's `cryptography`, i.e. OpenSSL, from the project venv) and by
//! `puck_verify`; the key pair's rotation with its overlap; the private key never shown, logged
//! or stored in the clear; and the 400s of key fields that do not apply.

use crate::support::{assert_error, create_subscription, id_of, SUBSCRIPTIONS};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use puck_core::ids::SubscriptionId;
use puck_e2e::delivery::{list_all_deliveries, repo_root, venv_python, wait_for_delivery_status};
use puck_e2e::leaks::assert_not_leaked;
use puck_e2e::{wait_until, ReceivedRequest, Receiver, TestStack, TestStackOptions, EVENTUALLY};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const OPENSSL_VERIFY_PY: &str = r#"
import base64, json, sys
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
out = []
for c in json.load(sys.stdin)["checks"]:
    assert c["public_key"].startswith("whpk_")
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(c["public_key"][5:], validate=True))
    try:
        key.verify(base64.b64decode(c["signature"], validate=True), base64.b64decode(c["message"]))
        out.append(True)
    except InvalidSignature:
        out.append(False)
print(json.dumps(out))
"#;

/// Whether each base64 `signature` of `message` verifies with `public_key` (`whpk_…`), decided
/// by Python's `cryptography` (OpenSSL), not by the code that signs.
async fn independent_verify(checks: &[(&str, &[u8], &str)]) -> Vec<bool> {
    let checks: Vec<Value> = checks
        .iter()
        .map(|(key, message, sig)| json!({"public_key": key, "message": STANDARD.encode(message), "signature": sig}))
        .collect();
    let out = venv_python(OPENSSL_VERIFY_PY, &json!({ "checks": checks })).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!("the cryptography check failed to run: {stdout} {}", String::from_utf8_lossy(&out.stderr))
    })
}

/// docs/receiving.md's Python verifier ("Ed25519 signatures (`v1a`)"), run on a real request: what a
/// reader copying it gets for `public_keys`.
async fn readme_python_verifies(req: &ReceivedRequest, public_keys: &[&str]) -> bool {
    let readme = std::fs::read_to_string(repo_root().join("docs/receiving.md")).expect("docs/receiving.md");
    let section = &readme[readme.find("### Ed25519 signatures (`v1a`)").expect("the docs section")..];
    let start = section.find("```python\n").expect("a python block") + "```python\n".len();
    let snippet = &section[start..start + section[start..].find("```").unwrap()];
    let driver = r#"
import json, sys
req = json.load(sys.stdin)
print(json.dumps(verify_ed25519(req["headers"], base64.b64decode(req["body"]), req["keys"])))
"#;
    let headers: serde_json::Map<String, Value> = ["webhook-id", "webhook-timestamp", "webhook-signature"]
        .iter()
        .map(|h| (h.to_string(), json!(req.header(h))))
        .collect();
    let input = json!({"headers": headers, "body": STANDARD.encode(&req.body), "keys": public_keys});
    let out = venv_python(&format!("{snippet}{driver}"), &input).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!("the documented verifier failed to run: {stdout} {}", String::from_utf8_lossy(&out.stderr))
    })
}

/// `t=<t>,v1a=<a>[,v1a=<b>]` → (t, [a, b]); panics on any other shape (a `v1=` included).
fn parse_puck_v1a(header: &str) -> (String, Vec<String>) {
    let mut parts = header.split(',');
    let t = parts.next().and_then(|p| p.strip_prefix("t=")).unwrap_or_else(|| panic!("no t= first in {header}"));
    let sigs: Vec<String> = parts
        .map(|p| p.strip_prefix("v1a=").unwrap_or_else(|| panic!("unexpected part {p:?} in {header}")).to_owned())
        .collect();
    assert!(!sigs.is_empty() && t.chars().all(|c| c.is_ascii_digit()), "{header}");
    (t.to_owned(), sigs)
}

/// `v1a,<a>[ v1a,<b>]` → [a, b].
fn parse_standard_v1a(header: &str) -> Vec<String> {
    header
        .split(' ')
        .map(|p| p.strip_prefix("v1a,").unwrap_or_else(|| panic!("unexpected entry {p:?} in {header}")).to_owned())
        .collect()
}

/// The two signed messages of a request: `"<t>.<body>"` (`X-Puck-Signature`) and
/// `"<id>.<t>.<body>"` (`webhook-signature`), with the signatures of each header.
struct Signed {
    puck_message: Vec<u8>,
    puck: Vec<String>,
    standard_message: Vec<u8>,
    standard: Vec<String>,
}

fn signed(req: &ReceivedRequest) -> Signed {
    let header = req.header("x-puck-signature").expect("x-puck-signature");
    assert_eq!(req.header("x-puck-signature-256"), Some(header), "the alias is identical");
    let (t, puck) = parse_puck_v1a(header);
    assert_eq!(req.header("webhook-timestamp"), Some(t.as_str()), "both schemes sign the same timestamp");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((t.parse::<i64>().unwrap() - now).abs() < 300, "t={t} is not now");
    let id = req.header("webhook-id").expect("webhook-id");
    let standard = parse_standard_v1a(req.header("webhook-signature").expect("webhook-signature"));
    Signed {
        puck_message: [t.as_bytes(), b".", &req.body].concat(),
        puck,
        standard_message: [id.as_bytes(), b".", t.as_bytes(), b".", &req.body].concat(),
        standard,
    }
}

/// The stored private key of a subscription, decrypted with the stack's keyring (only a test
/// holding the master key can): the text to look for in logs, the table and responses.
async fn stored_private_key(stack: &TestStack, id: &str) -> String {
    let id = SubscriptionId::parse(id).unwrap();
    let sub = stack.ctx().subscriptions.get(stack.account_id(), &id).await.unwrap().expect("stored");
    let plain = stack.ctx().keyring.decrypt(&sub.secret_enc, id.as_str()).unwrap();
    assert!(plain.starts_with("whsk_"), "an ed25519 subscription stores a whsk_ private key");
    plain
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ed25519_delivery_and_test_event_verify_with_an_independent_implementation() {
    let stack = TestStack::start_default().await;
    let receiver = Receiver::start().await;
    let sub = create_subscription(
        &stack,
        json!({"url": receiver.url(), "events": ["finding.discovered"], "signature_scheme": "ed25519"}),
    )
    .await;
    let id = id_of(&sub);
    assert!(sub.get("secret").is_none(), "no shared secret: {sub}");
    assert_eq!(sub["signature_scheme"], "ed25519");
    let public_key = sub["public_key"].as_str().expect("public_key on create").to_owned();
    assert!(public_key.starts_with("whpk_") && STANDARD.decode(&public_key[5..]).unwrap().len() == 32);
    let (_, got, _) = stack.get(&format!("{SUBSCRIPTIONS}/{id}")).await;
    assert_eq!((got["public_key"].as_str(), got.get("secret")), (Some(public_key.as_str()), None), "{got}");
    let (_, listed, _) = stack.get(SUBSCRIPTIONS).await;
    assert_eq!(listed["subscriptions"][0]["public_key"], public_key.as_str(), "{listed}");

    let data = json!({"finding_id": "fnd_1", "title": "Weak TLS on edge", "text": "é ✓ \"q\""});
    let (status, accepted, _) =
        stack.post("/v1/events", json!({"event_type": "finding.discovered", "data": data, "severity": "high"})).await;
    assert_eq!(status, 202, "{accepted}");
    let req = receiver.wait_for(1, EVENTUALLY).await.remove(0);
    let s = signed(&req);
    assert_eq!((s.puck.len(), s.standard.len()), (1, 1), "one key, one v1a entry per header");
    let tampered = [&s.puck_message[..s.puck_message.len() - 1], b"!"].concat();
    let verdicts = independent_verify(&[
        (&public_key, &s.puck_message, &s.puck[0]),
        (&public_key, &s.standard_message, &s.standard[0]),
        (&public_key, &tampered, &s.puck[0]),
        (&public_key, &s.puck_message, &s.standard[0]),
    ])
    .await;
    assert_eq!(verdicts, vec![true, true, false, false], "OpenSSL verifies both headers, and only those messages");
    let header = req.header("x-puck-signature").unwrap();
    assert_eq!(puck_verify::verify_ed25519_now(header, &req.body, &[&public_key]), Ok(()));
    assert!(puck_verify::verify_ed25519_now(header, b"{}", &[&public_key]).is_err());
    assert!(readme_python_verifies(&req, &[&public_key]).await, "the documented Python verifier accepts it");

    // The test event, queued and made at once, is signed the same way.
    let (status, queued, _) = stack.post(&format!("{SUBSCRIPTIONS}/{id}/test"), Value::Null).await;
    assert_eq!(status, 202, "{queued}");
    let (status, answer, _) = stack.post(&format!("{SUBSCRIPTIONS}/{id}/test?wait=true"), Value::Null).await;
    assert_eq!((status, &answer["status"]), (200, &json!("succeeded")), "{answer}");
    let tests = receiver.wait_for(3, EVENTUALLY).await;
    for req in &tests[1..] {
        let s = signed(req);
        let verdicts = independent_verify(&[
            (&public_key, &s.puck_message, &s.puck[0]),
            (&public_key, &s.standard_message, &s.standard[0]),
        ])
        .await;
        assert_eq!(verdicts, vec![true, true], "test event {:?}", req.header("x-puck-event-type"));
    }

    // The log redacts the signatures; the private key is nowhere in the clear.
    let log = list_all_deliveries(&stack, &format!("subscription_id={id}")).await;
    assert_eq!(log.len(), 3, "{log:?}");
    for d in &log {
        let d = wait_for_delivery_status(&stack, d["id"].as_str().unwrap(), "succeeded", EVENTUALLY).await;
        let logged = &d["attempts"][0]["request_headers"];
        for name in ["x-puck-signature", "x-puck-signature-256", "webhook-signature"] {
            assert_eq!(logged[name], "[redacted]", "{name} in {d}");
        }
        assert!(!d.to_string().contains(&s.puck[0]), "no signature value in the log");
    }
    let private = stored_private_key(&stack, &id).await;
    let material = private["whsk_".len()..].to_owned();
    for read in [SUBSCRIPTIONS.to_owned(), format!("{SUBSCRIPTIONS}/{id}")] {
        let (_, body, _) = stack.get(&read).await;
        assert!(!body.to_string().contains(&material), "the private key appears in GET {read}");
    }
    assert_not_leaked(&stack, &[("ed25519 private key".into(), private), ("its key material".into(), material)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_key_rotation_both_key_pairs_sign_until_the_overlap_ends() {
    const OVERLAP: Duration = Duration::from_secs(10);
    let stack =
        TestStack::start(TestStackOptions::default().env("SECRET_OVERLAP_SECONDS", OVERLAP.as_secs().to_string()))
            .await;
    let receiver = Receiver::start().await;
    let sub = create_subscription(
        &stack,
        json!({"url": receiver.url(), "events": ["agent.registered"], "signature_scheme": "ed25519"}),
    )
    .await;
    let path = format!("{SUBSCRIPTIONS}/{}", id_of(&sub));
    let old = sub["public_key"].as_str().unwrap().to_owned();
    let old_private = stored_private_key(&stack, &id_of(&sub)).await;

    let (status, rotated, _) = stack.patch(&path, json!({"public_key": null})).await;
    let rotated_at = Instant::now();
    assert_eq!(status, 200, "{rotated}");
    assert!(rotated.get("secret").is_none(), "{rotated}");
    let new = rotated["public_key"].as_str().expect("the new public key").to_owned();
    assert!(new.starts_with("whpk_") && new != old);
    let (_, got, _) = stack.get(&path).await;
    assert_eq!(got["public_key"], new.as_str(), "reads show the new key");

    let (status, _, _) =
        stack.post("/v1/events", json!({"event_type": "agent.registered", "data": {"agent_id": "a1"}})).await;
    assert_eq!(status, 202);
    let req = receiver.wait_for(1, EVENTUALLY).await.remove(0);
    assert!(
        rotated_at.elapsed() < OVERLAP,
        "the first delivery came after the overlap window ({:?}); the machine is too loaded for this check",
        rotated_at.elapsed()
    );
    let s = signed(&req);
    assert_eq!((s.puck.len(), s.standard.len()), (2, 2), "two v1a entries in each header during the overlap");
    let verdicts = independent_verify(&[
        (&new, &s.puck_message, &s.puck[0]),
        (&old, &s.puck_message, &s.puck[1]),
        (&new, &s.standard_message, &s.standard[0]),
        (&old, &s.standard_message, &s.standard[1]),
        (&old, &s.puck_message, &s.puck[0]),
    ])
    .await;
    assert_eq!(verdicts, vec![true, true, true, true, false], "new key first, then the previous");
    for key in [&new, &old] {
        assert!(readme_python_verifies(&req, &[key]).await, "the documented verifier accepts either key");
    }
    let header = req.header("x-puck-signature").unwrap();
    for key in [&new, &old] {
        assert_eq!(puck_verify::verify_ed25519_now(header, &req.body, &[key]), Ok(()));
    }

    // Once the window is over, only the new key signs.
    wait_until(EVENTUALLY, "the overlap window to end", || async {
        rotated_at.elapsed() > OVERLAP + Duration::from_millis(500)
    })
    .await;
    let (status, _, _) =
        stack.post("/v1/events", json!({"event_type": "agent.registered", "data": {"agent_id": "a2"}})).await;
    assert_eq!(status, 202);
    let req = receiver.wait_for(2, EVENTUALLY).await.remove(1);
    let s = signed(&req);
    assert_eq!((s.puck.len(), s.standard.len()), (1, 1), "only the new key signs after the overlap");
    let verdicts =
        independent_verify(&[(&new, &s.puck_message, &s.puck[0]), (&old, &s.puck_message, &s.puck[0])]).await;
    assert_eq!(verdicts, vec![true, false]);
    assert!(!readme_python_verifies(&req, &[&old]).await, "the previous key no longer verifies");
    assert!(puck_verify::verify_ed25519_now(req.header("x-puck-signature").unwrap(), &req.body, &[&old]).is_err());
    let material = old_private["whsk_".len()..].to_owned();
    assert_not_leaked(&stack, &[("rotated-out private key".into(), old_private), ("its material".into(), material)])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_fields_that_do_not_apply_are_400s_naming_the_field() {
    let stack = TestStack::start_default().await;
    let url = "https://hooks.example.com/h";
    let create = |extra: Value| {
        let mut body = json!({"url": url, "events": ["*"]});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    for (extra, needle) in [
        (json!({"signature_scheme": "rsa"}), "signature_scheme \"rsa\" must be one of hmac-sha256, ed25519"),
        (json!({"signature_scheme": true}), "signature_scheme must be a string"),
        (
            json!({"signature_scheme": "ed25519", "secret": "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}),
            "secret does not apply",
        ),
        (json!({"signature_scheme": "ed25519", "public_key": "whpk_x"}), "public_key is made by the service"),
    ] {
        assert_error(&stack.post(SUBSCRIPTIONS, create(extra)).await, 400, "validation_error", needle);
    }
    let hmac = format!("{SUBSCRIPTIONS}/{}", id_of(&create_subscription(&stack, create(json!({}))).await));
    let ed = create_subscription(&stack, create(json!({"signature_scheme": "ed25519"}))).await;
    let ed_path = format!("{SUBSCRIPTIONS}/{}", id_of(&ed));
    for (path, patch, needle) in [
        (&hmac, json!({"signature_scheme": "ed25519"}), "signature_scheme is set at creation only"),
        (&ed_path, json!({"signature_scheme": "hmac-sha256"}), "signature_scheme is set at creation only"),
        (&hmac, json!({"public_key": null}), "public_key applies only to signature_scheme ed25519"),
        (&ed_path, json!({"secret": null}), "secret does not apply to signature_scheme ed25519"),
        (&ed_path, json!({"public_key": "whpk_x"}), "public_key can only be null"),
    ] {
        assert_error(&stack.patch(path, patch).await, 400, "validation_error", needle);
    }
    let (_, unchanged, _) = stack.get(&ed_path).await;
    assert_eq!(
        (unchanged["public_key"].clone(), unchanged["signature_scheme"].clone()),
        (ed["public_key"].clone(), json!("ed25519"))
    );
    let (_, plain, _) = stack.get(&hmac).await;
    assert_eq!((plain["signature_scheme"].clone(), plain["public_key"].clone()), (json!("hmac-sha256"), Value::Null));
}
