// The event-type catalog: the screen listing every type with its schema and example, and the
// cached lookup the subscription form and the log filters pick event types from. An API without
// the catalog route (404) falls back to the event types of the API reference, and says so.

import { eventTypes } from "./api.js";
import { h, pretty, replace } from "./dom.js";

const FALLBACK_TYPES = [
  "investigation.queued",
  "investigation.started",
  "investigation.completed",
  "investigation.failed",
  "finding.discovered",
  "chain.confirmed",
  "agent.registered",
  "agent.disconnected",
];

let cached = null;

/** `{event_types: [{name, group, description, …}], groups: ["investigation.*", …], fallback}`. */
export async function loadCatalog() {
  if (cached) return cached;
  try {
    const got = await eventTypes();
    cached = { event_types: got.event_types || [], groups: got.groups || [], fallback: false };
  } catch (err) {
    if (err.status !== 404) throw err;
    const event_types = FALLBACK_TYPES.map((name) => ({ name, group: `${name.split(".")[0]}.*`, description: "" }));
    cached = { event_types, groups: [...new Set(event_types.map((t) => t.group))], fallback: true };
  }
  return cached;
}

export async function render(main, _params, ctx) {
  document.title = "Event types · Puck webhooks";
  replace(main, h("h1", {}, "Event types"), h("p", { class: "muted", role: "status" }, "Loading…"));
  let catalog;
  try {
    catalog = await loadCatalog();
  } catch (err) {
    replace(main, h("h1", {}, "Event types"));
    return ctx.showError(err);
  }
  const sections = catalog.groups.map((group) => {
    const types = catalog.event_types.filter((t) => t.group === group);
    return h(
      "section",
      { class: "card" },
      h("h2", {}, h("code", {}, group)),
      types.map((t) =>
        h(
          "article",
          { class: "event-type", id: `type-${t.name}` },
          h("h3", {}, h("code", {}, t.name), t.has_severity ? h("span", { class: "badge" }, "has severity") : null),
          t.description ? h("p", {}, t.description) : null,
          t.schema ? h("details", {}, h("summary", {}, "Schema of data"), h("pre", {}, pretty(t.schema))) : null,
          t.example ? h("details", {}, h("summary", {}, "Example data"), h("pre", {}, pretty(t.example))) : null
        )
      )
    );
  });
  replace(
    main,
    h("h1", {}, "Event types"),
    h(
      "p",
      {},
      "Subscribe to a type by name, to a group with its wildcard (e.g. ",
      h("code", {}, "finding.*"),
      "), or to every platform type with ",
      h("code", {}, "*"),
      " (operational ",
      h("code", {}, "webhook.*"),
      " types only when named)."
    ),
    catalog.fallback
      ? h(
          "p",
          { class: "panel info" },
          "This API does not serve the event-type catalog yet; showing the documented types without schemas."
        )
      : null,
    sections
  );
}
