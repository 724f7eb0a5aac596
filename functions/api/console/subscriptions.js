// Settings → Webhooks: the subscriptions list (name, URL, events, state, last delivery, 24 h
// outcomes), paged with the API's cursor.

import { listDeliveries, listSubscriptions } from "./api.js";
import { h, outcomeChart, replace, stateBadge, statusBadge, when } from "./dom.js";
import { targetText } from "./destination-field.js";

const PAGE = 25;
const DAY = 864e5;

/** The deliveries of the last 24 h of one subscription (newest first, at most 500). */
export async function last24h(subscriptionId) {
  const since = new Date(Date.now() - DAY).toISOString();
  const rows = [];
  let cursor = null;
  for (let page = 0; page < 5; page++) {
    const got = await listDeliveries({ subscription_id: subscriptionId, since, limit: 100, cursor });
    const recent = got.deliveries.filter((d) => new Date(d.created_at).getTime() >= Date.now() - DAY);
    rows.push(...recent);
    cursor = got.next_cursor;
    if (!cursor || recent.length < got.deliveries.length) break;
  }
  return rows;
}

/** The subscription's display name: its label, else its URL's host (all text). */
export function label(sub) {
  if (sub.name) return sub.name;
  if (sub.destination) return targetText(sub).split(/[/:]/).pop();
  try {
    return new URL(sub.url).host;
  } catch {
    return sub.id;
  }
}

function row(sub) {
  const chart = h("td", { "data-label": "Last 24 h", class: "chart-cell" }, h("span", { class: "muted" }, "…"));
  last24h(sub.id).then(
    (rows) => replace(chart, outcomeChart(rows)),
    () => replace(chart, h("span", { class: "muted" }, "unavailable"))
  );
  return h(
    "tr",
    { "data-id": sub.id },
    h(
      "td",
      { "data-label": "Subscription" },
      h("a", { href: `#/subscriptions/${sub.id}`, class: "sub-name" }, label(sub)),
      h("div", { class: "url" }, targetText(sub))
    ),
    h(
      "td",
      { "data-label": "Events" },
      h(
        "ul",
        { class: "chips" },
        sub.events.map((e) => h("li", {}, h("code", {}, e)))
      )
    ),
    h("td", { "data-label": "State" }, stateBadge(sub)),
    h(
      "td",
      { "data-label": "Last delivery" },
      statusBadge(sub.last_delivery_status),
      h("div", {}, sub.last_delivery_at ? when(sub.last_delivery_at) : null)
    ),
    chart
  );
}

export async function render(main, _params, ctx) {
  document.title = "Subscriptions · Puck webhooks";
  const tbody = h("tbody", {});
  const more = h("p", { class: "more" });
  const status = h("p", { class: "muted", role: "status" }, "Loading…");
  const table = h(
    "table",
    { class: "list", id: "subscriptions" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Subscription", "Events", "State", "Last delivery", "Last 24 h"].map((c) => h("th", { scope: "col" }, c))
      )
    ),
    tbody
  );
  replace(
    main,
    h(
      "div",
      { class: "title-row" },
      h("h1", {}, "Webhooks"),
      h("a", { href: "#/subscriptions/new", class: "btn primary", id: "add-subscription" }, "Add subscription")
    ),
    h("p", { class: "lead" }, "Subscriptions send signed HTTPS POSTs to your endpoints when platform events happen."),
    status,
    table,
    more
  );

  let shown = 0;
  const load = async (cursor) => {
    let page;
    try {
      page = await listSubscriptions({ limit: PAGE, cursor });
    } catch (err) {
      status.textContent = "";
      return ctx.showError(err, main, () => load(cursor));
    }
    shown += page.subscriptions.length;
    tbody.append(...page.subscriptions.map(row));
    status.textContent =
      shown === 0
        ? "No subscriptions yet. Add one to start receiving events."
        : `${shown} subscription${shown === 1 ? "" : "s"}${page.next_cursor ? " so far" : ""}`;
    table.hidden = shown === 0;
    replace(
      more,
      page.next_cursor
        ? h(
            "button",
            { type: "button", class: "btn", id: "more-subscriptions", onclick: () => load(page.next_cursor) },
            "Show more"
          )
        : null
    );
  };
  await load(null);
}
