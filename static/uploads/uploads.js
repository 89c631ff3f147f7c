// Upload page: send images to the uploads API, show each face crop, class probabilities and heatmap, switch CAM
// method, and reopen earlier uploads. Plain JS, no external assets; the URLs come from #upload-app's data attributes.
(function () {
  "use strict";

  const {api, el, urlFor, json, requestHeatmap} = window.ferplatform;  // static/js/{api,dom,heatmaps}.js
  const URLS = document.getElementById("upload-app").dataset;  // uploadsUrl, uploadUrl, explanationsUrl
  const CLASSES = window.ferplatform.classes();  // rendered by the server in base.html
  const METHODS = json("upload-methods");
  const FINISHED = new Set(["done", "failed", "no_face"]);
  const STATUS_TEXT = {
    queued: "queued…", processing: "making heatmap…", done: "done", failed: "failed", no_face: "no face found",
  };

  const $ = (selector, root = document) => root.querySelector(selector);
  const results = $("#results");
  const statusLine = $("#upload-status");
  let historyNext = null;

  function setStatus(text, isError = false) {
    statusLine.textContent = text;
    statusLine.classList.toggle("error", isError);
  }

  // --- one result card ---------------------------------------------------------------------------------------------

  function cardFor(upload) {
    let card = results.querySelector(`[data-upload-id="${upload.id}"]`);
    if (card) return card;
    const select = el("select", {class: "cam-method", "aria-label": "CAM method"},
      METHODS.map((m) => el("option", {value: m, text: m})));
    select.addEventListener("change", () => switchMethod(card, select.value));
    card = el("article", {class: "result", "data-upload-id": upload.id}, [
      el("header", {}, [el("span", {class: "name"}), el("span", {class: "state"})]),
      el("div", {class: "result-body"}, [
        el("figure", {}, [el("img", {class: "face-crop", alt: "face crop", width: "144", height: "144"}),
          el("figcaption", {text: "face (48x48)"})]),
        el("figure", {}, [el("img", {class: "overlay", alt: "heatmap", width: "144", height: "144"}),
          el("figcaption", {class: "overlay-caption", text: "heatmap"}), select]),
        el("div", {class: "bars"}),
      ]),
    ]);
    results.prepend(card);
    return card;
  }

  function render(upload) {
    const card = cardFor(upload);
    card.dataset.status = upload.status;
    card.dataset.predicted = upload.predicted_label || "";
    $(".name", card).textContent = upload.original_name || upload.id;
    $(".name", card).title = `${upload.original_name} · ${upload.width}x${upload.height}`;
    const state = $(".state", card);
    state.dataset.status = upload.status;
    let text = STATUS_TEXT[upload.status] || upload.status;
    if (upload.status === "done" && upload.predicted_label) text = `${upload.predicted_label}`;
    if (upload.status !== "no_face" && !upload.face_found && upload.face_url) text += " (no face found: whole image)";
    if (upload.error) text += `: ${upload.error}`;
    state.textContent = text;
    const crop = $(".face-crop", card);
    if (upload.face_url && crop.getAttribute("src") !== upload.face_url) crop.src = upload.face_url;
    renderBars($(".bars", card), upload);
    const select = $(".cam-method", card);
    if (!card.dataset.method) card.dataset.method = upload.methods[0] || METHODS[0];
    select.value = card.dataset.method;
    select.disabled = !upload.predicted_label;
    const heatmap = (upload.heatmaps || []).find(
      (h) => h.method === card.dataset.method && h.target_label === upload.predicted_label);
    if (heatmap) showOverlay(card, heatmap);
  }

  function renderBars(container, upload) {
    container.replaceChildren();
    if (!upload.probabilities) {
      container.append(el("p", {class: "meta", text: upload.status === "no_face"
        ? "No face found; nothing was predicted. Upload again with “use the whole image” to predict anyway."
        : "waiting for the prediction…"}));
      return;
    }
    for (const name of CLASSES) {
      const p = upload.probabilities[name];
      const pct = (100 * p).toFixed(1);
      const fill = el("span", {class: "fill", style: {width: `${pct}%`}});
      container.append(el("div", {class: "bar-row" + (name === upload.predicted_label ? " predicted" : ""),
        "data-class": name}, [
        el("span", {class: "label", text: name}),
        el("span", {class: "bar", role: "img", "aria-label": `${name} ${pct}%`}, [fill]),
        el("span", {class: "pct", text: `${pct}%`}),
      ]));
    }
  }

  function showOverlay(card, heatmap) {
    const img = $(".overlay", card);
    if (img.getAttribute("src") !== heatmap.url) img.src = heatmap.url;
    img.dataset.method = heatmap.method;
    setCaption(card, `${heatmap.method} → ${heatmap.target_label}`, "shown");
  }

  function setCaption(card, text, state) {
    const caption = $(".overlay-caption", card);
    caption.textContent = text;
    caption.dataset.state = state;
    caption.classList.toggle("error", state === "error");
  }

  // A heatmap not stored yet is made by a worker (202): static/js/heatmaps.js asks again until it is there.
  async function switchMethod(card, method) {
    card.dataset.method = method;
    const ticket = String(Number(card.dataset.ask || 0) + 1);  // a later switch (even back to this method) wins
    card.dataset.ask = ticket;
    const current = () => card.isConnected && card.dataset.ask === ticket;
    setCaption(card, `${method}…`, "asking");
    try {
      const heatmap = await requestHeatmap(urlFor(URLS.explanationsUrl, card.dataset.uploadId), {method}, {
        onPending: () => { if (current()) setCaption(card, `computing ${method} on a worker…`, "pending"); },
        isCurrent: current,
      });
      if (heatmap && current()) showOverlay(card, heatmap);
    } catch (error) {
      if (current()) setCaption(card, error.message, "error");
    }
  }

  async function follow(upload) {
    render(upload);
    for (let attempt = 0; !FINISHED.has(upload.status) && attempt < 30; attempt++) {
      try {
        upload = await api(`${urlFor(URLS.uploadUrl, upload.id)}?wait=10`);
      } catch (error) {
        $(".state", cardFor(upload)).textContent = error.message;
        return;
      }
      render(upload);
    }
  }

  // --- sending files -----------------------------------------------------------------------------------------------

  async function send(files) {
    if (!files.length) return;
    const form = new FormData();
    for (const file of files) form.append("images", file, file.name);
    const params = new URLSearchParams();
    const noFace = $("#no-face").value;
    if (noFace) params.set("no_face", noFace);
    params.set("methods", $("#upload-method").value);
    setStatus(`uploading ${files.length} image${files.length > 1 ? "s" : ""}…`);
    try {
      const data = await api(`${URLS.uploadsUrl}?${params}`, {method: "POST", body: form});
      setStatus(`${data.uploads.length} uploaded`);
      await Promise.all(data.uploads.map((upload) => {
        cardFor(upload).dataset.method = $("#upload-method").value;
        return follow(upload);
      }));
      loadHistory(true);
    } catch (error) {
      const lines = [error.message];
      for (const problem of error.errors) lines.push(`${problem.field || problem.file}: ${problem.detail}`);
      setStatus(lines.join("\n"), true);
    }
  }

  const dropzone = $("#dropzone");
  for (const type of ["dragenter", "dragover"]) {
    dropzone.addEventListener(type, (event) => { event.preventDefault(); dropzone.classList.add("over"); });
  }
  for (const type of ["dragleave", "drop"]) {
    dropzone.addEventListener(type, (event) => { event.preventDefault(); dropzone.classList.remove("over"); });
  }
  dropzone.addEventListener("drop", (event) => send([...event.dataTransfer.files]));
  for (const input of [$("#file-input"), $("#camera-input")]) {
    input.addEventListener("change", () => { send([...input.files]); input.value = ""; });
  }

  // --- history -----------------------------------------------------------------------------------------------------

  async function loadHistory(reset) {
    const list = $("#history");
    const url = reset || !historyNext ? URLS.uploadsUrl : historyNext;
    let page;
    try { page = await api(url); } catch (error) { return; }
    if (reset) list.replaceChildren();
    for (const upload of page.results) {
      const open = el("button", {type: "button", text: upload.original_name || upload.id});
      open.addEventListener("click", async () => {
        const existing = results.querySelector(`[data-upload-id="${upload.id}"]`);
        if (existing) existing.remove();
        follow(await api(urlFor(URLS.uploadUrl, upload.id)));
        window.scrollTo({top: results.offsetTop, behavior: "smooth"});
      });
      const label = upload.predicted_label || STATUS_TEXT[upload.status] || upload.status;
      const when = new Date(upload.created_at).toLocaleString();
      list.append(el("li", {"data-upload-id": upload.id}, [open, " ", el("span", {class: "meta", text: `${label} · ${when}`})]));
    }
    historyNext = page.next;
    $("#history-more").hidden = !page.next;
  }
  $("#history-more").addEventListener("click", () => loadHistory(false));
  loadHistory(true);
})();
