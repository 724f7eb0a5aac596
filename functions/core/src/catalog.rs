//! The event-type catalog: the one list of every event type the service delivers.
//!
//! Validation (`event_type` on publish, `events` patterns, `prefix.*`, `"*"`), the `/test` event,
//! the Slack/Teams summary lines and `GET /v1/webhooks/event-types` (and so the console) all read
//! this list, so a type added here is known everywhere at once. Each entry documents its `data`
//! with a JSON Schema (2020-12) and an example that validates against it; the schema documents,
//! it does not gate publishing (producers evolve).

use crate::validation::Severity;
use serde_json::{json, Value};

/// The group of the service's own operational event types (docs/api.md, "Operational events"): never matched by `"*"`.
pub const OPERATIONAL_GROUP: &str = "webhook.*";

/// One event type of the catalog.
#[derive(Debug)]
pub struct EventTypeInfo {
    /// The dotted event type, e.g. `investigation.created`: what producers publish and patterns match.
    pub name: &'static str,
    /// `investigation.*`, …: the wildcard that covers it.
    pub group: &'static str,
    /// One sentence for the catalog endpoint and the console.
    pub description: &'static str,
    /// Whether events of this type usually carry a `severity` (and so `min_severity` matters).
    pub has_severity: bool,
    /// The JSON Schema (2020-12) of `data`.
    pub schema: fn() -> Value,
    /// A `data` that validates against `schema`; the `/test` event sends it.
    pub example: fn() -> Value,
    /// The headline of the summary line from `data`; `None` when `data` lacks the fields.
    pub headline: fn(&Value) -> Option<String>,
}

impl EventTypeInfo {
    /// Operational types (`webhook.*`) are matched only when named or by `webhook.*`.
    pub fn is_operational(&self) -> bool {
        self.group == OPERATIONAL_GROUP
    }

    /// The catalog entry as `GET /v1/webhooks/event-types` shows it.
    pub fn view(&self) -> Value {
        json!({
            "name": self.name,
            "group": self.group,
            "description": self.description,
            "has_severity": self.has_severity,
            "schema": (self.schema)(),
            "example": (self.example)(),
        })
    }
}

