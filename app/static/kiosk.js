/* nudgelab kiosk page script (no dependencies, nothing loaded from outside).
 *
 * 1. Event queue: outcome buttons put their event in localStorage and POST it to the events API
 *    with its idempotency key, in batches of at most data-batch events (the server's
 *    NUDGELAB_MAX_EVENTS_PER_REQUEST). An event leaves the queue only when the server has
 *    acknowledged it ("stored", "duplicate" and "discarded" all count; "discarded" also answers
 *    events of a paused or closed trial, so they are dropped, not resent) or has refused that one
 *    event by its index (400 with field events.N.*). Everything else keeps the queue and retries
 *    with exponential backoff (also after a reload, on the next page, and when the network
 *    comes back): 401/403/409 without an index, 408, 429, 5xx and network errors. A batch the
 *    server finds too large (413, or 400 on "events") is halved and sent again; an
 *    occurred_at the server refuses (a wrong kiosk clock) is dropped from that event, which is
 *    then resent with the server's time; a key the server says is taken (409 on
 *    events.N.idempotency_key) is replaced by a new one.
 * 2. Inactivity: after data-inactivity seconds without a touch the visit ends (timeout) and the
 *    welcome screen returns. Touches are reported to the server now and then, so a visitor who
 *    is reading keeps the visit.
 * 3. The spoken version: a large play button; each play queued once as the declared event.
 * Without this script the pages still work: buttons are ordinary forms.
 * tests/app/js/kiosk_queue.test.js runs this file under node with a fake server.
 */
