// Deliveries: the log (filters, paging, live refresh while deliveries are in flight), shared by
// the subscription page and the dead-letter view, and the delivery page (payload, every attempt,
// Replay) in the shape of GitHub's "Recent deliveries".

import { getDelivery, listDeliveries, replay } from "./api.js";
import { loadCatalog } from "./catalog.js";
import { field, h, headerTable, pretty, replace, statusBadge, when } from "./dom.js";

const IN_FLIGHT = new Set(["pending", "failed"]);
const REFRESH_MS = 2000;
const STATUSES = ["", "pending", "succeeded", "failed", "failed_permanent", "abandoned"];

/** `datetime-local` value (local time) → RFC 3339 UTC, or undefined. */
const rfc3339 = (local) => (local ? new Date(local).toISOString() : undefined);

/**
 * The delivery log: `{element, stop}`. `subscriptionId` narrows it to one subscription, `status`
 * fixes the status filter (the dead-letter view). Filters the API applies are applied again here,
 * so an API that does not know one yet still shows what was asked.
 */
export function deliveryLog({
  subscriptionId,
  status: fixedStatus,
  showSubscription = false,
  ctx,
  pageSize = 20,
  onUpdate = () => {},
}) {
  const statusSel = h(
    "select",
    { id: "log-status" },
    STATUSES.map((st) => h("option", { value: st }, st ? st.replace("_", " ") : "Any status"))
  );
  const typeSel = h("select", { id: "log-event-type" }, h("option", { value: "" }, "Any event type"));
  const since = h("input", { type: "datetime-local", id: "log-since", step: "1" });
  const until = h("input", { type: "datetime-local", id: "log-until", step: "1" });
  loadCatalog().then(
    (c) => typeSel.append(...c.event_types.map((t) => h("option", { value: t.name }, t.name))),
    () => {}
  );
  const filters = h(
    "form",
    { class: "filters", id: "log-filters" },
    fixedStatus ? null : field("Status", statusSel),
    field("Event type", typeSel),
    field("From", since),
    field("Until", until),
    h("div", { class: "field" }, h("button", { type: "submit", class: "btn" }, "Apply filters"))
  );
  const tbody = h("tbody", {});
  const info = h("p", { class: "muted", role: "status", "aria-live": "polite" });
  const more = h("p", { class: "more" });
  const cols = [
    "Status",
    "Event type",
    ...(showSubscription ? ["Subscription"] : []),
    "Created",
    "Attempts",
    "Last response",
  ];
  const table = h(
    "table",
    { class: "list", id: "delivery-log" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        cols.map((c) => h("th", { scope: "col" }, c))
      )
    ),
    tbody
  );
  const element = h(
    "section",
    { class: "card", "aria-labelledby": "log-title" },
    h("h2", { id: "log-title" }, fixedStatus ? "Dead-lettered deliveries" : "Delivery log"),
    filters,
    info,
    table,
    more
  );

  let rows = [];
  let cursor = null;
  let timer = null;
  let stopped = false;

  const params = (c, limit) => ({
    subscription_id: subscriptionId,
    status: fixedStatus || statusSel.value || undefined,
    event_type: typeSel.value || undefined,
    since: rfc3339(since.value),
    until: rfc3339(until.value),
    limit,
    cursor: c,
  });
  const keep = (d) => {
    const p = params();
    if (p.status && d.status !== p.status) return false;
    if (p.event_type && d.event_type !== p.event_type) return false;
    if (p.since && d.created_at < p.since) return false;
    return !(p.until && d.created_at >= p.until);
  };
  const row = (d) =>
    h(
      "tr",
      { "data-id": d.id, "data-status": d.status },
      h(
        "td",
        { "data-label": "Status" },
        h("a", { href: `#/deliveries/${d.id}`, class: "delivery-link" }, statusBadge(d.status))
      ),
      h("td", { "data-label": "Event type" }, h("code", {}, d.event_type)),
      showSubscription
        ? h(
            "td",
            { "data-label": "Subscription" },
            h("a", { href: `#/subscriptions/${d.subscription_id}` }, d.subscription_id)
          )
        : null,
      h("td", { "data-label": "Created" }, when(d.created_at)),
      h(
        "td",
        { "data-label": "Attempts" },
        String(d.attempt_count),
        IN_FLIGHT.has(d.status) && d.next_attempt_at
          ? h("div", { class: "muted" }, "next ", when(d.next_attempt_at))
          : null
      ),
      h(
        "td",
        { "data-label": "Last response" },
        d.last_response_status ? h("code", {}, String(d.last_response_status)) : null,
        d.last_error ? h("div", { class: "error-text" }, d.last_error) : null,
        !d.last_response_status && !d.last_error ? h("span", { class: "muted" }, "—") : null
      )
    );
  const draw = () => {
    replace(tbody, rows.map(row));
    table.hidden = rows.length === 0;
    const flying = rows.filter((d) => IN_FLIGHT.has(d.status)).length;
    info.textContent =
      rows.length === 0
        ? cursor
          ? "None found among the newest deliveries yet; Show older searches further back."
          : "No deliveries match."
        : `${rows.length} deliveries${cursor ? " so far" : ""}${flying ? ` · ${flying} in flight, refreshing` : ""}`;
    replace(
      more,
      cursor
        ? h("button", { type: "button", class: "btn", id: "more-deliveries", onclick: () => load(true) }, "Show older")
        : null
    );
    schedule(flying > 0);
    onUpdate(rows);
  };
  const schedule = (on) => {
    clearTimeout(timer);
    timer = null;
    if (on && !stopped) timer = setTimeout(refresh, REFRESH_MS);
  };
  async function load(older) {
    try {
      const got = await listDeliveries(params(older ? cursor : undefined, pageSize));
      const fresh = got.deliveries.filter(keep);
      rows = older ? rows.concat(fresh) : fresh;
      cursor = got.next_cursor;
      draw();
    } catch (err) {
      if (err.status !== 401) ctx.showError(err, element, () => load(older));
    }
  }
  /** Re-reads the newest rows (as many as are shown) so in-flight statuses move without a reload. */
  async function refresh() {
    if (stopped) return;
    try {
      const got = await listDeliveries(params(undefined, Math.min(100, Math.max(pageSize, rows.length))));
      rows = got.deliveries.filter(keep);
      cursor = got.next_cursor;
      draw();
    } catch (err) {
      if (err.status === 401) return;
      info.textContent = `Refresh failed (${err.message}); retrying.`;
      schedule(true);
    }
  }
  filters.addEventListener("submit", (e) => {
    e.preventDefault();
    cursor = null;
    load(false);
  });
  load(false);
  return {
    element,
    refresh,
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

function attemptView(a) {
  const ok = a.response_status >= 200 && a.response_status < 300;
  return h(
    "article",
    { class: "attempt card", "data-number": a.number },
    h(
      "h3",
      {},
      `Attempt ${a.number}`,
      " ",
      h(
        "span",
        { class: `badge ${ok ? "status-succeeded" : "status-failed_permanent"}` },
        a.response_status ? `HTTP ${a.response_status}` : "no response"
      )
    ),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Started"),
      h("dd", {}, when(a.started_at)),
      h("dt", {}, "Duration"),
      h("dd", {}, `${a.duration_ms} ms`),
      h("dt", {}, "URL"),
      h("dd", {}, a.url ? h("code", { class: "url" }, a.url) : h("span", { class: "muted" }, "not recorded")),
      a.error ? [h("dt", {}, "Error"), h("dd", { class: "error-text" }, a.error)] : null
    ),
    headerTable(a.request_headers, "Request headers"),
    headerTable(a.response_headers, "Response headers"),
    h("h4", {}, "Response body"),
    a.response_body ? h("pre", { class: "body response-body" }, a.response_body) : h("p", { class: "muted" }, "empty")
  );
}

