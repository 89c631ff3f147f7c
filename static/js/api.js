// The pages' one JSON API helper: session auth with Django's CSRF token from its cookie. A failed request throws an
// Error whose message is the API's `detail` (or its field errors), with `.status` and `.data` for callers that need more.
(function () {
  "use strict";

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  async function api(url, options = {}) {
    const headers = {Accept: "application/json", ...(options.headers || {})};
    if (options.method && options.method !== "GET") headers["X-CSRFToken"] = csrfToken();
    const response = await fetch(url, {credentials: "same-origin", ...options, headers});
    let data = null;
    try { data = await response.json(); } catch (e) { data = {detail: response.statusText}; }
    if (!response.ok) {
      const fields = data && typeof data === "object"
        ? Object.entries(data).map(([k, v]) => `${k}: ${v}`).join("; ") : "";
      const error = new Error((data && data.detail) || fields || `request failed (${response.status})`);
      error.data = data;
      error.status = response.status;
      throw error;
    }
    return data;
  }

  window.ferplatform = {...(window.ferplatform || {}), api, csrfToken};
})();
