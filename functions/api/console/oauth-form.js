// The subscription form's optional OAuth 2.0 section: the receiver's token endpoint and client
// credentials. The client secret is never shown back, so changing the settings means entering
// it again; left empty on edit, the current settings stay.

import { field, h } from "./dom.js";

const TYPE = "oauth2_client_credentials";

/** The section for `sub` (null on create): `{ element, value }`, where `value()` is the body's
 * `auth` — an object, `null` to remove it, or `undefined` to leave it as it is. */
export function oauthSection(sub) {
  const current = sub?.auth || null;
  const input = (id, value, extra = {}) =>
    h("input", { type: "text", id, value: value || "", spellcheck: "false", autocomplete: "off", ...extra });
  const tokenUrl = input("auth-token-url", current?.token_url, {
    inputmode: "url",
    placeholder: "https://auth.example.com/oauth/token",
  });
  const clientId = input("auth-client-id", current?.client_id);
  const secret = input("auth-client-secret", "", { type: "password", autocomplete: "new-password" });
  const scope = input("auth-scope", current?.scope);
  const audience = input("auth-audience", current?.audience);
  const remove = h("input", { type: "checkbox", id: "drop-auth" });
  const texts = [tokenUrl, clientId, scope, audience];
  const unchanged = () =>
    current &&
    ["token_url", "client_id", "scope", "audience"].every((k, i) => texts[i].value.trim() === (current[k] || ""));

  const element = h(
    "fieldset",
    { class: "field", id: "oauth" },
    h("legend", {}, "OAuth 2.0 client credentials (optional)"),
    h(
      "p",
      { class: "hint" },
      current
        ? `Current: client ${current.client_id} at ${current.token_url} (secret never shown). To change the ` +
            `settings, ` +
            "enter the client secret again; leave it empty to keep them."
        : "For receivers that want a bearer token from their authorization server: Puck fetches one, keeps it " +
            "until shortly before it expires, and sends it as Authorization: Bearer. " +
            "Not together with an Authorization header."
    ),
    h("p", { class: "field-error", id: "auth-error", "data-field": "auth", "data-for": "auth-token-url" }),
    field("Token URL", tokenUrl, {
      field: "auth.token_url",
      hint: "HTTPS; the same address rules as the endpoint URL.",
    }),
    field("Client id", clientId, { field: "auth.client_id" }),
    field("Client secret", secret, { field: "auth.client_secret", hint: "Stored encrypted and never shown again." }),
    field("Scope (optional)", scope, { field: "auth.scope" }),
    field("Audience (optional)", audience, { field: "auth.audience" }),
    current ? h("div", { class: "check" }, remove, h("label", { for: "drop-auth" }, "Remove OAuth")) : null
  );

  const value = () => {
    if (remove.checked) return null;
    if (!secret.value && (unchanged() || (!current && texts.every((t) => !t.value.trim())))) return undefined;
    const auth = { type: TYPE, token_url: tokenUrl.value.trim(), client_id: clientId.value.trim() };
    // Left out when empty, so the API's answer names it: "auth.client_secret: is required".
    if (secret.value) auth.client_secret = secret.value;
    if (scope.value.trim()) auth.scope = scope.value.trim();
    if (audience.value.trim()) auth.audience = audience.value.trim();
    return auth;
  };
  return { element, value };
}
