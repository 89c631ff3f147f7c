// Status page: per queue the messages waiting, the workers consuming it and the age of its oldest job; per kind of
// job the queued, running and failed rows and what looks lost (with what the sweeper will do); the latest failures;
// workers, services and the active model. Drawn from the copy of the status API the page came with, then from the
// API every few seconds (not while the tab is hidden); a failed refresh keeps the last figures and says so.
// URLs come from #status-app's data attributes and from the API (admin links).
(function () {
  "use strict";

  const {api, el, json} = window.ferplatform;  // static/js/api.js, static/js/dom.js
  const APP = document.getElementById("status-app");
  const EVERY_MS = 1000 * Number(APP.dataset.refreshSeconds || 5);
  const DASH = "–";
  const $ = (id) => document.getElementById(id);

  const num = (n) => (n === null || n === undefined ? DASH : String(n));
  const clock = (iso) => (iso ? new Date(iso).toLocaleTimeString() : DASH);
  const when = (iso) => (iso ? new Date(iso).toLocaleString() : DASH);
  const level = (name) => `level-${name || "ok"}`;
  const bad = (text) => el("span", {class: "bad", text});
  const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

  function table(id, head, rows) {
    return el("table", {class: "counts status-table", id}, [
      el("thead", {}, el("tr", {}, head.map((h) => el("th", {text: h})))),
      el("tbody", {}, rows),
    ]);
  }

  // One full-width row per alert, under the row it is about.
  function alertRows(alerts, columns) {
    return alerts.map((a) => el("tr", {class: `alert-row ${level(a.level)}`, dataset: {code: a.code}},
      el("td", {colspan: columns, text: a.text})));
  }

  function summary(status) {
    const box = $("summary");
    box.className = `card summary ${level(status.level)}`;
    if (!status.alerts.length) {
      box.replaceChildren(el("p", {class: "all-clear", text: "All clear: no job waits too long, every queue with "
        + "work has a worker, no job looks lost."}));
      return;
    }
    const reds = status.alerts.filter((a) => a.level === "red").length;
    const title = reds ? `${plural(reds, "problem needs", "problems need")} someone`
      : "Slow, or about to be repaired by the sweeper";
    box.replaceChildren(el("h2", {text: title}), el("ul", {}, status.alerts.map((a) =>
      el("li", {class: level(a.level), dataset: {code: a.code}}, [el("strong", {text: `${a.where}: `}), a.text]))));
  }

  function queues(status, labels) {
    const rows = [];
    for (const q of status.queue_details) {
      const idle = !q.queued && !q.messages;
      const consumers = q.workers === null ? "unknown" : q.workers.length ? q.workers.join(", ")
        : idle ? "none" : bad("none");
      const oldest = q.oldest_wait === null ? DASH : [q.oldest_wait, el("small", {
        text: ` (${labels[q.oldest_queued_kind] || q.oldest_queued_kind} #${q.oldest_queued_id})`,
        title: `queued ${when(q.oldest_queued_at)}`})];
      // Waiting its turn behind running work is no alarm: say what it waits behind.
      if (q.waiting) oldest.push(el("div", {class: "waiting", text: q.waiting}));
      rows.push(el("tr", {class: level(q.level), dataset: {queue: q.queue, level: q.level}}, [
        el("th", {text: q.queue}),
        el("td", {class: "messages"}, q.messages === null ? bad("broker down") : String(q.messages)),
        el("td", {class: "consumers text"}, consumers),
        el("td", {class: "queued", text: num(q.queued)}),
        el("td", {class: "running", text: num(q.running)}),
        el("td", {class: "oldest"}, oldest),
      ]));
      rows.push(...alertRows(q.alerts, 6));
    }
    $("queues").replaceChildren(table("queue-table", ["queue", "messages waiting", "workers consuming it",
      "jobs queued", "running", "oldest waiting job"], rows));
  }

  function lostSignals(k) {
    const signs = [];
    if (k.lost_running) signs.push(`${k.lost_running} no heartbeat`);
    if (k.never_sent) signs.push(`${k.never_sent} never sent`);
    if (k.message_missing) signs.push(`${k.message_missing} message gone`);
    return signs.length ? signs.join(" · ") : DASH;
  }

  function kinds(status) {
    if (!status.jobs_by_kind.length) {
      $("kinds").replaceChildren(el("p", {class: "bad", text: "Unknown: the database is down."}));
      return;
    }
    const rows = [];
    for (const k of status.jobs_by_kind) {
      const lostLevel = k.alerts.length ? k.level : "ok";
      rows.push(el("tr", {class: level(k.level), dataset: {kind: k.kind, level: k.level}}, [
        el("th", {text: k.label, title: k.kind}),
        el("td", {class: "queue text", text: k.queue}),
        el("td", {class: "queued", text: num(k.queued)}),
        el("td", {class: "running", text: num(k.running)}),
        el("td", {class: "failed", text: num(k.failed)}),
        el("td", {class: "oldest", text: k.oldest_wait === null ? DASH
          : `${k.oldest_wait} (#${k.oldest_queued_id})`}),
        el("td", {class: `lost ${level(lostLevel)}`, text: lostSignals(k)}),
      ]));
      rows.push(...alertRows(k.alerts, 7));
    }
    $("kinds").replaceChildren(table("kind-table", ["kind of job", "queue", "queued", "running", "failed",
      "oldest waiting", "lost?"], rows));
    const t = status.thresholds;
    $("thresholds").textContent = `Amber: a queued job older than ${t.resend_after_s} s (WORK_RESEND_AFTER). `
      + `Lost: running with no heartbeat for ${t.heartbeat_timeout_s} s (WORK_HEARTBEAT_TIMEOUT); queued with `
      + "no message in the broker. The sweeper sends lost messages again and puts lost jobs back in the queue, "
      + "or fails them once their attempts are used up.";
  }

  function failures(status) {
    if (!status.jobs_by_kind.length) {
      $("failures").replaceChildren(el("p", {class: "bad", text: "Unknown: the database is down."}));
      return;
    }
    const rows = [];
    for (const k of status.jobs_by_kind) {
      for (const f of k.latest_failures) {
        const id = f.admin_url ? el("a", {href: f.admin_url, text: `#${f.id}`}) : `#${f.id}`;
        rows.push(el("tr", {dataset: {kind: k.kind, id: f.id}}, [
          el("th", {text: k.label}),
          el("td", {class: "id"}, id),
          el("td", {class: "when", text: f.ago, title: when(f.at)}),
          el("td", {class: "error-text", text: f.error}),
        ]));
      }
    }
    $("failures").replaceChildren(rows.length ? table("failure-table", ["kind of job", "id", "failed", "error"], rows)
      : el("p", {class: "hint", text: "No failed job."}));
  }

  function workers(status) {
    if (!status.workers.length) {
      const queues = status.queue_details.map((q) => q.queue).join(",");
      $("workers").replaceChildren(el("p", {class: "bad"}, [
        `No worker answered${status.workers_error ? ` (${status.workers_error})` : ""}. Start one with `,
        el("code", {text: `celery -A ferplatform worker -Q ${queues}`}), "."]));
      return;
    }
    $("workers").replaceChildren(table("worker-table", ["worker", "queues", "device", "pool"],
      status.workers.map((w) => el("tr", {dataset: {worker: w.name}}, [
        el("th", {text: w.name}),
        el("td", {class: "text", text: w.queues ? w.queues.join(", ") : "?"}),
        el("td", {class: "text", text: w.device || w.error || ""}),
        el("td", {class: "text", text: `${w.pool || ""} ${w.concurrency || ""}`}),
      ]))));
  }

  function services(status) {
    const db = status.database, broker = status.broker, sweeper = status.sweeper;
    const row = (part, state, detail, ms) => el("tr", {dataset: {part}}, [
      el("th", {text: part}), el("td", {class: `state-${state}`, text: state}),
      el("td", {class: "text"}, detail), el("td", {text: ms === undefined ? "" : String(ms)})]);
    const rows = [
      row("database", db.status, db.vendor || db.error || "", db.ms),
      row("broker", broker.status, [broker.transport, broker.error].filter(Boolean).join(" "), broker.ms),
    ];
    if (sweeper) {
      const every = sweeper.every_s ? `every ${sweeper.every_s} s` : "scheduled";
      const detail = !sweeper.scheduled ? "not scheduled in beat" : !sweeper.enabled ? "disabled in beat"
        : `${every}; ${sweeper.last_run_ago ? `beat last sent it ${sweeper.last_run_ago}` : "beat has never sent it"}`;
      rows.push(row("sweeper", {ok: "up", amber: "late", red: "off"}[sweeper.level],
        [detail, " (", el("a", {href: sweeper.admin_url, text: "periodic tasks"}), ")"]));
    }
    $("services").replaceChildren(table("service-table", ["part", "state", "detail", "ms"], rows));
  }

  function activeModel(status) {
    const m = status.active_model;
    if (!m) {
      $("active-model").replaceChildren(el("p", {class: "bad"}, ["No active model version. Run ",
        el("code", {text: "manage.py bootstrap"}), "."]));
      return;
    }
    const parts = [el("strong", {text: m.name}), ` (#${m.id}, ${m.arch})`];
    if (m.metrics && m.metrics.val_accuracy) parts.push(` · PublicTest accuracy ${m.metrics.val_accuracy.toFixed(3)}`);
    if (m.metrics && m.metrics.val_macro_f1) parts.push(` · macro-F1 ${m.metrics.val_macro_f1.toFixed(3)}`);
    parts.push(` · active since ${when(m.activated_at)}`);
    $("active-model").replaceChildren(el("p", {}, parts));
  }

  function splitJobs(status) {
    $("jobs").replaceChildren(status.jobs.length ? table("job-table", ["job", "split", "methods", "status", "done"],
      status.jobs.map((j) => el("tr", {}, [
        el("th", {text: `#${j.id}`}), el("td", {class: "text", text: `${j.dataset}/${j.split}`}),
        el("td", {class: "text", text: j.methods.join(", ")}), el("td", {text: j.status}),
        el("td", {text: `${j.done}/${j.total}`})])))
      : el("p", {class: "hint", text: "No split job queued or running."}));
  }

  let shown = null;  // checked_at of the figures on screen

  function render(status) {
    const labels = Object.fromEntries(status.jobs_by_kind.map((k) => [k.kind, k.label]));
    $("checked-at").textContent = `checked ${clock(status.checked_at)}`;
    summary(status);
    queues(status, labels);
    kinds(status);
    failures(status);
    workers(status);
    services(status);
    activeModel(status);
    splitJobs(status);
    shown = status.checked_at;
    APP.dataset.checkedAt = status.checked_at;
  }

  const state = $("refresh-state");
  let timer = null, busy = false;
  async function refresh() {
    window.clearTimeout(timer);
    if (busy) return;  // the request in flight schedules the next one
    busy = true;
    try {
      if (!document.hidden) {
        render(await api(APP.dataset.statusUrl));
        state.className = "hint";
        state.textContent = `Refreshes every ${EVERY_MS / 1000} s.`;
      }
    } catch (error) {
      state.className = "error";
      state.textContent = `Refresh failed (${error.message}): the figures below are from ${clock(shown)}; `
        + `trying again every ${EVERY_MS / 1000} s.`;
    } finally {
      busy = false;
      timer = window.setTimeout(refresh, EVERY_MS);
    }
  }

  render(json("status-data"));
  state.textContent = `Refreshes every ${EVERY_MS / 1000} s.`;
  timer = window.setTimeout(refresh, EVERY_MS);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
})();
