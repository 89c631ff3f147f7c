// Review screen, keyboard first. Items are leased a few at a time (prefetch), so the next face is already
// loaded when a vote is cast; requests go out one after another (a promise chain) so that undo follows its vote.
// URLs come from the template's data attributes (per-item ones with the sentinel id, see static/js/api.js).
(function () {
  "use strict";
  const app = document.getElementById("review-app");
  if (!app) return;
  const {api, el, urlFor} = window.ferplatform;  // static/js/api.js, static/js/dom.js
  const CLASSES = window.ferplatform.classes();  // rendered by the server in base.html
  const NOT_A_FACE = 7, UNSURE = 8;
  // A heatmap the model endpoint lists as "pending" is being made by a worker: ask again until it is stored.
  const HEATMAP_POLL_MS = 1500, HEATMAP_GIVE_UP_MS = 60000;
  const $ = (id) => document.getElementById(id);
  const prefetch = parseInt(app.dataset.prefetch, 10) || 3;

  let queue = [];          // leased items not shown yet
  let current = null;      // the item on screen
  const done = new Set();  // ids voted on or skipped in this page (the server may still list them briefly)
  const modelViews = new Map();  // item id -> {view, loading, timer, since, gaveUp, error}
  let chain = Promise.resolve();
  let pending = 0;

  function setPending(delta) {
    pending += delta;
    app.dataset.pending = String(pending);
  }
  setPending(0);

  function say(text, isError) {
    const line = $("status");
    line.textContent = text || "";
    line.classList.toggle("error", Boolean(isError));
  }

  // Everything that talks to the server goes through here, in order.
  function enqueue(task) {
    setPending(1);
    chain = chain.then(task).catch((error) => say(error.message, true)).finally(() => setPending(-1));
    return chain;
  }

  function showProgress(progress) {
    if (!progress) return;
    $("items-left").textContent = progress.items_left;
    $("votes-today").textContent = progress.votes_today;
  }

  function preload(item) {
    const img = new Image();
    img.src = item.image;
  }

  async function topUp() {
    const data = await api(`${app.dataset.nextUrl}?count=${prefetch}`);
    showProgress(data.progress);
    const known = new Set(queue.map((i) => i.id));
    if (current) known.add(current.id);
    for (const item of data.items) {
      if (!known.has(item.id) && !done.has(item.id)) {
        queue.push(item);
        preload(item);
        loadModelView(item.id);
      }
    }
    if (!current) advance();
  }

  function advance() {
    current = queue.shift() || null;
    render();
  }

  function labelName(value) {
    if (value === NOT_A_FACE) return "not a face";
    if (value === UNSURE) return "unsure";
    return value === null || value === undefined ? "—" : CLASSES[value];
  }

  function render() {
    $("item").hidden = !current;
    $("empty").hidden = Boolean(current);
    if (!current) {
      app.dataset.itemId = "";
      return;
    }
    app.dataset.itemId = String(current.id);
    $("face").src = current.image;
    $("current-label").textContent = labelName(current.current_label);
    $("original-label").textContent = current.original_label !== null && current.original_label !== current.current_label
      ? `(originally ${labelName(current.original_label)})` : "";
    $("suggested-label").textContent = current.suggested_label === null ? "none" : labelName(current.suggested_label);
    $("suggested-probability").textContent = current.suggested_probability === null ? ""
      : `${Math.round(current.suggested_probability * 100)}%`;
    $("bars").replaceChildren(...(current.probabilities || []).map((p, k) => el("li", {
      class: k === current.suggested_label ? "suggested" : (k === current.current_label ? "current" : ""),
      "data-class": CLASSES[k],
    }, [
      el("span", {class: "name", text: `${k + 1} ${CLASSES[k]}`}),
      el("span", {class: "bar"}, [el("span", {style: {width: `${(p * 100).toFixed(1)}%`}})]),
      el("span", {class: "pct", text: `${Math.round(p * 100)}%`}),
    ])));
    renderModelView(current.id);
  }

  // The model view is asked for while its item is on screen or prefetched; a voted or skipped item stops being
  // polled (an undo that brings it back starts again).
  function onPage(id) {
    return (current !== null && current.id === id) || queue.some((i) => i.id === id);
  }

  const computing = (view) => (view && view.model_active && view.pending) || [];

  function loadModelView(id) {
    let entry = modelViews.get(id);
    if (!entry) {
      entry = {view: null, loading: false, timer: null, since: 0, gaveUp: false, error: ""};
      modelViews.set(id, entry);
    }
    const complete = entry.view !== null && !entry.error && computing(entry.view).length === 0;
    if (entry.loading || entry.timer !== null || complete) return entry;
    entry.since = Date.now();
    entry.gaveUp = false;
    fetchModelView(id, entry);
    return entry;
  }

  async function fetchModelView(id, entry) {
    entry.timer = null;
    if (!onPage(id)) return;
    entry.loading = true;
    try {
      entry.view = await api(urlFor(app.dataset.modelUrl, id));
      entry.error = "";
    } catch (error) {
      entry.error = error.message;  // the page works without the model: keep what was shown, stop asking
    } finally {
      entry.loading = false;
    }
    if (!entry.error && computing(entry.view).length) {
      if (Date.now() - entry.since < HEATMAP_GIVE_UP_MS) {
        entry.timer = setTimeout(() => fetchModelView(id, entry), HEATMAP_POLL_MS);
      } else {
        entry.gaveUp = true;
      }
    }
    if (current && current.id === id) renderModelView(id);
  }

  function renderModelView(id) {
    const entry = modelViews.get(id) || loadModelView(id);
    const view = entry.view;
    let note = "";
    if (view && !view.model_active) {
      note = `No model is active: ${view.reason} The suggestion shown comes from the scoring run only, and there ` +
        "are no Grad-CAM overlays.";
    } else if (view) {
      const prediction = view.prediction ? ` predicts ${view.prediction.label_name} ` +
        `(${Math.round(view.prediction.confidence * 100)}%)` : "";
      note = `Active model ${view.model_version.name}${prediction}.`;
    }
    $("model-note").textContent = note;
    const waiting = computing(view);
    for (const [role, fig] of Object.entries({current: $("cam-current"), suggestion: $("cam-suggestion")})) {
      const overlay = view && view.model_active && view.overlays ? view.overlays[role] : null;
      const img = fig.querySelector("img");
      if (overlay && img.getAttribute("src") !== overlay.url) img.src = overlay.url;
      img.hidden = !overlay;
      fig.querySelector(".cam-label").textContent = overlay ? overlay.label_name : "";
      let state = overlay ? "shown" : "", text = "";
      if (!overlay && waiting.includes(role)) {
        if (entry.error) [state, text] = ["failed", `Could not load the heatmap: ${entry.error}`];
        else if (entry.gaveUp) [state, text] = ["gave-up", "The heatmap is still not ready. Try again later."];
        else [state, text] = ["computing", "computing heatmap…"];
      }
      fig.dataset.heatmap = state;
      fig.querySelector(".cam-status").textContent = text;
    }
  }

  function vote(choice) {
    if (!current) return;
    const item = current;
    done.add(item.id);
    advance();  // the next face is already here; the vote is sent behind it
    say(`Voted ${labelName(choice)} on item ${item.id}.`);
    enqueue(async () => {
      const result = await api(urlFor(app.dataset.voteUrl, item.id), {method: "POST", json: {choice}});
      showProgress(result.progress);
      if (result.item_status === "settled") say(`Item ${item.id} settled as ${labelName(result.settled_label)}.`);
      await topUp();
    });
  }

  function skip() {
    if (!current) return;
    const item = current;
    done.add(item.id);
    advance();
    say(`Skipped item ${item.id}.`);
    enqueue(async () => {
      await api(urlFor(app.dataset.skipUrl, item.id), {method: "POST"});
      await topUp();
    });
  }

  function undo() {
    enqueue(async () => {
      const result = await api(app.dataset.undoUrl, {method: "POST"});
      showProgress(result.progress);
      const item = result.item;
      done.delete(item.id);
      queue = queue.filter((i) => i.id !== item.id);
      if (current) queue.unshift(current);
      current = item;
      loadModelView(item.id);
      render();
      say(`Undid your ${labelName(result.undone_choice)} vote on item ${item.id}` +
        (result.item_status !== "settled" ? "." : " (the item stays settled by the other votes)."));
    });
  }

  function toggleHelp(show) {
    const help = $("help");
    help.hidden = show === undefined ? !help.hidden : !show;
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target instanceof HTMLInputElement || event.target instanceof HTMLTextAreaElement) return;
    const key = event.key;
    if (key === "?") { toggleHelp(); event.preventDefault(); return; }
    if (key === "Escape") { toggleHelp(false); return; }
    if (!$("help").hidden) return;
    if (key >= "1" && key <= "9") { vote(parseInt(key, 10) - 1); event.preventDefault(); }
    else if (key === "Enter") {
      if (current && current.suggested_label !== null) vote(current.suggested_label);
      event.preventDefault();
    }
    else if (key === "s" || key === "S") { skip(); event.preventDefault(); }
    else if (key === "z" || key === "Z") { undo(); event.preventDefault(); }
  });

  document.getElementById("choices").addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    button.blur();  // keep Enter for "accept the suggestion"
    if (button.dataset.choice !== undefined) vote(parseInt(button.dataset.choice, 10));
    else if (button.dataset.action === "skip") skip();
    else if (button.dataset.action === "undo") undo();
  });

  enqueue(topUp);
})();
