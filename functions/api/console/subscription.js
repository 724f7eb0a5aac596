// One subscription: its settings, 24 h outcomes, Edit / Pause / Resume / Delete, Send test event
// (the attempt's result inline), Rotate secret (the new secret shown once) or, for an Ed25519
// subscription, its public key with Rotate key, and its delivery log.

import { deleteSubscription, getSubscription, rotateKey, rotateSecret, sendTest, updateSubscription } from "./api.js";
import { loadCatalog } from "./catalog.js";
import { deliveryLog } from "./delivery.js";
import { confirmButton, copyRow, field, h, oneTimeSecret, outcomeChart, replace } from "./dom.js";
import { stateBadge, statusBadge, when } from "./dom.js";
import { label, last24h } from "./subscriptions.js";
import { flowFacts, waitingNotice } from "./flow.js";
import { targetText } from "./destination-field.js";

// A secret waiting to be shown once: set on create, shown by the next render of that subscription
// and then dropped, so navigating away and back never shows it again.
let held = null;

/** Hands a just-issued secret to the subscription page, which shows it on its next render only. */
export function holdSecret(id, secret, why) {
  held = { id, secret, why };
}

function takeSecret(id) {
  const got = held && held.id === id ? held : null;
  held = null;
  return got;
}

const CREATED_WARNING =
  "This is the only time the signing secret is shown. Store it in your secret manager; your endpoint verifies every " +
  "delivery's signature with it.";
const KEY_ROTATED =
  "New key pair. For the next 24 hours deliveries carry two v1a signatures, one with the new " +
  "key and one with the previous one, so add the new public key to your endpoint, then retire the old one.";
const ROTATED_WARNING =
  "The new secret is shown only now. For the next 24 hours deliveries carry two signatures, one with the new secret " +
  "and one with the previous one, so deploy the new secret to your endpoint, then retire the old one.";

