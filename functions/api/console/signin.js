// Sign-in: the user pastes an API key; it is checked with one read and kept in sessionStorage
// (this tab only, gone when the tab closes or on Sign out).

import { checkKey, session } from "./api.js";
import { h, replace } from "./dom.js";

const KEY_RE = /^pck_(live|test)_[A-Za-z0-9]{32,}$/;

export function render(main, { notice, done }) {
  const input = h("input", {
    id: "api-key",
    name: "api-key",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    "aria-describedby": "api-key-hint api-key-error",
  });
  const error = h("p", { id: "api-key-error", class: "field-error", "data-field": "api_key" });
  const button = h("button", { type: "submit", class: "btn primary" }, "Sign in");
  const form = h(
    "form",
    { id: "sign-in", class: "card narrow", novalidate: true },
    h("h1", {}, "Puck webhooks"),
    notice ? h("p", { class: "panel info", role: "status" }, notice) : null,
    h(
      "div",
      { class: "field" },
      h("label", { for: "api-key" }, "API key"),
      h(
        "p",
        { id: "api-key-hint", class: "hint" },
        "Paste a key with the webhooks:manage scope (pck_live_… or pck_test_…). It stays in this browser tab only."
      ),
      error,
      input
    ),
    button
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const key = input.value.trim();
    error.textContent = "";
    form.classList.remove("has-error");
    const fail = (message) => {
      error.textContent = message;
      form.classList.add("has-error");
      input.focus();
    };
    if (!KEY_RE.test(key))
      return fail("API key must start with pck_live_ or pck_test_ followed by at least 32 letters and digits");
    button.disabled = true;
    try {
      await checkKey(key);
      session.signIn(key);
      done();
    } catch (err) {
      fail(
        err.status === 401
          ? "API key was not accepted: it is unknown or revoked"
          : err.status === 403
            ? "API key lacks the webhooks:manage scope"
            : err.retryable
              ? `${err.message}. Retry in a moment.`
              : err.message
      );
    } finally {
      button.disabled = false;
    }
  });
  replace(main, form);
  input.focus();
}
