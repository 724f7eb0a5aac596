// Add subscription and edit subscription: one question per field, each with a label, the API's
// error next to the field it names. On create the new secret is handed to the subscription page,
// which shows it once.

import { createSubscription, getSubscription, updateSubscription } from "./api.js";
import { loadCatalog } from "./catalog.js";
import { clearErrors, field, h, replace, showFieldError } from "./dom.js";
import { oauthSection } from "./oauth-form.js";
import { fifoField, rateLimitField } from "./flow.js";
import { holdSecret } from "./subscription.js";
import { targetChooser } from "./destination-field.js";

const SEVERITIES = ["", "low", "medium", "high", "critical"];
const SCHEMES = [
  ["hmac-sha256", "HMAC-SHA256 with a shared secret (default)"],
  ["ed25519", "Ed25519: your endpoint holds only a public key"],
];
const SCHEME_HINT =
  "Ed25519: deliveries are verified with the public key shown on the subscription's page; " +
  "there is no shared secret. Cannot be changed later.";
const FORMATS = [
  ["raw", "Raw JSON envelope (signed; verify with any Standard Webhooks library)"],
  ["slack", "Slack incoming webhook message"],
  ["ms_teams", "Microsoft Teams message (Adaptive Card)"],
];

/** A list of key/value rows with Add and Remove buttons (tags, custom headers). */
function pairsEditor(id, { keyLabel, valueLabel, addText, secretValues = false }, initial = {}) {
  const rows = h("div", { class: "pairs", id });
  let n = 0;
  const add = (k = "", v = "") => {
    const i = n++;
    const key = h("input", { type: "text", id: `${id}-k${i}`, value: k, class: "pair-key", spellcheck: "false" });
    const value = h("input", {
      type: secretValues ? "password" : "text",
      id: `${id}-v${i}`,
      value: v,
      class: "pair-value",
      spellcheck: "false",
      autocomplete: "off",
    });
    const remove = h("button", { type: "button", class: "btn small" }, "Remove");
    const row = h(
      "div",
      { class: "pair" },
      h("label", { for: key.id, class: "sr-only" }, `${keyLabel} ${i + 1}`),
      key,
      h("label", { for: value.id, class: "sr-only" }, `${valueLabel} ${i + 1}`),
      value,
      remove
    );
    remove.setAttribute("aria-label", `Remove ${keyLabel.toLowerCase()} ${i + 1}`);
    remove.addEventListener("click", () => {
      row.remove();
      addButton.focus();
    });
    key.setAttribute("placeholder", keyLabel);
    value.setAttribute("placeholder", valueLabel);
    rows.append(row);
    return key;
  };
  const addButton = h("button", { type: "button", class: "btn small", id: `${id}-add` }, addText);
  addButton.addEventListener("click", () => add().focus());
  for (const [k, v] of Object.entries(initial)) add(k, v);
  const values = () => {
    const out = {};
    for (const row of rows.querySelectorAll(".pair")) {
      const k = row.querySelector(".pair-key").value.trim();
      if (k) out[k] = row.querySelector(".pair-value").value;
    }
    return out;
  };
  return { element: h("div", {}, rows, addButton), values, first: () => rows.querySelector("input") };
}

/** The event-type picker: every group wildcard, every type, and "*" (all platform types). */
function eventsPicker(catalog, selected) {
  const box = (value, text, cls) => {
    const id = `ev-${value.replace(/[^\w]/g, "_")}`;
    return h(
      "div",
      { class: `check ${cls || ""}` },
      h("input", { type: "checkbox", id, name: "events", value, checked: selected.has(value) }),
      h("label", { for: id }, h("code", {}, value), text ? ` ${text}` : "")
    );
  };
  const groups = catalog.groups.map((group) =>
    h(
      "fieldset",
      { class: "group" },
      h("legend", {}, group.replace(".*", "")),
      box(group, "every type in the group", "wildcard"),
      catalog.event_types
        .filter((t) => t.group === group)
        .map((t) => box(t.name, t.description ? `— ${t.description}` : ""))
    )
  );
  return h(
    "div",
    { class: "events-picker", id: "events" },
    box("*", "every platform event type (not webhook.*)", "wildcard"),
    h("div", { class: "groups" }, groups)
  );
}

