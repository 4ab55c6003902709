/* nudgelab kiosk service worker: no dead ends when the network drops.
 *
 * Served at <kiosk>/sw.js, so its scope is one kiosk's pages. It stores one thing: the
 * "connection lost" screen of each trial language (<kiosk>/offline?lang=xx) with the kiosk's
 * stylesheet and script. A page the visitor opens still comes from the server, never from a
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

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.mode === "navigate") {
    event.respondWith(fetch(request).catch(offlineScreen));
  } else if (request.method === "GET" && assets.indexOf(request.url) >= 0) {
    event.respondWith(fetch(request).catch(function () {
      return caches.match(request.url).then(function (copy) { return copy || Response.error(); });
    }));
  }
});
