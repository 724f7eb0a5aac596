//! GitHub webhooks: the security events that warrant an investigation, chosen by
//! `X-GitHub-Event` and the payload's `action`.
//!
//! [`EVENTS`] maps each acted-on event name to a function that reads its payload; every other
//! event (and `ping`) is ignored before the body is parsed, since GitHub may send form-encoded
//! bodies for events we never read. The delivery id `X-GitHub-Delivery` is the dedupe key of an
//! unsigned endpoint; it is not signed, so a signed request is deduplicated by its signature.

use super::payload::{clip, first_str, severity_word, str_at, text_at, with_severity};
use super::{dedupe, ignored, parse_json, provider_event, DedupeKey, Headers, Recognition};
use crate::error::AppError;
use crate::validation::Severity;
use serde_json::Value;

/// One acted-on GitHub event, as its reader sees it.
struct Event<'a> {
    name: &'a str,
    payload: &'a Value,
    action: &'a str,
    /// `repository.full_name`, or a placeholder.
    repo: &'a str,
}

impl Event<'_> {
    /// The ignored reason for an action we do not act on.
    fn not_acted(&self) -> String {
        format!("github event {} with action {} is not acted on", self.name, clip(self.action, 64))
    }

    /// `Err(not_acted)` unless the action is one of `actions`.
    fn require_action(&self, actions: &[&str]) -> Result<(), String> {
        if actions.contains(&self.action) {
            Ok(())
        } else {
            Err(self.not_acted())
        }
    }
}

/// What a reader made of an acted-on event: the summary line, details for the query, severity.
struct Alert {
    summary: String,
    detail: String,
    severity: Option<Severity>,
}

