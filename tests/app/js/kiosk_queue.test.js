/* The kiosk page's event queue (app/static/kiosk.js) under node, against a fake server.
 *
 * Run by tests/app/test_kiosk_js.py (`node --test`). Each test loads the real script into a
 * fresh VM context with a fake page (data attributes), localStorage, fetch and clock, and
 * checks that no event is lost: only acknowledged events and the one event a server refuses
 * by index ever leave the queue.
 */
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");
const vm = require("node:vm");

const SCRIPT = fs.readFileSync(
  path.join(__dirname, "..", "..", "..", "app", "static", "kiosk.js"), "utf8");
const QUEUE = "nudgelab.events.v1";
const API = "/api/v1/events";
const TOKEN = "kiosk-token";

/* A fake clock: setTimeout callbacks run only when the test advances time. */
class Clock {
  constructor() { this.now = 0; this.timers = []; this.nextId = 1; }
  setTimeout(callback, ms) {
    const id = this.nextId++;
    this.timers.push({ id, at: this.now + Math.max(0, ms || 0), callback });
    return id;
  }
  clearTimeout(id) { this.timers = this.timers.filter((timer) => timer.id !== id); }
  async advance(ms) {
    const until = this.now + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at);
      const due = this.timers[0];
      if (!due || due.at > until) { break; }
      this.timers.shift();
      this.now = due.at;
      due.callback();
      await settle();
    }
    this.now = until;
  }
}

/* Let pending promise callbacks (the fake fetch's answers) run. */
async function settle() {
  for (let i = 0; i < 20; i += 1) { await new Promise((resolve) => setImmediate(resolve)); }
}

/* A fake events API: stores events by key; `answer(events, server)` may return another
 * answer ({status, body} or "network") for a request before the normal one. */
class Server {
  constructor(answer) {
    this.answer = answer || (() => null);
    this.stored = new Map();
    this.requests = [];
  }
  handle(url, options) {
    const events = JSON.parse(options.body).events;
    this.requests.push({ url, events, authorization: options.headers.Authorization });
    const special = this.answer(events, this);
    if (special === "network") { return Promise.reject(new TypeError("Failed to fetch")); }
    const { status, body } = special || this.store(events);
    return Promise.resolve({
      ok: status >= 200 && status < 300,
      status,
      json: () => (body === undefined ? Promise.reject(new SyntaxError("no JSON"))
        : Promise.resolve(JSON.parse(JSON.stringify(body)))),
    });
  }
  store(events) {
    const results = events.map((event) => {
      const key = event.idempotency_key;
      const status = this.stored.has(key) ? "duplicate" : "stored";
      this.stored.set(key, event);
      return { idempotency_key: key, status };
    });
    return { status: 200, body: { results } };
  }
  get sizes() { return this.requests.map((request) => request.events.length); }
}

function storage(initial) {
  const values = new Map(Object.entries(initial || {}));
  return {
    getItem: (key) => (values.has(key) ? values.get(key) : null),
    setItem: (key, value) => { values.set(key, String(value)); },
    removeItem: (key) => { values.delete(key); },
  };
}

/* One kiosk page: the real script with fakes; `forms` are outcome buttons on the page. */
function openPage({ server, clock, localStorage, batch = 100, token = TOKEN, forms = [] }) {
  const listeners = {};
  const window = {
    fetch: (url, options) => server.handle(url, options),
    localStorage,
    setTimeout: (callback, ms) => clock.setTimeout(callback, ms),
    clearTimeout: (id) => clock.clearTimeout(id),
    setInterval: () => 0,
    crypto: { getRandomValues: (bytes) => crypto.getRandomValues(bytes) },
    addEventListener: (name, handler) => { (listeners[name] = listeners[name] || []).push(handler); },
    location: { assign: () => {} },
  };
  const document = {
    body: {
      dataset: {
        api: API, token, welcome: "/kiosk/t/l/x/", retryMax: "60", batch: String(batch),
        visit: "visit-1", language: "en", inactivity: "90", alive: "/kiosk/t/l/x/alive",
      },
    },
    getElementById: () => null,
    querySelectorAll: (selector) => (selector === "form.outcome" ? forms : []),
  };
  vm.runInNewContext(SCRIPT, { window, document });
  return { window, listeners };
}

function queued(localStorage) { return JSON.parse(localStorage.getItem(QUEUE) || "[]"); }

function someEvents(count, token = TOKEN) {
  return Array.from({ length: count }, (_, i) => ({
    api: API, token,
    event: { visit_id: "visit-1", type: "contact_requested",
      idempotency_key: crypto.randomBytes(16).toString("hex"), language: "en",
      occurred_at: new Date(Date.UTC(2027, 0, 4, 10, i)).toISOString() },
  }));
}