export async function render(main, { id }, ctx) {
  const editing = Boolean(id);
  document.title = `${editing ? "Edit" : "Add"} subscription · Puck webhooks`;
  replace(
    main,
    h("h1", {}, editing ? "Edit subscription" : "Add subscription"),
    h("p", { class: "muted", role: "status" }, "Loading…")
  );
  let catalog,
    sub = null;
  try {
    [catalog, sub] = await Promise.all([loadCatalog(), editing ? getSubscription(id) : null]);
  } catch (err) {
    replace(main, h("h1", {}, editing ? "Edit subscription" : "Add subscription"));
    return ctx.showError(err);
  }
  const name = h("input", { type: "text", id: "name", name: "name", value: sub?.name || "", autocomplete: "off" });
  const target = targetChooser(sub);
  const picker = eventsPicker(catalog, new Set(sub?.events || []));
  const severity = h(
    "select",
    { id: "min_severity", name: "min_severity" },
    SEVERITIES.map((sv) =>
      h("option", { value: sv, selected: (sub?.filters?.min_severity || "") === sv }, sv || "Any severity (no filter)")
    )
  );
  const tags = pairsEditor(
    "tags",
    { keyLabel: "Tag", valueLabel: "Value", addText: "Add tag filter" },
    sub?.filters?.tags || {}
  );
  const payload = h(
    "textarea",
    {
      id: "payload",
      name: "payload",
      rows: 6,
      spellcheck: "false",
      class: "code",
      placeholder: '{"asset": {"host": {"$endsWith": ".prod.acme.example"}}, "port": {"$in": [443, 8443]}}',
    },
    sub?.filters?.payload ? JSON.stringify(sub.filters.payload, null, 2) : ""
  );
  const format = h(
    "select",
    { id: "format", name: "format" },
    FORMATS.map(([v, text]) => h("option", { value: v, selected: (sub?.format || "raw") === v }, text))
  );
  const headers = pairsEditor("headers", {
    keyLabel: "Header name",
    valueLabel: "Header value",
    addText: "Add header",
    secretValues: true,
  });
  const existingHeaders = Object.keys(sub?.headers || {});
  const dropHeaders = h("input", { type: "checkbox", id: "drop-headers" });
  // Set at creation only: the edit form does not offer it.
  const scheme = editing
    ? null
    : h(
        "select",
        { id: "signature_scheme", name: "signature_scheme" },
        SCHEMES.map(([v, text]) => h("option", { value: v }, text))
      );
  const oauth = oauthSection(sub);
  const rate = rateLimitField(sub);
  const fifo = fifoField(sub);
  const submit = h(
    "button",
    { type: "submit", class: "btn primary", id: "save" },
    editing ? "Save changes" : "Create subscription"
  );

  const form = h(
    "form",
    { id: "subscription-form", class: "card", novalidate: true },
    field("Name (optional)", name, { hint: "A label for you, e.g. “PagerDuty – prod”." }),
    target.element,
    h(
      "fieldset",
      { class: "field" },
      h("legend", {}, "Event types"),
      h(
        "p",
        { class: "hint" },
        "Pick types, whole groups, or everything. ",
        h("a", { href: "#/event-types" }, "What each type carries")
      ),
      h("p", { class: "field-error", id: "events-error", "data-field": "events", "data-for": "events" }),
      picker
    ),
    h(
      "fieldset",
      { class: "field" },
      h("legend", {}, "Filters (optional)"),
      field("Minimum severity", severity, {
        hint: "Events without a severity (e.g. agent.registered) are always delivered.",
        field: "filters.min_severity",
      }),
      h(
        "div",
        { class: "field" },
        h("p", { class: "label", id: "tags-label" }, "Tags"),
        h("p", { class: "hint" }, "Every pair must be present in the event’s tags; events without tags do not pass."),
        h("p", { class: "field-error", id: "tags-error", "data-field": "filters.tags", "data-for": "tags" }),
        tags.element
      ),
      field("Payload filter (JSON)", payload, {
        field: "filters.payload",
        hint:
          'Only events whose data matches, e.g. {"port": {"$in": [443]}}; operators $eq $neq $gt $gte $lt $lte ' +
          "$in $nin $startsWith $endsWith $contains $exist $or $and $not. Leave empty for none.",
      })
    ),
    field("Format", format, { hint: "Slack and Teams formats post readable messages straight into a channel." }),
    scheme ? field("Signature scheme", scheme, { hint: SCHEME_HINT }) : null,
    rate.element,
    fifo.element,
    h(
      "fieldset",
      { class: "field" },
      h("legend", {}, "Custom headers (optional)"),
      h(
        "p",
        { class: "hint" },
        editing && existingHeaders.length
          ? `Current: ${existingHeaders.join(", ")} (values are never shown). Headers entered here replace the ` +
              `whole set; leave empty to keep them.`
          : "Sent on every attempt, e.g. Authorization for a SIEM collector. Values are stored encrypted and never " +
              "shown again."
      ),
      h("p", { class: "field-error", id: "headers-error", "data-field": "headers", "data-for": "headers" }),
      headers.element,
      editing && existingHeaders.length
        ? h("div", { class: "check" }, dropHeaders, h("label", { for: "drop-headers" }, "Remove all custom headers"))
        : null
    ),
    oauth.element,
    h(
      "div",
      { class: "actions" },
      submit,
      h("a", { href: editing ? `#/subscriptions/${id}` : "#/", class: "btn link" }, "Cancel")
    )
  );

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    const events = [...form.querySelectorAll('input[name="events"]:checked')].map((c) => c.value);
    const filters = {};
    if (severity.value) filters.min_severity = severity.value;
    const tagValues = tags.values();
    if (Object.keys(tagValues).length) filters.tags = tagValues;
    if (payload.value.trim()) {
      try {
        filters.payload = JSON.parse(payload.value);
      } catch (err) {
        showFieldError(form, { field: "filters.payload", message: `filters.payload: not valid JSON (${err.message})` });
        return;
      }
    }
    const body = { ...target.body(), events, filters };
    if (name.value.trim() || sub?.name) body.name = name.value.trim() || null;
    // Only fields the user set: an API without custom formats or headers keeps working.
    if (format.value !== (sub?.format || "raw")) body.format = format.value;
    const headerValues = headers.values();
    if (Object.keys(headerValues).length) body.headers = headerValues;
    else if (dropHeaders.checked) body.headers = null;
    if (scheme && scheme.value !== "hmac-sha256") body.signature_scheme = scheme.value;
    const auth = oauth.value();
    if (auth !== undefined) body.auth = auth;
    if (rate.changed()) body.rate_limit_per_second = rate.value();
    if (fifo.changed()) body.fifo = fifo.value();
    submit.disabled = true;
    try {
      if (editing) {
        await updateSubscription(id, body);
        location.hash = `#/subscriptions/${id}`;
      } else {
        const created = await createSubscription(body);
        if (created.secret) holdSecret(created.id, created.secret, "created");
        location.hash = `#/subscriptions/${created.id}`;
      }
    } catch (err) {
      if (err.status !== 401) showFieldError(form, err);
    } finally {
      submit.disabled = false;
    }
  });
  replace(
    main,
    h(
      "p",
      { class: "crumbs" },
      h("a", { href: "#/" }, "Webhooks"),
      editing ? [" › ", h("a", { href: `#/subscriptions/${id}` }, sub.name || sub.id)] : null
    ),
    h("h1", {}, editing ? "Edit subscription" : "Add subscription"),
    catalog.fallback
      ? h(
          "p",
          { class: "panel info" },
          "The event-type catalog is not available from this API; showing the documented types."
        )
      : null,
    form
  );
  (editing ? name : target.first()).focus();
}
