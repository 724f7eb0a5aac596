//! Delivery body formats (docs/receiving.md, "Formats"): the raw envelope, a Slack Block Kit message, or a
//! Microsoft Teams Adaptive Card message.
//!
//! A subscription pointed at a Slack or Teams incoming webhook must get a body that product
//! accepts, or it answers 400 and we retry for days. The chat formats are built from the catalog's
//! summary line and the event's scalar `data` fields, and every text is cut (with an ellipsis) to
//! the product's limits, so rendering never fails whatever the payload size. The rendered string
//! is the delivery's `payload`: exactly the bytes signed and sent on every attempt.

use crate::catalog::{severity_name, summary_line};
use crate::envelope::Envelope;
use crate::validation::{quoted, Severity};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Which body a subscription receives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// The envelope `{event_id, event_type, emitted_at, api_version, data}`.
    #[default]
    Raw,
    /// A Slack incoming-webhook message (Block Kit).
    Slack,
    /// A Teams incoming-webhook / Workflows message with an Adaptive Card 1.4.
    MsTeams,
}

impl Format {
    /// Every format, in the order error messages list them.
    pub const ALL: [Format; 3] = [Format::Raw, Format::Slack, Format::MsTeams];

    /// The wire name: `raw`, `slack` or `ms_teams`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Slack => "slack",
            Format::MsTeams => "ms_teams",
        }
    }

    /// Parses a wire name; the error is the message of a 400 on the `format` field.
    pub fn parse(raw: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|f| f.as_str() == raw)
            .ok_or_else(|| format!("format {} must be one of raw, slack, ms_teams", quoted(raw)))
    }
}

/// Slack: a header block's plain_text is at most 150 characters.
pub const SLACK_HEADER_MAX: usize = 150;
/// Slack: a section's text is at most 3,000 characters (also used for the top-level `text`).
pub const SLACK_SECTION_MAX: usize = 3000;
/// Slack: a section's `fields` are at most 10, each at most 2,000 characters.
pub const SLACK_FIELDS_MAX: usize = 10;
/// Slack: each entry of a section's `fields` is at most 2,000 characters.
pub const SLACK_FIELD_MAX: usize = 2000;
/// Slack: a message has at most 50 blocks (we use 4).
pub const SLACK_BLOCKS_MAX: usize = 50;
/// Teams: each fact value is kept short so the whole card stays far below the ~28 KB message limit.
pub const TEAMS_FACT_MAX: usize = 500;
/// How many `data` fields (besides severity) a chat message shows.
const SALIENT_FIELDS: usize = SLACK_FIELDS_MAX - 1;
/// A field name shown in a chat message is cut to this.
const FIELD_NAME_MAX: usize = 60;

/// The body to send for `envelope` in `format`. `severity` is the event's (it is not part of the
/// envelope); chat formats show it.
pub fn render(format: Format, envelope: &Envelope, severity: Option<Severity>) -> String {
    let body = match format {
        Format::Raw => return envelope.to_json(),
        Format::Slack => slack(envelope, severity),
        Format::MsTeams => teams(envelope, severity),
    };
    serde_json::to_string(&body).expect("a JSON value always serialises")
}

/// Cuts `s` to at most `max` characters, ending with an ellipsis when it was cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Severity first, then the first scalar fields of `data`, as (name, value) pairs.
fn salient_fields(envelope: &Envelope, severity: Option<Severity>) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    if let Some(s) = severity {
        fields.push(("severity".to_owned(), severity_name(s).to_owned()));
    }
    if let Value::Object(data) = &envelope.data {
        for (k, v) in data {
            if fields.len() > SALIENT_FIELDS || (k == "severity" && severity.is_some()) {
                continue;
            }
            let value = match v {
                Value::String(s) if !s.is_empty() => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => continue,
            };
            fields.push((truncate(k, FIELD_NAME_MAX), value));
        }
    }
    fields.truncate(SLACK_FIELDS_MAX);
    fields
}

fn summary(envelope: &Envelope, severity: Option<Severity>) -> String {
    summary_line(&envelope.event_type, envelope.event_id.as_str(), severity, &envelope.data)
}

fn context_line(envelope: &Envelope) -> String {
    format!("event_id {} · emitted_at {}", envelope.event_id, envelope.emitted_at)
}

/// Block Kit: header (event type), section (summary), section with fields, context. All texts are
/// `plain_text`, so nothing in event data can mention `@channel` or inject links.
fn slack(envelope: &Envelope, severity: Option<Severity>) -> Value {
    let summary = summary(envelope, severity);
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&envelope.event_type, SLACK_HEADER_MAX)}}),
        json!({"type": "section", "text": {"type": "plain_text", "text": truncate(&summary, SLACK_SECTION_MAX)}}),
    ];
    let fields: Vec<Value> = salient_fields(envelope, severity)
        .into_iter()
        .map(|(k, v)| json!({"type": "plain_text", "text": truncate(&format!("{k}: {v}"), SLACK_FIELD_MAX)}))
        .collect();
    if !fields.is_empty() {
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    blocks.push(json!({"type": "context", "elements": [{"type": "plain_text", "text": truncate(&context_line(envelope), SLACK_SECTION_MAX)}]}));
    debug_assert!(blocks.len() <= SLACK_BLOCKS_MAX);
    json!({"text": truncate(&summary, SLACK_SECTION_MAX), "blocks": blocks})
}

