// Grid review, keyboard first: a leased page of faces sharing a label; the reviewer marks those that do not belong
// (arrows move, Space or a click marks, a class key gives the marked faces their class) and Enter sends the page.
// Every face is a vote: a marked one for its class, an unmarked one for the page's label. A sent page goes into the
// same outbox as the one-by-one page's votes (static/review/outbox.js, this tab's sessionStorage, its own key) and is
// sent from there, retried with backoff while the server does not answer, held when it is refused; the server
// counts a page sent twice once. The next page is leased once the outbox has nothing waiting.
(function () {
  "use strict";
  const app = document.getElementById("grid-app");
  if (!app) return;
  const {api, el} = window.ferplatform;  // static/js/api.js, static/js/dom.js
  const CLASSES = window.ferplatform.classes();
  const NOT_A_FACE = 7, UNSURE = 8, PENDING = "pending";
  const {Outbox, Backoff, outcome} = window.ferplatform.reviewOutbox;
  const $ = (id) => document.getElementById(id);
  // The page size: the server's default, or ?size= in the page's address (the API checks it: 24-48).
  const size = parseInt(new URLSearchParams(window.location.search).get("size") || app.dataset.size, 10) || 36;

  const outbox = new Outbox(`ferplatform.review.grid-outbox.${app.dataset.reviewer}`);
  const backoff = new Backoff();
  let page = null;          // {label, label_name, items}
  let marks = new Map();    // item id -> PENDING or a choice
  let focus = 0;
  let chosenLabel = null;   // the reviewer's pick; null: the server's
  let wantPage = true, busy = false, loggedOut = false, trouble = "", retryTimer = null;
  let leavingToLogIn = false;

  function say(text, isError) {
    $("status").textContent = text || "";
    $("status").classList.toggle("error", Boolean(isError));
  }

  function labelName(value) {
    if (value === NOT_A_FACE) return "not a face";
    if (value === UNSURE) return "unsure";
    return CLASSES[value];
  }

  function showProgress(progress) {
    if (!progress) return;
    $("items-left").textContent = progress.items_left;
    $("votes-today").textContent = progress.votes_today;
  }

  // Faces in pages the server does not have yet: a page leased meanwhile may hand them out again.
  function unsentIds() {
    return new Set(outbox.unsent().flatMap((e) => e.item.marks.map((m) => m.item)));
  }

  // --- the page ------------------------------------------------------------------------------------------------

  async function leasePage() {
    const query = new URLSearchParams({size: String(size)});
    if (chosenLabel !== null) query.set("label", String(chosenLabel));
    let data;
    try {
      data = await api(`${app.dataset.pageUrl}?${query}`);
    } catch (error) {
      if (failed(null, error) !== "retry") wantPage = false;
      return;
    }
    answered();
    wantPage = false;
    showProgress(data.progress);
    const unsent = unsentIds();
    page = {label: data.label, label_name: data.label_name, items: data.items.filter((i) => !unsent.has(i.id))};
    marks = new Map();
    focus = 0;
    renderLabels(data.labels, data.label);
    render();
  }

  function renderLabels(labels, current) {
    const select = $("label-choice");
    select.replaceChildren(...labels.map((l) => el("option", {value: String(l.label),
                                                               text: `${l.name} (${l.available})`})));
    if (current !== null) select.value = String(current);
  }

  function mark(item) {
    const value = marks.get(item.id);
    if (value === undefined) return null;
    if (value !== PENDING) return value;
    return item.suggested_label !== null && item.suggested_label !== page.label ? item.suggested_label : PENDING;
  }

  // The cells are built once per page; a key press only repaints their marks.
  function render() {
    const items = page ? page.items : [];
    $("page").hidden = !items.length;
    $("empty").hidden = Boolean(items.length) || wantPage || Boolean(trouble) || loggedOut;
    app.dataset.label = page && page.label !== null ? String(page.label) : "";
    app.dataset.items = String(items.length);
    if (!items.length) {
      $("grid").replaceChildren();
      return;
    }
    $("page-label").textContent = page.label_name;
    $("grid").replaceChildren(...items.map((item, k) => el("li", {
      class: "face-cell", role: "gridcell", "data-item-id": String(item.id), "data-index": String(k),
    }, [
      el("img", {src: item.image, alt: `face ${item.id}`, width: "96", height: "96"}),
      el("span", {class: "suggestion", text: item.suggested_label !== null && item.suggested_label !== page.label
        ? `suggests ${item.suggested_label_name}` : ""}),
      el("span", {class: "badge"}),
    ])));
    paint();
  }

  function paint() {
    app.dataset.focus = String(focus);
    app.dataset.marked = String(marks.size);
    if (!page) return;
    const cells = $("grid").children;
    page.items.forEach((item, k) => {
      const cell = cells[k], value = mark(item), explicit = marks.get(item.id) !== PENDING;
      cell.classList.toggle("focused", k === focus);
      cell.classList.toggle("marked", value !== null);
      cell.classList.toggle("tentative", value !== null && !explicit);
      cell.setAttribute("aria-selected", value !== null ? "true" : "false");
      cell.querySelector(".badge").textContent = value === null ? ""
        : (value === PENDING ? "→ ?" : `→ ${labelName(value)}`);
    });
  }

  function columns() {
    const template = getComputedStyle($("grid")).gridTemplateColumns;
    return Math.max(1, template.split(" ").filter(Boolean).length);
  }

  function move(dx, dy) {
    if (!page || !page.items.length) return;
    const n = page.items.length, cols = columns();
    const next = focus + dx + dy * cols;
    if (next >= 0 && next < n) focus = next;
    paint();
    const cell = $("grid").children[focus];
    if (cell && cell.scrollIntoView) cell.scrollIntoView({block: "nearest"});
  }

  function toggle(index) {
    if (!page || !page.items[index]) return;
    const id = page.items[index].id;
    if (marks.has(id)) marks.delete(id);
    else marks.set(id, PENDING);
    focus = index;
    paint();
  }

  // A class key: the class of every marked face still waiting for one; with none waiting, of the focused face. The
  // page's own label unmarks (it is what an unmarked face votes).
  function assign(choice) {
    if (!page || !page.items.length) return;
    let targets = page.items.filter((i) => marks.get(i.id) === PENDING);
    if (!targets.length) targets = [page.items[focus]];
    for (const item of targets) {
      if (choice === page.label) marks.delete(item.id);
      else marks.set(item.id, choice);
    }
    paint();
  }

  function submit() {
    if (!page || !page.items.length) return;
    const undecided = page.items.filter((i) => mark(i) === PENDING).length;
    if (undecided) {
      say(`${undecided} marked face${undecided === 1 ? " has" : "s have"} no class yet: press a class key.`, true);
      return;
    }
    const entryMarks = page.items.map((i) => ({item: i.id, choice: mark(i)}));
    const changed = entryMarks.filter((m) => m.choice !== null).length;
    outbox.add("page", {id: `page-${Date.now()}`, label: page.label, marks: entryMarks}, null);
    say(`Sent a page of ${entryMarks.length} ${page.label_name} faces (${changed} marked).`);
    page = null;
    marks = new Map();
    wantPage = true;
    render();
    pump();
  }

  // --- the outbox ------------------------------------------------------------------------------------------------

  async function pump() {
    if (busy) return;
    busy = true;
    update();
    try {
      for (;;) {
        if (loggedOut) {
          outbox.holdWaiting("you are logged out", true);
          break;
        } else if (backoff.waiting() > 0) {
          break;
        } else if (outbox.nextToSend()) {
          await send(outbox.nextToSend());
        } else if (wantPage && !page) {
          await leasePage();
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
      if (wait > 0 && !loggedOut && (outbox.nextToSend() || wantPage)) retryTimer = setTimeout(pump, wait);
      update();
    }
  }

  async function send(entry) {
    let result;
    try {
      result = await api(app.dataset.votesUrl, {method: "POST",
                                                json: {label: entry.item.label, items: entry.item.marks}});
    } catch (error) {
      failed(entry, error);
      return;
    }
    answered();
    outbox.set(entry, "stored");
    showProgress(result.progress);
    const refused = result.results.filter((r) => !r.stored);
    const settled = result.results.filter((r) => r.item_status === "settled").length;
    say(`Page stored: ${result.stored} votes` + (settled ? `, ${settled} faces settled` : "") +
      (refused.length ? `; ${refused.length} not counted (${[...new Set(refused.map((r) => r.result))].join(", ")})`
        : "") + ".", refused.length > 0);
  }

  function failed(entry, error) {
    const next = outcome(entry || {kind: "page"}, error);
    if (next === "retry") {
      trouble = error.status === undefined ? "no answer from the server" : error.message;
      backoff.failed((error.retryAfter || 0) * 1000);
      return next;
    }
    answered();
    if (next === "login") loggedOut = true;
    if (entry) outbox.set(entry, "held", error.message, next === "login");
    else if (next !== "login") say(error.message, true);
    return next;
  }

  function answered() {
    backoff.succeeded();
    trouble = "";
  }

  // data-pending: what the page will still do by itself; data-outbox: pages the server does not have.
  function update() {
    const waiting = outbox.waiting(), held = outbox.held();
    app.dataset.pending = String(Number(busy) + waiting.length + Number(wantPage && !page && !loggedOut));
    app.dataset.outbox = String(waiting.length + held.length);
    app.dataset.unsent = String(held.length);
    const box = $("outbox");
    box.hidden = !waiting.length && !held.length;
    box.classList.toggle("held", held.length > 0);
    const parts = [];
    if (waiting.length) {
      const wait = backoff.waiting();
      parts.push(el("p", {class: "outbox-waiting"}, [
        el("strong", {text: `${waiting.length} page${waiting.length === 1 ? "" : "s"} waiting to be sent`}),
        trouble ? ` (${trouble}): ` : ": ", busy || wait === 0 ? "sending…" : `next try in ${Math.ceil(wait / 1000)} s.`,
      ]));
    }
    if (held.length) {
      const login = held.some((e) => e.login);
      parts.push(el("p", {class: "outbox-unsent"}, [
        el("strong", {text: `${held.length} page${held.length === 1 ? "" : "s"} not sent`}),
        login ? ": you are logged out. " : `: ${held[0].error} `,
        login ? el("a", {class: "log-in", href: app.dataset.loginUrl, text: "Log in again"}) : null,
        el("button", {type: "button", class: "link", "data-action": "retry", text: "Try again"}),
      ]));
    }
    box.replaceChildren(...parts);
    if (!page || !page.items.length) {
      $("empty").hidden = wantPage || Boolean(trouble) || loggedOut;
      $("empty-reason").textContent = "There are no faces left for you right now.";
    }
  }

  $("outbox").addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button || button.dataset.action !== "retry") return;
    button.blur();
    loggedOut = false;
    outbox.releaseHeld();
    backoff.skip();
    pump();
  });

  app.addEventListener("click", (event) => {
    if (event.target.closest("a.log-in")) leavingToLogIn = true;
  });

  window.addEventListener("online", () => {
    backoff.skip();
    pump();
  });

  window.addEventListener("beforeunload", (event) => {
    if (leavingToLogIn || !outbox.unsent().length) return;
    event.preventDefault();
    event.returnValue = "";
  });

  $("grid").addEventListener("click", (event) => {
    const cell = event.target.closest("li.face-cell");
    if (cell) toggle(parseInt(cell.dataset.index, 10));
  });

  $("choices").addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    button.blur();  // keep Enter and Space for the grid
    if (button.dataset.choice !== undefined) assign(parseInt(button.dataset.choice, 10));
    else if (button.dataset.action === "submit") submit();
  });

  $("label-choice").addEventListener("change", (event) => {
    chosenLabel = parseInt(event.target.value, 10);
    event.target.blur();
    page = null;  // its faces stay leased until their leases run out
    wantPage = true;
    render();
    pump();
  });

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target instanceof HTMLInputElement || event.target instanceof HTMLSelectElement ||
        event.target instanceof HTMLTextAreaElement) return;
    const key = event.key, help = $("help");
    if (key === "?") { help.hidden = !help.hidden; event.preventDefault(); return; }
    if (key === "Escape") { help.hidden = true; return; }
    if (!help.hidden) return;
    const moves = {ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1]};
    if (moves[key]) move(...moves[key]);
    else if (key === " ") toggle(focus);
    else if (key >= "1" && key <= "9") assign(parseInt(key, 10) - 1);
    else if (key === "Enter") submit();
    else return;
    event.preventDefault();
  });

  pump();
})();