export async function render(main, { id }, ctx) {
  document.title = "Delivery · Puck webhooks";
  let timer = null;
  let stopped = false;
  const result = h("div", { role: "status", class: "inline-result", id: "replay-result" });
  const draw = async () => {
    let d;
    try {
      d = await getDelivery(id);
    } catch (err) {
      if (err.status === 401) return;
      replace(main, h("h1", {}, "Delivery"));
      return ctx.showError(err, main, draw);
    }
    if (stopped) return;
    const replayButton = h("button", { type: "button", class: "btn primary", id: "replay" }, "Replay");
    replayButton.addEventListener("click", async () => {
      replayButton.disabled = true;
      try {
        const r = await replay(id);
        replace(
          result,
          "Replay queued: ",
          statusBadge(r.status),
          ". The same event id is sent again, with a new signature."
        );
        setTimeout(draw, REFRESH_MS);
      } catch (err) {
        if (err.status !== 401) replace(result, h("span", { class: "error-text" }, err.message));
      } finally {
        replayButton.disabled = false;
      }
    });
    const attempts = [...(d.attempts || [])].sort((a, b) => b.number - a.number);
    replace(
      main,
      h(
        "p",
        { class: "crumbs" },
        h("a", { href: "#/" }, "Webhooks"),
        " › ",
        h("a", { href: `#/subscriptions/${d.subscription_id}` }, d.subscription_id),
        " › delivery"
      ),
      h(
        "div",
        { class: "title-row" },
        h("h1", {}, h("code", {}, d.event_type), " ", statusBadge(d.status)),
        h("div", { class: "actions" }, replayButton)
      ),
      result,
      h(
        "dl",
        { class: "facts card" },
        h("dt", {}, "Delivery"),
        h("dd", {}, h("code", {}, d.id)),
        h("dt", {}, "Event id"),
        h("dd", {}, h("code", {}, d.event_id)),
        h("dt", {}, "Created"),
        h("dd", {}, when(d.created_at)),
        h("dt", {}, "Updated"),
        h("dd", {}, when(d.updated_at)),
        h("dt", {}, "Attempts"),
        h("dd", {}, String(d.attempt_count)),
        IN_FLIGHT.has(d.status) ? [h("dt", {}, "Next attempt"), h("dd", {}, when(d.next_attempt_at))] : null,
        d.last_error ? [h("dt", {}, "Last error"), h("dd", { class: "error-text" }, d.last_error)] : null
      ),
      h(
        "section",
        { class: "card" },
        h("h2", {}, "Payload"),
        typeof d.payload === "string"
          ? h("pre", { class: "body", id: "payload" }, pretty(d.payload))
          : h("p", { class: "muted" }, "This API does not return the payload yet.")
      ),
      h(
        "section",
        { "aria-labelledby": "attempts-title" },
        h("h2", { id: "attempts-title" }, `Attempts (${attempts.length})`),
        attempts.length ? attempts.map(attemptView) : h("p", { class: "muted" }, "No attempt yet.")
      )
    );
    clearTimeout(timer);
    if (IN_FLIGHT.has(d.status) && !stopped) timer = setTimeout(draw, REFRESH_MS);
  };
  await draw();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
