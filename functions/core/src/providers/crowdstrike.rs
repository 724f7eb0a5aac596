//! CrowdStrike Falcon: streaming detection and incident events (`metadata.eventType` with an
//! `event` object) and Falcon Fusion "Call webhook" bodies (`data.detections`).
//!
//! One investigation per detection or incident: the dedupe key is built from its id (in the
//! signed body), so repeated notifications of the same detection are redeliveries.

use super::payload::{at, clip, first_str, first_text, severity_word, str_at, with_severity};
use super::{dedupe, ignored, parse_json, provider_event, DedupeKey, Headers, Recognition};
use crate::error::AppError;
use crate::validation::Severity;
use serde_json::Value;

/// CrowdStrike severities: 1–5 on legacy detections (1 informational … 5 critical), 0–100 on
/// alerts (90+ critical, 70+ high, 50+ medium, 20+ low).
fn crowdstrike_severity(event: &Value) -> Option<Severity> {
    if let Some(word) = first_str(event, &[&["SeverityName"], &["severity_name"], &["severity"]]) {
        if let Some(s) = severity_word(word) {
            return Some(s);
        }
    }
    let n = first_text(event, &[&["Severity"], &["severity"]])?.parse::<f64>().ok()?;
    if n <= 5.0 {
        match n as i64 {
            5 => Some(Severity::Critical),
            4 => Some(Severity::High),
            3 => Some(Severity::Medium),
            2 => Some(Severity::Low),
            _ => None,
        }
    } else if n >= 90.0 {
        Some(Severity::Critical)
    } else if n >= 70.0 {
        Some(Severity::High)
    } else if n >= 50.0 {
        Some(Severity::Medium)
    } else if n >= 20.0 {
        Some(Severity::Low)
    } else {
        None
    }
}

const CS_DETECTIONS: [&str; 3] = ["DetectionSummaryEvent", "EppDetectionSummaryEvent", "IdpDetectionSummaryEvent"];

/// Summary and query details of one detection object (streaming `event` or a Fusion detection).
fn crowdstrike_detection(det: &Value) -> (String, String, Option<Severity>, Option<String>) {
    let id = first_text(det, &[&["CompositeId"], &["DetectId"], &["composite_id"], &["detection_id"], &["id"]]);
    let name = first_str(det, &[&["DetectName"], &["Name"], &["display_name"], &["name"], &["DisplayName"]])
        .unwrap_or("detection");
    let host = first_str(det, &[&["ComputerName"], &["Hostname"], &["hostname"], &["device", "hostname"], &["host"]]);
    let severity = crowdstrike_severity(det);
    let on_host = host.map(|h| format!(" on {h}")).unwrap_or_default();
    let summary = with_severity(format!("CrowdStrike detection {name}{on_host}"), severity);
    let mut detail = String::new();
    let fields: [(&str, &[&str]); 9] = [
        ("Description", &["DetectDescription", "Description", "description"]),
        ("Tactic", &["Tactic", "tactic"]),
        ("Technique", &["Technique", "technique"]),
        ("User", &["UserName", "user_name"]),
        ("File", &["FileName", "filename"]),
        ("Command line", &["CommandLine", "cmdline"]),
        ("Falcon sensor", &["SensorId", "AgentId", "agent_id"]),
        ("Detection", &["CompositeId", "DetectId", "composite_id", "detection_id"]),
        ("Link", &["FalconHostLink", "falcon_host_link", "link"]),
    ];
    for (label, keys) in fields {
        if let Some(v) = keys.iter().find_map(|k| str_at(det, &[k])) {
            detail.push_str(&format!(" {label}: {}.", clip(v, 500)));
        }
    }
    (summary, detail, severity, id)
}

