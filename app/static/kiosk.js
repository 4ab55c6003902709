/* nudgelab kiosk page script (no dependencies, nothing loaded from outside).
 *
 * 1. Event queue: outcome buttons put their event in localStorage and POST it to the events API
 *    with its idempotency key; unacknowledged events are retried with exponential backoff (also
 *    after a reload, on the next page, and when the network comes back). "stored", "duplicate"
 *    and "discarded" all count as acknowledged; a 4xx refusal is never retried.
 * 2. Inactivity: after data-inactivity seconds without a touch the visit ends (timeout) and the
 *    welcome screen returns. Touches are reported to the server now and then, so a visitor who
 *    is reading keeps the visit.
 * Without this script the pages still work: buttons are ordinary forms.
 */
(function () {
  "use strict";
  var data = document.body.dataset;
  var QUEUE = "nudgelab.events.v1";
  var BATCH = 50;
  var memoryQueue = [];
  var delay = 1000;
  var timer = null;
  var sending = false;

  function load() {
    try { return JSON.parse(window.localStorage.getItem(QUEUE) || "[]"); }
    catch (e) { return memoryQueue; }
  }
  function save(items) {
    try { window.localStorage.setItem(QUEUE, JSON.stringify(items)); }
    catch (e) { memoryQueue = items; }
  }
  function newKey() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) {
      return (b < 16 ? "0" : "") + b.toString(16);
    }).join("");
  }
  function forget(keys) {
    save(load().filter(function (item) { return keys.indexOf(item.event.idempotency_key) < 0; }));
  }
  function later() {
    window.clearTimeout(timer);
    var max = (Number(data.retryMax) || 60) * 1000;
    timer = window.setTimeout(flush, delay * (0.5 + Math.random()));
    delay = Math.min(delay * 2, max);
  }

  function flush() {
    if (sending) { return; }
    var items = load();
    if (!items.length) { return; }
    var first = items[0];
    var batch = items.filter(function (item) {
      return item.token === first.token && item.api === first.api;
    }).slice(0, BATCH);
    var keys = batch.map(function (item) { return item.event.idempotency_key; });
    sending = true;
    window.fetch(first.api, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Authorization": "Bearer " + first.token },
      body: JSON.stringify({ events: batch.map(function (item) { return item.event; }) }),
      credentials: "omit",
      cache: "no-store"
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        sending = false;
        if (response.ok) {
          forget(keys);
          delay = 1000;
          flush();
        } else if (response.status >= 400 && response.status < 500 &&
                   response.status !== 408 && response.status !== 429) {
          var field = (body.error && body.error.field) || "";
          var match = /^events\.(\d+)\./.exec(field);
          forget(match && batch[Number(match[1])] ? [keys[Number(match[1])]] : keys);
          flush();
        } else {
          later();
        }
      });
    }).catch(function () {
      sending = false;
      later();
    });
  }

  function enqueue(type) {
    var items = load();
    items.push({
      api: data.api,
      token: data.token,
      event: {
        visit_id: data.visit,
        type: type,
        idempotency_key: newKey(),
        language: data.language,
        occurred_at: new Date().toISOString()
      }
    });
    save(items);
    flush();
  }

  function outcomeButtons() {
    var noted = document.getElementById("noted");
    Array.prototype.forEach.call(document.querySelectorAll("form.outcome"), function (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var button = form.querySelector("button");
        if (button.getAttribute("aria-pressed") !== "true") {
          button.setAttribute("aria-pressed", "true");
          enqueue(form.dataset.event);
        }
        if (noted) { noted.hidden = false; }
      });
    });
  }

  function inactivity() {
    var limit = Number(data.inactivity) * 1000;
    var form = document.getElementById("timeout-form");
    if (!data.visit || !limit || !form) { return; }
    var last = Date.now();
    var reported = Date.now();
    var ended = false;
    function seen() {
      last = Date.now();
      if (last - reported > Math.min(20000, limit / 3)) {
        reported = last;
        window.fetch(data.alive, { method: "POST", credentials: "same-origin", cache: "no-store" })
          .then(function (response) { return response.json(); })
          .then(function (body) { if (!body.active) { window.location.assign(data.welcome); } })
          .catch(function () { /* offline: the timer below still ends the visit */ });
      }
    }
    ["pointerdown", "keydown", "scroll", "touchstart", "wheel"].forEach(function (name) {
      window.addEventListener(name, seen, { passive: true });
    });
    window.setInterval(function () {
      if (!ended && Date.now() - last > limit) {
        ended = true;
        form.submit();
      }
    }, 1000);
  }

  outcomeButtons();
  inactivity();
  window.addEventListener("online", function () { delay = 1000; flush(); });
  flush();
}());
