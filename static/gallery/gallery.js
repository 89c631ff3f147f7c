// Face detail: ask for the heatmap of another class or CAM method (stored, or made by a worker while the page waits:
// static/js/heatmaps.js), and show it beside the others. The explanations URL comes from the form's data attribute
// (rendered with {% url %}).
(function () {
  "use strict";
  const form = document.getElementById("compute-heatmap");
  const detail = document.getElementById("face-detail");
  if (!form || !detail) return;
  const {el, requestHeatmap} = window.ferplatform;  // static/js/dom.js, static/js/heatmaps.js
  const status = document.getElementById("heatmap-status");
  const heatmaps = document.getElementById("heatmaps");
  const target = form.elements.namedItem("target");
  const method = form.elements.namedItem("method");

  let latest = 0;  // the request being answered; an older one stops asking and is not shown

  function setStatus(text, state) {
    status.textContent = text;
    status.className = state === "error" ? "error" : "";
    status.dataset.state = state;
  }

  function show(explanation, targetValue) {
    let figure = heatmaps.querySelector(`figure.heatmap[data-method="${CSS.escape(explanation.method)}"]` +
      `[data-layer="${CSS.escape(explanation.layer)}"][data-target="${CSS.escape(targetValue)}"]`);
    if (!figure) {
      figure = el("figure", {class: "heatmap", "data-method": explanation.method, "data-layer": explanation.layer,
                             "data-target": targetValue}, [
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
    const body = {method: method.value, target: target.value, version: Number(detail.dataset.version)};
    const ticket = ++latest;
    setStatus("asking…", "asking");
    try {
      const explanation = await requestHeatmap(form.dataset.explanationsUrl, body, {
        onPending: () => setStatus(`computing ${body.method} on a worker…`, "pending"),
        isCurrent: () => ticket === latest,
      });
      if (explanation === null) return;  // another request replaced this one
      show(explanation, body.target);
      setStatus("done", "done");
    } catch (error) {
      if (ticket === latest) setStatus(String(error.message || error), "error");
    }
  });
})();
