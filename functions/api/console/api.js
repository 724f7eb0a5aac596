// The only module that calls fetch: the public API, same origin, with the API key from
// sessionStorage as the Bearer header (never in a URL, a cookie, local storage or a log).

const KEY = "puck.apiKey";

/** An API error: HTTP status, the API's code and message, and the field the message names. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
    // The API's messages start with the field they are about: "url must use https",
    // "filters.min_severity must be one of …", "events[0] is not a known event type",
    // "auth.token_url: must use https", "filters.payload.host.$startsWith: must be a string".
    const first = /^([A-Za-z_][\w.\[\]$-]*):?\s/.exec(message || "");
    this.field = status === 400 && first ? first[1] : null;
  }
  get retryable() {
    return this.status === 503 || this.status === 0;
  }
}

let onUnauthorized = () => {};

/** What to do when the API answers 401 (the app goes back to sign-in). */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

export const session = {
  key: () => sessionStorage.getItem(KEY),
  signIn: (key) => sessionStorage.setItem(KEY, key),
  signOut: () => sessionStorage.removeItem(KEY),
};

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const text = q.toString();
  return text ? `?${text}` : "";
}

async function request(method, path, body, { key = session.key(), quiet401 = false } = {}) {
  const headers = { Accept: "application/json" };
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let resp;
  try {
    resp = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
  } catch {
    throw new ApiError(0, "network_error", "the service could not be reached; check the connection and retry");
  }
  if (resp.status === 204) return null;
  let json = null;
  try {
    json = await resp.json();
  } catch {
    /* empty or not JSON */
  }
  if (resp.ok) return json;
  // API Gateway's own throttle answers 429 without the API's error body.
  const fallback =
    resp.status === 429
      ? `too many requests; retry in ${resp.headers.get("Retry-After") || "a few"} s`
      : `HTTP ${resp.status}`;
  const err = new ApiError(resp.status, json?.error?.code || "http_error", json?.error?.message || fallback);
  if (resp.status === 401 && !quiet401) {
    session.signOut();
    onUnauthorized(err);
  }
  throw err;
}

const SUBS = "/v1/webhooks/subscriptions";
const DELIVERIES = "/v1/webhooks/deliveries";
const ENDPOINTS = "/v1/webhooks/incoming/endpoints";
const enc = encodeURIComponent;

/** Checks a key before keeping it: a cheap authenticated read. */
export const checkKey = (key) => request("GET", `${SUBS}${query({ limit: 1 })}`, undefined, { key, quiet401: true });

export const listSubscriptions = (params) => request("GET", `${SUBS}${query(params)}`);
export const getSubscription = (id) => request("GET", `${SUBS}/${enc(id)}`);
export const createSubscription = (body) => request("POST", SUBS, body);
export const updateSubscription = (id, body) => request("PATCH", `${SUBS}/${enc(id)}`, body);
export const deleteSubscription = (id) => request("DELETE", `${SUBS}/${enc(id)}`);
export const rotateSecret = (id) => request("PATCH", `${SUBS}/${enc(id)}`, { secret: null });
/** Ed25519 subscriptions: a new key pair; the answer carries the new `public_key`. */
export const rotateKey = (id) => request("PATCH", `${SUBS}/${enc(id)}`, { public_key: null });
/** With `?wait=true` the API makes the attempt at once and answers it (older APIs answer 202). */
export const sendTest = (id, eventType) =>
  request("POST", `${SUBS}/${enc(id)}/test?wait=true`, eventType ? { event_type: eventType } : undefined);
export const recover = (id, body) => request("POST", `${SUBS}/${enc(id)}/recover`, body);

export const listDeliveries = (params) => request("GET", `${DELIVERIES}${query(params)}`);
export const getDelivery = (id) => request("GET", `${DELIVERIES}/${enc(id)}`);
export const replay = (id) => request("POST", `${DELIVERIES}/${enc(id)}/replay`);

export const listEndpoints = () => request("GET", ENDPOINTS);
export const createEndpoint = (body) => request("POST", ENDPOINTS, body);
export const deleteEndpoint = (id) => request("DELETE", `${ENDPOINTS}/${enc(id)}`);

export const eventTypes = () => request("GET", "/v1/webhooks/event-types");