/// Reads one event's payload; `Err` is the reason it is ignored.
type Reader = fn(&Event<'_>) -> Result<Alert, String>;

/// Acted-on events and their readers (the recognised table in [`super`]).
const EVENTS: [(&str, Reader); 5] = [
    ("code_scanning_alert", code_scanning_alert),
    ("secret_scanning_alert", secret_scanning_alert),
    ("dependabot_alert", dependabot_alert),
    ("workflow_run", workflow_run),
    ("security_advisory", security_advisory),
];

pub(super) fn recognize(headers: &Headers, body: &[u8]) -> Result<Recognition, AppError> {
    let event =
        headers.get("x-github-event").ok_or_else(|| AppError::validation("X", "X-GitHub-Event header is required"))?;
    if event == "ping" {
        return ignored("ping");
    }
    let Some((_, read)) = EVENTS.iter().find(|(name, _)| *name == event) else {
        return ignored(format!("github event {} is not acted on", clip(event, 64)));
    };
    let payload = parse_json(body, " (configure the GitHub webhook with content type application/json)")?;
    let ev = Event {
        name: event,
        payload: &payload,
        action: str_at(&payload, &["action"]).unwrap_or(""),
        repo: str_at(&payload, &["repository", "full_name"]).unwrap_or("an unknown repository"),
    };
    let Alert { summary, detail, severity } = match read(&ev) {
        Ok(alert) => alert,
        Err(reason) => return ignored(reason),
    };
    let link = first_str(
        &payload,
        &[&["alert", "html_url"], &["workflow_run", "html_url"], &["security_advisory", "html_url"]],
    )
    .map(|u| format!(" {u}"))
    .unwrap_or_default();
    let dedupe_key = headers.get("x-github-delivery").and_then(dedupe).map(DedupeKey::Delivery);
    Ok(provider_event(format!("github:{event}"), &summary, &format!("{detail}{link}"), severity, dedupe_key))
}

fn alert_number(payload: &Value) -> String {
    text_at(payload, &["alert", "number"]).unwrap_or_else(|| "?".into())
}

fn code_scanning_alert(ev: &Event<'_>) -> Result<Alert, String> {
    ev.require_action(&["created", "reopened", "reopened_by_user", "appeared_in_branch"])?;
    let p = ev.payload;
    let rule = first_str(p, &[&["alert", "rule", "description"], &["alert", "rule", "name"], &["alert", "rule", "id"]])
        .unwrap_or("unnamed rule");
    let severity = first_str(p, &[&["alert", "rule", "security_severity_level"], &["alert", "rule", "severity"]])
        .and_then(severity_word);
    let mut detail = String::new();
    if let Some(tool) = str_at(p, &["alert", "tool", "name"]) {
        detail.push_str(&format!(" Tool: {tool}."));
    }
    if let Some(path) = str_at(p, &["alert", "most_recent_instance", "location", "path"]) {
        let line = text_at(p, &["alert", "most_recent_instance", "location", "start_line"]);
        detail.push_str(&format!(" Location: {path}{}.", line.map(|l| format!(":{l}")).unwrap_or_default()));
    }
    if let Some(r#ref) = str_at(p, &["ref"]) {
        detail.push_str(&format!(" Ref: {}.", r#ref));
    }
    let summary =
        with_severity(format!("GitHub code scanning alert #{} in {}: {rule}", alert_number(p), ev.repo), severity);
    Ok(Alert { summary, detail, severity })
}

fn secret_scanning_alert(ev: &Event<'_>) -> Result<Alert, String> {
    ev.require_action(&["created", "reopened", "publicly_leaked"])?;
    let p = ev.payload;
    let kind = first_str(p, &[&["alert", "secret_type_display_name"], &["alert", "secret_type"]]).unwrap_or("secret");
    // A leaked credential is always urgent; a public leak is the worst case.
    let public = ev.action == "publicly_leaked";
    let severity = Some(if public { Severity::Critical } else { Severity::High });
    let verb = if public { "publicly leaked" } else { "detected" };
    let summary = with_severity(
        format!("GitHub secret scanning alert #{} in {}: {kind} {verb}", alert_number(p), ev.repo),
        severity,
    );
    Ok(Alert { summary, detail: String::new(), severity })
}

fn dependabot_alert(ev: &Event<'_>) -> Result<Alert, String> {
    ev.require_action(&["created", "reopened", "auto_reopened"])?;
    let p = ev.payload;
    let advisory =
        first_str(p, &[&["alert", "security_advisory", "summary"], &["alert", "security_advisory", "ghsa_id"]])
            .unwrap_or("vulnerable dependency");
    let package = first_str(
        p,
        &[&["alert", "dependency", "package", "name"], &["alert", "security_vulnerability", "package", "name"]],
    );
    let severity =
        first_str(p, &[&["alert", "security_advisory", "severity"], &["alert", "security_vulnerability", "severity"]])
            .and_then(severity_word);
    let mut detail = String::new();
    if let Some(manifest) = str_at(p, &["alert", "dependency", "manifest_path"]) {
        detail.push_str(&format!(" Manifest: {manifest}."));
    }
    if let Some(ghsa) = str_at(p, &["alert", "security_advisory", "ghsa_id"]) {
        detail.push_str(&format!(" Advisory: {ghsa}."));
    }
    let pkg = package.map(|p| format!(" ({p})")).unwrap_or_default();
    let summary = with_severity(
        format!("GitHub Dependabot alert #{} in {}: {advisory}{pkg}", alert_number(p), ev.repo),
        severity,
    );
    Ok(Alert { summary, detail, severity })
}

fn workflow_run(ev: &Event<'_>) -> Result<Alert, String> {
    let p = ev.payload;
    let conclusion = str_at(p, &["workflow_run", "conclusion"]).unwrap_or("");
    if ev.action != "completed" || conclusion != "failure" {
        return Err(format!(
            "github workflow_run with action {} and conclusion {} is not acted on",
            clip(ev.action, 64),
            if conclusion.is_empty() { "none".to_owned() } else { clip(conclusion, 64) }
        ));
    }
    let name = first_str(p, &[&["workflow_run", "name"], &["workflow", "name"]]).unwrap_or("workflow");
    let run = text_at(p, &["workflow_run", "run_number"]).map(|n| format!(" run #{n}")).unwrap_or_default();
    let branch = str_at(p, &["workflow_run", "head_branch"]).map(|b| format!(" on {b}")).unwrap_or_default();
    let mut detail = String::new();
    if let Some(sha) = str_at(p, &["workflow_run", "head_sha"]) {
        detail.push_str(&format!(" Commit: {sha}."));
    }
    Ok(Alert { summary: format!("GitHub workflow {name}{run} failed{branch} in {}", ev.repo), detail, severity: None })
}

fn security_advisory(ev: &Event<'_>) -> Result<Alert, String> {
    ev.require_action(&["published"])?;
    let p = ev.payload;
    let ghsa = str_at(p, &["security_advisory", "ghsa_id"]).unwrap_or("advisory");
    let title = str_at(p, &["security_advisory", "summary"]).unwrap_or("new security advisory");
    let severity = str_at(p, &["security_advisory", "severity"]).and_then(severity_word);
    Ok(Alert {
        summary: with_severity(format!("GitHub security advisory {ghsa}: {title}"), severity),
        detail: String::new(),
        severity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Provider;
    use crate::providers::recognize;
    use crate::providers::tests::{h, trigger};
    use serde_json::json;

    #[test]
    fn github_recognition_table() {
        let repo = json!({"full_name": "acme/api"});
        let recognised = [
            (
                "code_scanning_alert",
                json!({"action": "created", "repository": repo, "alert": {"number": 42, "html_url": "https://github.com/acme/api/security/code-scanning/42",
                    "rule": {"id": "js/sql-injection", "description": "SQL injection", "security_severity_level": "high", "severity": "error"},
                    "tool": {"name": "CodeQL"}, "most_recent_instance": {"location": {"path": "src/db.js", "start_line": 10}}}}),
                "GitHub code scanning alert #42 in acme/api: SQL injection (high)",
                Some(Severity::High),
            ),
            (
                "code_scanning_alert",
                json!({"action": "appeared_in_branch", "repository": repo, "alert": {"number": 7, "rule": {"id": "r1", "severity": "warning"}}}),
                "GitHub code scanning alert #7 in acme/api: r1 (medium)",
                Some(Severity::Medium),
            ),
            (
                "secret_scanning_alert",
                json!({"action": "created", "repository": repo, "alert": {"number": 3, "secret_type_display_name": "AWS Access Key ID"}}),
                "GitHub secret scanning alert #3 in acme/api: AWS Access Key ID detected (high)",
                Some(Severity::High),
            ),
            (
                "dependabot_alert",
                json!({"action": "reopened", "repository": repo, "alert": {"number": 9, "dependency": {"package": {"name": "lodash"}},
                    "security_advisory": {"summary": "Prototype pollution", "severity": "critical", "ghsa_id": "GHSA-xxxx"}}}),
                "GitHub Dependabot alert #9 in acme/api: Prototype pollution (lodash) (critical)",
                Some(Severity::Critical),
            ),
            (
                "workflow_run",
                json!({"action": "completed", "repository": repo, "workflow_run": {"name": "CI", "run_number": 88, "head_branch": "main", "conclusion": "failure"}}),
                "GitHub workflow CI run #88 failed on main in acme/api",
                None,
            ),
            (
                "security_advisory",
                json!({"action": "published", "security_advisory": {"ghsa_id": "GHSA-abcd", "summary": "RCE in foo", "severity": "moderate"}}),
                "GitHub security advisory GHSA-abcd: RCE in foo (medium)",
                Some(Severity::Medium),
            ),
        ];
        for (event, payload, summary, severity) in recognised {
            let headers =
                h(&[("X-GitHub-Event", event), ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")]);
            let t = trigger(recognize(Provider::Github, &headers, payload.to_string().as_bytes()).unwrap());
            assert_eq!(t.summary, summary, "{event}");
            assert_eq!(t.severity, severity, "{event}");
            assert_eq!(t.trigger, format!("github:{event}"));
            assert!(t.query.starts_with("Investigate GitHub"), "{}", t.query);
            assert_eq!(t.dedupe_key, Some(DedupeKey::Delivery("72d3162e-cc78-11e3-81ab-4c9367dc0958".into())));
        }

        let ignored_cases = [
            ("ping", json!({"zen": "Keep it logically awesome."}), "ping"),
            ("push", json!({"ref": "refs/heads/main"}), "github event push is not acted on"),
            (
                "code_scanning_alert",
                json!({"action": "fixed", "alert": {}}),
                "github event code_scanning_alert with action fixed is not acted on",
            ),
            (
                "secret_scanning_alert",
                json!({"action": "resolved"}),
                "github event secret_scanning_alert with action resolved is not acted on",
            ),
            (
                "dependabot_alert",
                json!({"action": "dismissed"}),
                "github event dependabot_alert with action dismissed is not acted on",
            ),
            (
                "workflow_run",
                json!({"action": "completed", "workflow_run": {"conclusion": "success"}}),
                "github workflow_run with action completed and conclusion success is not acted on",
            ),
            (
                "workflow_run",
                json!({"action": "requested", "workflow_run": {"conclusion": null}}),
                "github workflow_run with action requested and conclusion none is not acted on",
            ),
            (
                "security_advisory",
                json!({"action": "withdrawn"}),
                "github event security_advisory with action withdrawn is not acted on",
            ),
        ];
        for (event, payload, reason) in ignored_cases {
            let got =
                recognize(Provider::Github, &h(&[("x-github-event", event)]), payload.to_string().as_bytes()).unwrap();
            assert_eq!(got, Recognition::Ignored(reason.to_owned()), "{event}");
        }

        // Ignored events do not need a JSON body (GitHub may send form-encoded ones).
        assert_eq!(
            recognize(Provider::Github, &h(&[("x-github-event", "ping")]), b"payload=%7B%7D").unwrap(),
            Recognition::Ignored("ping".into())
        );
        assert!(matches!(
            recognize(Provider::Github, &h(&[("x-github-event", "code_scanning_alert")]), b"payload=x"),
            Err(AppError::MalformedJson(_))
        ));
        assert_eq!(
            recognize(Provider::Github, &h(&[]), b"{}"),
            Err(AppError::validation("X", "X-GitHub-Event header is required"))
        );
    }
}
