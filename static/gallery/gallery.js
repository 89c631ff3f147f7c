// Face detail: compute (or fetch the stored) heatmap of another class or CAM method, and show it beside the others.
// The explanations URL comes from the form's data attribute (rendered with {% url %}).
(function () {
  "use strict";
  const form = document.getElementById("compute-heatmap");
  const detail = document.getElementById("face-detail");
  if (!form || !detail) return;
  const {api, el} = window.ferplatform;  // static/js/api.js, static/js/dom.js
  const status = document.getElementById("heatmap-status");
  const heatmaps = document.getElementById("heatmaps");
  const target = form.elements.namedItem("target");
  const method = form.elements.namedItem("method");

  function show(explanation) {
    let figure = heatmaps.querySelector(`figure.heatmap[data-method="${CSS.escape(explanation.method)}"]` +
      `[data-target="${CSS.escape(target.value)}"]`);
    if (!figure) {
      figure = el("figure", {class: "heatmap", "data-method": explanation.method, "data-target": target.value}, [
        el("img", {width: "192", height: "192", alt: ""}), el("figcaption"),
      ]);
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
      show(await api(form.dataset.explanationsUrl, {method: "POST", json: body}));
      status.textContent = "done";
    } catch (error) {
      status.textContent = String(error.message || error);
      status.className = "error";
    }
  });
})();
