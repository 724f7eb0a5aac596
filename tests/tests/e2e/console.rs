//! The web console (docs/console.md) in a real headless Chromium, against the local stack and
//! real HTTPS receivers: the whole Settings → Webhooks flow, hostile data shown as text, the API's
//! field errors, and the console's security headers. Screenshots of the main screens land in
//! `target/console-screenshots/`.

use crate::support::{create_subscription, id_of, SUBSCRIPTIONS};
use puck_api::routes::console::CONTENT_SECURITY_POLICY;
use puck_e2e::browser::Browser;
use puck_e2e::customer::CustomerAccount;
use puck_e2e::{wait_for_some, Receiver, Reply, Script, TestStack, EVENTUALLY};
use serde_json::{json, Value};

const WIDE: (u32, u32) = (1280, 900);

/// Opens the console and signs in with the stack's key, as a user pasting it.
async fn signed_in(stack: &TestStack) -> Browser {
    let browser = Browser::start(WIDE.0, WIDE.1).await;
    browser.goto(&stack.url("/console")).await;
    browser.wait_for("#api-key").await;
    browser.type_into("#api-key", stack.api_key()).await;
    browser.click("#sign-in button[type=submit]").await;
    browser.wait_for("#add-subscription").await;
    browser
}

async fn hash(browser: &Browser) -> String {
    browser.js("return location.hash;", json!([])).await.as_str().unwrap_or_default().to_owned()
}

async fn secret_shown(browser: &Browser) -> Option<String> {
    browser
        .js("const e = document.getElementById('one-time-secret'); return e ? e.value : null;", json!([]))
        .await
        .as_str()
        .map(str::to_owned)
}

