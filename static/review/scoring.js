// Scoring page (admins): start a label-scoring run, watch runs live (polling every 2 s while one is queued or
// running): a progress bar with the ETA, and for out-of-fold runs a grid of folds x epochs (done, current, reused);
// cancel or resume runs; each finished run's figures (flagged, items, FER+ agreement when votes are imported).
// URLs come from #scoring-app's data attributes (per-id ones with the sentinel id that urlFor fills in).
(function () {
  "use strict";

  const URLS = document.getElementById("scoring-app").dataset;  // runsUrl, cancelUrl, resumeUrl
  const ACTIVE = new Set(["queued", "running"]);
  const $ = (selector, root = document) => root.querySelector(selector);
  const {api, el, urlFor} = window.ferplatform;  // static/js/api.js, static/js/dom.js

  const METHOD = {in_sample: "in-sample", out_of_fold: "out-of-fold", short_run: "short run",
                  dynamics: "training dynamics"};
  const num = (x, digits = 3) => (x === null || x === undefined ? "–" : Number(x).toFixed(digits));

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "estimating…";
    if (seconds < 90) return `${Math.round(seconds)} s`;
    if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
    return `${(seconds / 3600).toFixed(1)} h`;
  }

  // Where a running run is, in words: "fold 2/4 · epoch 5/12 · step 120/336 · loss 1.2345".
  function position(run) {
    const p = run.progress || {};
    if (p.kind === "predict") return `predicted ${p.done}/${p.total} faces`;
    const parts = [];
    if (p.fold) parts.push(`fold ${p.fold}/${p.folds || run.folds}`);
    if (p.kind === "batch") {
      parts.push(`epoch ${p.epoch}/${p.epochs || run.epochs_per_fold}`, `step ${p.step}/${p.steps}`);
      if (p.loss !== undefined) parts.push(`loss ${num(p.loss, 4)}`);
    } else if (p.kind === "epoch") {
      parts.push(`epoch ${p.epoch}/${p.epochs || run.epochs_per_fold} done`);
    } else if (p.kind === "fold") {
      parts.push(p.reused ? "reused from an earlier attempt" : "done");
    }
    return parts.join(" · ") || "starting…";
  }

  // Folds x epochs: one row per fold, one cell per epoch; the title of a cell gives its loss and time.
  function foldGrid(run) {
    const folds = run.folds, epochs = run.epochs_per_fold;
    if (!folds || !epochs) return null;
    const done = new Map(), foldDone = new Map();
    for (const h of run.history || []) {
      if (h.fold_done) foldDone.set(h.fold, h.reused ? "reused" : "done");
      else if (h.epoch) done.set(`${h.fold}:${h.epoch}`, h);
    }
    const p = run.progress || {};
    const current = run.status === "running" && p.kind === "batch" ? `${p.fold}:${p.epoch}` : null;
    const grid = el("div", {class: "folds", role: "img",
      "aria-label": `${foldDone.size} of ${folds} folds done`});
    for (let f = 1; f <= folds; f++) {
      const cells = el("div", {class: "cells"});
      for (let e = 1; e <= epochs; e++) {
        const key = `${f}:${e}`, entry = done.get(key);
        let state = foldDone.get(f) || (entry ? "done" : key === current ? "current" : "");
        const title = entry ? `fold ${f}, epoch ${e}: loss ${num(entry.train_loss, 4)}, ${num(entry.seconds, 0)} s`
          : `fold ${f}, epoch ${e}${state === "reused" ? ": reused" : state === "current" ? ": running" : ""}`;
        cells.append(el("span", {class: `cell ${state}`, title, "data-fold": f, "data-epoch": e}));
      }
      grid.append(el("div", {class: "fold", "data-fold": f}, [`fold ${f}`, cells]));
    }
    return grid;
  }

  function figures(run) {
    const rows = [
      ["faces scored", run.scored_count], ["flagged", run.issue_count],
      ["queue items created", run.items_created], ["updated", run.items_updated],
      ["retired (untouched, no longer flagged)", run.items_retired],
    ];
    const table = el("table", {class: "figures"});
    for (const [name, value] of rows) table.append(el("tr", {}, [el("th", {text: name}), el("td", {text: String(value)})]));
    const fp = run.ferplus;
    if (fp) {
      table.append(el("tr", {class: "ferplus"}, [
        el("th", {text: `against FER+ disagreement (${fp.faces_with_votes} faces with votes, ${fp.disagreeing} disagree)`}),
        el("td", {text: `precision@100 ${num(fp.precision_at_100)} · @500 ${num(fp.precision_at_500)} · ` +
                        `@1000 ${num(fp.precision_at_1000)} · AP ${num(fp.average_precision)}`}),
      ]));
    }
    return table;
  }

  function runCard(run) {
    const card = el("div", {class: "srun", "data-run-id": run.id, "data-status": run.status});
    const blended = run.blend_active ? `, averaged with ${run.model_version_name || "a deleted version"} in-sample` : "";
    const what = run.method === "in_sample"
      ? `in-sample with ${run.model_version_name || "a deleted version"}`
      : run.method === "short_run"
        ? `short run, ${run.epochs_per_fold} epochs${blended}`
        : run.method === "dynamics"
        ? `training dynamics of ${run.model_version_name || "a deleted version"}${blended}`
        : `out-of-fold, ${run.folds} folds x ${run.epochs_per_fold} epochs${blended}`;
    card.append(el("h3", {}, [`Run #${run.id} `, el("span", {class: `status ${run.status}`, text: run.status}),
      ` ${what}, ${run.ranking}, ${run.filter_by}`]));
    if (ACTIVE.has(run.status)) {
      const fraction = (run.progress && run.progress.fraction) || 0;
      card.append(el("progress", {max: 1, value: fraction, "aria-label": "share done"}));
      let text = run.status === "queued" ? "waiting for the bulk worker"
        : `${Math.round(100 * fraction)} % · ${position(run)} · ETA ${duration(run.progress && run.progress.eta_seconds)}`;
      if (run.cancel_requested) text += " · cancelling…";
      card.append(el("p", {class: "position", text}));
    } else if (run.status === "succeeded") {
      card.append(figures(run));
    }
    if (run.method === "out_of_fold") {
      const grid = foldGrid(run);
      if (grid) card.append(grid);
    }
    if (run.error && run.status !== "succeeded") card.append(el("p", {class: "error", text: run.error}));
    if (ACTIVE.has(run.status) && !run.cancel_requested) {
      const cancel = el("button", {type: "button", class: "secondary cancel", text: "Cancel"});
      cancel.addEventListener("click", () => act(urlFor(URLS.cancelUrl, run.id)));
      card.append(cancel);
    }
    if (run.status === "cancelled" || run.status === "failed") {
      const resume = el("button", {type: "button", class: "resume", text: "Resume"});
      resume.addEventListener("click", () => act(urlFor(URLS.resumeUrl, run.id)));
      card.append(resume);
    }
    return card;
  }

  let timer = null;
  async function refresh() {
    clearTimeout(timer);
    try {
      const runs = await api(URLS.runsUrl);
      const box = $("#runs");
      box.replaceChildren(...runs.map(runCard));
      if (!runs.length) box.append(el("p", {class: "hint", text: "No scoring run yet."}));
      $("#runs-status").textContent = "";
      if (runs.some((r) => ACTIVE.has(r.status))) timer = setTimeout(refresh, 2000);
    } catch (error) {
      $("#runs-status").textContent = `Could not load the runs: ${error.message}`;
      timer = setTimeout(refresh, 5000);
    }
  }

  async function act(url) {
    try {
      await api(url, {method: "POST"});
    } catch (error) {
      $("#runs-status").textContent = error.message;
    }
    refresh();
  }

  function methodChanged() {
    const inSample = $("#method").value === "in_sample";
    const trains = !inSample && $("#method").value !== "dynamics";
    $("#folds").disabled = $("#method").value !== "out_of_fold";
    $("#epochs").disabled = !trains;
    $("#blend-active").disabled = inSample || !URLS.activeVersion;
  }
  $("#method").addEventListener("change", methodChanged);
  methodChanged();

  $("#scoring-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const status = $("#start-status");
    const body = {method: $("#method").value, ranking: $("#ranking").value, filter_by: $("#filter-by").value};
    if (body.method !== "in_sample") {
      if (body.method === "out_of_fold") body.folds = Number($("#folds").value);
      if ($("#epochs").value && body.method !== "dynamics") body.epochs = Number($("#epochs").value);
      body.blend_active = $("#blend-active").checked;
    }
    if (Number($("#outliers").value) > 0) {
      body.outliers = Number($("#outliers").value);
      body.outlier_min_score = Number($("#outlier-min-score").value);
    }
    status.className = "";
    status.textContent = "starting…";
    try {
      const run = await api(URLS.runsUrl, {method: "POST", json: body});
      status.textContent = `Run #${run.id} queued.`;
    } catch (error) {
      status.className = "error";
      status.textContent = error.errors.length
        ? error.errors.map((e) => `${e.field}: ${e.detail}`).join("; ") : error.message;
    }
    refresh();
  });

  refresh();
})();
