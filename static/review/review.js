// Review screen, keyboard first. Items are leased a few at a time (prefetch), so the next face is already
// loaded when a vote is cast; requests go out one after another (a promise chain) so that undo follows its vote.
(function () {
  "use strict";
  const CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];
  const NOT_A_FACE = 7, UNSURE = 8;
  const app = document.getElementById("review-app");
  if (!app) return;
  const $ = (id) => document.getElementById(id);
  const csrf = document.querySelector("input[name=csrfmiddlewaretoken]").value;
  const prefetch = parseInt(app.dataset.prefetch, 10) || 3;

  let queue = [];          // leased items not shown yet
  let current = null;      // the item on screen
  const done = new Set();  // ids voted on or skipped in this page (the server may still list them briefly)
  const modelViews = new Map();
  let chain = Promise.resolve();
  let pending = 0;

  function setPending(delta) {
    pending += delta;
    app.dataset.pending = String(pending);
  }
  setPending(0);

  function say(text, isError) {
    const el = $("status");
    el.textContent = text || "";
    el.classList.toggle("error", Boolean(isError));
  }

  async function api(method, url, body) {
    const options = {method, headers: {"Accept": "application/json", "X-CSRFToken": csrf}, credentials: "same-origin"};
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(url, options);
    const data = response.status === 204 ? null : await response.json().catch(() => null);
    if (!response.ok) {
      const error = new Error((data && data.detail) || response.statusText);
      error.status = response.status;
      throw error;
    }
    return data;
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
    const data = await api("GET", `${app.dataset.nextUrl}?count=${prefetch}`);
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
    const bars = $("bars");
    bars.replaceChildren();
    (current.probabilities || []).forEach((p, k) => {
      const li = document.createElement("li");
      li.className = k === current.suggested_label ? "suggested" : (k === current.current_label ? "current" : "");
      li.innerHTML = `<span class="name">${k + 1} ${CLASSES[k]}</span><span class="bar"><span style="width:${(p * 100).toFixed(1)}%"></span></span><span class="pct">${Math.round(p * 100)}%</span>`;
      bars.appendChild(li);
    });
    renderModelView(current.id);
  }

  function loadModelView(id) {
    if (modelViews.has(id)) return modelViews.get(id);
    const promise = api("GET", `${app.dataset.itemsUrl}${id}/model`).catch(() => null).then((view) => {
      modelViews.set(id, Promise.resolve(view));
      if (current && current.id === id) renderModelView(id);
      return view;
    });
    modelViews.set(id, promise);
    return promise;
  }

  function renderModelView(id) {
    const cams = {current: $("cam-current"), suggestion: $("cam-suggestion")};
    for (const fig of Object.values(cams)) {
      fig.querySelector("img").hidden = true;
      fig.querySelector(".cam-label").textContent = "";
    }
    $("model-note").textContent = "";
    const promise = modelViews.get(id) || loadModelView(id);
    promise.then((view) => {
      if (!current || current.id !== id || !view) return;
      if (!view.model_active) {
        $("model-note").textContent = `No model is active: ${view.reason} The suggestion shown comes from the ` +
          "scoring run only, and there are no Grad-CAM overlays.";
        return;
      }
      const prediction = view.prediction ? ` predicts ${view.prediction.label_name} ` +
        `(${Math.round(view.prediction.confidence * 100)}%)` : "";
      $("model-note").textContent = `Active model ${view.model_version.name}${prediction}.`;
      for (const [role, fig] of Object.entries(cams)) {
        const overlay = view.overlays[role];
        if (!overlay) continue;
        const img = fig.querySelector("img");
        img.src = overlay.url;
        img.hidden = false;
        fig.querySelector(".cam-label").textContent = overlay.label_name;
      }
    });
  }

  function vote(choice) {
    if (!current) return;
    const item = current;
    done.add(item.id);
    advance();  // the next face is already here; the vote is sent behind it
    say(`Voted ${labelName(choice)} on item ${item.id}.`);
    enqueue(async () => {
      const result = await api("POST", `${app.dataset.itemsUrl}${item.id}/votes`, {choice});
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
      await api("POST", `${app.dataset.itemsUrl}${item.id}/skip`);
      await topUp();
    });
  }

  function undo() {
    enqueue(async () => {
      const result = await api("POST", app.dataset.undoUrl);
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
