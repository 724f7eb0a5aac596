// Flow control of a subscription in the console: the rate limit in the form and on the page, and
// a notice while deliveries wait on it (pending, no attempt yet, next attempt ahead:
// docs/flow-control.md, "Rate limits"). Kept apart from the form and page so each stays about one thing.

import { field, h, replace, when } from "./dom.js";

/** The rate-limit input of the subscription form; `value()` is what the API is sent. */
export function rateLimitField(sub) {
  const current = sub?.rate_limit_per_second;
  const input = h("input", {
    type: "text",
    id: "rate_limit_per_second",
    name: "rate_limit_per_second",
    inputmode: "numeric",
    value: current == null ? "" : String(current),
    autocomplete: "off",
    placeholder: "No limit",
  });
  const hint =
    "At most this many attempts per second (1–10,000); the rest wait their turn without using an attempt. " +
    "A Slack incoming webhook takes about 1. Empty: no limit.";
  const value = () => {
    const raw = input.value.trim();
    if (!raw) return null;
    // Anything but an integer goes as typed, so the API's message names the field.
    return /^\d+$/.test(raw) ? Number(raw) : raw;
  };
  return {
    element: field("Rate limit (attempts per second, optional)", input, { hint }),
    value,
    changed: () => value() !== (current ?? null),
  };
}

/** The FIFO checkbox of the subscription form; `changed()` when it differs from the stored value. */
export function fifoField(sub) {
  const box = h("input", { type: "checkbox", id: "fifo", name: "fifo", checked: Boolean(sub?.fifo) });
  const hint =
    "Deliveries go one at a time, in the order their events were published. A delivery that fails " +
    "holds back the ones behind it until it succeeds or is dead-lettered. Applies to events published after saving.";
  return {
    element: h(
      "div",
      { class: "field" },
      h("div", { class: "check" }, box, h("label", { for: "fifo" }, "Deliver in order (FIFO)")),
      h("p", { class: "hint" }, hint)
    ),
    value: () => box.checked,
    changed: () => box.checked !== Boolean(sub?.fifo),
  };
}

/** The settings rows of the subscription page: rate limit and order. */
export function flowFacts(sub) {
  const rate = sub.rate_limit_per_second;
  return [
    h("dt", {}, "Rate limit"),
    h("dd", { id: "sub-rate-limit" }, rate == null ? "none" : `${rate} per second`),
    h("dt", {}, "Order"),
    h("dd", { id: "sub-fifo" }, sub.fifo ? "FIFO: one at a time, in publish order" : "any (concurrent)"),
  ];
}

/** A notice, updated from the delivery log's rows, while deliveries wait on the rate limit. */
export function waitingNotice(sub) {
  const slot = h("div", { id: "rate-waiting", role: "status", "aria-live": "polite" });
  const update = (rows) => {
    const now = Date.now();
    const waiting =
      sub.rate_limit_per_second == null
        ? []
        : rows.filter((d) => d.status === "pending" && d.next_attempt_at && Date.parse(d.next_attempt_at) > now);
    if (!waiting.length) return replace(slot);
    const last = waiting
      .map((d) => d.next_attempt_at)
      .sort()
      .at(-1);
    replace(
      slot,
      h(
        "p",
        { class: "panel info" },
        `${waiting.length} ${waiting.length === 1 ? "delivery is" : "deliveries are"} waiting on the rate limit ` +
          `(${sub.rate_limit_per_second} per second). Waiting uses no attempt; the last is due `,
        when(last),
        "."
      )
    );
  };
  return { element: slot, update };
}