/// An Adaptive Card 1.4 in a Teams message: title, summary, a FactSet, a subtle context line.
fn teams(envelope: &Envelope, severity: Option<Severity>) -> Value {
    let facts: Vec<Value> = salient_fields(envelope, severity)
        .into_iter()
        .map(|(k, v)| json!({"title": k, "value": truncate(&v, TEAMS_FACT_MAX)}))
        .collect();
    let mut body = vec![
        json!({"type": "TextBlock", "text": truncate(&envelope.event_type, SLACK_HEADER_MAX), "weight": "Bolder", "size": "Medium", "wrap": true}),
        json!({"type": "TextBlock", "text": truncate(&summary(envelope, severity), SLACK_SECTION_MAX), "wrap": true}),
    ];
    if !facts.is_empty() {
        body.push(json!({"type": "FactSet", "facts": facts}));
    }
    body.push(
        json!({"type": "TextBlock", "text": context_line(envelope), "isSubtle": true, "size": "Small", "wrap": true}),
    );
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
            },
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::EventId;
    use crate::time::Timestamp;
    use proptest::prelude::*;

    fn envelope(event_type: &str, data: Value) -> Envelope {
        Envelope::new(
            EventId::parse("evt-1").unwrap(),
            event_type,
            Timestamp::parse_rfc3339("2026-05-03T14:22:01Z").unwrap(),
            data,
        )
    }

    fn parsed(format: Format, e: &Envelope, s: Option<Severity>) -> Value {
        serde_json::from_str(&render(format, e, s)).unwrap()
    }

    #[test]
    fn formats_parse_by_name_and_unknown_is_an_error_naming_the_field() {
        assert_eq!(Format::parse("ms_teams"), Ok(Format::MsTeams));
        assert!(Format::parse("teams").unwrap_err().starts_with("format \"teams\""));
        assert_eq!(Format::default(), Format::Raw);
    }

    #[test]
    fn raw_is_the_envelope() {
        let e = envelope("finding.discovered", json!({"title": "x"}));
        assert_eq!(render(Format::Raw, &e, None), e.to_json());
    }

    #[test]
    fn slack_has_text_header_summary_fields_and_context() {
        let e = envelope(
            "finding.discovered",
            json!({"title": "SQL injection", "host": "api.acme.example", "count": 3, "nested": {"a": 1}}),
        );
        let v = parsed(Format::Slack, &e, Some(Severity::Critical));
        assert_eq!(v["text"], "finding.discovered (critical): SQL injection on api.acme.example");
        let blocks = v["blocks"].as_array().unwrap();
        assert_eq!(blocks[0], json!({"type": "header", "text": {"type": "plain_text", "text": "finding.discovered"}}));
        assert_eq!(blocks[1]["text"]["text"], v["text"]);
        let fields: Vec<&str> =
            blocks[2]["fields"].as_array().unwrap().iter().map(|f| f["text"].as_str().unwrap()).collect();
        assert_eq!(fields, ["severity: critical", "title: SQL injection", "host: api.acme.example", "count: 3"]);
        assert_eq!(blocks[3]["type"], "context");
        assert!(blocks[3]["elements"][0]["text"].as_str().unwrap().contains("evt-1"));
    }

    #[test]
    fn teams_is_an_adaptive_card_message() {
        let e = envelope("agent.registered", json!({"agent_id": "a1"}));
        let v = parsed(Format::MsTeams, &e, None);
        assert_eq!(v["type"], "message");
        let att = &v["attachments"][0];
        assert_eq!(att["contentType"], "application/vnd.microsoft.card.adaptive");
        assert_eq!(
            (att["content"]["type"].as_str(), att["content"]["version"].as_str()),
            (Some("AdaptiveCard"), Some("1.4"))
        );
        let body = att["content"]["body"].as_array().unwrap();
        assert_eq!(body[1]["text"], "agent.registered: agent a1 joined the fleet");
        assert_eq!(body[2]["facts"][0], json!({"title": "agent_id", "value": "a1"}));
    }

    #[test]
    fn truncation_keeps_the_limit_and_marks_the_cut() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 3), "ab…");
        assert_eq!(truncate("ééééé", 4).chars().count(), 4);
    }

    proptest! {
        #[test]
        fn chat_bodies_stay_within_limits_whatever_the_data(title in "\\PC{0,5000}", n in 0usize..40, long in 0usize..20_000) {
            let mut data = serde_json::Map::new();
            data.insert("title".into(), json!(title));
            data.insert("host".into(), json!("h".repeat(long)));
            for i in 0..n {
                data.insert(format!("{}{i}", "k".repeat(long % 300)), json!("v".repeat(long)));
            }
            let e = envelope(&format!("finding.{}", "x".repeat(long % 400)), Value::Object(data));
            let s = parsed(Format::Slack, &e, Some(Severity::High));
            prop_assert!(s["text"].as_str().unwrap().chars().count() <= SLACK_SECTION_MAX);
            let blocks = s["blocks"].as_array().unwrap();
            prop_assert!(blocks.len() <= SLACK_BLOCKS_MAX);
            prop_assert!(blocks[0]["text"]["text"].as_str().unwrap().chars().count() <= SLACK_HEADER_MAX);
            prop_assert!(blocks[1]["text"]["text"].as_str().unwrap().chars().count() <= SLACK_SECTION_MAX);
            if let Some(fields) = blocks[2]["fields"].as_array() {
                prop_assert!(fields.len() <= SLACK_FIELDS_MAX);
                prop_assert!(fields.iter().all(|f| f["text"].as_str().unwrap().chars().count() <= SLACK_FIELD_MAX));
            }
            let t = render(Format::MsTeams, &e, Some(Severity::High));
            prop_assert!(t.len() < 28_000, "teams body {} bytes", t.len());
        }
    }
}
