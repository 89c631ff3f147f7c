// On-demand heatmaps (the gallery's face page, the upload page's CAM switcher). The server never computes one in the
// request: a heatmap that is not stored yet answers 202 {"status": "pending", ...} while a worker makes it, and the
// page sends the same request again with ?wait= (the server holds it until the heatmap lands, up to its cap) until
// the answer is 200 with the heatmap, or gives up after GIVE_UP_MS with an error that says so.
(function () {
  "use strict";

  const WAIT_SECONDS = 10;
  const GIVE_UP_MS = 5 * 60 * 1000;  // ScoreCAM or AblationCAM on a CPU worker take minutes
  const MIN_INTERVAL_MS = 1000;  // between two asks, even when the server answers at once
  const GAVE_UP = "The heatmap is still not ready after 5 minutes: the worker may be busy or down. Try again later.";

  const isPending = (answer) => Boolean(answer) && answer.status === "pending";
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // POST `body` to `url` and resolve with the heatmap. onPending(answer) is called on the first 202; isCurrent()
  // turning false (the person asked for another one meanwhile) stops asking and resolves with null. Throws the API's
  // error (message = its `detail`), or GAVE_UP.
  async function requestHeatmap(url, body, {onPending = () => {}, isCurrent = () => true} = {}) {
    const {api} = window.ferplatform;  // static/js/api.js
    let answer = await api(url, {method: "POST", json: body});
    if (!isPending(answer)) return answer;
    onPending(answer);
    const giveUpAt = Date.now() + GIVE_UP_MS;
    while (isPending(answer)) {
      if (!isCurrent()) return null;
      if (Date.now() >= giveUpAt) throw new Error(GAVE_UP);
      const asked = Date.now();
      answer = await api(`${url}?wait=${WAIT_SECONDS}`, {method: "POST", json: body});
      if (isPending(answer) && Date.now() - asked < MIN_INTERVAL_MS) await sleep(MIN_INTERVAL_MS);
    }
    return isCurrent() ? answer : null;
  }

  window.ferplatform = {...(window.ferplatform || {}), requestHeatmap};
})();
