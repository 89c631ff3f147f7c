// Upload page: send images to the uploads API, show each photo with a labelled box on every face found, and the
// chosen face's crop, class probabilities and heatmap; switch CAM method, and reopen earlier uploads. Plain JS, no
// external assets; the URLs come from #upload-app's data attributes. Keys 1-9 choose a face of the card in focus.
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
    card = el("article", {class: "result", "data-upload-id": upload.id, "data-face": "0", tabindex: "-1"}, [
      el("header", {}, [el("span", {class: "name"}), el("span", {class: "state"})]),
      el("div", {class: "photo", hidden: true}, [
        el("img", {class: "photo-image", alt: "uploaded photo with a box on each face"}),
        el("div", {class: "face-boxes", role: "group", "aria-label": "faces found"}),
      ]),
      el("div", {class: "result-body"}, [
        el("figure", {}, [el("img", {class: "face-crop", alt: "face crop", width: "144", height: "144"}),
          el("figcaption", {class: "face-caption", text: "face (48x48)"})]),
        el("figure", {}, [el("img", {class: "overlay", alt: "heatmap", width: "144", height: "144"}),
          el("figcaption", {class: "overlay-caption", text: "heatmap"}), select]),
        el("div", {class: "bars"}),
      ]),
    ]);
    card.addEventListener("keydown", (event) => {
      const index = Number(event.key) - 1;  // keys 1-9 open faces 1-9 of this card
      if (event.target.tagName === "SELECT" || !(index >= 0 && index < (card.upload?.faces || []).length)) return;
      event.preventDefault();
      chooseFace(card, index);
      $(`.face-box[data-index="${index}"]`, card).focus();
    });
    results.prepend(card);
    return card;
  }

  // The face the card shows: one of upload.faces, or the upload's own fields when it lists none (no face found).
  function shownFace(card, upload) {
    const faces = upload.faces || [];
    return faces[Number(card.dataset.face)] || faces[0] || upload;
  }

  function faceLabel(face) {
    if (face.predicted_label) return `${face.predicted_label} ${(100 * face.confidence).toFixed(0)}%`;
    return STATUS_TEXT[face.status] || face.status;
  }

  function render(upload) {
    const card = cardFor(upload);
    card.upload = upload;
    card.dataset.status = upload.status;
    card.dataset.faces = String((upload.faces || []).length);
    $(".name", card).textContent = upload.original_name || upload.id;
    $(".name", card).title = `${upload.original_name} · ${upload.width}x${upload.height}`;
    const state = $(".state", card);
    state.dataset.status = upload.status;
    let text = STATUS_TEXT[upload.status] || upload.status;
    const faces = upload.faces || [];
    if (upload.status === "done" && upload.predicted_label) text = `${upload.predicted_label}`;
    if (faces.length > 1) text = `${faces.length} faces · ${text}`;
    if (upload.status !== "no_face" && !upload.face_found && upload.face_url) text += " (no face found: whole image)";
    if (upload.error) text += `: ${upload.error}`;
    state.textContent = text;
    renderPhoto(card, upload);
    renderFace(card, upload);
  }

  // The photo with a labelled box on each face, placed in percent of the photo so that they follow its shown size.
  function renderPhoto(card, upload) {
    const photo = $(".photo", card);
    const faces = (upload.faces || []).filter((face) => face.box);
    photo.hidden = !upload.photo_url || !faces.length;
    if (photo.hidden) return;
    const img = $(".photo-image", card);
    if (img.getAttribute("src") !== upload.photo_url) img.src = upload.photo_url;
    const boxes = $(".face-boxes", card);
    boxes.replaceChildren();
    for (const face of faces) {
      const {x, y, w, h} = face.box;
      const label = `${face.index + 1} ${faceLabel(face)}`;
      const button = el("button", {
        type: "button", class: "face-box", "data-index": String(face.index), "aria-pressed": "false",
        "aria-label": `face ${label}`, title: `face ${face.index + 1}: ${x},${y} ${w}x${h}`,
        style: {left: `${100 * x / upload.width}%`, top: `${100 * y / upload.height}%`,
          width: `${100 * w / upload.width}%`, height: `${100 * h / upload.height}%`},
      }, [el("span", {class: "face-label", text: label})]);
      button.addEventListener("click", () => chooseFace(card, face.index));
      boxes.append(button);
    }
    markChosen(card);
  }

  function markChosen(card) {
    for (const button of card.querySelectorAll(".face-box")) {
      const chosen = button.dataset.index === card.dataset.face;
      button.classList.toggle("chosen", chosen);
      button.setAttribute("aria-pressed", String(chosen));
    }
  }

  function chooseFace(card, index) {
    if (card.dataset.face === String(index)) return;
    card.dataset.face = String(index);
    card.dataset.ask = String(Number(card.dataset.ask || 0) + 1);  // a heatmap still asked for another face is dropped
    markChosen(card);
    renderFace(card, card.upload);
  }

  // Crop, bars and heatmap of the chosen face.
  function renderFace(card, upload) {
    const face = shownFace(card, upload);
    const many = (upload.faces || []).length > 1;
    card.dataset.predicted = face.predicted_label || "";
    $(".face-caption", card).textContent = many ? `face ${face.index + 1} (48x48)` : "face (48x48)";
    const crop = $(".face-crop", card);
    if (face.face_url && crop.getAttribute("src") !== face.face_url) crop.src = face.face_url;
    renderBars($(".bars", card), face, upload.status);
    const select = $(".cam-method", card);
    if (!card.dataset.method) card.dataset.method = upload.methods[0] || METHODS[0];
    select.value = card.dataset.method;
    select.disabled = !face.predicted_label;
    const heatmap = (face.heatmaps || []).find(
      (h) => h.method === card.dataset.method && h.target_label === face.predicted_label);
    if (heatmap) {
      showOverlay(card, heatmap);
      return;
    }
    if (card.dataset.shownFace !== card.dataset.face) {  // never another face's heatmap over this one's crop
      $(".overlay", card).removeAttribute("src");
      setCaption(card, "heatmap", "waiting");
    }
    const wanted = `${card.dataset.face}/${card.dataset.method}`;
    if (face.predicted_label && FINISHED.has(upload.status) && card.dataset.asked !== wanted) {
      switchMethod(card, card.dataset.method);  // not stored with the result (made later, on demand): ask for it
    }
  }

  function renderBars(container, upload, uploadStatus) {
    container.replaceChildren();
    if (!upload.probabilities) {
      container.append(el("p", {class: "meta", text: uploadStatus === "no_face"
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
    card.dataset.shownFace = card.dataset.face;
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
    card.dataset.asked = `${card.dataset.face}/${method}`;
    const ticket = String(Number(card.dataset.ask || 0) + 1);  // a later switch (even back to this method) wins
    card.dataset.ask = ticket;
    const current = () => card.isConnected && card.dataset.ask === ticket;
    setCaption(card, `${method}…`, "asking");
    try {
      const body = {method, face: Number(card.dataset.face)};
      const heatmap = await requestHeatmap(urlFor(URLS.explanationsUrl, card.dataset.uploadId), body, {
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
