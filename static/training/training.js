// Training page: start a run, list runs with live progress (polling the API every 2 s while one is active), draw
// loss and PublicTest accuracy curves as inline SVG, cancel or retry runs, promote versions or roll back.
// Plain JS, no external assets; the URLs come from #training-app's data attributes (per-id ones with the sentinel
// id that urlFor fills in).
(function () {
  "use strict";

  const URLS = document.getElementById("training-app").dataset;  // runsUrl, cancelUrl, ..., rollbackUrl
  const ACTIVE = new Set(["queued", "running"]);
  const $ = (selector, root = document) => root.querySelector(selector);

  const {api, el, urlFor} = window.ferplatform;  // static/js/api.js, static/js/dom.js

  const pct = (x) => (x === null || x === undefined ? "–" : `${(100 * x).toFixed(2)}`);
  const signed = (x) => (x === null || x === undefined ? "–" : `${x >= 0 ? "+" : ""}${(100 * x).toFixed(2)}`);

  // --- curves --------------------------------------------------------------------------------------------------------

  const SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    return node;
  }

  function curves(progress, epochs) {
    const W = 320, H = 130, P = 24;
    const root = svg("svg", {class: "curves", width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img",
      "aria-label": "training loss and PublicTest accuracy per epoch"});
    const n = Math.max(epochs || 1, progress.length, 2);
    const x = (epoch) => P + ((epoch - 1) / (n - 1)) * (W - 2 * P);
    const losses = progress.map((p) => p.train_loss).filter((v) => v !== null && v !== undefined);
    const maxLoss = Math.max(...losses, 1e-6);
    const yLoss = (v) => H - P - (v / maxLoss) * (H - 2 * P);
    const yAcc = (v) => H - P - v * (H - 2 * P);
    const line = (key, y, cls) => {
      const points = progress.filter((p) => p[key] !== null && p[key] !== undefined)
        .map((p) => `${x(p.epoch).toFixed(1)},${y(p[key]).toFixed(1)}`);
      if (points.length === 1) points.push(points[0]);
      if (points.length) root.append(svg("polyline", {class: cls, points: points.join(" ")}));
    };
    root.append(svg("line", {x1: P, y1: H - P, x2: W - P, y2: H - P, stroke: "#ccc"}));
    line("train_loss", yLoss, "loss");
    line("val_accuracy", yAcc, "acc");
    const label = (text, lx, ly, fill) => {
      const t = svg("text", {x: lx, y: ly, fill}); t.textContent = text; root.append(t);
    };
    label(`loss (max ${maxLoss.toFixed(2)})`, P, 12, "#d9480f");
    label("PublicTest accuracy (0-100%)", W / 2, 12, "#2f5bd3");
    label(`epoch 1…${n}`, W - P - 50, H - 6, "#667085");
    return root;
  }

  // --- runs ----------------------------------------------------------------------------------------------------------

  function runCard(run) {
    const last = run.progress.length ? run.progress[run.progress.length - 1] : null;
    const card = el("div", {class: "run", "data-run-id": run.id, "data-status": run.status});
    const info = el("div");
    info.append(el("h3", {}, [
      `Run #${run.id} `, el("span", {class: `status ${run.status}`, text: run.status}),
      ` ${run.recipe_name}, ${run.arch}, ${run.soft_label_mode}, by ${run.created_by || run.trigger}`,
    ]));
    const done = last ? last.epoch : 0;
    if (ACTIVE.has(run.status)) {
      const bar = el("progress", {max: run.epochs, value: done});
      info.append(bar);
      let text = `epoch ${done}/${run.epochs}`;
      if (run.current && run.current.kind === "batch") {
        text += ` · epoch ${run.current.epoch}: step ${run.current.step}/${run.current.steps}, loss ${Number(run.current.loss).toFixed(4)}`;
      }
      if (run.cancel_requested) text += " · cancelling…";
      info.append(el("p", {class: "epoch", text}));
      const cancel = el("button", {type: "button", class: "secondary cancel", text: "Cancel"});
      cancel.addEventListener("click", () => act(urlFor(URLS.cancelUrl, run.id)));
      info.append(cancel);
    } else {
      info.append(el("p", {class: "epoch", text: `${done}/${run.epochs} epochs`}));
    }
    if (last && last.val_accuracy !== null && last.val_accuracy !== undefined) {
      info.append(el("p", {class: "val", text: `last epoch: loss ${last.train_loss.toFixed(4)}, PublicTest accuracy ${pct(last.val_accuracy)}%, macro-F1 ${pct(last.val_macro_f1)}`}));
    }
    if (run.labels_changed !== null) {
      info.append(el("p", {class: "hint", text: `${run.snapshot_count} labels (${run.snapshot_fingerprint.slice(0, 12)}), ${run.labels_changed} changed since the active version`}));
    }
    const m = run.metrics || {};
    if (m.candidate) {
      const cur = m.candidate.current, org = m.candidate.original;
      let text = `version #${run.model_version} (${run.model_version_status}): PublicTest accuracy ${pct(cur.accuracy)}% / macro-F1 ${pct(cur.macro_f1)} on corrected labels, ${pct(org.accuracy)}% / ${pct(org.macro_f1)} on original labels`;
      if (m.delta) text += `; vs previous ${signed(m.delta.current.accuracy)} / ${signed(m.delta.current.macro_f1)} points`;
      info.append(el("p", {class: "result", text}));
    }
    if (run.promotion_reason) info.append(el("p", {class: "gate", text: `Gate: ${run.promotion_reason}`}));
    if (run.error) {
      info.append(el("p", {class: "error", text: run.error}));
      if (run.status === "failed") {
        const retry = el("button", {type: "button", class: "secondary retry", text: "Retry (resume)"});
        retry.addEventListener("click", () => act(urlFor(URLS.retryUrl, run.id)));
        info.append(retry);
      }
    }
    if (run.log) {
      const details = el("details", {}, [el("summary", {text: "log"}), el("pre", {class: "log", text: run.log})]);
      info.append(details);
    }
    card.append(info, el("div", {}, [curves(run.progress, run.epochs)]));
    return card;
  }

  let timer = null;
  async function refreshRuns() {
    clearTimeout(timer);
    const box = $("#runs");
    try {
      const runs = await api(URLS.runsUrl);
      const openLogs = new Set([...box.querySelectorAll("details[open]")].map((d) => d.closest(".run").dataset.runId));
      box.replaceChildren(...(runs.length ? runs.map(runCard) : [el("p", {class: "hint", text: "No runs yet."})]));
      for (const id of openLogs) {
        const details = box.querySelector(`[data-run-id="${id}"] details`);
        if (details) details.open = true;
      }
      const busy = runs.some((r) => ACTIVE.has(r.status));
      if (!busy && box.dataset.busy === "1") refreshVersions();
      box.dataset.busy = busy ? "1" : "0";
      timer = setTimeout(refreshRuns, busy ? 2000 : 10000);
    } catch (error) {
      box.replaceChildren(el("p", {class: "error", text: error.message}));
      timer = setTimeout(refreshRuns, 10000);
    }
  }

  async function act(url) {
    try {
      await api(url, {method: "POST"});
    } catch (error) {
      $("#retrain-status").textContent = error.message;
      $("#retrain-status").classList.add("error");
    }
    refreshRuns();
  }

  // --- versions ------------------------------------------------------------------------------------------------------

  async function refreshVersions() {
    const box = $("#versions");
    try {
      const rows = await api(URLS.versionsUrl);
      const head = el("tr", {}, ["version", "status", "acc. corrected", "F1 corrected", "acc. original",
        "F1 original", "Δ acc.", "Δ F1", "labels", "gate", ""].map((t) => el("th", {text: t})));
      const body = rows.map((row) => {
        const tr = el("tr", {"data-version-id": row.id});
        const cur = row.current || {}, org = row.original || {}, d = row.delta_previous;
        const delta = (v) => el("td", {class: v === undefined || v === null ? "" : (v >= 0 ? "up" : "down"), text: signed(v)});
        tr.append(el("td", {text: `#${row.id} ${row.name}`}), el("td", {class: "vstatus", text: row.status}),
          el("td", {text: pct(cur.accuracy)}), el("td", {text: pct(cur.macro_f1)}), el("td", {text: pct(org.accuracy)}),
          el("td", {text: pct(org.macro_f1)}), delta(d && d.accuracy), delta(d && d.macro_f1),
          el("td", {text: row.soft_label_mode || "–"}), el("td", {class: "gate", text: row.gate || ""}));
        const cell = el("td");
        if (row.status === "ready" || row.status === "archived") {
          const promote = el("button", {type: "button", class: "promote", text: "Promote"});
          promote.addEventListener("click", async () => {
            try { await api(urlFor(URLS.activateUrl, row.id), {method: "POST"}); setVersionsStatus(`#${row.id} is active`); }
            catch (error) { setVersionsStatus(error.message, true); }
            refreshVersions();
          });
          cell.append(promote);
        }
        tr.append(cell);
        return tr;
      });
      box.replaceChildren(el("table", {class: "versions"}, [el("thead", {}, [head]), el("tbody", {}, body)]));
    } catch (error) {
      box.replaceChildren(el("p", {class: "error", text: error.message}));
    }
  }

  function setVersionsStatus(text, isError = false) {
    $("#versions-status").textContent = text;
    $("#versions-status").classList.toggle("error", isError);
  }

  $("#rollback").addEventListener("click", async () => {
    try {
      const version = await api(URLS.rollbackUrl, {method: "POST"});
      setVersionsStatus(`rolled back: #${version.id} ${version.name} is active`);
    } catch (error) { setVersionsStatus(error.message, true); }
    refreshVersions();
  });

  $("#retrain-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const status = $("#retrain-status");
    const body = {recipe: form.recipe.value, soft_label_mode: form.soft_label_mode.value};
    if (form.epochs.value) body.epochs = Number(form.epochs.value);
    if (form.exclude_cross_split_duplicates.checked) body.exclude_cross_split_duplicates = true;
    try {
      const run = await api(URLS.runsUrl, {method: "POST", json: body});
      status.textContent = `run #${run.id} queued`;
      status.classList.remove("error");
    } catch (error) {
      status.textContent = error.message;
      status.classList.add("error");
    }
    refreshRuns();
  });

  refreshRuns();
  refreshVersions();
})();
