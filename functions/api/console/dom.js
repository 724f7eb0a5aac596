// DOM helpers shared by every screen. Data only ever enters the page as text nodes or attribute
// values (textContent / setAttribute); no string is ever parsed as HTML.

const SVG_NS = "http://www.w3.org/2000/svg";

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function setAttrs(el, attrs) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  return el;
}

/** `h("a", {href: "#/x", class: "btn"}, "text", child)`: an element with attributes and children. */
export function h(tag, attrs, ...children) {
  return append(setAttrs(document.createElement(tag), attrs), children);
}

/** An SVG element (for the outcome charts). */
export function s(tag, attrs, ...children) {
  return append(setAttrs(document.createElementNS(SVG_NS, tag), attrs), children);
}

/** Replaces every child of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
const absolute = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
const UNITS = [
  ["year", 31536e6],
  ["month", 2592e6],
  ["day", 864e5],
  ["hour", 36e5],
  ["minute", 6e4],
  ["second", 1e3],
];

/** "3 minutes ago", or "in 2 hours". */
export function ago(date, now = Date.now()) {
  const diff = date.getTime() - now;
  for (const [unit, ms] of UNITS) {
    if (Math.abs(diff) >= ms || unit === "second") return relative.format(Math.round(diff / ms), unit);
  }
  return "";
}

/** A `<time>` showing the relative time and, beside it, the absolute local time (ISO in `datetime`). */
export function when(iso) {
  if (!iso) return h("span", { class: "muted" }, "—");
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return h("span", {}, iso);
  return h(
    "time",
    { datetime: iso, title: iso, class: "when" },
    h("span", { class: "rel" }, ago(date)),
    " ",
    h("span", { class: "abs" }, absolute.format(date))
  );
}

const STATUS_MARK = { succeeded: "✓", failed: "↻", failed_permanent: "✗", pending: "…", abandoned: "⊘" };
const STATUS_WORD = { failed: "failed (retrying)", failed_permanent: "failed permanently" };

/** A delivery status as a coloured badge that also carries the word (colour is never the only cue). */
export function statusBadge(status) {
  if (!status) return h("span", { class: "muted" }, "none yet");
  return h(
    "span",
    { class: `badge status-${status}`, "data-status": status },
    h("span", { "aria-hidden": "true" }, STATUS_MARK[status] || "•"),
    " ",
    STATUS_WORD[status] || status
  );
}

/** Active / paused / disabled (by the service, with its reason). */
export function stateBadge(sub) {
  if (sub.active) return h("span", { class: "badge state-active" }, "● active");
  if (sub.disabled_reason) return h("span", { class: "badge state-disabled" }, `⊘ disabled: ${sub.disabled_reason}`);
  return h("span", { class: "badge state-paused" }, "‖ paused");
}

const HOUR = 36e5;
const OUTCOMES = ["succeeded", "failed", "failed_permanent", "pending", "abandoned"];

/**
 * The last 24 hours of a subscription's deliveries as 24 hourly stacked bars (inline SVG built with
 * DOM calls), plus a one-line text summary for screen readers and for anyone who prefers words.
 */
export function outcomeChart(deliveries, { now = Date.now(), large = false } = {}) {
  const hours = Array.from({ length: 24 }, () => Object.fromEntries(OUTCOMES.map((o) => [o, 0])));
  const totals = Object.fromEntries(OUTCOMES.map((o) => [o, 0]));
  for (const d of deliveries) {
    const age = now - new Date(d.created_at).getTime();
    if (age < 0 || age >= 24 * HOUR) continue;
    const slot = 23 - Math.floor(age / HOUR);
    hours[slot][d.status] = (hours[slot][d.status] || 0) + 1;
    totals[d.status] = (totals[d.status] || 0) + 1;
  }
  const max = Math.max(1, ...hours.map((hr) => OUTCOMES.reduce((n, o) => n + hr[o], 0)));
  const [w, hgt, bar] = large ? [480, 80, 18] : [120, 28, 4];
  const step = w / 24;
  const svg = s("svg", {
    viewBox: `0 0 ${w} ${hgt}`,
    width: w,
    height: hgt,
    class: large ? "chart chart-large" : "chart",
    "aria-hidden": "true",
  });
  svg.append(s("line", { x1: 0, x2: w, y1: hgt - 0.5, y2: hgt - 0.5, class: "axis" }));
  hours.forEach((hr, i) => {
    let y = hgt;
    for (const o of OUTCOMES) {
      if (!hr[o]) continue;
      const height = Math.max(1.5, (hr[o] / max) * (hgt - 2));
      y -= height;
      const rect = s("rect", {
        x: (i * step + (step - bar) / 2).toFixed(1),
        y: y.toFixed(1),
        width: bar,
        height: height.toFixed(1),
        class: `bar-${o}`,
      });
      rect.append(s("title", {}, `${hr[o]} ${o}, ${23 - i}–${24 - i} h ago`));
      svg.append(rect);
    }
  });
  const total = OUTCOMES.reduce((n, o) => n + totals[o], 0);
  const words =
    total === 0
      ? "no deliveries in 24 h"
      : OUTCOMES.filter((o) => totals[o])
          .map((o) => `${totals[o]} ${STATUS_WORD[o] || o}`)
          .join(", ") + " in 24 h";
  const scale = large
    ? h(
        "div",
        { class: "chart-scale", "aria-hidden": "true" },
        h("span", {}, "24 h ago"),
        h("span", {}, "12 h"),
        h("span", {}, "now")
      )
    : null;
  return h("figure", { class: "outcomes", "data-total": total }, svg, scale, h("figcaption", {}, words));
}

