// The dead-letter view: every delivery that ran out of retries (`failed_permanent`), and Recover,
// which replays a subscription's failed deliveries of a time range in one call per 1,000.

import { listSubscriptions, recover } from "./api.js";
import { deliveryLog } from "./delivery.js";
import { clearErrors, field, h, replace, showFieldError } from "./dom.js";
import { label } from "./subscriptions.js";

const DAY = 864e5;
const localInput = (date) => new Date(date.getTime() - date.getTimezoneOffset() * 6e4).toISOString().slice(0, 16);

export async function render(main, _params, ctx) {
  document.title = "Dead letters · Puck webhooks";
  const subSel = h("select", { id: "recover-subscription" });
  const since = h("input", {
    type: "datetime-local",
    id: "recover-since",
    value: localInput(new Date(Date.now() - DAY)),
  });
  const until = h("input", { type: "datetime-local", id: "recover-until" });
  const status = h(
    "select",
    { id: "recover-status" },
    h("option", { value: "failed_permanent" }, "failed permanently (dead-lettered)"),
    h("option", { value: "failed" }, "failed, still retrying")
  );
  const submit = h("button", { type: "submit", class: "btn primary", id: "recover" }, "Recover");
  const result = h("div", { class: "inline-result", role: "status", id: "recover-result" });
  const form = h(
    "form",
    { class: "card", id: "recover-form", novalidate: true },
    h("h2", {}, "Recover"),
    h(
      "p",
      { class: "hint" },
      "Replays every delivery of one subscription created in the range with the chosen status, after you fixed the " +
        "endpoint. Receivers see the same event ids again."
    ),
    field("Subscription", subSel, { field: "subscription" }),
    h(
      "div",
      { class: "row" },
      field("Created from", since, { field: "since" }),
      field("Until (optional)", until, { field: "until" })
    ),
    field("Status", status, { field: "status" }),
    h("div", { class: "actions" }, submit),
    result
  );

  const run = async (cursor) => {
    clearErrors(form);
    if (!since.value) return showFieldError(form, { field: "since", message: "since is required", status: 400 });
    const body = { since: new Date(since.value).toISOString(), status: status.value };
    if (until.value) body.until = new Date(until.value).toISOString();
    if (cursor) body.cursor = cursor;
    submit.disabled = true;
    try {
      const r = await recover(subSel.value, body);
      replace(
        result,
        `${r.recovered} deliver${r.recovered === 1 ? "y" : "ies"} queued for replay.`,
        r.next_cursor
          ? [
              " More may remain: ",
              h("button", { type: "button", class: "btn", onclick: () => run(r.next_cursor) }, "Continue recovering"),
            ]
          : ""
      );
      log.refresh();
    } catch (err) {
      // The API's $default route answers an unknown route "no route for POST …".
      if (err.status === 404 && err.message.startsWith("no route"))
        replace(result, "Recover is not available on this API version yet.");
      else if (err.status !== 401) showFieldError(form, err);
    } finally {
      submit.disabled = false;
    }
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    run(null);
  });

  const log = deliveryLog({ status: "failed_permanent", showSubscription: true, ctx });
  replace(
    main,
    h("h1", {}, "Dead letters"),
    h(
      "p",
      { class: "lead" },
      "Deliveries that failed every attempt for about three days. Replay one from its page, or recover a whole " +
        "range below."
    ),
    log.element,
    form
  );
  try {
    let cursor = null;
    do {
      const page = await listSubscriptions({ limit: 100, cursor });
      subSel.append(...page.subscriptions.map((s) => h("option", { value: s.id }, `${label(s)} (${s.id})`)));
      cursor = page.next_cursor;
    } while (cursor);
  } catch (err) {
    if (err.status !== 401) ctx.showError(err, form);
  }
  if (!subSel.options.length) {
    submit.disabled = true;
    replace(result, "No subscriptions to recover.");
  }
  return () => log.stop();
}