/// Every event type, platform types first, then the operational `webhook.*` types.
pub const CATALOG: &[EventTypeInfo] = &[
    EventTypeInfo {
        name: "investigation.queued",
        group: "investigation.*",
        description: "An investigation was created (by the API or an inbound receiver) and waits for an agent.",
        has_severity: true,
        schema: || investigation_schema(&["investigation_id", "status"], json!({
            "provider": {"type": ["string", "null"], "description": "inbound provider that triggered it: generic, github or crowdstrike"},
            "endpoint_id": {"type": ["string", "null"]},
            "trigger": {"type": ["string", "null"], "description": "e.g. github:code_scanning_alert"},
            "summary": {"type": ["string", "null"]},
            "scope": {"type": ["object", "null"]},
            "depth": {"enum": ["quick", "standard", "deep", null]},
            "agent_ids": {"type": "array", "items": {"type": "string"}},
            "created_at": {"type": "string", "format": "date-time"}
        })),
        example: || json!({
            "investigation_id": "inv_01jtq8p5f7z9n1q4r6t8v0w2xc",
            "status": "queued",
            "provider": "github",
            "endpoint_id": "ep_01jtq8p5f7z9n1q4r6t8v0w2xd",
            "trigger": "github:code_scanning_alert",
            "query": "Investigate code scanning alert #42 in acme/api: SQL injection",
            "summary": "GitHub code scanning alert #42 in acme/api: SQL injection (high)",
            "scope": {"repos": ["acme/api"]},
            "depth": "standard",
            "agent_ids": [],
            "created_at": "2026-05-03T14:22:01.123Z"
        }),
        headline: |d| text_of(d, "summary").or_else(|| text_of(d, "query")),
    },
    EventTypeInfo {
        name: "investigation.started",
        group: "investigation.*",
        description: "An agent picked the investigation up and started working on it.",
        has_severity: false,
        schema: || investigation_schema(&["investigation_id", "status"], json!({
            "agent_ids": {"type": "array", "items": {"type": "string"}},
            "started_at": {"type": "string", "format": "date-time"}
        })),
        example: || json!({
            "investigation_id": "inv_01jtq8p5f7z9n1q4r6t8v0w2xc",
            "status": "running",
            "query": "Investigate code scanning alert #42 in acme/api: SQL injection",
            "agent_ids": ["agent_01hx4k2m9q"],
            "started_at": "2026-05-03T14:22:09.500Z"
        }),
        headline: |d| text_of(d, "query"),
    },
    EventTypeInfo {
        name: "investigation.completed",
        group: "investigation.*",
        description: "The investigation finished; `summary` is its conclusion and `findings_count` what it found.",
        has_severity: true,
        schema: || investigation_schema(&["investigation_id", "status"], json!({
            "summary": {"type": "string"},
            "findings_count": {"type": "integer", "minimum": 0},
            "completed_at": {"type": "string", "format": "date-time"}
        })),
        example: || json!({
            "investigation_id": "inv_01jtq8p5f7z9n1q4r6t8v0w2xc",
            "status": "completed",
            "query": "Investigate code scanning alert #42 in acme/api: SQL injection",
            "summary": "Confirmed: the login handler builds SQL from user input; 2 findings",
            "findings_count": 2,
            "completed_at": "2026-05-03T14:31:44.020Z"
        }),
        headline: |d| text_of(d, "summary").or_else(|| text_of(d, "query")),
    },
    EventTypeInfo {
        name: "investigation.failed",
        group: "investigation.*",
        description: "The investigation stopped without a conclusion; `error` says why.",
        has_severity: false,
        schema: || investigation_schema(&["investigation_id", "status"], json!({
            "error": {"type": "string"},
            "failed_at": {"type": "string", "format": "date-time"}
        })),
        example: || json!({
            "investigation_id": "inv_01jtq8p5f7z9n1q4r6t8v0w2xc",
            "status": "failed",
            "query": "Investigate code scanning alert #42 in acme/api: SQL injection",
            "error": "no agent with access to acme/api connected within 1 hour",
            "failed_at": "2026-05-03T15:22:01.000Z"
        }),
        headline: |d| text_of(d, "error").or_else(|| text_of(d, "query")),
    },
    EventTypeInfo {
        name: "finding.discovered",
        group: "finding.*",
        description: "An investigation found something: a vulnerability, a misconfiguration or a sign of compromise.",
        has_severity: true,
        schema: || object_schema(&["finding_id", "title"], json!({
            "finding_id": {"type": "string"},
            "investigation_id": {"type": "string"},
            "title": {"type": "string"},
            "severity": severity_schema(),
            "host": {"type": "string"},
            "description": {"type": "string"},
            "discovered_at": {"type": "string", "format": "date-time"}
        })),
        example: || json!({
            "finding_id": "fnd_01jtq9a1b2c3d4e5f6g7h8j9k0",
            "investigation_id": "inv_01jtq8p5f7z9n1q4r6t8v0w2xc",
            "title": "SQL injection in POST /login",
            "severity": "critical",
            "host": "api.acme.example",
            "description": "The username parameter is concatenated into a SQL query.",
            "discovered_at": "2026-05-03T14:29:10.000Z"
        }),
        headline: |d| {
            let title = text_of(d, "title")?;
            Some(match text_of(d, "host") {
                Some(host) => format!("{title} on {host}"),
                None => title,
            })
        },
    },
    EventTypeInfo {
        name: "chain.confirmed",
        group: "chain.*",
        description: "Several findings were confirmed to chain into one exploitable attack path.",
        has_severity: true,
        schema: || object_schema(&["chain_id", "title"], json!({
            "chain_id": {"type": "string"},
            "investigation_id": {"type": "string"},
            "title": {"type": "string"},
            "severity": severity_schema(),
            "finding_ids": {"type": "array", "items": {"type": "string"}},
            "confirmed_at": {"type": "string", "format": "date-time"}
        })),
        example: || json!({
            "chain_id": "chn_01jtqa7x8y9z0a1b2c3d4e5f6g",
            "investigation_id": "inv_01jtq8p5f7z9n1q4r6t8v0w2xc",
            "title": "SQL injection to database credential theft",
            "severity": "critical",
            "finding_ids": ["fnd_01jtq9a1b2c3d4e5f6g7h8j9k0", "fnd_01jtq9a1b2c3d4e5f6g7h8j9k1"],
            "confirmed_at": "2026-05-03T14:30:02.000Z"
        }),
        headline: |d| {
            let title = text_of(d, "title")?;
            Some(match d.get("finding_ids").and_then(Value::as_array) {
                Some(ids) => format!("{title} ({} findings)", ids.len()),
                None => title,
            })
        },
    },
    EventTypeInfo {
        name: "agent.registered",
        group: "agent.*",
        description: "An agent joined the fleet.",
        has_severity: false,
        schema: || agent_schema(json!({
            "version": {"type": "string"},
            "registered_at": {"type": "string", "format": "date-time"}
        })),
        example: || json!({
            "agent_id": "agent_01hx4k2m9q",
            "hostname": "build-runner-7",
            "version": "1.14.2",
            "registered_at": "2026-05-03T09:00:00.000Z"
        }),
        headline: |d| agent_headline(d, "joined the fleet"),
    },
    EventTypeInfo {
        name: "agent.disconnected",
        group: "agent.*",
        description: "An agent dropped off the fleet (stopped heartbeating or was shut down).",
        has_severity: false,
        schema: || agent_schema(json!({
            "reason": {"type": "string"},
            "last_seen_at": {"type": "string", "format": "date-time"}
        })),
        example: || json!({
            "agent_id": "agent_01hx4k2m9q",
            "hostname": "build-runner-7",
            "reason": "heartbeat timeout",
            "last_seen_at": "2026-05-03T16:40:12.000Z"
        }),
        headline: |d| agent_headline(d, "dropped off the fleet"),
    },
    EventTypeInfo {
        name: "webhook.delivery.dead_lettered",
        group: OPERATIONAL_GROUP,
        description: "A delivery of one of your subscriptions ran out of retries (status failed_permanent).",
        has_severity: false,
        schema: || object_schema(&["delivery_id", "subscription_id", "event_id", "event_type", "attempt_count"], json!({
            "delivery_id": {"type": "string"},
            "subscription_id": {"type": "string"},
            "event_id": {"type": "string"},
            "event_type": {"type": "string"},
            "attempt_count": {"type": "integer", "minimum": 0},
            "last_response_status": {"type": ["integer", "null"]},
            "last_error": {"type": ["string", "null"]}
        })),
        example: || json!({
            "delivery_id": "dlv_01jtqb3c4d5e6f7g8h9j0k1m2n",
            "subscription_id": "sub_01jtq7m8n9p0q1r2s3t4v5w6x7",
            "event_id": "018f2e3a-1c47-7a12-b321-aabbccddeeff",
            "event_type": "finding.discovered",
            "attempt_count": 15,
            "last_response_status": 503,
            "last_error": "HTTP 503"
        }),
        headline: |d| {
            let delivery = text_of(d, "delivery_id")?;
            let sub = text_of(d, "subscription_id")?;
            Some(format!("delivery {delivery} to {sub} was dead-lettered"))
        },
    },
    EventTypeInfo {
        name: "webhook.subscription.disabled",
        group: OPERATIONAL_GROUP,
        description: "The service disabled a subscription whose attempts all failed for days; PATCH {\"active\": true} re-enables it.",
        has_severity: false,
        schema: || object_schema(&["subscription_id", "url", "reason"], json!({
            "subscription_id": {"type": "string"},
            "url": {"type": "string", "format": "uri"},
            "reason": {"const": "failing"},
            "failing_since": {"type": "string", "format": "date-time"}
        })),
        example: || json!({
            "subscription_id": "sub_01jtq7m8n9p0q1r2s3t4v5w6x7",
            "url": "https://hooks.acme.example/puck",
            "reason": "failing",
            "failing_since": "2026-04-28T14:22:01.000Z"
        }),
        headline: |d| {
            let sub = text_of(d, "subscription_id")?;
            Some(match text_of(d, "url") {
                Some(url) => format!("subscription {sub} ({url}) was disabled"),
                None => format!("subscription {sub} was disabled"),
            })
        },
    },
    EventTypeInfo {
        name: "webhook.subscription.failing",
        group: OPERATIONAL_GROUP,
        description: "A subscription whose last attempt had succeeded (or that had none) failed 4 attempts in a row; sent once per failing run.",
        has_severity: false,
        schema: || object_schema(&["subscription_id", "url", "failing_since", "consecutive_failures"], json!({
            "subscription_id": {"type": "string"},
            "url": {"type": "string", "format": "uri"},
            "failing_since": {"type": "string", "format": "date-time", "description": "when the first failed attempt of the run ended"},
            "consecutive_failures": {"type": "integer", "minimum": 1},
            "last_response_status": {"type": ["integer", "null"], "description": "null when no response arrived"},
            "last_error": {"type": ["string", "null"]}
        })),
        example: || json!({
            "subscription_id": "sub_01jtq7m8n9p0q1r2s3t4v5w6x7",
            "url": "https://hooks.acme.example/puck",
            "failing_since": "2026-05-03T14:22:01.000Z",
            "consecutive_failures": 4,
            "last_response_status": 503,
            "last_error": "HTTP 503"
        }),
        headline: |d| {
            let sub = text_of(d, "subscription_id")?;
            let times = d.get("consecutive_failures").and_then(Value::as_u64)?;
            Some(format!("subscription {sub} failed {times} attempts in a row"))
        },
    },
    EventTypeInfo {
        name: "webhook.subscription.recovered",
        group: OPERATIONAL_GROUP,
        description: "The first successful attempt of a subscription after its webhook.subscription.failing event.",
        has_severity: false,
        schema: || object_schema(&["subscription_id", "url", "failing_since", "recovered_at"], json!({
            "subscription_id": {"type": "string"},
            "url": {"type": "string", "format": "uri"},
            "failing_since": {"type": "string", "format": "date-time"},
            "recovered_at": {"type": "string", "format": "date-time", "description": "when the successful attempt ended"}
        })),
        example: || json!({
            "subscription_id": "sub_01jtq7m8n9p0q1r2s3t4v5w6x7",
            "url": "https://hooks.acme.example/puck",
            "failing_since": "2026-05-03T14:22:01.000Z",
            "recovered_at": "2026-05-03T15:02:44.310Z"
        }),
        headline: |d| {
            let sub = text_of(d, "subscription_id")?;
            Some(format!("subscription {sub} recovered"))
        },
    },
];