/** JSON pretty-printed when it parses, else the text as it is (always shown as text). */
export function pretty(text) {
  if (typeof text !== "string") return JSON.stringify(text, null, 2);
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

/** A two-column table of header names and values (as text). */
export function headerTable(headers, caption) {
  const entries = Object.entries(headers || {});
  if (entries.length === 0) return h("p", { class: "muted" }, `${caption}: none`);
  return h(
    "table",
    { class: "kv" },
    h("caption", {}, caption),
    h(
      "tbody",
      {},
      entries.map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, k), h("td", {}, h("code", {}, v))))
    )
  );
}

/** A read-only value in an input (`attrs`: its id, label) with a Copy button. */
export function copyRow(value, attrs) {
  const input = h("input", { type: "text", readonly: true, value, class: "secret", spellcheck: "false", ...attrs });
  const done = h("span", { class: "copied", role: "status" });
  const copy = h("button", { type: "button", class: "btn" }, "Copy");
  copy.addEventListener("click", async () => {
    input.select();
    try {
      await navigator.clipboard.writeText(value);
      done.textContent = "Copied";
    } catch {
      done.textContent = "Selected: press Ctrl+C to copy";
    }
  });
  return h("div", { class: "copy-row" }, input, copy, done);
}

/** A read-only secret with a Copy button and the plain "shown once" warning. */
export function oneTimeSecret(label, value, warning) {
  return h(
    "section",
    { class: "panel warning", "aria-labelledby": "one-time-label" },
    h("h2", { id: "one-time-label" }, label),
    copyRow(value, { id: "one-time-secret", "aria-describedby": "one-time-warning" }),
    h("p", { id: "one-time-warning" }, h("strong", {}, "Copy it now. "), warning)
  );
}

/** A button that asks "are you sure" in place before it runs `action` (no modal dialogs). */
export function confirmButton(text, question, action, { danger = false } = {}) {
  const wrap = h("span", { class: "confirm" });
  const start = h("button", { type: "button", class: danger ? "btn danger" : "btn" }, text);
  start.addEventListener("click", () => {
    const yes = h("button", { type: "button", class: "btn danger" }, `Yes, ${text.toLowerCase()}`);
    const no = h("button", { type: "button", class: "btn" }, "Cancel");
    no.addEventListener("click", () => {
      replace(wrap, start);
      start.focus();
    });
    yes.addEventListener("click", async () => {
      yes.disabled = true;
      await action();
    });
    replace(wrap, h("span", { role: "alert" }, question), " ", yes, " ", no);
    yes.focus();
  });
  return replace(wrap, start);
}

/** Clears the error summary and every field error of a form. */
export function clearErrors(form) {
  form.querySelector(".error-summary")?.remove();
  for (const el of form.querySelectorAll("[data-field]")) el.textContent = "";
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
}

/**
 * Shows an API error the GOV.UK way: next to the field its message names (`url must use https` →
 * the URL field; `filters.tags.env …` → the tags editor; `events[2] …` → the events picker) and in
 * a summary at the top of the form linking to that field. Returns the summary.
 */
export function showFieldError(form, err) {
  clearErrors(form);
  let slot = null;
  if (err.field) {
    const parts = err.field.replace(/\[\d+\]/g, "").split(".");
    for (let n = parts.length; n > 0 && !slot; n--)
      slot = form.querySelector(`[data-field="${CSS.escape(parts.slice(0, n).join("."))}"]`);
  }
  const control = slot ? document.getElementById(slot.getAttribute("data-for")) : null;
  if (slot) slot.textContent = err.message;
  if (control) control.setAttribute("aria-invalid", "true");
  const retry = err.retryable ? "The service is temporarily unavailable; retry in a moment. " : "";
  const summary = h(
    "div",
    { class: "error-summary", role: "alert", tabindex: "-1" },
    h("h2", {}, "There is a problem"),
    h(
      "p",
      {},
      control
        ? h(
            "a",
            {
              href: `#${control.id}`,
              onclick: (e) => {
                e.preventDefault();
                control.focus();
              },
            },
            err.message
          )
        : `${retry}${err.message}`
    )
  );
  form.prepend(summary);
  summary.focus();
  return summary;
}

/** A labelled form field: label, optional hint, the error slot for `field`, then the control. */
export function field(label, control, { hint, field: name } = {}) {
  const id = control.id;
  const hintId = hint ? `${id}-hint` : null;
  const errorId = `${id}-error`;
  control.setAttribute("aria-describedby", [hintId, errorId].filter(Boolean).join(" "));
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    hint ? h("p", { class: "hint", id: hintId }, hint) : null,
    h("p", { class: "field-error", id: errorId, "data-field": name || id, "data-for": id }),
    control
  );
}
