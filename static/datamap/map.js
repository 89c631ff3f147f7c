// The data map: a canvas scatter of a split's faces at their 2-D places (the API's compact arrays), coloured by label,
// prediction, label quality or review state. Hovering shows a face; dragging a rectangle lists the faces inside it
// (each links to its gallery page); a click on a point opens it. While a map is being made the page polls its job.
(function () {
  "use strict";

  const root = document.getElementById("datamap");
  if (!root) return;
  const {api, el, urlFor, classes, json} = window.ferplatform;

  const canvas = document.getElementById("map-canvas");
  const ctx = canvas.getContext("2d");
  const area = document.getElementById("map-area");
  const box = document.getElementById("selection-box");
  const card = document.getElementById("hover-card");
  const statusLine = document.getElementById("map-status");
  const startButton = document.getElementById("start-map");
  const colourBy = document.getElementById("colour-by");
  const legend = document.getElementById("legend");
  const selectionPanel = document.getElementById("selection");
  const PAD = Number(canvas.dataset.padding || 12);
  const SIZE = 5; // px per point, a square: crisp at any zoom, and its centre pixel is exactly its colour
  const HOVER_RADIUS = 6;
  const SHOWN_MAX = 500; // thumbnails in the selection panel
  const GALLERY_MAX = 1000; // face ids the gallery's faces filter takes (apps/gallery/filters.py MAX_FACE_IDS)
  const POLL_MS = 1500;

  const CLASS_COLOURS = ["#d62728", "#8c564b", "#9467bd", "#2ca02c", "#1f77b4", "#ff7f0e", "#7f7f7f"];
  const NONE_COLOUR = "#c8c8c8";
  const REVIEW_COLOURS = {open: "#1f77b4", settled: "#2ca02c", reopened: "#ff7f0e", disputed: "#d62728"};
  const reviewStatuses = json("review-statuses");

  let points = null; // {ids, x, y, label, predicted, confidence, quality, review, image}
  let selected = new Set(); // indices into points
  let drag = null; // {x0, y0, x1, y1} in canvas pixels

  function hex(r, g, b) {
    return "#" + [r, g, b].map((v) => Math.round(v).toString(16).padStart(2, "0")).join("");
  }

  // Label quality from red (0: likely wrong) through yellow to green (1).
  function qualityColour(q) {
    const t = Math.max(0, Math.min(1, q));
    return t < 0.5 ? hex(215, 48 + 2 * t * 160, 39) : hex(215 - (t - 0.5) * 2 * 171, 208 - (t - 0.5) * 2 * 48, 39);
  }

  function colourOf(i) {
    const mode = colourBy.value;
    if (mode === "label") return points.label[i] === null ? NONE_COLOUR : CLASS_COLOURS[points.label[i]];
    if (mode === "predicted") return CLASS_COLOURS[points.predicted[i]];
    if (mode === "quality") return points.quality[i] === null ? NONE_COLOUR : qualityColour(points.quality[i]);
    return REVIEW_COLOURS[points.review[i]] || NONE_COLOUR;
  }

  function legendEntries() {
    const mode = colourBy.value;
    if (mode === "label" || mode === "predicted") {
      const entries = classes().map((name, i) => [String(i), name, CLASS_COLOURS[i]]);
      return mode === "label" ? [...entries, ["none", "unlabelled", NONE_COLOUR]] : entries;
    }
    if (mode === "quality") {
      return [["0", "0 (likely wrong)", qualityColour(0)], ["0.5", "0.5", qualityColour(0.5)],
        ["1", "1", qualityColour(1)], ["none", "not scored", NONE_COLOUR]];
    }
    return [...reviewStatuses.map((s) => [s, s, REVIEW_COLOURS[s] || NONE_COLOUR]), ["none", "no review item", NONE_COLOUR]];
  }

  function drawLegend() {
    legend.replaceChildren(...legendEntries().map(([key, name, colour]) =>
      el("li", {dataset: {key, colour}}, [el("span", {class: "swatch", style: {background: colour}}), name])));
  }

  function place(i) {
    const span = canvas.width - 2 * PAD;
    return [Math.round(PAD + points.x[i] * span), Math.round(PAD + (1 - points.y[i]) * (canvas.height - 2 * PAD))];
  }

  function draw() {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (!points) return;
    const half = Math.floor(SIZE / 2);
    for (let i = 0; i < points.ids.length; i++) {
      const [cx, cy] = place(i);
      ctx.fillStyle = colourOf(i);
      ctx.fillRect(cx - half, cy - half, SIZE, SIZE);
    }
    ctx.strokeStyle = "#17202e";
    ctx.lineWidth = 1;
    for (const i of selected) {
      const [cx, cy] = place(i);
      ctx.strokeRect(cx - half - 1.5, cy - half - 1.5, SIZE + 3, SIZE + 3);
    }
    canvas.dataset.colourBy = colourBy.value;
    canvas.dataset.points = String(points.ids.length);
    drawLegend();
  }

  function pointer(event) {
    const rect = canvas.getBoundingClientRect();
    return [(event.clientX - rect.left) * canvas.width / rect.width, (event.clientY - rect.top) * canvas.height / rect.height];
  }

  function nearest(px, py) {
    let best = -1;
    let bestDistance = HOVER_RADIUS * HOVER_RADIUS;
    for (let i = points.ids.length - 1; i >= 0; i--) { // the top-most (last drawn) point wins a tie
      const [cx, cy] = place(i);
      const d = (cx - px) ** 2 + (cy - py) ** 2;
      if (d < bestDistance) { best = i; bestDistance = d; }
    }
    return best;
  }

  function className(index) {
    return index === null || index === undefined ? "unlabelled" : classes()[index];
  }

  function showCard(i, px, py) {
    card.querySelector("img").src = points.image[i];
    const quality = points.quality[i] === null ? "" : ` · quality ${points.quality[i].toFixed(2)}`;
    card.querySelector(".caption").textContent = `#${points.ids[i]} · ${className(points.label[i])} → ` +
      `${className(points.predicted[i])} ${points.confidence[i].toFixed(2)}${quality}`;
    card.dataset.faceId = String(points.ids[i]);
    card.style.left = `${Math.min(px + 12, canvas.width - 150)}px`;
    card.style.top = `${Math.min(py + 12, canvas.height - 130)}px`;
    card.hidden = false;
  }

  function hideCard() {
    card.hidden = true;
    delete card.dataset.faceId;
  }

  function showSelection() {
    const faceUrl = root.dataset.faceUrl;
    const order = [...selected].sort((a, b) => points.ids[a] - points.ids[b]);
    document.getElementById("selection-count").textContent = String(order.length);
    document.getElementById("selection-note").textContent = order.length > SHOWN_MAX
      ? `The first ${SHOWN_MAX} by face id are shown.` : "Each face opens its page in the gallery.";
    document.getElementById("selection-faces").replaceChildren(...order.slice(0, SHOWN_MAX).map((i) =>
      el("a", {href: urlFor(faceUrl, points.ids[i]), class: "selected-face", dataset: {faceId: points.ids[i]},
        title: `#${points.ids[i]} · ${className(points.label[i])} → ${className(points.predicted[i])}`},
      [el("img", {src: points.image[i], alt: `face ${points.ids[i]}`, width: 64, height: 64, loading: "lazy"})])));
    const ids = order.slice(0, GALLERY_MAX).map((i) => points.ids[i]);
    const query = new URLSearchParams({version: root.dataset.version, split: root.dataset.split, faces: ids.join(",")});
    const link = document.getElementById("selection-gallery");
    link.href = `${root.dataset.galleryUrl}?${query}`;
    link.textContent = order.length > GALLERY_MAX ? `Open the first ${GALLERY_MAX} in the gallery`
      : "Open the selection in the gallery";
    selectionPanel.hidden = order.length === 0;
  }

  function clearSelection() {
    selected = new Set();
    selectionPanel.hidden = true;
    draw();
  }

  function setBox() {
    const left = Math.min(drag.x0, drag.x1);
    const top = Math.min(drag.y0, drag.y1);
    Object.assign(box.style, {left: `${left}px`, top: `${top}px`, width: `${Math.abs(drag.x1 - drag.x0)}px`,
      height: `${Math.abs(drag.y1 - drag.y0)}px`});
    box.hidden = false;
  }

  canvas.addEventListener("mousedown", (event) => {
    if (!points || event.button !== 0) return;
    const [x, y] = pointer(event);
    drag = {x0: x, y0: y, x1: x, y1: y};
    event.preventDefault();
  });

  window.addEventListener("mousemove", (event) => {
    if (!points) return;
    const [x, y] = pointer(event);
    if (drag) {
      drag.x1 = Math.max(0, Math.min(canvas.width, x));
      drag.y1 = Math.max(0, Math.min(canvas.height, y));
      setBox();
      hideCard();
      return;
    }
    if (event.target !== canvas) return;
    const i = nearest(x, y);
    if (i < 0) hideCard(); else showCard(i, x, y);
  });

  window.addEventListener("mouseup", () => {
    if (!drag) return;
    const {x0, y0, x1, y1} = drag;
    drag = null;
    box.hidden = true;
    if (Math.abs(x1 - x0) < 3 && Math.abs(y1 - y0) < 3) { // a click: open the point under it, if any
      const i = nearest(x0, y0);
      if (i >= 0) window.location.assign(urlFor(root.dataset.faceUrl, points.ids[i]));
      return;
    }
    const [left, right, top, bottom] = [Math.min(x0, x1), Math.max(x0, x1), Math.min(y0, y1), Math.max(y0, y1)];
    selected = new Set();
    for (let i = 0; i < points.ids.length; i++) {
      const [cx, cy] = place(i);
      if (cx >= left && cx <= right && cy >= top && cy <= bottom) selected.add(i);
    }
    draw();
    showSelection();
  });

  area.addEventListener("mouseleave", () => { if (!drag) hideCard(); });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && points) clearSelection();
  });
  colourBy.addEventListener("change", draw);

  function describe(map) {
    const p = map.progress || {};
    if (map.status === "queued") return `Map #${map.id} is queued for a worker.`;
    if (map.status === "running") {
      const step = p.stage === "features" ? `features of ${p.done || 0} / ${p.total || "?"} faces`
        : p.stage === "layout" ? `laying out ${p.total} faces (${p.method})` : (p.stage || "starting");
      return `Map #${map.id} is running: ${step}.`;
    }
    if (map.status === "succeeded") {
      return `${map.face_count} ${map.split} faces of ${map.model_version_name}, ${map.method}, made ` +
        `${new Date(map.finished_at).toLocaleString()} (map #${map.id}).`;
    }
    return `Map #${map.id} ${map.status}${map.error ? `: ${map.error}` : ""}.`;
  }

  function show(map) {
    points = map.points;
    selected = new Set();
    selectionPanel.hidden = true;
    root.dataset.shown = String(map.id);
    startButton.textContent = "Recompute";
    draw();
  }

  async function follow(id) {
    startButton.disabled = true;
    root.dataset.working = String(id);
    try {
      for (;;) {
        const map = await api(urlFor(root.dataset.mapUrl, id));
        if (map.status === "succeeded") {
          show(map);
          statusLine.textContent = describe(map);
          break;
        }
        if (map.status === "failed" || map.status === "cancelled") {
          statusLine.textContent = describe(map);
          break;
        }
        statusLine.textContent = describe(map);
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
    } catch (error) {
      statusLine.textContent = `The map could not be read: ${error.message}`;
    } finally {
      startButton.disabled = false;
      root.dataset.working = "";
    }
  }

  startButton.addEventListener("click", async () => {
    startButton.disabled = true;
    try {
      const map = await api(root.dataset.mapsUrl, {method: "POST", json: {
        model_version: Number(root.dataset.version), split: root.dataset.split, method: root.dataset.method}});
      await follow(map.id);
    } catch (error) {
      statusLine.textContent = `The map was not started: ${error.message}`;
      startButton.disabled = false;
    }
  });

  async function init() {
    drawLegend();
    if (root.dataset.ready) {
      try {
        const map = await api(urlFor(root.dataset.mapUrl, root.dataset.ready));
        show(map);
        statusLine.textContent = describe(map);
      } catch (error) {
        statusLine.textContent = `The map could not be read: ${error.message}`;
      }
    }
    if (root.dataset.working) await follow(root.dataset.working);
  }

  init();
})();