/// The catalog entry of `name`.
pub fn find(name: &str) -> Option<&'static EventTypeInfo> {
    CATALOG.iter().find(|t| t.name == name)
}

/// The groups, in catalog order, each once.
pub fn groups() -> Vec<&'static str> {
    let mut groups: Vec<&'static str> = Vec::new();
    for t in CATALOG {
        if !groups.contains(&t.group) {
            groups.push(t.group);
        }
    }
    groups
}

/// The body of `GET /v1/webhooks/event-types`.
pub fn view() -> Value {
    json!({
        "event_types": CATALOG.iter().map(EventTypeInfo::view).collect::<Vec<_>>(),
        "groups": groups(),
    })
}

/// The one-line summary of an event for chat formats (docs/receiving.md, "Formats"), e.g.
/// `finding.discovered (critical): SQL injection in POST /login on api.acme.example`. The severity
/// is the event's, else a `severity` string in `data`; data of an unknown shape falls back to the
/// event type and id.
pub fn summary_line(event_type: &str, event_id: &str, severity: Option<Severity>, data: &Value) -> String {
    let severity = severity.map(severity_name).map(str::to_owned).or_else(|| text_of(data, "severity"));
    let head = match severity {
        Some(s) => format!("{event_type} ({s})"),
        None => event_type.to_owned(),
    };
    match find(event_type).and_then(|t| (t.headline)(data)) {
        Some(line) => format!("{head}: {line}"),
        None => format!("{head}: event {event_id}"),
    }
}

