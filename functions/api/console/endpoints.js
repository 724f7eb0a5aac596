// Inbound endpoints: the list (provider, key prefix, state), create (the receiver URL, which
// embeds its secret key, shown once) and delete (confirmed).

import { createEndpoint, deleteEndpoint, listEndpoints } from "./api.js";
import { clearErrors, confirmButton, field, h, oneTimeSecret, replace, showFieldError, when } from "./dom.js";

const URL_WARNING =
  "This receiver URL contains its secret key and is shown only now. Paste it into GitHub, CrowdStrike or your " +
  "sender; if it is lost, create a new endpoint and delete this one.";

export async function render(main, _params, ctx) {
  document.title = "Inbound endpoints · Puck webhooks";
  const tbody = h("tbody", {});
  const status = h("p", { class: "muted", role: "status" }, "Loading…");
  const table = h(
    "table",
    { class: "list", id: "endpoints" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Provider", "Key prefix", "Signature check", "Defaults", "Created", ""].map((c) =>
          h("th", { scope: "col" }, c)
        )
      )
    ),
    tbody
  );
  const shown = h("div", { id: "endpoint-url-slot" });

  const provider = h(
    "select",
    { id: "provider", name: "provider" },
    ["generic", "github", "crowdstrike"].map((p) => h("option", { value: p }, p))
  );
  const secret = h("input", {
    type: "password",
    id: "provider_signing_secret",
    autocomplete: "off",
    spellcheck: "false",
  });
  const depth = h(
    "select",
    { id: "default_depth" },
    ["", "quick", "standard", "deep"].map((d) => h("option", { value: d }, d || "No default"))
  );
  const active = h("input", { type: "checkbox", id: "active", checked: true });
  const submit = h("button", { type: "submit", class: "btn primary", id: "create-endpoint" }, "Create endpoint");
  const form = h(
    "form",
    { class: "card", id: "endpoint-form", novalidate: true },
    h("h2", {}, "Create an endpoint"),
    field("Provider", provider, {
      hint: "generic accepts any JSON with a query; github and crowdstrike read their own payloads.",
    }),
    field("Provider signing secret (optional)", secret, {
      hint: "When set, every POST must carry the provider's HMAC signature. Stored encrypted, never shown.",
    }),
    field("Default depth", depth),
    h("div", { class: "check" }, active, h("label", { for: "active" }, "Active (an inactive endpoint answers 401)")),
    h("div", { class: "actions" }, submit)
  );

  const load = async () => {
    let got;
    try {
      got = await listEndpoints();
    } catch (err) {
      status.textContent = "";
      if (err.status !== 401) ctx.showError(err, main, load);
      return;
    }
    replace(
      tbody,
      got.endpoints.map((ep) =>
        h(
          "tr",
          { "data-id": ep.id },
          h(
            "td",
            { "data-label": "Provider" },
            ep.provider,
            ep.active ? null : h("span", { class: "badge state-paused" }, " inactive")
          ),
          h("td", { "data-label": "Key prefix" }, h("code", {}, `${ep.url_key_prefix}…`)),
          h("td", { "data-label": "Signature check" }, ep.signature_verification ? "✓ on" : "off"),
          h("td", { "data-label": "Defaults" }, ep.default_depth || "—"),
          h("td", { "data-label": "Created" }, when(ep.created_at)),
          h(
            "td",
            {},
            confirmButton(
              "Delete",
              "Delete this endpoint? Its URL answers 401 from then on.",
              async () => {
                try {
                  await deleteEndpoint(ep.id);
                  load();
                } catch (err) {
                  if (err.status !== 401) ctx.showError(err, main, load);
                }
              },
              { danger: true }
            )
          )
        )
      )
    );
    table.hidden = got.endpoints.length === 0;
    status.textContent = got.endpoints.length
      ? `${got.endpoints.length} endpoint${got.endpoints.length === 1 ? "" : "s"}`
      : "No inbound endpoints yet.";
  };
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    const body = { provider: provider.value, active: active.checked };
    if (secret.value) body.provider_signing_secret = secret.value;
    if (depth.value) body.default_depth = depth.value;
    submit.disabled = true;
    try {
      const ep = await createEndpoint(body);
      secret.value = "";
      replace(shown, oneTimeSecret("Receiver URL", ep.url, URL_WARNING));
      await load();
    } catch (err) {
      if (err.status !== 401) showFieldError(form, err);
    } finally {
      submit.disabled = false;
    }
  });
  replace(
    main,
    h("h1", {}, "Inbound endpoints"),
    h(
      "p",
      { class: "lead" },
      "Receiver URLs that GitHub, CrowdStrike Falcon or any JSON sender POST to; each verified event starts an " +
        "investigation."
    ),
    shown,
    status,
    table,
    form
  );
  await load();
}
