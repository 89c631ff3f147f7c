// The pages' one JSON API helper: session auth with Django's CSRF token from its cookie. A failed request throws an
// Error whose message is the API's `detail`, with `.status`, `.code`, `.errors`, `.data` (the parsed body) and
// `.retryAfter` (seconds, from a 429's or 503's Retry-After; 0 when the server did not say).
// URLs come from the server: templates render them with {% url %} into data attributes; a per-id URL is rendered
// with the sentinel id URL_ID ({% url 'review-api-vote' 999999999 %}) and urlFor(template, id) puts the id in.
(function () {
  "use strict";

  const URL_ID = "999999999";
  const SAFE = new Set(["GET", "HEAD", "OPTIONS", "TRACE"]);

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function urlFor(template, id) {
    if (typeof template !== "string" || !template.includes(URL_ID)) {
      throw new Error(`not a URL template with the id ${URL_ID}: ${template}`);
    }
    return template.replace(URL_ID, encodeURIComponent(String(id)));
  }

  // null for an empty body (204 No Content), the parsed value for JSON, the text for anything else.
  async function readBody(response) {
    if (response.status === 204 || response.status === 205) return null;
    const text = await response.text();
    if (!text) return null;
    if ((response.headers.get("Content-Type") || "").includes("json")) {
      try { return JSON.parse(text); } catch (e) { return text; }
    }
    return text;
  }

  // The API answers every 4xx as {"code", "detail", "errors": [{"field", "code", "detail"}]}; anything else
  // (a proxy's HTML error page, a 500) becomes "<status> <status text>".
  function apiError(response, data) {
    const body = data && typeof data === "object" ? data : {};
    const fallback = `${response.status} ${response.statusText}`.trim();
    const error = new Error(typeof body.detail === "string" && body.detail ? body.detail : fallback);
    error.status = response.status;
    error.code = typeof body.code === "string" ? body.code : "";
    error.errors = Array.isArray(body.errors) ? body.errors : [];
    error.data = data;
    const retryAfter = Number(response.headers.get("Retry-After"));
    error.retryAfter = Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : 0;
    return error;
  }

  // api(url, {method, json, body, headers}): `json` is sent as a JSON body; `body` (FormData...) as it is.
  async function api(url, options = {}) {
    const {json, headers: extra, ...rest} = options;
    const method = (options.method || "GET").toUpperCase();
    const headers = {Accept: "application/json", ...(extra || {})};
    if (!SAFE.has(method)) headers["X-CSRFToken"] = csrfToken();
    if (json !== undefined) {
      headers["Content-Type"] = "application/json";
      rest.body = JSON.stringify(json);
    }
    const response = await fetch(url, {credentials: "same-origin", ...rest, method, headers});
    const data = await readBody(response);
    if (!response.ok) throw apiError(response, data);
    return data;
  }

  window.ferplatform = {...(window.ferplatform || {}), api, csrfToken, urlFor};
})();
