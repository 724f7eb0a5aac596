// Where a subscription delivers: an HTTPS endpoint URL, or an AWS destination (an SQS queue or an
// EventBridge bus, with the role the service assumes). One radio group chooses; only the chosen
// kind's fields show, and the API's error for `url` or `destination.*` lands next to its field.

import { field, h } from "./dom.js";

const KINDS = [
  ["https", "HTTPS endpoint"],
  ["sqs", "Amazon SQS queue"],
  ["eventbridge", "Amazon EventBridge event bus"],
];

/** Returns `{ element, body(), first() }`: `body()` is `{ url }` or `{ destination }`. */
export function targetChooser(sub) {
  const current = sub?.destination?.type || "https";
  const input = (id, value, placeholder) =>
    h("input", {
      type: "text",
      id,
      name: id,
      value: value || "",
      spellcheck: "false",
      autocomplete: "off",
      placeholder,
    });
  const url = input("url", sub?.url, "https://your-server.example/puck/events");
  url.setAttribute("inputmode", "url");
  const d = sub?.destination;
  const queue = input("queue_url", d?.queue_url, "https://sqs.eu-west-1.amazonaws.com/111122223333/puck-alerts");
  const bus = input("event_bus_arn", d?.event_bus_arn, "arn:aws:events:eu-west-1:111122223333:event-bus/soc");
  const role = input("role_arn", d?.role_arn, "arn:aws:iam::111122223333:role/puck-delivery");
  const panels = {
    https: h(
      "div",
      { "data-kind": "https" },
      field("Endpoint URL", url, {
        hint: "Must be HTTPS and reachable from the internet; private and loopback addresses are refused.",
      })
    ),
    sqs: h(
      "div",
      { "data-kind": "sqs" },
      field("Queue URL", queue, {
        field: "destination.queue_url",
        hint: "One message per delivery; the signature headers arrive as message attributes.",
      })
    ),
    eventbridge: h(
      "div",
      { "data-kind": "eventbridge" },
      field("Event bus ARN", bus, {
        field: "destination.event_bus_arn",
        hint: "One event per delivery: source puck.webhooks, detail-type the event type.",
      })
    ),
    role: h(
      "div",
      { "data-kind": "aws" },
      field("Role ARN", role, {
        field: "destination.role_arn",
        hint: "A role in your account that trusts Puck's AWS account, with your Puck account id as sts:ExternalId.",
      })
    ),
  };
  const radios = KINDS.map(([value, text]) =>
    h(
      "div",
      { class: "check" },
      h("input", { type: "radio", id: `kind-${value}`, name: "target-kind", value, checked: value === current }),
      h("label", { for: `kind-${value}` }, text)
    )
  );
  const kind = () => radios.map((r) => r.querySelector("input")).find((r) => r.checked)?.value || "https";
  const show = () => {
    const k = kind();
    panels.https.hidden = k !== "https";
    panels.sqs.hidden = k !== "sqs";
    panels.eventbridge.hidden = k !== "eventbridge";
    panels.role.hidden = k === "https";
  };
  for (const r of radios) r.querySelector("input").addEventListener("change", show);
  show();
  const element = h(
    "fieldset",
    { class: "field", id: "target" },
    h("legend", {}, "Deliver to"),
    h("p", { class: "field-error", id: "destination-error", "data-field": "destination", "data-for": "kind-https" }),
    radios,
    panels.https,
    panels.sqs,
    panels.eventbridge,
    panels.role
  );
  const body = () => {
    const k = kind();
    if (k === "https") return { url: url.value.trim() };
    const destination = { type: k, role_arn: role.value.trim() };
    if (k === "sqs") destination.queue_url = queue.value.trim();
    else destination.event_bus_arn = bus.value.trim();
    return { destination };
  };
  return { element, body, first: () => ({ https: url, sqs: queue, eventbridge: bus })[kind()] };
}

/** The target as one line of text: the URL, or the queue URL / bus ARN with its kind. */
export function targetText(sub) {
  const d = sub.destination;
  if (!d) return sub.url || "";
  return d.type === "sqs" ? `SQS ${d.queue_url}` : `EventBridge ${d.event_bus_arn}`;
}
