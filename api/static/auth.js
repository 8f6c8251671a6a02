// Shared by the pages behind a login (Verwaltung, Werkstatt): fetch with the session's CSRF token.
//
//   import { authFetch, currentUser } from "/static/auth.js";
//   const response = await authFetch("/v1/admin/keys", { method: "POST", json: { name, scopes } });
//
// Writes (POST/PUT/PATCH/DELETE) carry the X-CSRF-Token header: taken from <meta name="csrf-token"> when the page
// has it, else from GET /v1/me. A 401 sends the browser to /anmelden and back to this page afterwards.

const WRITE_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);
let mePromise = null;

/** Who is logged in: {authenticated, kind, name, role, role_label, scopes, csrf_token, public_access}. */
export function currentUser({ refresh = false } = {}) {
  if (refresh || mePromise === null) {
    mePromise = fetch("/v1/me", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((response) => (response.ok ? response.json() : null));
  }
  return mePromise;
}

export async function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  if (meta && meta.content) return meta.content;
  const me = await currentUser();
  return (me && me.csrf_token) || "";
}

export function loginUrl() {
  return `/anmelden?next=${encodeURIComponent(location.pathname + location.search)}`;
}

/** fetch() for same-origin API calls with the session cookie; `json` is sent as a JSON body. */
export async function authFetch(url, options = {}) {
  const { json, ...init } = options;
  const method = (init.method || "GET").toUpperCase();
  const headers = new Headers(init.headers || {});
  if (!headers.has("Accept")) headers.set("Accept", "application/json");
  if (json !== undefined) {
    headers.set("Content-Type", "application/json");
    init.body = JSON.stringify(json);
  }
  if (WRITE_METHODS.has(method)) headers.set("X-CSRF-Token", await csrfToken());
  const response = await fetch(url, { ...init, method, headers, credentials: "same-origin" });
  if (response.status === 401) {
    location.assign(loginUrl());
  }
  return response;
}

/** The German message of an error answer ({detail: "..."} or a 422 list), for showing it to the user. */
export async function errorMessage(response) {
  try {
    const body = await response.json();
    if (typeof body.detail === "string") return body.detail;
    if (Array.isArray(body.detail)) return body.detail.map((item) => item.msg).join(" ");
  } catch {
    // not JSON
  }
  return `Fehler ${response.status}`;
}