pub(super) fn recognize(headers: &Headers, body: &[u8]) -> Result<Recognition, AppError> {
    let payload = parse_json(body, "")?;
    let event_type = str_at(&payload, &["metadata", "eventType"]);
    let event = at(&payload, &["event"]).filter(|e| e.is_object());

    let (trigger, summary, detail, severity, id) = match (event_type, event) {
        (Some(t), Some(ev)) if CS_DETECTIONS.contains(&t) => {
            let (summary, detail, severity, id) = crowdstrike_detection(ev);
            (format!("crowdstrike:{t}"), summary, detail, severity, id)
        }
        (Some("IncidentSummaryEvent"), Some(ev)) => {
            let id = first_text(ev, &[&["IncidentId"], &["IncidentID"]]);
            let score = first_text(ev, &[&["FineScore"]]).map(|s| format!(" (score {s})")).unwrap_or_default();
            let summary = format!("CrowdStrike incident {}{score}", id.as_deref().unwrap_or("(no id)"));
            let mut detail = String::new();
            if let Some(state) = str_at(ev, &["State"]) {
                detail.push_str(&format!(" State: {state}."));
            }
            if let Some(link) = str_at(ev, &["FalconHostLink"]) {
                detail.push_str(&format!(" Link: {link}."));
            }
            ("crowdstrike:IncidentSummaryEvent".to_owned(), summary, detail, None, id)
        }
        (Some(t), _) => return ignored(format!("crowdstrike event {} is not acted on", clip(t, 64))),
        (None, _) => {
            let detections = at(&payload, &["data", "detections"]).and_then(Value::as_array);
            let Some(first) = detections.and_then(|d| d.iter().find(|x| x.is_object())) else {
                return ignored("crowdstrike payload has no metadata.eventType and no data.detections");
            };
            let count = detections.map(|d| d.len()).unwrap_or(1);
            let (mut summary, detail, severity, id) = crowdstrike_detection(first);
            if count > 1 {
                summary.push_str(&format!(" and {} more", count - 1));
            }
            ("crowdstrike:fusion_detection".to_owned(), summary, detail, severity, id)
        }
    };
    // One investigation per detection/incident: repeated notifications of it are redeliveries.
    let dedupe_key = match id {
        Some(id) => dedupe(&format!("{}:{id}", trigger.trim_start_matches("crowdstrike:"))).map(DedupeKey::Event),
        None => headers.get("x-cs-delivery-id").and_then(dedupe).map(DedupeKey::Delivery),
    };
    Ok(provider_event(trigger, &summary, &detail, severity, dedupe_key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Provider;
    use crate::providers::recognize;
    use crate::providers::tests::{h, trigger};
    use serde_json::json;

    #[test]
    fn crowdstrike_recognition_table() {
        let cases = [
            (
                json!({"metadata": {"eventType": "DetectionSummaryEvent", "offset": 1},
                       "event": {"DetectId": "ldt:abc:123", "DetectName": "Suspicious Activity", "ComputerName": "web-01", "Severity": 4, "SeverityName": "High",
                                 "Tactic": "Execution", "Technique": "PowerShell", "FalconHostLink": "https://falcon.crowdstrike.com/activity/detections/detail/abc/123"}}),
                "crowdstrike:DetectionSummaryEvent",
                "CrowdStrike detection Suspicious Activity on web-01 (high)",
                Some(Severity::High),
                Some("DetectionSummaryEvent:ldt:abc:123"),
            ),
            (
                json!({"metadata": {"eventType": "EppDetectionSummaryEvent"},
                       "event": {"CompositeId": "cid:ind:aid:1", "Name": "CredentialTheft", "Hostname": "db-02", "Severity": 92}}),
                "crowdstrike:EppDetectionSummaryEvent",
                "CrowdStrike detection CredentialTheft on db-02 (critical)",
                Some(Severity::Critical),
                Some("EppDetectionSummaryEvent:cid:ind:aid:1"),
            ),
            (
                json!({"metadata": {"eventType": "IdpDetectionSummaryEvent"}, "event": {"CompositeId": "idp:1", "Name": "Pass-the-hash", "Severity": 55}}),
                "crowdstrike:IdpDetectionSummaryEvent",
                "CrowdStrike detection Pass-the-hash (medium)",
                Some(Severity::Medium),
                Some("IdpDetectionSummaryEvent:idp:1"),
            ),
            (
                json!({"metadata": {"eventType": "IncidentSummaryEvent"}, "event": {"IncidentId": "inc:1:2", "FineScore": 38, "State": "open"}}),
                "crowdstrike:IncidentSummaryEvent",
                "CrowdStrike incident inc:1:2 (score 38)",
                None,
                Some("IncidentSummaryEvent:inc:1:2"),
            ),
            (
                json!({"data": {"detections": [{"detection_id": "ldt:9", "name": "Ransomware", "severity": "Critical", "hostname": "fs-1"}, {"detection_id": "ldt:10"}]}}),
                "crowdstrike:fusion_detection",
                "CrowdStrike detection Ransomware on fs-1 (critical) and 1 more",
                Some(Severity::Critical),
                Some("fusion_detection:ldt:9"),
            ),
        ];
        for (payload, trig, summary, severity, dedupe_key) in cases {
            let t = trigger(recognize(Provider::Crowdstrike, &h(&[]), payload.to_string().as_bytes()).unwrap());
            assert_eq!(t.trigger, trig);
            assert_eq!(t.summary, summary);
            assert_eq!(t.severity, severity, "{trig}");
            assert_eq!(t.dedupe_key, dedupe_key.map(|k| DedupeKey::Event(k.into())), "{trig}");
        }
        let ignored_cases = [
            (
                json!({"metadata": {"eventType": "AuthActivityAuditEvent"}, "event": {}}),
                "crowdstrike event AuthActivityAuditEvent is not acted on",
            ),
            (
                json!({"metadata": {"eventType": "DetectionSummaryEvent"}}),
                "crowdstrike event DetectionSummaryEvent is not acted on",
            ),
            (
                json!({"data": {"detections": []}}),
                "crowdstrike payload has no metadata.eventType and no data.detections",
            ),
            (json!([1, 2]), "crowdstrike payload has no metadata.eventType and no data.detections"),
        ];
        for (payload, reason) in ignored_cases {
            assert_eq!(
                recognize(Provider::Crowdstrike, &h(&[]), payload.to_string().as_bytes()).unwrap(),
                Recognition::Ignored(reason.into())
            );
        }
        assert!(matches!(recognize(Provider::Crowdstrike, &h(&[]), b"not json"), Err(AppError::MalformedJson(_))));
    }
}