/// The lowercase wire name of a severity (`low` … `critical`), as in payloads and summary lines.
pub fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Low => "low",
        Severity::Medium => "medium",
        Severity::High => "high",
        Severity::Critical => "critical",
    }
}

/// A non-empty string field of `data`, on one line.
fn text_of(data: &Value, field: &str) -> Option<String> {
    let s = data.get(field)?.as_str()?.trim();
    (!s.is_empty()).then(|| s.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn agent_headline(data: &Value, what: &str) -> Option<String> {
    let agent = text_of(data, "agent_id")?;
    Some(match text_of(data, "hostname") {
        Some(host) => format!("agent {agent} on {host} {what}"),
        None => format!("agent {agent} {what}"),
    })
}

fn severity_schema() -> Value {
    json!({"enum": ["low", "medium", "high", "critical"]})
}

/// An object schema; extra fields are allowed, as producers add fields over time.
fn object_schema(required: &[&str], properties: Value) -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": required,
        "properties": properties,
        "additionalProperties": true,
    })
}

/// The fields every `investigation.*` data shares, plus `extra`.
fn investigation_schema(required: &[&str], extra: Value) -> Value {
    let mut properties = json!({
        "investigation_id": {"type": "string", "pattern": "^inv_"},
        "status": {"enum": ["queued", "running", "completed", "failed"]},
        "query": {"type": "string"},
    });
    if let (Some(p), Value::Object(extra)) = (properties.as_object_mut(), extra) {
        p.extend(extra);
    }
    object_schema(required, properties)
}

