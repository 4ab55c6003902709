/* nudgelab kiosk service worker: no dead ends when the network drops.
 *
 * Served at <kiosk>/sw.js, so its scope is one kiosk's pages. It stores the "connection lost"
 * screen of each trial language (<kiosk>/offline?lang=xx) with the kiosk's stylesheet and
 * script, and the trial's pictures and narrations (below), which hold nothing of a visit. A page the visitor opens still comes from the server, never from a
 * cache (the kiosk's no-store rule); only when the server cannot be reached does the worker
 * answer with the offline screen in the language of the last page shown. That screen asks the
 * server again and returns to the start screen once it answers. Nothing is loaded from outside,
 * and the event queue (localStorage) is left to the page script, which sends it when it can.
 */
/* global self, caches, fetch, Response, URL */
"use strict";

var scope = self.registration.scope;
var params = new URL(self.location.href).searchParams;
var languages = (params.get("languages") || "").split(",").filter(Boolean);
var assets = (params.get("assets") || "").split(",").filter(Boolean).map(function (path) {
  return new URL(path, scope).href;
});
var CACHE = "nudgelab-offline-v1";
var LANGUAGE_KEY = scope + "offline-language";
var language = null;

function offlineUrl(code) { return scope + "offline?lang=" + encodeURIComponent(code); }

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(CACHE).then(function (cache) {
    return cache.addAll(languages.map(offlineUrl).concat(assets));
  }).then(function () { return self.skipWaiting(); }));
});

self.addEventListener("activate", function (event) {
  event.waitUntil(self.clients.claim());
});

/* Each page says its language, so the offline screen is in the visit's language. */
self.addEventListener("message", function (event) {
  var code = event.data && event.data.language;
  if (languages.indexOf(code) < 0) { return; }
  language = code;
  event.waitUntil(caches.open(CACHE).then(function (cache) {
    return cache.put(LANGUAGE_KEY, new Response(code));
  }));
});

function lastLanguage() {
  if (language) { return Promise.resolve(language); }
  return caches.match(LANGUAGE_KEY).then(function (stored) {
    return stored ? stored.text() : languages[0];
  }).catch(function () { return languages[0]; });
}

function offlineScreen() {
  return lastLanguage().then(function (code) {
    return caches.match(offlineUrl(code)).then(function (page) {
      return page || caches.match(offlineUrl(languages[0]));
    });
  }).then(function (page) {
    return page || Response.error();
  });
}

/* Pictures and narrations (<kiosk>/media/<sha256>): an address names exact bytes, so a copy
 * is kept for good and served first; the page lists its files when it is shown, so they are
 * kept before anyone plays the narration. An audio player asks for ranges of the file: they
 * are cut from the whole copy. */
var MEDIA_CACHE = "nudgelab-media-v1";

function isMedia(url) { return url.indexOf(scope + "media/") === 0; }

function keptMedia(url) {
  return caches.open(MEDIA_CACHE).then(function (cache) {
    return cache.match(url).then(function (copy) {
      if (copy) { return copy; }
      return fetch(url, { credentials: "same-origin" }).then(function (response) {
        if (response.status !== 200) { return response; }
        return cache.put(url, response.clone()).then(function () { return response; });
      });
    });
  });
}

function ranged(request, response) {
  var match = /^bytes=(\d+)-(\d*)$/.exec(request.headers.get("range") || "");
  if (!match || response.status !== 200) { return response; }
  return response.arrayBuffer().then(function (buffer) {
    var size = buffer.byteLength;
    var start = Number(match[1]);
    var end = Math.min(match[2] ? Number(match[2]) : size - 1, size - 1);
    if (start > end) {
      return new Response(null, { status: 416, headers: { "Content-Range": "bytes */" + size } });
    }
    return new Response(buffer.slice(start, end + 1), {
      status: 206,
      headers: {
        "Content-Type": response.headers.get("Content-Type") || "application/octet-stream",
        "Content-Range": "bytes " + start + "-" + end + "/" + size,
        "Content-Length": String(end - start + 1),
        "Accept-Ranges": "bytes"
      }
    });
  });
}

self.addEventListener("message", function (event) {
  var media = (event.data && event.data.media) || [];
  var urls = media.filter(function (url) { return typeof url === "string" && isMedia(url); });
  if (!urls.length) { return; }
  event.waitUntil(Promise.all(urls.map(function (url) {
    return keptMedia(url).catch(function () { return null; });
  })));
});

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method === "GET" && isMedia(request.url)) {
    event.respondWith(keptMedia(request.url).then(function (response) {
      return ranged(request, response);
    }).catch(function () { return Response.error(); }));
  } else if (request.mode === "navigate") {
    event.respondWith(fetch(request).catch(offlineScreen));
  } else if (request.method === "GET" && assets.indexOf(request.url) >= 0) {
    event.respondWith(fetch(request).catch(function () {
      return caches.match(request.url).then(function (copy) { return copy || Response.error(); });
    }));
  }
});