(function () {
  "use strict";
  var data = document.body.dataset;
  var QUEUE = "nudgelab.events.v1";
  var ACKNOWLEDGED = ["stored", "duplicate", "discarded"];
  var batchSize = Math.max(1, Math.floor(Number(data.batch)) || 50);
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
  function change(key, edit) {
    save(load().map(function (item) {
      if (item.event.idempotency_key === key) { edit(item.event); }
      return item;
    }));
  }
  function later() {
    window.clearTimeout(timer);
    var max = (Number(data.retryMax) || 60) * 1000;
    timer = window.setTimeout(flush, delay * (0.5 + Math.random()));
    delay = Math.min(delay * 2, max);
  }

  /* The next batch: events of this page's kiosk first (an old kiosk's events that its server
   * refuses for now do not hold them up), then the oldest other kiosk's. */
  function nextBatch(items) {
    var mine = items.filter(function (item) {
      return item.token === data.token && item.api === data.api;
    });
    var first = mine.length ? mine[0] : items[0];
    return items.filter(function (item) {
      return item.token === first.token && item.api === first.api;
    }).slice(0, batchSize);
  }

  /* What the answer means for the batch; returns true when the queue may go on at once. */
  function settle(status, body, batch, keys) {
    var error = (body && body.error) || {};
    var field = typeof error.field === "string" ? error.field : "";
    var match = /^events\.(\d+)\.(.*)$/.exec(field);
    var index = match && Number(match[1]) < batch.length ? Number(match[1]) : -1;
    if (status >= 200 && status < 300) {
      var acknowledged = ((body && body.results) || []).filter(function (result) {
        return ACKNOWLEDGED.indexOf(result.status) >= 0;
      }).map(function (result) { return result.idempotency_key; });
      forget(acknowledged);
      return acknowledged.length > 0;
    }
    if (status === 413 || (status === 400 && field === "events")) {
      if (batch.length > 1) {
        batchSize = Math.max(1, Math.floor(batch.length / 2));
        return true;
      }
      if (status === 413) {  /* one event that no batch size can carry */
        forget(keys);
        return true;
      }
      return false;
    }
    if (status === 400 && index >= 0) {
      if (match[2] === "occurred_at") {
        change(keys[index], function (event) { delete event.occurred_at; });
      } else {
        forget([keys[index]]);  /* only the event the server refused */
      }
      return true;
    }
    if (status === 409 && index >= 0 && match[2] === "idempotency_key") {
      change(keys[index], function (event) { event.idempotency_key = newKey(); });
      return true;
    }
    return false;  /* 401, 403, 409, 408, 429, 5xx, anything else: keep and retry later */
  }

  function flush() {
    if (sending) { return; }
    var items = load();
    if (!items.length) { return; }
    var batch = nextBatch(items);
    var keys = batch.map(function (item) { return item.event.idempotency_key; });
    sending = true;
    window.fetch(batch[0].api, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Authorization": "Bearer " + batch[0].token },
      body: JSON.stringify({ events: batch.map(function (item) { return item.event; }) }),
      credentials: "omit",
      cache: "no-store"
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        sending = false;
        if (settle(response.status, body, batch, keys)) {
          if (response.ok) { delay = 1000; }
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

  /* Scroll ``element`` into view above the disclosure bar at the bottom of the screen. */
  function reveal(element) {
    var bar = document.getElementById("disclosure");
    if (!element.getBoundingClientRect || !window.scrollBy) { return; }
    var box = element.getBoundingClientRect();
    var limit = bar ? bar.getBoundingClientRect().top - 8 : window.innerHeight;
    if (box.bottom > limit) { window.scrollBy(0, box.bottom - limit); }
  }

  /* An outcome tap: queue the event and show what the trial file says happens next. */
  function outcomeButtons() {
    Array.prototype.forEach.call(document.querySelectorAll("form.outcome"), function (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var button = form.querySelector("button");
        if (button.getAttribute("aria-pressed") !== "true") {
          button.setAttribute("aria-pressed", "true");
          enqueue(form.dataset.event);
        }
        Array.prototype.forEach.call(document.querySelectorAll("p.noted"), function (note) {
          if (note.dataset.event === form.dataset.event) {
            note.hidden = false;
            reveal(note);
          }
        });
      });
    });
  }

  /* The spoken version never starts by itself. The large button plays and pauses it (the
   * audio's own controls stay visible). Each play is logged once, as the event the trial
   * declares (data-event): a play begins when the audio starts for the first time or after it
   * ended; a pause and going on is the same play. */
  function narration() {
    Array.prototype.forEach.call(document.querySelectorAll("button[data-play]"), function (button) {
      var audio = document.getElementById(button.dataset.play);
      if (!audio) { return; }
      var playLabel = button.querySelector('[data-label="play"]');
      var pauseLabel = button.querySelector('[data-label="pause"]');
      var playing = false;
      function show(paused) {
        button.setAttribute("aria-pressed", paused ? "false" : "true");
        if (playLabel) { playLabel.hidden = !paused; }
        if (pauseLabel) { pauseLabel.hidden = paused; }
      }
      show(true);
      button.hidden = false;
      button.addEventListener("click", function () {
        if (!audio.paused) { audio.pause(); return; }
        var started = audio.play();
        if (started && started.catch) { started.catch(function () { show(true); }); }
      });
      audio.addEventListener("play", function () {
        show(false);
        if (!playing) {
          playing = true;
          if (audio.dataset.event) { enqueue(audio.dataset.event); }
        }
      });
      audio.addEventListener("pause", function () { show(true); });
      audio.addEventListener("ended", function () { playing = false; show(true); });
    });
  }

  /* The end screen returns to the welcome screen after data-return seconds (without this
   * script a <noscript> meta refresh does it). */
  function timedReturn() {
    var seconds = Number(data.returnAfter);
    if (!seconds || !data.returnTo) { return; }
    window.setTimeout(function () { window.location.assign(data.returnTo); }, seconds * 1000);
  }

  /* The service worker shows a kiosk "connection lost" screen instead of the browser's
   * error page when the server cannot be reached (app/static/kiosk-sw.js). */
  function offlineScreen() {
    var navigator = window.navigator;
    if (!data.worker || !navigator || !("serviceWorker" in navigator)) { return; }
    var assets = Array.prototype.map.call(
      document.querySelectorAll("link[rel=stylesheet], script[src]"),
      function (element) { return element.getAttribute("href") || element.getAttribute("src"); }
    );
    var url = data.worker + "?languages=" + encodeURIComponent(data.languages || "") +
      "&assets=" + encodeURIComponent(assets.join(","));
    navigator.serviceWorker.register(url, { scope: data.workerScope }).then(function () {
      return navigator.serviceWorker.ready;
    }).then(function (registration) {
      var worker = navigator.serviceWorker.controller || registration.active;
      var media = Array.prototype.map.call(
        document.querySelectorAll(".material-image img, audio[src]"),
        function (element) { return element.src; }
      );
      if (worker) { worker.postMessage({ language: data.language || data.pageLanguage, media: media }); }
    }).catch(function () { /* no worker: the browser's own error page, as before */ });
  }

  /* The offline screen: ask the server every few seconds and on a tap; back to the start
   * screen once it answers (the queue is sent from there). */
  function reconnect() {
    if (!data.offline) { return; }
    var status = document.getElementById("offline-status");
    var button = document.getElementById("try-again");
    function attempt(tapped) {
      window.fetch(data.ping, { method: "GET", credentials: "same-origin", cache: "no-store" })
        .then(function (response) {
          if (response.ok) { window.location.assign(data.welcome); }
          else if (tapped && status) { status.hidden = false; }
        })
        .catch(function () { if (tapped && status) { status.hidden = false; } });
    }
    if (button) { button.addEventListener("click", function () { attempt(true); }); }
    window.setInterval(function () { attempt(false); }, 3000);
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
    /* A visitor listening to the narration is there, touch or not. */
    Array.prototype.forEach.call(document.querySelectorAll("audio"), function (audio) {
      audio.addEventListener("timeupdate", function () { if (!audio.paused) { seen(); } });
    });
    window.setInterval(function () {
      if (!ended && Date.now() - last > limit) {
        ended = true;
        form.submit();
      }
    }, 1000);
  }

  outcomeButtons();
  narration();
  inactivity();
  timedReturn();
  offlineScreen();
  reconnect();
  window.addEventListener("online", function () { delay = 1000; flush(); });
  flush();
}());
