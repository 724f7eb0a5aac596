//! The web console (issue 13, DESIGN §8) in a real headless Chromium, against the local stack and
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
