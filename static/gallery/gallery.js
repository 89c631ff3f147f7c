// Face detail: compute (or fetch the stored) heatmap of another class or CAM method, and show it beside the others.
(function () {
  "use strict";
  const form = document.getElementById("compute-heatmap");
  const detail = document.getElementById("face-detail");
  if (!form || !detail) return;
  const status = document.getElementById("heatmap-status");
  const heatmaps = document.getElementById("heatmaps");
  const csrf = document.querySelector("input[name=csrfmiddlewaretoken]");
  const target = form.elements.namedItem("target");
  const method = form.elements.namedItem("method");

  function show(explanation) {
    const selector = `figure.heatmap[data-method="${explanation.method}"][data-target="${target.value}"]`;
    let figure = heatmaps.querySelector(selector);
    if (!figure) {
      figure = document.createElement("figure");
      figure.className = "heatmap";
      figure.dataset.method = explanation.method;
      figure.dataset.target = target.value;
      figure.innerHTML = '<img width="192" height="192" alt=""><figcaption></figcaption>';
      heatmaps.prepend(figure);
      const none = document.getElementById("no-heatmaps");
      if (none) none.remove();
    }
    figure.querySelector("img").src = explanation.overlay_url;
    figure.querySelector("img").alt = `${explanation.method} for ${explanation.target_class}`;
    figure.querySelector("figcaption").textContent = `${explanation.method} → ${explanation.target_class}`;
    figure.classList.add("fresh");
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.textContent = "computing…";
    status.className = "";
    const body = {method: method.value, target: target.value, version: Number(detail.dataset.version)};
    try {
      const response = await fetch(`/api/gallery/faces/${detail.dataset.faceId}/explanations`, {
        method: "POST",
        credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRFToken": csrf ? csrf.value : ""},
        body: JSON.stringify(body),
      });
      const data = await response.json();
      if (!response.ok) throw new Error(data.detail || JSON.stringify(data));
      show(data);
      status.textContent = "done";
    } catch (error) {
      status.textContent = String(error.message || error);
      status.className = "error";
    }
  });
})();
