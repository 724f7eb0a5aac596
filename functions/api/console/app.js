// The console's entry point: the hash router, the page frame (header, navigation, Sign out) and
// the one place that turns API errors into what the user sees (401 → sign-in, 503 → retry hint).

import { session, setUnauthorizedHandler } from "./api.js";
import { h, replace } from "./dom.js";
import * as signin from "./signin.js";
import * as subscriptions from "./subscriptions.js";
import * as subscriptionForm from "./subscription-form.js";
import * as subscription from "./subscription.js";
import * as delivery from "./delivery.js";
import * as deadLetters from "./dead-letters.js";
import * as endpoints from "./endpoints.js";
import * as catalog from "./catalog.js";

const ROUTES = [
  [/^#\/subscriptions\/new$/, subscriptionForm, () => ({})],
  [/^#\/subscriptions\/([\w-]+)\/edit$/, subscriptionForm, (m) => ({ id: m[1] })],
  [/^#\/subscriptions\/([\w-]+)$/, subscription, (m) => ({ id: m[1] })],
  [/^#\/deliveries\/([\w-]+)$/, delivery, (m) => ({ id: m[1] })],
  [/^#\/dead-letters$/, deadLetters, () => ({})],
  [/^#\/endpoints$/, endpoints, () => ({})],
  [/^#\/event-types$/, catalog, () => ({})],
  [/^(#\/?)?$/, subscriptions, () => ({})],
];

const NAV = [
  ["#/", "Subscriptions"],
  ["#/dead-letters", "Dead letters"],
  ["#/endpoints", "Inbound endpoints"],
  ["#/event-types", "Event types"],
];

const main = document.getElementById("main");
const nav = document.getElementById("nav");
let cleanup = null;
let signInNotice = null;

/** Shows an API error in `where` (or at the top of the page): the retry hint for 503s. */
export function showError(err, where = main, retry = render) {
  if (err.status === 401) return null; // already back at sign-in
  const box = h(
    "div",
    { class: "panel error", role: "alert" },
    h("p", {}, err.retryable ? "The service is temporarily unavailable. " : "", err.message)
  );
  if (err.retryable) {
    box.append(h("p", {}, h("button", { type: "button", class: "btn", onclick: () => retry() }, "Retry")));
  }
  where.prepend(box);
  return box;
}

function renderNav() {
  if (!session.key()) {
    replace(nav);
    return;
  }
  const current = location.hash || "#/";
  const signOut = h("button", { type: "button", class: "btn link", id: "sign-out" }, "Sign out");
  signOut.addEventListener("click", () => {
    session.signOut();
    signInNotice = "Signed out. The key was forgotten by this tab.";
    location.hash = "#/";
    render();
  });
  replace(
    nav,
    h(
      "ul",
      {},
      NAV.map(([href, text]) => {
        const on =
          href === "#/" ? /^#\/(subscriptions.*)?$/.test(current) || current === "#" : current.startsWith(href);
        return h("li", {}, h("a", { href, "aria-current": on ? "page" : null }, text));
      }),
      h("li", { class: "end" }, signOut)
    )
  );
}

export function render() {
  if (cleanup) {
    cleanup();
    cleanup = null;
  }
  renderNav();
  replace(main);
  window.scrollTo(0, 0);
  if (!session.key()) {
    document.title = "Sign in · Puck webhooks";
    signin.render(main, {
      notice: signInNotice,
      done: () => {
        signInNotice = null;
        render();
      },
    });
    return;
  }
  const hash = location.hash;
  for (const [re, screen, params] of ROUTES) {
    const m = re.exec(hash);
    if (!m) continue;
    const ctx = { showError: (err, where, retry) => showError(err, where, retry || render), render };
    Promise.resolve(screen.render(main, params(m), ctx))
      .then((stop) => {
        if (typeof stop === "function") cleanup = stop;
      })
      .catch((err) => {
        if (err && err.status !== 401) showError(err);
      });
    return;
  }
  document.title = "Not found · Puck webhooks";
  replace(main, h("h1", {}, "Page not found"), h("p", {}, h("a", { href: "#/" }, "Back to subscriptions")));
}

setUnauthorizedHandler(() => {
  signInNotice = "Your API key was not accepted (it may have been revoked). Sign in again.";
  render();
});
// The skip link focuses the content without changing the route.
document.querySelector(".skip").addEventListener("click", (e) => {
  e.preventDefault();
  main.focus();
});
window.addEventListener("hashchange", render);
render();
