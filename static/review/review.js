// Review screen, keyboard first. Items are leased a few at a time (prefetch), so the next face is already
// loaded when a vote is cast. Votes and skips go into an outbox (static/review/outbox.js, kept in sessionStorage)
// and are sent from there by one loop, one request at a time and in order, so that undo follows its vote: a try
// that gets no answer, a 502/503/504 or a 429 is made again with backoff while the reviewer goes on; a 409
// "already_voted" means the server has the vote; an expired session or another refusal holds the vote, shown with
// a count and what to do. Z takes back the newest vote: from the outbox if the server does not have it, else
// through the undo endpoint (which undoes the reviewer's newest stored vote).
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

  const {Outbox, Backoff, outcome} = window.ferplatform.reviewOutbox;  // static/review/outbox.js

  let queue = [];          // leased items not shown yet
  let current = null;      // the item on screen
  const outbox = new Outbox(`ferplatform.review.outbox.${app.dataset.reviewer}`);
  const backoff = new Backoff();
  const done = outbox.itemIds();  // ids voted on or skipped in this page (the server lists them until it has those)
  const modelViews = new Map();  // item id -> {view, loading, timer, since, gaveUp, error}
  let busy = false;        // the send loop is running (a request may be in flight)
  let undos = 0;           // Z presses not acted on yet
  let wantItems = true;    // the queue is to be topped up (at the start and after each stored vote or skip)
  let loggedOut = false;   // a 401/403: nothing is sent until the reviewer logs in again (or tries again)
  let trouble = "";        // why the last try failed, while tries are failing (no answer, the database is down...)
  let retryTimer = null, tickTimer = null;
  let leavingToLogIn = false;

  function say(text, isError) {
    const line = $("status");
    line.textContent = text || "";
    line.classList.toggle("error", Boolean(isError));
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
    let data;
    try {
      data = await api(`${app.dataset.nextUrl}?count=${prefetch}`);
    } catch (error) {
      if (failed({kind: "next"}, error) !== "retry") wantItems = false;
      return;
    }
    answered();
    wantItems = false;
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
    renderPlaceholder();
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
    $("item-kind").textContent = current.kind_label || "label issue";
    $("item-kind").dataset.kind = current.kind || "label_issue";
    $("reasons").replaceChildren(...(current.reasons || []).map((text) => el("li", {text})));
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

  // No face on screen: nothing left to review, or the server cannot hand out more right now.
  function renderPlaceholder() {
    const stuck = !current && Boolean(trouble || loggedOut);
    $("empty").hidden = Boolean(current) || stuck || wantItems;
    $("waiting-items").hidden = !stuck;
    $("waiting-items-reason").replaceChildren(...(loggedOut
      ? ["You are logged out: ", el("a", {class: "log-in", href: app.dataset.loginUrl, text: "log in again"}),
        " to get more faces."]
      : [`More faces come once the server answers again (${trouble}).`]));
  }

  // --- the outbox ------------------------------------------------------------------------------------------------

  function vote(choice) {
    if (!current) return;
    const item = current;
    done.add(item.id);
    advance();  // the next face is already here; the vote is sent behind it
    outbox.add("vote", item, choice);
    say(`Voted ${labelName(choice)} on item ${item.id}.`);
    pump();
  }

  function skip() {
    if (!current) return;
    const item = current;
    done.add(item.id);
    advance();
    outbox.add("skip", item, null);
    say(`Skipped item ${item.id}.`);
    pump();
  }

  function undo() {
    undos += 1;
    pump();
  }

  // The one loop that talks to the vote, skip, undo and next endpoints: undos first (they act on what was sent
  // before them), then the outbox in order, then new items. It stops while a backoff runs and sets the one timer
  // that starts it again.
  async function pump() {
    if (busy) return;
    busy = true;
    update();
    try {
      for (;;) {
        if (undos > 0) {
          undos -= 1;
          await undoNewest();
        } else if (loggedOut) {
          outbox.holdWaiting("you are logged out", true);
          break;
        } else if (backoff.waiting() > 0) {
          break;
        } else if (outbox.nextToSend()) {
          await send(outbox.nextToSend());
        } else if (wantItems) {
          await topUp();
        } else {
          break;
        }
        update();
      }
    } catch (error) {
      say(error.message, true);  // a bug, not an answer: the outbox keeps what was not sent
    } finally {
      busy = false;
      clearTimeout(retryTimer);
      const wait = backoff.waiting();
      if (wait > 0 && !loggedOut && (outbox.nextToSend() || wantItems)) retryTimer = setTimeout(pump, wait);
      update();
    }
  }

  async function send(entry) {
    const id = entry.item.id;
    try {
      if (entry.kind === "vote") {
        const result = await api(urlFor(app.dataset.voteUrl, id), {method: "POST", json: {choice: entry.choice}});
        showProgress(result.progress);
        if (result.item_status === "settled") say(`Item ${id} settled as ${labelName(result.settled_label)}.`);
      } else {
        await api(urlFor(app.dataset.skipUrl, id), {method: "POST"});
      }
    } catch (error) {
      if (outcome(entry, error) !== "sent") {
        failed(entry, error);
        return;
      }
    }
    answered();
    outbox.set(entry, "stored");
    wantItems = true;
  }

  // A failed request: try again later, or hold the entry (when there is one) until the reviewer acts. Returns
  // what it was (see outcome in outbox.js).
  function failed(entry, error) {
    const next = outcome(entry, error);
    if (next === "retry") {
      trouble = error.status === undefined ? "no answer from the server" : error.message;
      backoff.failed((error.retryAfter || 0) * 1000);
      return next;
    }
    answered();
    if (next === "login") loggedOut = true;
    if (entry.seq !== undefined) outbox.set(entry, "held", error.message, next === "login");
    else if (next !== "login") say(error.message, true);
    return next;
  }

  function answered() {  // the server is back: the next try goes at once
    backoff.succeeded();
    trouble = "";
  }

  // Z: the newest vote. If the server does not have it (waiting, or held), it only leaves the outbox; an older vote
  // the server has is never undone in its place. Otherwise the undo endpoint takes back the newest vote stored.
  async function undoNewest() {
    const last = outbox.lastVote();
    if (last && last.state !== "stored") {
      outbox.remove(last);
      bringBack(last.item);
      say(`Took back your ${labelName(last.choice)} vote on item ${last.item.id}; it had not been sent.`);
      return;
    }
    let result;
    try {
      result = await api(app.dataset.undoUrl, {method: "POST"});
    } catch (error) {
      if (outcome({kind: "undo"}, error) === "login") loggedOut = true;
      say(`Could not undo: ${error.message}`, true);  // not retried: a late undo would surprise more than help
      return;
    }
    const item = result.item;
    const entry = outbox.lastStoredVoteOn(item.id);
    if (entry) outbox.remove(entry);
    showProgress(result.progress);
    bringBack(item);
    say(`Undid your ${labelName(result.undone_choice)} vote on item ${item.id}` +
      (result.item_status !== "settled" ? "." : " (the item stays settled by the other votes)."));
  }

  function bringBack(item) {
    done.delete(item.id);
    queue = queue.filter((i) => i.id !== item.id);
    if (current && current.id !== item.id) queue.unshift(current);
    current = item;
    loadModelView(item.id);
    render();
  }

  // The page's state for the reviewer (the outbox line) and for tests: data-pending counts what the page will still
  // do by itself, data-outbox the votes and skips the server does not have, data-unsent those held back.
  function update() {
    const waiting = outbox.waiting(), held = outbox.held();
    app.dataset.pending = String(Number(busy) + waiting.length + undos + Number(wantItems && !loggedOut));
    app.dataset.outbox = String(waiting.length + held.length);
    app.dataset.unsent = String(held.length);
    renderOutbox(waiting, held);
    renderPlaceholder();
    clearTimeout(tickTimer);  // the countdown; the retry itself is pump's timer
    if (!busy && waiting.length && backoff.waiting() > 0) tickTimer = setTimeout(update, 1000);
  }

  function counted(entries) {
    const votes = entries.filter((e) => e.kind === "vote").length, skips = entries.length - votes;
    const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
    return [votes && plural(votes, "vote"), skips && plural(skips, "skip")].filter(Boolean).join(" and ");
  }

  function renderOutbox(waiting, held) {
    const box = $("outbox");
    box.hidden = !waiting.length && !held.length;
    box.classList.toggle("held", held.length > 0);
    const parts = [];
    if (waiting.length) {
      const wait = backoff.waiting();
      const when = busy || wait === 0 ? "sending…" : `next try in ${Math.ceil(wait / 1000)} s.`;
      parts.push(el("p", {class: "outbox-waiting"}, [
        el("strong", {text: `${counted(waiting)} waiting to be sent`}), trouble ? ` (${trouble}): ` : ": ", when,
        busy || wait === 0 ? null : el("button", {type: "button", class: "link", "data-action": "send-now",
                                                 text: "Send now"}),
      ]));
    }
    if (held.length) {
      const login = held.some((e) => e.login);
      parts.push(el("p", {class: "outbox-unsent"}, [
        el("strong", {}, [el("span", {id: "unsent-count", text: String(held.length)}), " not sent"]),
        login ? ": you are logged out. " : ": the server refused them. ",
        login ? el("a", {class: "log-in", href: app.dataset.loginUrl, text: "Log in again"}) : null,
        login ? "; they are kept in this tab and sent once you are back. " : null,
        el("button", {type: "button", class: "link", "data-action": "retry", text: "Try again"}),
      ]));
      parts.push(el("ul", {class: "outbox-list"}, held.map((e) => el("li", {}, [
        `item ${e.item.id}, ${e.kind === "vote" ? labelName(e.choice) : "skip"}: ${e.error} `,
        el("button", {type: "button", class: "link", "data-action": "discard", "data-seq": String(e.seq),
                      text: "Discard"}),
      ]))));
    }
    box.replaceChildren(...parts);
  }

  // Logging in again keeps the outbox (it is in this tab's storage): no "leave the page?" question on the way.
  app.addEventListener("click", (event) => {
    if (event.target.closest("a.log-in")) leavingToLogIn = true;
  });

  $("outbox").addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    button.blur();  // keep Enter for "accept the suggestion"
    const action = button.dataset.action;
    if (action === "retry") {
      loggedOut = false;
      wantItems = true;
      outbox.releaseHeld();
    } else if (action === "discard") {
      const entry = outbox.entries.find((e) => e.seq === Number(button.dataset.seq));
      if (entry) {
        outbox.remove(entry);
        done.delete(entry.item.id);  // it comes back if the server still leases it to this reviewer
        wantItems = true;
      }
    }
    backoff.skip();
    pump();
  });

  window.addEventListener("online", () => {
    backoff.skip();
    pump();
  });

  // Closing the tab would lose what the server does not have (a reload or the login page would not).
  window.addEventListener("beforeunload", (event) => {
    if (leavingToLogIn || !outbox.unsent().length) return;
    event.preventDefault();
    event.returnValue = "";
  });

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

  pump();
})();
