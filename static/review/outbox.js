// The review page's outbox: votes and skips wait here, in the order they were cast, until the server has them. It is
// kept in this tab's sessionStorage, so a reload or a trip to the login page loses nothing. One outbox per tab and
// reviewer: two tabs sharing one (localStorage) would overwrite each other's writes and send each other's votes.
// review.js sends from it, one request at a time; this file knows no DOM and no URLs.
(function () {
  "use strict";

  // Backoff between tries while the server cannot answer: 0.5 s, doubling up to 15 s, each +-20% so that pages
  // that lost the server together do not come back together; never sooner than the server's Retry-After.
  const RETRY_FIRST_MS = 500, RETRY_MAX_MS = 15000;
  const TRANSIENT = new Set([429, 502, 503, 504]);

  // What a failed send means for the entry: "retry" (later, with backoff), "sent" (the server already has this
  // vote: the answer to an earlier try was lost), "login" (the session is gone) or "refused" (for good).
  function outcome(entry, error) {
    if (error.status === undefined || TRANSIENT.has(error.status)) return "retry";  // undefined: no answer at all
    if (entry.kind === "vote" && error.status === 409 && error.code === "already_voted") return "sent";
    if (error.status === 401 || error.status === 403) return "login";
    return "refused";
  }

  class Backoff {
    constructor() { this.delay = 0; this.until = 0; }
    failed(atLeastMs = 0) {
      this.delay = this.delay ? Math.min(this.delay * 2, RETRY_MAX_MS) : RETRY_FIRST_MS;
      const jittered = Math.min(this.delay * (0.8 + 0.4 * Math.random()), RETRY_MAX_MS);
      this.until = Date.now() + Math.max(jittered, atLeastMs);
    }
    succeeded() { this.delay = 0; this.until = 0; }
    skip() { this.until = 0; }  // "send now": the next try goes at once, the delay after it keeps growing
    waiting() { return Math.max(0, this.until - Date.now()); }
  }

  // An entry: {seq, kind: "vote" | "skip", item (as the next endpoint served it), choice, state, error, login}.
  // state: "waiting" (to send, or being sent), "held" (refused; the reviewer decides) or "stored" (the server has it).
  // Stored entries stay only while an unsent one comes before them: they tell undo which vote is the newest.
  class Outbox {
    constructor(key) {
      this.key = key;
      this.entries = this.load();
      this.seq = this.entries.reduce((most, e) => Math.max(most, e.seq), 0);
    }

    load() {
      let entries = [];
      try { entries = JSON.parse(sessionStorage.getItem(this.key) || "[]"); } catch (e) { entries = []; }
      if (!Array.isArray(entries)) return [];
      // After a reload (often: after logging in again) what was held is tried again.
      return entries.map((e) => (e.state === "stored" ? e : {...e, state: "waiting", error: "", login: false}));
    }

    save() {
      const first = this.entries.findIndex((e) => e.state !== "stored");
      this.entries = first === -1 ? [] : this.entries.slice(first);
      try {
        sessionStorage.setItem(this.key, JSON.stringify(this.entries));
      } catch (e) { /* storage full or off: the page still has them, only a reload would lose them */ }
    }

    add(kind, item, choice) {
      const entry = {seq: ++this.seq, kind, item, choice, state: "waiting", error: "", login: false};
      this.entries.push(entry);
      this.save();
      return entry;
    }

    set(entry, state, error = "", login = false) {
      Object.assign(entry, {state, error, login});
      this.save();
    }

    remove(entry) {
      this.entries = this.entries.filter((e) => e !== entry);
      this.save();
    }

    nextToSend() { return this.entries.find((e) => e.state === "waiting") || null; }
    lastVote() { return [...this.entries].reverse().find((e) => e.kind === "vote") || null; }
    lastStoredVoteOn(itemId) {
      return [...this.entries].reverse().find((e) => e.kind === "vote" && e.state === "stored" && e.item.id === itemId)
        || null;
    }
    unsent() { return this.entries.filter((e) => e.state !== "stored"); }
    held() { return this.entries.filter((e) => e.state === "held"); }
    waiting() { return this.entries.filter((e) => e.state === "waiting"); }
    itemIds() { return new Set(this.unsent().map((e) => e.item.id)); }

    holdWaiting(error, login) {  // the session is gone: nothing goes out until the reviewer is back
      for (const e of this.waiting()) Object.assign(e, {state: "held", error, login});
      this.save();
    }

    releaseHeld() {
      for (const e of this.held()) Object.assign(e, {state: "waiting", error: "", login: false});
      this.save();
    }
  }

  window.ferplatform = {...(window.ferplatform || {}), reviewOutbox: {Outbox, Backoff, outcome}};
})();