/// Nothing from data ran: no handler set the flag or changed the title.
async fn assert_nothing_ran(browser: &Browser) {
    let flag = browser.js("return window.__pwned === undefined ? null : String(window.__pwned);", json!([])).await;
    assert_eq!(flag, Value::Null, "script from data ran");
    // The handler would set the title to exactly "pwned" (the page's own title may quote the name).
    assert_ne!(browser.title().await, "pwned", "an onerror handler ran");
    let injected = browser
        .js("return document.querySelectorAll('main img, main script, main b, main iframe').length;", json!([]))
        .await;
    assert_eq!(injected, 0, "markup from data became elements");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_flow_works_end_to_end_in_headless_chromium() {
    let stack = TestStack::start_default().await;
    let receiver = Receiver::start().await;
    let browser = Browser::start(WIDE.0, WIDE.1).await;

    // Sign in: the key goes to sessionStorage only.
    browser.goto(&stack.url("/console")).await;
    browser.wait_for("#api-key").await;
    browser.screenshot("01-sign-in").await;
    browser.type_into("#api-key", stack.api_key()).await;
    browser.click("#sign-in button[type=submit]").await;
    browser.wait_text("main", "No subscriptions yet").await;
    let storage = browser
        .js(
            "return [sessionStorage.getItem('puck.apiKey'), localStorage.length, document.cookie, location.href];",
            json!([]),
        )
        .await;
    assert_eq!(storage[0], stack.api_key());
    assert_eq!((storage[1].as_u64(), storage[2].as_str()), (Some(0), Some("")), "{storage}");
    assert!(!storage[3].as_str().unwrap().contains(stack.api_key()), "{storage}");

    // Add a subscription from the catalog's event types.
    browser.click("#add-subscription").await;
    browser.wait_for("#url").await;
    browser.type_into("#name", "PagerDuty – prod").await;
    browser.type_into("#url", &receiver.url()).await;
    browser.click(r#"input[value="investigation.*"]"#).await;
    browser.click(r#"input[value="finding.discovered"]"#).await;
    browser.js("const s = document.getElementById('min_severity'); s.value = 'high'; return true;", json!([])).await;
    browser.click("#tags-add").await;
    browser.type_into("#tags-k0", "env").await;
    browser.type_into("#tags-v0", "prod").await;
    browser.screenshot("02-add-subscription").await;
    browser.click("#save").await;

    // The secret appears once.
    browser.wait_for("#one-time-secret").await;
    let secret = secret_shown(&browser).await.expect("secret shown");
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert!(browser.page_text().await.contains("only time the signing secret is shown"));
    browser.screenshot("03-secret-once").await;
    let id = hash(&browser).await.trim_start_matches("#/subscriptions/").to_owned();
    let (status, sub, _) = stack.get(&format!("{SUBSCRIPTIONS}/{id}")).await;
    assert_eq!(status, 200, "{sub}");
    assert_eq!(sub["events"], json!(["investigation.*", "finding.discovered"]));
    assert_eq!(sub["filters"], json!({"min_severity": "high", "tags": {"env": "prod"}}));

    // …and is gone after navigating away and back.
    browser.click(".crumbs a").await;
    browser.wait_text("#subscriptions", "PagerDuty – prod").await;
    browser.wait_text("#subscriptions", "in 24 h").await;
    browser.goto(&stack.url(&format!("/console#/subscriptions/{id}"))).await;
    browser.wait_text("#sub-title", "PagerDuty").await;
    assert_eq!(secret_shown(&browser).await, None);
    assert!(!browser.page_text().await.contains(&secret));

    // Edit: a payload filter as JSON. The API's 400 names its path and shows next to the field;
    // text that is not JSON is caught before it is sent.
    browser.goto(&stack.url(&format!("/console#/subscriptions/{id}/edit"))).await;
    browser.wait_for("#payload").await;
    let set_payload = "document.getElementById('payload').value = arguments[0]; return true;";
    browser.js(set_payload, json!([r#"{"host": {"$startsWith": 1}}"#])).await;
    browser.click("#save").await;
    let message = browser.wait_text("#payload-error", "startsWith").await;
    assert_eq!(message, "filters.payload.host.$startsWith: must be a string");
    browser.wait_text(".error-summary", "filters.payload.host.$startsWith").await;
    let invalid =
        browser.js("return document.getElementById('payload').getAttribute('aria-invalid');", json!([])).await;
    assert_eq!(invalid, "true");
    browser.js("document.getElementById('payload').scrollIntoView({block: 'center'}); return true;", json!([])).await;
    browser.screenshot("03b-payload-filter-error").await;
    browser.js(set_payload, json!(["{\"host\": "])).await;
    browser.click("#save").await;
    browser.wait_text("#payload-error", "filters.payload: not valid JSON").await;
    assert_eq!(stack.get(&format!("{SUBSCRIPTIONS}/{id}")).await.1["filters"].get("payload"), None);
    browser.js(set_payload, json!([r#"{"host": {"$endsWith": ".prod"}}"#])).await;
    browser.click("#save").await;
    browser.wait_text("#sub-payload", "$endsWith").await;
    let (_, sub, _) = stack.get(&format!("{SUBSCRIPTIONS}/{id}")).await;
    assert_eq!(
        sub["filters"],
        json!({"min_severity": "high", "tags": {"env": "prod"}, "payload": {"host": {"$endsWith": ".prod"}}})
    );

    // Send test event: the attempt's outcome inline, then `succeeded` in the log.
    browser.click("#send-test").await;
    let result = browser.wait_text("#test-result", "open delivery").await;
    // `?wait=true`: the attempt was made within the request and its outcome is shown at once.
    assert!(result.contains("succeeded") && result.contains("200"), "{result}");
    browser.wait_for(r#"#delivery-log tr[data-status="succeeded"]"#).await;
    let requests = receiver.wait_for(1, EVENTUALLY).await;
    assert_eq!(requests[0].header("x-puck-event-type"), Some("investigation.queued"));
    let event_id = requests[0].header("x-puck-event-id").unwrap().to_owned();
    browser.wait_text(".chart-slot figcaption", "1 succeeded in 24 h").await;
    // The settings card's last delivery follows too, without a reload.
    browser.wait_text("#last-delivery", "succeeded").await;
    browser.screenshot("04-subscription").await;

    // Open it: payload and attempt.
    browser.click(r#"#delivery-log tr[data-status="succeeded"] a.delivery-link"#).await;
    browser.wait_text(".attempt", "HTTP 200").await;
    let delivery_id = hash(&browser).await.trim_start_matches("#/deliveries/").to_owned();
    let (_, delivery, _) = stack.get(&format!("/v1/webhooks/deliveries/{delivery_id}")).await;
    assert!(browser.page_text().await.contains(&event_id));
    if delivery.get("payload").is_some() {
        browser.wait_text("#payload", &event_id).await;
    } else {
        browser.wait_text("main", "does not return the payload").await;
    }
    let attempt = browser.text(".attempt").await.unwrap();
    assert!(attempt.contains("Request headers") && attempt.to_lowercase().contains("x-puck-event-id"), "{attempt}");
    browser.screenshot("05-delivery").await;

    // Replay: the same event again, the log entry back to succeeded.
    browser.click("#replay").await;
    browser.wait_text("#replay-result", "Replay queued").await;
    let requests = receiver.wait_for(2, EVENTUALLY).await;
    assert_eq!(requests[1].header("x-puck-event-id"), Some(event_id.as_str()));
    browser.wait_text(".attempt", "Attempt 2").await;

    // Rotate the secret: a new one, shown once, with the overlap explained.
    browser.goto(&stack.url(&format!("/console#/subscriptions/{id}"))).await;
    browser.wait_text("#sub-title", "PagerDuty").await;
    browser.click_button("Rotate secret").await;
    browser.click_button("Yes, rotate secret").await;
    browser.wait_for("#one-time-secret").await;
    let rotated = secret_shown(&browser).await.unwrap();
    assert!(rotated.starts_with("whsec_") && rotated != secret, "{rotated}");
    assert!(browser.page_text().await.contains("24 hours"));
    receiver.set_script(Script::always(Reply::ok()));
    let (status, _, _) = stack.post(&format!("{SUBSCRIPTIONS}/{id}/test"), json!({})).await;
    assert!(status == 202 || status == 200);
    let requests = receiver.wait_for(3, EVENTUALLY).await;
    assert_eq!(
        requests[2].header("x-puck-signature").unwrap().matches("v1=").count(),
        2,
        "new and previous secret sign during the overlap"
    );

    // Pause and resume.
    browser.click("#toggle-active").await;
    browser.wait_text("#sub-title", "paused").await;
    assert_eq!(stack.get(&format!("{SUBSCRIPTIONS}/{id}")).await.1["active"], false);
    browser.click("#toggle-active").await;
    browser.wait_text("#sub-title", "active").await;
    assert_eq!(stack.get(&format!("{SUBSCRIPTIONS}/{id}")).await.1["active"], true);

    // Phone width and dark mode stay readable.
    browser.set_window(390, 844).await;
    browser.screenshot("06-subscription-phone").await;
    browser.set_window(WIDE.0, WIDE.1).await;
    browser.color_scheme("dark").await;
    browser.click(".crumbs a").await;
    browser.wait_text("#subscriptions", "in 24 h").await;
    browser.screenshot("07-list-dark").await;
    browser.color_scheme("light").await;
    browser.screenshot("08-list").await;

    // Delete, confirmed in place.
    browser.click(&format!(r#"tr[data-id="{id}"] a"#)).await;
    browser.wait_text("#sub-title", "PagerDuty").await;
    browser.click_button("Delete").await;
    browser.click_button("Yes, delete").await;
    browser.wait_text("main", "No subscriptions yet").await;
    assert_eq!(stack.get(&format!("{SUBSCRIPTIONS}/{id}")).await.0, 404);

    // Sign out forgets the key.
    browser.click("#sign-out").await;
    browser.wait_for("#api-key").await;
    let kept = browser.js("return sessionStorage.length;", json!([])).await;
    assert_eq!(kept, 0);
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_receiver_bodies_headers_and_names_are_shown_as_text_and_run_nothing() {
    let stack = TestStack::start_default().await;
    let img = r#"<img src=x onerror="window.__pwned=1;document.title='pwned'">"#;
    let script = "<script>window.__pwned=2</script>";
    let receiver = Receiver::start_with(Script::always(
        Reply::ok().header("x-evil", &format!("{img}{script}")).body(format!("<h1>hi</h1>{img}{script}")),
    ))
    .await;
    let name = format!("{img}<b>Ops</b>{script}");
    let sub = create_subscription(&stack, json!({"name": name, "url": receiver.url(), "events": ["finding.*"]})).await;
    let id = id_of(&sub);
    let (status, _, _) = stack.post(&format!("{SUBSCRIPTIONS}/{id}/test"), json!({})).await;
    assert!(status == 202 || status == 200);
    let delivery_id = wait_for_some(EVENTUALLY, "the test delivery succeeded", || async {
        let (_, page, _) = stack.get(&format!("/v1/webhooks/deliveries?subscription_id={id}")).await;
        page["deliveries"]
            .as_array()
            .and_then(|d| d.first())
            .filter(|d| d["status"] == "succeeded")
            .map(|d| d["id"].as_str().unwrap().to_owned())
    })
    .await;

    let browser = signed_in(&stack).await;
    let shown = browser.wait_text(".sub-name", "Ops").await;
    assert_eq!(shown, name, "the name is shown literally");
    assert_nothing_ran(&browser).await;

    browser.goto(&stack.url(&format!("/console#/subscriptions/{id}"))).await;
    browser.wait_text("#sub-title", "<b>Ops</b>").await;
    browser.wait_for(r#"#delivery-log tr[data-status="succeeded"]"#).await;
    assert_nothing_ran(&browser).await;

    browser.goto(&stack.url(&format!("/console#/deliveries/{delivery_id}"))).await;
    let body = browser.wait_text(".response-body", "<script>").await;
    assert_eq!(body, format!("<h1>hi</h1>{img}{script}"));
    let attempt = browser.text(".attempt").await.unwrap();
    assert!(attempt.contains(&format!("{img}{script}")), "the header value is shown literally: {attempt}");
    browser.screenshot("09-hostile-delivery").await;
    assert_nothing_ran(&browser).await;
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_url_shows_the_apis_message_next_to_the_url_field_and_401_returns_to_sign_in() {
    let stack = TestStack::start_default().await;
    let browser = signed_in(&stack).await;
    browser.click("#add-subscription").await;
    browser.type_into("#url", "http://hooks.example.com/puck").await;
    browser.click(r#"input[value="finding.discovered"]"#).await;
    browser.click("#save").await;
    let message = browser.wait_text("#url-error", "https").await;
    assert_eq!(message, "url must use https");
    let invalid = browser.js("return document.getElementById('url').getAttribute('aria-invalid');", json!([])).await;
    assert_eq!(invalid, "true");
    browser.wait_text(".error-summary", "url must use https").await;
    browser.screenshot("10-bad-url").await;
    assert_eq!(stack.get(SUBSCRIPTIONS).await.1["subscriptions"], json!([]));

    // Events are required too, and that error lands next to the picker.
    browser
        .js(
            "document.querySelectorAll('input[name=events]:checked').forEach((c) => c.click()); return true;",
            json!([]),
        )
        .await;
    browser.type_into("#url", "https://hooks.example.com/puck").await;
    browser.click("#save").await;
    browser.wait_text("#events-error", "events").await;

    // A key that stops working (revoked, or never valid) sends the user back to sign-in.
    browser.js("sessionStorage.setItem('puck.apiKey', 'pck_test_' + 'x'.repeat(40)); return true;", json!([])).await;
    browser.goto(&stack.url("/console#/")).await;
    browser.wait_text("main", "not accepted").await;
    browser.wait_for("#api-key").await;
    assert_eq!(browser.js("return sessionStorage.length;", json!([])).await, 0);
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqs_destination_is_chosen_in_the_form_and_its_delivery_shows_like_an_https_one() {
    let stack = TestStack::start_default().await;
    let endpoint = tokio::task::spawn_blocking(puck_e2e::moto::endpoint).await.expect("moto");
    let customer = CustomerAccount::open(&endpoint, "111122223333").await;
    let suffix = puck_local::unique_prefix("c").replace('_', "-");
    let role = customer.create_role(&format!("puck-{suffix}"), "123456789012", &stack.account_id().to_string()).await;
    let queue = customer.create_queue(&format!("console-{suffix}")).await;
    let browser = signed_in(&stack).await;

    // Choose "Amazon SQS queue": the queue and role fields replace the URL; the API's error for a
    // bad queue URL lands next to the queue field.
    browser.click("#add-subscription").await;
    browser.click("#kind-sqs").await;
    let url_hidden = browser.js("return document.getElementById('url').offsetParent === null;", json!([])).await;
    assert_eq!(url_hidden, true, "the URL field is hidden for an AWS destination");
    browser.type_into("#queue_url", "https://example.com/queue").await;
    browser.type_into("#role_arn", &role).await;
    browser.click(r#"input[value="investigation.*"]"#).await;
    browser.click("#save").await;
    browser.wait_text("#queue_url-error", "destination.queue_url must be").await;
    browser.type_into("#queue_url", &queue.aws_url).await;
    browser.screenshot("13-add-sqs-destination").await;
    browser.click("#save").await;
    browser.wait_for("#one-time-secret").await;
    let id = hash(&browser).await.trim_start_matches("#/subscriptions/").to_owned();
    let (_, sub, _) = stack.get(&format!("{SUBSCRIPTIONS}/{id}")).await;
    assert_eq!(sub["destination"], json!({"type": "sqs", "queue_url": queue.aws_url, "role_arn": role}), "{sub}");
    // Opened afresh (the page that showed the secret once is left, as a user would).
    browser.goto(&stack.url("/console#/")).await;
    browser.goto(&stack.url(&format!("/console#/subscriptions/{id}"))).await;
    browser.wait_text("#sub-url", &queue.aws_url).await;
    browser.wait_text("#sub-role", &role).await;
    browser.wait_for("#delivery-log").await;

    // Send test event: the message is on the queue, and the log shows the attempt like any other.
    browser.click("#send-test").await;
    let result = browser.wait_text("#test-result", "open delivery").await;
    assert!(result.contains("succeeded"), "{result}");
    assert_eq!(customer.receive(&queue, 1, EVENTUALLY).await.len(), 1, "the test event reached the queue");
    browser.click(r#"#delivery-log tr[data-status="succeeded"] a.delivery-link"#).await;
    browser.wait_text(".attempt", "HTTP 200").await;
    let attempt = browser.text(".attempt").await.unwrap();
    assert!(attempt.contains(&queue.aws_url), "the attempt's URL is the queue URL: {attempt}");
    browser.screenshot("14-sqs-delivery").await;

    // The list names the queue.
    browser.goto(&stack.url("/console#/")).await;
    browser.wait_text("#subscriptions", &format!("SQS {}", queue.aws_url)).await;
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_responses_carry_the_csp_and_security_headers() {
    let stack = TestStack::start_default().await;
    let http = reqwest::Client::new();
    for (path, status, content_type) in [
        ("/console", 200, "text/html; charset=utf-8"),
        ("/console/app.js", 200, "text/javascript; charset=utf-8"),
        ("/console/api.js", 200, "text/javascript; charset=utf-8"),
        ("/console/style.css", 200, "text/css; charset=utf-8"),
        ("/console/icon.svg", 200, "image/svg+xml"),
        ("/console/nope.js", 404, "application/json"),
    ] {
        let resp = http.get(stack.url(path)).send().await.unwrap();
        let h = resp.headers().clone();
        assert_eq!(resp.status().as_u16(), status, "{path}");
        assert_eq!(h["content-type"], content_type, "{path}");
        assert_eq!(h["content-security-policy"], CONTENT_SECURITY_POLICY, "{path}");
        assert!(
            CONTENT_SECURITY_POLICY.contains("script-src 'self';")
                && CONTENT_SECURITY_POLICY.contains("frame-ancestors 'none'")
        );
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        if status == 200 {
            assert_eq!(h["cache-control"], "no-cache", "{path}");
            let etag = h["etag"].to_str().unwrap();
            let again = http.get(stack.url(path)).header("if-none-match", etag).send().await.unwrap();
            assert_eq!(again.status().as_u16(), 304, "{path}");
            assert_eq!(again.headers()["content-security-policy"], CONTENT_SECURITY_POLICY);
        }
    }
    let page = http.get(stack.url("/console")).send().await.unwrap().text().await.unwrap();
    assert!(!page.contains("<script>") && !page.contains("style="), "no inline script or style");
    assert!(!page.contains("http://") && !page.contains("https://"), "no third-party or absolute URL");
    // Only GET: the gateway's $default answers other methods with the API's JSON 405.
    let (status, _, _) = stack.anonymous().raw(reqwest::Method::POST, "/console", &[], b"{}".to_vec()).await;
    assert_eq!(status, 405);
}

/// The value of the public-key field on a subscription's page, once it is there.
async fn public_key_shown(browser: &Browser) -> String {
    browser.wait_for("#public-key-slot").await;
    let value = browser.js("return document.getElementById('public-key').value;", json!([])).await;
    value.as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ed25519_subscription_shows_its_public_key_with_copy_and_rotates_its_key() {
    let stack = TestStack::start_default().await;
    let receiver = Receiver::start().await;
    let browser = signed_in(&stack).await;

    // Create one with the Ed25519 scheme chosen in the form.
    browser.click("#add-subscription").await;
    browser.wait_for("#signature_scheme").await;
    browser.type_into("#url", &receiver.url()).await;
    browser.click(r#"input[value="finding.discovered"]"#).await;
    browser.js("document.getElementById('signature_scheme').value = 'ed25519'; return true;", json!([])).await;
    browser.click("#save").await;

    // Its page: the public key (the API's) with a Copy button, no secret, Rotate key.
    browser.wait_text("#signature-scheme", "ed25519").await;
    let id = hash(&browser).await.trim_start_matches("#/subscriptions/").to_owned();
    let (_, sub, _) = stack.get(&format!("{SUBSCRIPTIONS}/{id}")).await;
    assert_eq!(sub["signature_scheme"], "ed25519", "{sub}");
    let shown = public_key_shown(&browser).await;
    assert!(shown.starts_with("whpk_") && shown == sub["public_key"], "{shown} vs {sub}");
    assert_eq!(secret_shown(&browser).await, None, "an ed25519 subscription has no secret to show");
    browser.click("#public-key-slot button").await;
    browser.wait_text("#public-key-slot .copied", "C").await; // "Copied", or "Selected: press Ctrl+C"
    let text = browser.page_text().await;
    assert!(text.contains("Rotate key") && !text.contains("Rotate secret"), "{text}");
    browser.screenshot("11-ed25519-subscription").await;

    // Rotate key: the new public key replaces the old on the page, the overlap explained.
    browser.click_button("Rotate key").await;
    browser.click_button("Yes, rotate key").await;
    browser.wait_text("#key-rotated", "24 hours").await;
    let (_, rotated, _) = stack.get(&format!("{SUBSCRIPTIONS}/{id}")).await;
    assert_ne!(rotated["public_key"], sub["public_key"]);
    assert_eq!(public_key_shown(&browser).await, rotated["public_key"].as_str().unwrap());
    let (status, _, _) = stack.post(&format!("{SUBSCRIPTIONS}/{id}/test"), json!({})).await;
    assert_eq!(status, 202);
    let request = receiver.wait_for(1, EVENTUALLY).await.remove(0);
    let signature = request.header("x-puck-signature").unwrap();
    assert_eq!(signature.matches(",v1a=").count(), 2, "both keys sign during the overlap: {signature}");
    for key in [&shown, rotated["public_key"].as_str().unwrap()] {
        assert_eq!(puck_verify::verify_ed25519_now(signature, &request.body, &[key]), Ok(()));
    }
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_settings_are_entered_in_the_form_shown_with_the_secret_masked_and_removed() {
    let stack = TestStack::start_default().await;
    let receiver = Receiver::start().await;
    let token = Receiver::start_with(Script::always(
        Reply::ok().body(json!({"access_token": "tok-console", "expires_in": 3600}).to_string()),
    ))
    .await;
    let browser = signed_in(&stack).await;
    let client_secret = "cs-console-4f2a-never-shown";

    browser.click("#add-subscription").await;
    browser.wait_for("#auth-token-url").await;
    browser.type_into("#url", &receiver.url()).await;
    browser.click(r#"input[value="*"]"#).await;
    browser.type_into("#auth-token-url", &token.url_with_path("/oauth/token")).await;
    browser.type_into("#auth-client-id", "console-client").await;
    browser.type_into("#auth-client-secret", client_secret).await;
    browser.type_into("#auth-scope", "hooks").await;
    browser.screenshot("12-add-oauth").await;
    browser.click("#save").await;
    browser.wait_for("#one-time-secret").await;
    let id = hash(&browser).await.trim_start_matches("#/subscriptions/").to_owned();
    let (_, sub, _) = stack.get(&format!("{SUBSCRIPTIONS}/{id}")).await;
    assert_eq!(sub["auth"]["client_id"], "console-client", "{sub}");
    assert_eq!((sub["auth"]["scope"].clone(), sub["auth"]["client_secret"].clone()), (json!("hooks"), json!("***")));

    // The page shows it with the secret masked; a test event carries the bearer.
    let shown = browser.wait_text("#sub-auth", "console-client").await;
    assert!(shown.contains("/oauth/token") && shown.contains("***"), "{shown}");
    browser.click("#send-test").await;
    browser.wait_text("#test-result", "succeeded").await;
    let requests = receiver.wait_for(1, EVENTUALLY).await;
    assert_eq!(requests[0].header("authorization"), Some("Bearer tok-console"));
    assert!(!browser.page_text().await.contains(client_secret));

    // Edit: the settings are prefilled but the secret is not; changing them without it is the
    // API's error next to the secret field; "Remove OAuth" removes them.
    browser.click("#edit").await;
    browser.wait_for("#auth-token-url").await;
    let prefilled = browser
        .js("return ['auth-client-id', 'auth-client-secret'].map((i) => document.getElementById(i).value);", json!([]))
        .await;
    assert_eq!(prefilled, json!(["console-client", ""]));
    browser.type_into("#auth-scope", " more").await;
    browser.click("#save").await;
    browser.wait_text("#auth-client-secret-error", "auth.client_secret: is required").await;
    browser.click("#drop-auth").await;
    browser.click("#save").await;
    browser.wait_text("#sub-auth", "none").await;
    assert_eq!(stack.get(&format!("{SUBSCRIPTIONS}/{id}")).await.1["auth"], Value::Null);
    browser.quit().await;
}

/// Over `ACCOUNT_TESTS_PER_MINUTE`, Send test event shows the API's 429 message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_test_event_over_the_accounts_rate_shows_the_429_message() {
    let stack =
        puck_e2e::TestStack::start(puck_e2e::TestStackOptions::default().env("ACCOUNT_TESTS_PER_MINUTE", "1")).await;
    let receiver = Receiver::start().await;
    let id = id_of(&create_subscription(&stack, json!({"url": receiver.url(), "events": ["finding.*"]})).await);
    let browser = signed_in(&stack).await;
    browser.goto(&stack.url(&format!("/console#/subscriptions/{id}"))).await;
    browser.wait_for("#send-test").await;
    // One a minute: of three sends at least one is refused, whatever minute they fall in.
    let mut refused = None;
    for _ in 0..3 {
        browser.js("document.getElementById('test-result').textContent = ''; return true;", json!([])).await;
        browser.click("#send-test").await;
        let shown = wait_for_some(EVENTUALLY, "a test result", || async {
            browser.text("#test-result").await.filter(|t| t.contains("open delivery") || t.contains("per minute"))
        })
        .await;
        if shown.contains("per minute") {
            refused = Some(shown);
            break;
        }
    }
    let message = refused.expect("a send over the rate is refused");
    assert!(message.contains("at most 1 test events per minute; retry after"), "{message}");
    browser.quit().await;
}

/// The rate limit and FIFO order in the form (the API's error next to the field), on the
/// subscription page, and the notice while deliveries wait on the limit, gone once they are all
/// delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_and_fifo_are_set_in_the_form_shown_on_the_page_and_waiting_deliveries_say_so() {
    let stack = TestStack::start_default().await;
    let receiver = Receiver::start().await;
    let browser = signed_in(&stack).await;
    browser.click("#add-subscription").await;
    browser.type_into("#url", &receiver.url()).await;
    browser.click(r#"input[value="chain.confirmed"]"#).await;
    browser.type_into("#rate_limit_per_second", "fast").await;
    browser.click("#save").await;
    browser.wait_text("#rate_limit_per_second-error", "rate_limit_per_second").await;
    browser.js("document.getElementById('rate_limit_per_second').value = ''; return true;", json!([])).await;
    browser.type_into("#rate_limit_per_second", "1").await;
    browser.click("#save").await;
    browser.wait_for("#one-time-secret").await;
    browser.wait_text("#sub-rate-limit", "1 per second").await;
    browser.wait_text("#sub-fifo", "any").await;
    let id = hash(&browser).await.trim_start_matches("#/subscriptions/").to_owned();
    let sub = stack.get(&format!("{SUBSCRIPTIONS}/{id}")).await.1;
    assert_eq!((&sub["rate_limit_per_second"], &sub["fifo"]), (&json!(1), &json!(false)), "{sub}");

    // Ten events at once at 1/s: most wait, and the page says so until the last is delivered.
    let events: Vec<Value> = (0..10).map(|i| json!({"event_type": "chain.confirmed", "data": {"n": i}})).collect();
    assert_eq!(stack.post("/v1/events/batch", json!({ "events": events })).await.0, 202);
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    browser.click(".crumbs a").await;
    browser.wait_for(&format!(r#"tr[data-id="{id}"] a"#)).await;
    browser.click(&format!(r#"tr[data-id="{id}"] a"#)).await;
    let notice = browser.wait_text("#rate-waiting", "waiting on the rate limit").await;
    assert!(notice.contains("1 per second") && notice.contains("uses no attempt"), "{notice}");
    browser.screenshot("13-rate-limited").await;
    receiver.wait_for(10, EVENTUALLY).await;
    wait_for_some(EVENTUALLY, "the waiting notice to go", || async {
        let text = browser.js("return document.getElementById('rate-waiting').textContent;", json!([])).await;
        (text == "").then_some(())
    })
    .await;

    // Edit: the field holds the limit; emptied, the limit is gone; FIFO ticked, the order is kept.
    browser.click("#edit").await;
    let shown = browser.js("return document.getElementById('rate_limit_per_second').value;", json!([])).await;
    assert_eq!(shown, "1");
    browser.js("document.getElementById('rate_limit_per_second').value = ''; return true;", json!([])).await;
    browser.click("#fifo").await;
    browser.click("#save").await;
    browser.wait_text("#sub-rate-limit", "none").await;
    browser.wait_text("#sub-fifo", "FIFO").await;
    let sub = stack.get(&format!("{SUBSCRIPTIONS}/{id}")).await.1;
    assert_eq!((&sub["rate_limit_per_second"], &sub["fifo"]), (&Value::Null, &json!(true)), "{sub}");
    browser.quit().await;
}