export async function render(main, { id }, ctx) {
  document.title = "Subscription · Puck webhooks";
  const secret = takeSecret(id);
  let sub;
  try {
    sub = await getSubscription(id);
  } catch (err) {
    if (err.status === 401) return;
    replace(main, h("p", { class: "crumbs" }, h("a", { href: "#/" }, "Webhooks")), h("h1", {}, "Subscription"));
    return ctx.showError(err, main, () => ctx.render());
  }
  document.title = `${label(sub)} · Puck webhooks`;
  const notice = h("div", { id: "notice" });
  const secretSlot = h(
    "div",
    { id: "secret-slot" },
    secret ? oneTimeSecret("Signing secret", secret.secret, CREATED_WARNING) : null
  );

  const toggle = h("button", { type: "button", class: "btn", id: "toggle-active" }, sub.active ? "Pause" : "Resume");
  toggle.addEventListener("click", async () => {
    toggle.disabled = true;
    try {
      await updateSubscription(id, { active: !sub.active });
      ctx.render();
    } catch (err) {
      toggle.disabled = false;
      if (err.status !== 401) ctx.showError(err, notice, () => toggle.click());
    }
  });
  const del = confirmButton(
    "Delete",
    "Delete this subscription? Queued deliveries are abandoned and no new ones are made.",
    async () => {
      try {
        await deleteSubscription(id);
        location.hash = "#/";
      } catch (err) {
        if (err.status !== 401) ctx.showError(err, notice);
      }
    },
    { danger: true }
  );

  // Send test event, with the attempt's outcome shown here.
  const catalog = await loadCatalog().catch(() => ({ event_types: [] }));
  const testType = h(
    "select",
    { id: "test-event-type" },
    catalog.event_types.map((t) => h("option", { value: t.name, selected: t.name === "investigation.queued" }, t.name))
  );
  const testResult = h("div", { id: "test-result", class: "inline-result", role: "status", "aria-live": "polite" });
  const testButton = h("button", { type: "submit", class: "btn primary", id: "send-test" }, "Send test event");
  const testForm = h(
    "form",
    { class: "inline-form", id: "test-form" },
    testType.options.length ? field("Event type", testType) : null,
    testButton
  );
  testForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    testButton.disabled = true;
    replace(testResult, "Sending…");
    try {
      const chosen = testType.value && testType.value !== "investigation.queued" ? testType.value : undefined;
      const r = await sendTest(id, chosen);
      const a = r.attempt;
      replace(
        testResult,
        statusBadge(r.status || "pending"),
        " ",
        a
          ? [
              a.response_status ? `HTTP ${a.response_status}` : "no response",
              ` in ${a.duration_ms} ms`,
              a.error ? h("span", { class: "error-text" }, ` — ${a.error}`) : null,
            ]
          : "queued; the attempt will show in the log below",
        " · ",
        h("a", { href: `#/deliveries/${r.delivery_id}`, id: "test-delivery" }, "open delivery")
      );
      log.refresh();
    } catch (err) {
      if (err.status !== 401)
        replace(
          testResult,
          h(
            "span",
            { class: "error-text" },
            err.retryable ? `The service is temporarily unavailable; retry in a moment. ${err.message}` : err.message
          )
        );
    } finally {
      testButton.disabled = false;
    }
  });

  const makeRotate = () =>
    confirmButton(
      "Rotate secret",
      "Issue a new signing secret? The old one keeps signing alongside it for 24 hours.",
      async () => {
        try {
          const r = await rotateSecret(id);
          replace(secretSlot, oneTimeSecret("New signing secret", r.secret, ROTATED_WARNING));
          replace(rotateSlot, makeRotate());
          secretSlot.querySelector("input").focus();
        } catch (err) {
          if (err.status !== 401) ctx.showError(err, notice);
        }
      }
    );
  // Ed25519: the public key (not secret) stays on the page, and Rotate key replaces it.
  const ed25519 = sub.signature_scheme === "ed25519";
  const publicKeyOf = (key) => copyRow(key || "", { id: "public-key", "aria-label": "Public key" });
  const publicKey = h("dd", { id: "public-key-slot" }, publicKeyOf(sub.public_key));
  const rotateKeyQuestion = "Make a new key pair? The old key keeps signing alongside it for 24 hours.";
  const makeRotateKey = () =>
    confirmButton("Rotate key", rotateKeyQuestion, async () => {
      try {
        const r = await rotateKey(id);
        replace(publicKey, publicKeyOf(r.public_key));
        replace(secretSlot, h("p", { class: "panel info", id: "key-rotated", role: "status" }, KEY_ROTATED));
        replace(rotateSlot, makeRotateKey());
      } catch (err) {
        if (err.status !== 401) ctx.showError(err, notice);
      }
    });
  const rotateSlot = h("span", {}, ed25519 ? makeRotateKey() : makeRotate());

  const chart = h("div", { class: "chart-slot" }, h("span", { class: "muted" }, "Loading the last 24 h…"));
  const drawChart = () =>
    last24h(id).then(
      (rows) => replace(chart, outcomeChart(rows, { large: true })),
      () => replace(chart, h("span", { class: "muted" }, "Outcomes unavailable"))
    );
  const lastDeliveryOf = (s) => [
    statusBadge(s.last_delivery_status),
    " ",
    s.last_delivery_at ? when(s.last_delivery_at) : null,
  ];
  const lastDelivery = h("dd", { id: "last-delivery" }, lastDeliveryOf(sub));
  // Best effort: the log and chart already show the outcome if this read fails.
  const refreshLastDelivery = () =>
    getSubscription(id).then(
      (s) => replace(lastDelivery, lastDeliveryOf(s)),
      () => {}
    );
  // The chart and the last delivery follow the log: whenever the log re-reads (a test sent,
  // deliveries in flight).
  const waiting = waitingNotice(sub);
  const onUpdate = (rows) => {
    drawChart();
    refreshLastDelivery();
    waiting.update(rows);
  };
  const log = deliveryLog({ subscriptionId: id, ctx, onUpdate });
  const headerNames = Object.keys(sub.headers || {});

  replace(
    main,
    h("p", { class: "crumbs" }, h("a", { href: "#/" }, "Webhooks"), " › ", label(sub)),
    h(
      "div",
      { class: "title-row" },
      h("h1", { id: "sub-title" }, label(sub), " ", stateBadge(sub)),
      h(
        "div",
        { class: "actions" },
        h("a", { href: `#/subscriptions/${id}/edit`, class: "btn", id: "edit" }, "Edit"),
        toggle,
        del
      )
    ),
    notice,
    sub.disabled_reason
      ? h(
          "p",
          { class: "panel error" },
          `Puck disabled this subscription (${sub.disabled_reason})`,
          sub.disabled_at ? [" ", when(sub.disabled_at)] : null,
          " because every attempt failed for days. Fix the endpoint, then Resume."
        )
      : null,
    secretSlot,
    waiting.element,
    h(
      "div",
      { class: "grid" },
      h(
        "section",
        { class: "card" },
        h("h2", {}, "Settings"),
        h(
          "dl",
          { class: "facts" },
          h("dt", {}, sub.destination ? "Destination" : "URL"),
          h("dd", {}, h("code", { class: "url", id: "sub-url" }, targetText(sub))),
          sub.destination
            ? [h("dt", {}, "Role"), h("dd", {}, h("code", { class: "url", id: "sub-role" }, sub.destination.role_arn))]
            : null,
          h("dt", {}, "Events"),
          h(
            "dd",
            {},
            h(
              "ul",
              { class: "chips" },
              sub.events.map((e) => h("li", {}, h("code", {}, e)))
            )
          ),
          h("dt", {}, "Min severity"),
          h("dd", {}, sub.filters?.min_severity || "any"),
          h("dt", {}, "Tags"),
          h(
            "dd",
            {},
            Object.keys(sub.filters?.tags || {}).length
              ? h(
                  "ul",
                  { class: "chips" },
                  Object.entries(sub.filters.tags).map(([k, v]) => h("li", {}, h("code", {}, `${k}=${v}`)))
                )
              : "none"
          ),
          h("dt", {}, "Payload filter"),
          h(
            "dd",
            {},
            sub.filters?.payload
              ? h("pre", { class: "code", id: "sub-payload" }, JSON.stringify(sub.filters.payload, null, 2))
              : "none"
          ),
          h("dt", {}, "Format"),
          h("dd", {}, sub.format || "raw"),
          h("dt", {}, "Custom headers"),
          h("dd", {}, headerNames.length ? `${headerNames.join(", ")} (values hidden)` : "none"),
          h("dt", {}, "Signature"),
          h("dd", { id: "signature-scheme" }, sub.signature_scheme || "hmac-sha256"),
          ed25519 ? [h("dt", {}, "Public key"), publicKey] : null,
          h("dt", {}, "OAuth 2.0"),
          h(
            "dd",
            { id: "sub-auth" },
            sub.auth
              ? [
                  h("code", {}, sub.auth.client_id),
                  " at ",
                  h("code", { class: "url" }, sub.auth.token_url),
                  sub.auth.scope ? [", scope ", h("code", {}, sub.auth.scope)] : null,
                  `, secret ${sub.auth.client_secret}`,
                ]
              : "none"
          ),
          flowFacts(sub),
          h("dt", {}, "Id"),
          h("dd", {}, h("code", {}, sub.id)),
          h("dt", {}, "Created"),
          h("dd", {}, when(sub.created_at)),
          h("dt", {}, "Updated"),
          h("dd", {}, when(sub.updated_at)),
          h("dt", {}, "Last delivery"),
          lastDelivery
        )
      ),
      h(
        "section",
        { class: "card" },
        h("h2", {}, "Last 24 hours"),
        chart,
        h("h2", {}, ed25519 ? "Test and key" : "Test and secret"),
        h(
          "p",
          { class: "hint" },
          "A test event is sent now, whatever the subscription's event types, filters or state, and recorded in the " +
            "log."
        ),
        testForm,
        testResult,
        h("p", { class: "actions" }, rotateSlot)
      )
    ),
    log.element
  );
  return () => log.stop();
}
