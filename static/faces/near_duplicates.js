// Near-duplicates page: the admin's "Search now" button queues a search (POST), then the page reloads when asked.
(function () {
  "use strict";
  const app = document.getElementById("neardup-app");
  const button = document.getElementById("start-search");
  if (!app || !button) return;
  const status = document.getElementById("start-status");
  button.addEventListener("click", async () => {
    button.disabled = true;
    status.textContent = "Queuing…";
    try {
      const run = await ferplatform.api(app.dataset.runsUrl, {method: "POST"});
      status.textContent = `Search #${run.id} is ${run.status}; reload the page when it has finished.`;
    } catch (error) {
      status.textContent = error.message;
      button.disabled = false;
    }
  });
})();