function setUp(answer, options = {}) {
  const items = options.items || someEvents(options.count || 0);
  const localStorage = storage({ [QUEUE]: JSON.stringify(items) });
  const server = new Server(answer);
  const clock = new Clock();
  return { items, localStorage, server, clock };
}

const keysOf = (items) => items.map((item) => item.event.idempotency_key).sort();

test("an outcome button queues its event and the server acknowledges it", async () => {
  const { localStorage, server, clock } = setUp();
  let submit = null;
  const button = { attributes: {}, getAttribute(name) { return this.attributes[name] || null; },
    setAttribute(name, value) { this.attributes[name] = value; } };
  const form = { dataset: { event: "contact_requested" }, querySelector: () => button,
    addEventListener: (name, handler) => { submit = handler; } };
  openPage({ server, clock, localStorage, forms: [form] });
  submit({ preventDefault() {} });
  submit({ preventDefault() {} });  // a second tap on the same button is the same choice
  await settle();
  assert.equal(server.stored.size, 1);
  const [event] = [...server.stored.values()];
  assert.equal(event.type, "contact_requested");
  assert.match(event.idempotency_key, /^[0-9a-f]{32}$/);
  assert.equal(server.requests[0].authorization, `Bearer ${TOKEN}`);
  assert.deepEqual(queued(localStorage), []);
});

test("batches are as large as the server's maximum, never larger", async () => {
  const { items, localStorage, server, clock } = setUp(null, { count: 7 });
  openPage({ server, clock, localStorage, batch: 3 });
  await settle();
  assert.deepEqual(server.sizes, [3, 3, 1]);
  assert.deepEqual([...server.stored.keys()].sort(), keysOf(items));
  assert.deepEqual(queued(localStorage), []);
});

for (const [name, refusal] of [
  ["413", { status: 413, body: { error: { message: "request body too large", field: null } } }],
  ["400 on the batch size",
    { status: 400, body: { error: { message: "a batch holds 1 to 2 events", field: "events" } } }],
]) {
  test(`${name}: the batch is halved until the server takes it, and nothing is lost`, async () => {
    const { items, localStorage, server, clock } = setUp(
      (events) => (events.length > 2 ? refusal : null), { count: 9 });
    openPage({ server, clock, localStorage, batch: 8 });
    await settle();
    assert.deepEqual(server.sizes.slice(0, 3), [8, 4, 2]);
    assert.ok(server.sizes.slice(2).every((size) => size <= 2));
    assert.deepEqual([...server.stored.keys()].sort(), keysOf(items));
    assert.deepEqual(queued(localStorage), []);
  });
}

test("an event refused by its index is the only one dropped", async () => {
  const { items, localStorage, server, clock } = setUp((events) => {
    const bad = events.findIndex((event) => event.type === "clicked_ad");
    return bad < 0 ? null : { status: 400,
      body: { error: { message: "not declared", field: `events.${bad}.type` } } };
  }, { count: 4 });
  items[1].event.type = "clicked_ad";
  localStorage.setItem(QUEUE, JSON.stringify(items));
  openPage({ server, clock, localStorage });
  await settle();
  assert.deepEqual([...server.stored.keys()].sort(),
    keysOf(items.filter((_, i) => i !== 1)));
  assert.deepEqual(queued(localStorage), []);
});

test("a refused occurred_at (a wrong kiosk clock) is left out, the event is kept", async () => {
  const { items, localStorage, server, clock } = setUp((events) => {
    const bad = events.findIndex((event) => "occurred_at" in event);
    return bad < 0 ? null : { status: 400,
      body: { error: { message: "is in the future", field: `events.${bad}.occurred_at` } } };
  }, { count: 3 });
  openPage({ server, clock, localStorage });
  await settle();
  assert.deepEqual([...server.stored.keys()].sort(), keysOf(items));
  assert.ok([...server.stored.values()].every((event) => !("occurred_at" in event)));
  assert.deepEqual(queued(localStorage), []);
});

test("a key the server says is taken gets a new key; the event is kept", async () => {
  const { items, localStorage, server, clock } = setUp((events) => {
    const bad = events.findIndex((event) => event.idempotency_key === items[0].event.idempotency_key);
    return bad < 0 ? null : { status: 409,
      body: { error: { message: "already used", field: `events.${bad}.idempotency_key` } } };
  }, { count: 2 });
  openPage({ server, clock, localStorage });
  await settle();
  assert.equal(server.stored.size, 2);
  assert.ok(!server.stored.has(items[0].event.idempotency_key));
  assert.ok(server.stored.has(items[1].event.idempotency_key));
  assert.deepEqual(queued(localStorage), []);
});