fn agent_schema(extra: Value) -> Value {
    let mut properties = json!({"agent_id": {"type": "string"}, "hostname": {"type": "string"}});
    if let (Some(p), Value::Object(extra)) = (properties.as_object_mut(), extra) {
        p.extend(extra);
    }
    object_schema(&["agent_id"], properties)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_each_group_covers_its_types() {
        for (i, t) in CATALOG.iter().enumerate() {
            assert!(CATALOG[i + 1..].iter().all(|u| u.name != t.name), "{} twice", t.name);
            let prefix = t.group.strip_suffix(".*").unwrap();
            assert!(t.name.starts_with(&format!("{prefix}.")), "{} not in {}", t.name, t.group);
        }
        assert_eq!(groups(), ["investigation.*", "finding.*", "chain.*", "agent.*", "webhook.*"]);
        assert!(find("webhook.delivery.dead_lettered").unwrap().is_operational());
        assert!(!find("finding.discovered").unwrap().is_operational());
    }

    #[test]
    fn every_example_has_its_schema_required_fields_and_a_headline() {
        for t in CATALOG {
            let (schema, example) = ((t.schema)(), (t.example)());
            for field in schema["required"].as_array().unwrap() {
                assert!(example.get(field.as_str().unwrap()).is_some(), "{}: {field}", t.name);
            }
            assert!((t.headline)(&example).is_some(), "{}", t.name);
        }
    }

    #[test]
    fn summary_lines_follow_the_catalog_and_fall_back_to_type_and_id() {
        let finding = (find("finding.discovered").unwrap().example)();
        assert_eq!(
            summary_line("finding.discovered", "e1", None, &finding),
            "finding.discovered (critical): SQL injection in POST /login on api.acme.example"
        );
        assert_eq!(
            summary_line("finding.discovered", "e1", Some(Severity::Low), &finding),
            "finding.discovered (low): SQL injection in POST /login on api.acme.example"
        );
        assert_eq!(summary_line("finding.discovered", "e1", None, &json!({"x": 1})), "finding.discovered: event e1");
        assert_eq!(
            summary_line("agent.registered", "e2", None, &json!({"agent_id": "a\n b"})),
            "agent.registered: agent a b joined the fleet"
        );
    }
}