for (const [name, failure] of [
  ["403", { status: 403, body: { error: { message: "switched off", field: "Authorization" } } }],
  ["409 without an index", { status: 409, body: { error: { message: "not loaded", field: null } } }],
  ["401", { status: 401, body: { error: { message: "no token", field: "Authorization" } } }],
  ["500", { status: 500, body: { error: { message: "internal", field: null } } }],
  ["503", { status: 503, body: { error: { message: "database", field: null } } }],
  ["502 from a proxy, not JSON", { status: 502, body: undefined }],
  ["a network error", "network"],
]) {
  test(`${name}: every event is kept and retried with growing waits until stored`, async () => {
    let failing = 3;
    const { items, localStorage, server, clock } = setUp(
      () => (failing-- > 0 ? failure : null), { count: 5 });
    openPage({ server, clock, localStorage });
    await settle();
    assert.equal(server.requests.length, 1);
    assert.equal(queued(localStorage).length, 5);  // nothing dropped
    const attempts = [];
    for (let second = 0; second < 30 && server.stored.size === 0; second += 1) {
      await clock.advance(1000);
      if (server.requests.length > attempts.length + 1) { attempts.push(clock.now); }
    }
    assert.deepEqual([...server.stored.keys()].sort(), keysOf(items));
    assert.deepEqual(queued(localStorage), []);
    assert.equal(server.requests.length, 4);
    // backoff 1 s, 2 s, 4 s with jitter 0.5x-1.5x: the third retry waits longer than the first
    assert.ok(attempts[2] - attempts[1] > 1000, attempts.join(","));
  });
}

test("duplicate and discarded count as acknowledged", async () => {
  const { items, localStorage, server, clock } = setUp((events) => ({ status: 200,
    body: { results: events.map((event, i) => ({ idempotency_key: event.idempotency_key,
      status: i === 0 ? "duplicate" : "discarded" })) } }), { count: 2 });
  openPage({ server, clock, localStorage });
  await settle();
  assert.equal(server.requests.length, 1);
  assert.deepEqual(queued(localStorage), []);
  assert.equal(items.length, 2);
});

test("an answer that acknowledges only some events keeps the others", async () => {
  const { items, localStorage, server, clock } = setUp((events, fake) => {
    if (fake.requests.length > 1) { return null; }
    return { status: 200, body: { results: [
      { idempotency_key: events[0].idempotency_key, status: "stored" }] } };
  }, { count: 3 });
  openPage({ server, clock, localStorage });
  await settle();
  assert.deepEqual(server.sizes, [3, 2]);  // the two unacknowledged ones were sent again
  assert.deepEqual(keysOf(server.requests[1].events.map((event) => ({ event }))),
    keysOf(items.slice(1)));
  assert.deepEqual(queued(localStorage), []);
});

test("the queue survives a reload: the next page sends what the last one could not", async () => {
  let online = false;
  const { items, localStorage, server, clock } = setUp(
    () => (online ? null : "network"), { count: 3 });
  openPage({ server, clock, localStorage });
  await settle();
  assert.equal(queued(localStorage).length, 3);
  online = true;
  openPage({ server, clock: new Clock(), localStorage });  // the next page, same browser
  await settle();
  assert.deepEqual([...server.stored.keys()].sort(), keysOf(items));
  assert.deepEqual(queued(localStorage), []);
});

test("coming back online sends at once", async () => {
  let online = false;
  const { localStorage, server, clock } = setUp(() => (online ? null : "network"), { count: 2 });
  const page = openPage({ server, clock, localStorage });
  await settle();
  online = true;
  page.listeners.online.forEach((handler) => handler());
  await settle();
  assert.deepEqual(queued(localStorage), []);
});

test("a single event too large for any batch is dropped, not retried forever", async () => {
  const { items, localStorage, server, clock } = setUp((events) => (
    events.some((event) => event.type === "huge")
      ? { status: 413, body: { error: { message: "request body too large", field: null } } }
      : null), { count: 3 });
  items[0].event.type = "huge";
  localStorage.setItem(QUEUE, JSON.stringify(items));
  openPage({ server, clock, localStorage, batch: 4 });
  await settle();
  assert.deepEqual([...server.stored.keys()].sort(), keysOf(items.slice(1)));
  assert.deepEqual(queued(localStorage), []);
});

test("an old kiosk's refused events do not hold up this kiosk's", async () => {
  const old = someEvents(2, "old-token");
  const mine = someEvents(2);
  const { localStorage, server, clock } = setUp((events, fake) => (
    fake.requests[fake.requests.length - 1].authorization === "Bearer old-token"
      ? { status: 403, body: { error: { message: "switched off", field: "Authorization" } } }
      : null), { items: [...old, ...mine] });
  openPage({ server, clock, localStorage });
  await settle();
  assert.deepEqual([...server.stored.keys()].sort(), keysOf(mine));
  assert.deepEqual(keysOf(queued(localStorage)), keysOf(old));  // kept for later
});
