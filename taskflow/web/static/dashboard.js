// taskflow dashboard. Plain JS, no dependencies, no build step.
//
// Data flow: the table pages through the JSON API (GET {base}?limit=&cursor=, X-Next-Cursor); the stream
// (GET {base}/dashboard/stream) sends a `state` snapshot on connect, then one small `task` event per changed
// task and a `metrics` event at most once a second. EventSource resends the last event id on reconnect, so
// the server replays what was missed (or sends a fresh snapshot).
//
// Safety rule: everything a task controls (names, tags, errors, logs, arguments) reaches the DOM only as
// text nodes (textContent) or plain attributes. There is no innerHTML anywhere in this file.
"use strict";

const BASE = document.body.dataset.base;
const AUTH = document.body.dataset.auth === "1";
const PAGE = Number(document.body.dataset.pageSize) || 50;
const MAX_LIVE_ROWS = 500;
const TERMINAL = new Set(["success", "failed", "interrupted", "cancelled", "rejected"]);
const RETRYABLE = new Set(["failed", "interrupted"]);
const CANCELLABLE = new Set(["pending", "running"]);
const $ = (sel) => document.querySelector(sel);

/** The short form of a task id: its last 8 characters, which are random (the first 8 of a version 7 id are
 *  its creation time, the same for a minute of tasks). Mirrors `short_id()` in taskflow/_models.py. */
const SHORT_ID_LENGTH = 8;
const shortId = (id) => id.slice(-SHORT_ID_LENGTH);
/** What the id search matches: the start of the full id or of the short one (`id_matches()` in Python). */
const idMatches = (id, text) => id.startsWith(text) || shortId(id).startsWith(text);

// ---- small helpers ---------------------------------------------------------------------------------------

/** Build an element: h("td", {class: "num"}, "text", childNode). Strings become text nodes. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function svg(tag, attrs, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, String(value));
  for (const child of children) el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return el;
}

function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  const m = Math.floor(seconds / 60);
  return m < 60 ? `${m}m ${String(Math.round(seconds % 60)).padStart(2, "0")}s` : `${Math.floor(m / 60)}h ${m % 60}m`;
}
const fmtMs = (ms) => (ms === null || ms === undefined ? "–" : fmtDuration(ms / 1000));

function fmtTime(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  const sameDay = d.toDateString() === new Date().toDateString();
  return sameDay ? d.toLocaleTimeString() : d.toLocaleString();
}

/** Copy to the clipboard (the Clipboard API needs a secure context: else the old select-and-copy). */
async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = h("textarea", { readonly: true, class: "offscreen" }, text);
    document.body.append(area);
    area.select();
    const copied = document.execCommand("copy");
    area.remove();
    if (!copied) { toast("Could not copy: select the id and copy it by hand", true); return; }
  }
  toast("Task id copied");
}

function toast(message, isError) {
  const el = h("div", { class: isError ? "toast error" : "toast", role: "status" }, message);
  $("#toasts").append(el);
  setTimeout(() => el.remove(), isError ? 8000 : 4000);
}

/** Ask before acting, with a <dialog> (a real modal, and scriptable in tests, unlike window.confirm). */
function confirmAction(text, label) {
  const dialog = $("#confirm");
  $("#confirm-text").textContent = text;
  $("#confirm-ok").textContent = label;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true }));
}

async function api(path, options) {
  const response = await fetch(BASE + path, { credentials: "same-origin", headers: { Accept: "application/json" }, ...options });
  if (response.status === 401 && AUTH) {
    location.assign(`${BASE}/auth/login`);
    throw new Error("signed out");
  }
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (!response.ok) throw new Error((body && typeof body.detail === "string" && body.detail) || `HTTP ${response.status}`);
  return { body, response };
}

// ---- state -----------------------------------------------------------------------------------------------

const state = {
  rows: new Map(), // task id -> row data, for the page on screen
  cursors: [null], // cursor of each page visited; the last one is the page on screen
  nextCursor: null,
  sort: JSON.parse(localStorage.getItem("tf-sort") || '{"key":"created_at","dir":-1}'),
  selected: new Set(),
  paused: localStorage.getItem("tf-paused") === "1",
  buffered: new Map(),
  metrics: null,
  openId: null,
  functions: new Set(),
};

function filters() {
  return {
    search: $("#f-search").value.trim().toLowerCase(),
    status: $("#f-status").value,
    func: $("#f-func").value,
    tag: $("#f-tag").value.trim(),
    since: $("#f-since").value,
  };
}

const WINDOW_SECONDS = { "15m": 900, "1h": 3600, "6h": 21600, "24h": 86400, "7d": 604800 };

/** Whether a live task belongs in the current filtered view (same rules as the server's filters). */
function matches(task, f) {
  if (f.search) return idMatches(task.task_id, f.search);
  if (f.status && task.status !== f.status) return false;
  if (f.func && task.func_name !== f.func) return false;
  if (f.tag) {
    const [key, ...rest] = f.tag.split(/[:=]/);
    if ((task.tags || {})[key] !== rest.join(":")) return false;
  }
  if (f.since && new Date(task.created_at) < Date.now() - WINDOW_SECONDS[f.since] * 1000) return false;
  return true;
}

// ---- the task table --------------------------------------------------------------------------------------

let latestLoad = 0; // loads overlap while the user types: only the newest one may fill the table

async function loadPage() {
  const load = ++latestLoad;
  const f = filters();
  const cursor = state.cursors[state.cursors.length - 1];
  let tasks;
  let nextCursor = null;
  try {
    if (f.search) {
      tasks = (await api(`/dashboard/search?q=${encodeURIComponent(f.search)}`)).body;
    } else {
      const q = new URLSearchParams({ limit: String(PAGE) });
      if (f.status) q.set("status", f.status);
      if (f.func) q.set("func_name", f.func);
      if (f.tag) q.set("tag", f.tag);
      if (f.since) q.set("since", f.since);
      if (cursor) q.set("cursor", cursor);
      const { body, response } = await api(`?${q}`);
      tasks = body;
      nextCursor = response.headers.get("X-Next-Cursor");
    }
  } catch (err) {
    if (load === latestLoad) toast(`Could not load tasks: ${err.message}`, true);
    return;
  }
  if (load !== latestLoad) return; // a later load (newer filters) answers for the table
  state.nextCursor = nextCursor;
  state.rows = new Map(tasks.map((t) => [t.task_id, t]));
  renderTable();
}

function sortedRows() {
  const { key, dir } = state.sort;
  const value = (t) => (key === "duration" || key === "retries_used" ? (t[key] ?? -1) : String(t[key] ?? ""));
  return [...state.rows.values()].sort((a, b) => {
    const x = value(a), y = value(b);
    return (x < y ? -1 : x > y ? 1 : 0) * dir;
  });
}

function renderRow(task, fresh) {
  const retryable = RETRYABLE.has(task.status);
  const box = retryable
    ? h("input", { type: "checkbox", "aria-label": "Select", checked: state.selected.has(task.task_id), onclick: (e) => e.stopPropagation(), onchange: (e) => toggleSelected(task.task_id, e.target.checked) })
    : null;
  const attempts = task.attempt_count ?? (task.attempts ? task.attempts.length : task.retries_used + 1);
  return h("tr", { "data-id": task.task_id, class: [fresh ? "fresh" : "", task.task_id === state.openId ? "open" : ""].join(" ").trim() || null, onclick: () => openDetail(task.task_id) },
    h("td", { class: "sel" }, box),
    h("td", { class: "mono", title: task.task_id }, shortId(task.task_id)),
    h("td", {}, task.func_name),
    h("td", {}, h("span", { class: `status ${task.status}` }, task.status)),
    h("td", { class: "num" }, fmtDuration(task.duration)),
    h("td", { class: "num" }, String(attempts)),
    h("td", { title: task.created_at }, fmtTime(task.created_at)),
    h("td", { class: "error", title: task.error || "" }, task.error ? task.error.slice(0, 120) : ""),
  );
}

function renderTable(freshIds) {
  const body = $("#tasks tbody");
  body.replaceChildren(...sortedRows().map((t) => renderRow(t, freshIds && freshIds.has(t.task_id))));
  $("#empty").hidden = state.rows.size > 0;
  const page = state.cursors.length;
  $("#page-info").textContent = `page ${page} · ${state.rows.size} tasks`;
  $("#newer").disabled = page === 1;
  $("#older").disabled = !state.nextCursor;
  for (const th of document.querySelectorAll("#tasks th[data-sort]")) {
    th.setAttribute("aria-sort", th.dataset.sort === state.sort.key ? (state.sort.dir > 0 ? "ascending" : "descending") : "none");
  }
  updateBulk();
}

function toggleSelected(id, on) {
  if (on) state.selected.add(id);
  else state.selected.delete(id);
  updateBulk();
}

function updateBulk() {
  for (const id of state.selected) if (!RETRYABLE.has(state.rows.get(id)?.status)) state.selected.delete(id);
  const n = state.selected.size;
  $("#bulk-retry").disabled = n === 0;
  $("#bulk-retry").textContent = n ? `Retry selected (${n})` : "Retry selected";
}

/** Apply live task changes to the page on screen (called at most ~10 times a second). */
function applyChanges(tasks) {
  const f = filters();
  const firstPage = state.cursors.length === 1;
  const fresh = new Set();
  for (const task of tasks) {
    const known = state.rows.get(task.task_id);
    if (known) state.rows.set(task.task_id, { ...known, ...task });
    else if (firstPage && matches(task, f)) {
      state.rows.set(task.task_id, task);
      fresh.add(task.task_id);
    }
    if (task.func_name && !state.functions.has(task.func_name)) addFunctionOption(task.func_name);
    if (task.task_id === state.openId) scheduleDetailRefresh();
  }
  if (state.rows.size > MAX_LIVE_ROWS) {
    loadPage(); // the first page grew too long with live rows: start it again from the server
    return;
  }
  renderTable(fresh);
}

function addFunctionOption(name) {
  state.functions.add(name);
  const select = $("#f-func");
  const options = [...state.functions].sort();
  const current = select.value;
  select.replaceChildren(h("option", { value: "" }, "All functions"), ...options.map((n) => h("option", { value: n }, n)));
  select.value = current;
}

// ---- metrics and charts ----------------------------------------------------------------------------------

/** Where the figures come from: the store (every instance, history included) or this process only. */
function scopeText(m) {
  const scope = m.scope || {};
  if (scope.counts !== "store") return "Counting this process's tasks (no shared store).";
  if (scope.durations !== "store") return "Counts: every instance, from the store. Durations, throughput and charts: this process only (the store has no summary()).";
  return "Counting every instance's tasks, from the store (history included).";
}

function renderMetrics(m) {
  state.metrics = m;
  const charts = m.charts || { series: [], functions: {} };
  const local = (m.scope || {}).counts === "store" && charts.scope === "process";
  $("#scope").textContent = scopeText(m);
  $("#chart-scope").textContent = local ? "· this process" : charts.complete === false ? `· latest ${charts.sample} runs` : "";
  $("#functions-scope").textContent = local ? "· this process" : (m.scope || {}).counts === "store" ? "· all instances" : "";
  const recentFailures = charts.series.filter((b) => b[0] >= charts.now - 60).reduce((n, b) => n + b[2], 0);
  const cards = [
    ["Total", m.total], ["Pending", m.pending], ["Running", m.running], ["Success", m.success],
    ["Failed", m.failed, recentFailures > 0], ["Interrupted", m.interrupted, false], ["Cancelled", m.cancelled],
    ["Rejected", m.rejected || 0, false],
    ["Success rate", m.success_rate === null ? "–" : `${m.success_rate}%`, m.success_rate !== null && m.success_rate < 90 && m.failed > 0],
    [local ? "p50 (this process)" : "p50", fmtMs(m.p50_ms)], [local ? "p95 (this process)" : "p95", fmtMs(m.p95_ms)],
    [local ? "Throughput (this process)" : "Throughput", `${m.throughput_per_second}/s`],
  ];
  $("#cards").replaceChildren(...cards.map(([label, value, alert]) =>
    h("div", { class: alert ? "card alert" : "card", "data-metric": label.replace(" (this process)", "").toLowerCase().replace(/ /g, "-") },
      h("div", { class: "label" }, label), h("div", { class: "value" }, value ?? 0))));
  renderThroughput(charts);
  renderFunctions(charts.functions);
  for (const name of Object.keys(charts.functions)) if (!state.functions.has(name)) addFunctionOption(name);
}

/** Stacked bars per 10-second bucket over the last ten minutes: success, failed, other outcomes. */
function renderThroughput(charts) {
  const width = 600, height = 120, pad = 18, n = 60, step = charts.bucket_seconds || 10;
  const end = Math.floor(charts.now / step) * step;
  const byStart = new Map(charts.series.map((b) => [b[0], b]));
  const buckets = Array.from({ length: n }, (_, i) => byStart.get(end - (n - 1 - i) * step) || [0, 0, 0, 0]);
  const max = Math.max(1, ...buckets.map((b) => b[1] + b[2] + b[3]));
  const bar = (width - 30) / n, scale = (height - pad - 4) / max;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none", role: "img", "aria-label": "Tasks finished per 10 seconds" });
  buckets.forEach((b, i) => {
    let y = height - pad;
    for (const [count, cls, label] of [[b[1], "ok", "success"], [b[2], "bad", "failed"], [b[3], "other", "other"]]) {
      if (!count) continue;
      const hgt = Math.max(1, count * scale);
      y -= hgt;
      chart.append(svg("rect", { x: 30 + i * bar + 1, y, width: Math.max(1, bar - 2), height: hgt, class: cls },
        svg("title", {}, `${count} ${label}`)));
    }
  });
  chart.append(svg("text", { x: 0, y: 10 }, String(max)), svg("text", { x: 0, y: height - pad }, "0"),
    svg("text", { x: 30, y: height - 4 }, "−10 min"), svg("text", { x: width - 24, y: height - 4 }, "now"));
  $("#chart-throughput").replaceChildren(chart);
}

function renderFunctions(functions) {
  const names = Object.keys(functions);
  if (!names.length) {
    $("#chart-functions").replaceChildren(h("p", { class: "empty" }, "No finished tasks yet."));
    return;
  }
  const rows = names.sort((a, b) => functions[b].runs - functions[a].runs).slice(0, 8).map((name) => {
    const s = functions[name];
    const rate = s.success_rate ?? 0;
    return h("tr", {}, h("td", { class: "mono", title: name }, name.length > 28 ? `${name.slice(0, 27)}…` : name),
      h("td", { class: "num" }, String(s.runs)),
      h("td", { title: `${rate}% success` }, h("span", { class: "rate" }, h("span", { "data-w": rate })), ` ${rate}%`),
      h("td", { class: "num" }, fmtMs(s.p50_ms)), h("td", { class: "num" }, fmtMs(s.p95_ms)),
      h("td", { class: s.failed ? "num error" : "num" }, String(s.failed)));
  });
  const table = h("table", { class: "fn-table" },
    h("thead", {}, h("tr", {}, ["Function", "Runs", "Success", "p50", "p95", "Failed"].map((t) => h("th", {}, t)))), h("tbody", {}, rows));
  // Widths set through the CSSOM: the page's CSP forbids style attributes in markup, not this.
  for (const el of table.querySelectorAll("[data-w]")) el.style.width = `${el.dataset.w}%`;
  $("#chart-functions").replaceChildren(table);
}

// ---- the stream ------------------------------------------------------------------------------------------

let source = null;
let lastEventId = null;
let retryDelay = 1000;

function setLive(kind, text) {
  $("#live").dataset.state = kind;
  $("#live-text").textContent = text;
}

function connect() {
  const url = `${BASE}/dashboard/stream${lastEventId ? `?resume=${encodeURIComponent(lastEventId)}` : ""}`;
  source = new EventSource(url);
  source.addEventListener("open", () => { retryDelay = 1000; showLiveState(); });
  source.addEventListener("state", (e) => {
    lastEventId = e.lastEventId || lastEventId;
    const data = JSON.parse(e.data);
    renderMetrics(data.metrics);
    if (state.paused) return;
    const f = filters();
    const unfiltered = !f.search && !f.status && !f.func && !f.tag && !f.since;
    if (unfiltered && state.cursors.length === 1) {
      // The snapshot is the first page, with its cursor: no second request for the same rows.
      state.rows = new Map(data.tasks.map((t) => [t.task_id, t]));
      state.nextCursor = data.next_cursor || null;
      renderTable();
    } else loadPage();
  });
  source.addEventListener("task", (e) => {
    lastEventId = e.lastEventId || lastEventId;
    const task = JSON.parse(e.data);
    if (state.paused) {
      state.buffered.set(task.task_id, task);
      showLiveState();
    } else queueChange(task);
  });
  source.addEventListener("metrics", (e) => renderMetrics(JSON.parse(e.data)));
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CONNECTING) { setLive("down", "reconnecting…"); return; }
    // Closed for good (an HTTP error, e.g. 401 after signing out elsewhere): check why, then retry by hand.
    source.close();
    setLive("down", "disconnected");
    api("/metrics").then(() => setTimeout(connect, retryDelay), () => setTimeout(connect, retryDelay));
    retryDelay = Math.min(retryDelay * 2, 30000);
  });
}

// Events are applied in batches on the next animation frame, so a burst costs one table render.
let queued = new Map();
function queueChange(task) {
  if (!queued.size) requestAnimationFrame(() => { const batch = [...queued.values()]; queued = new Map(); applyChanges(batch); });
  queued.set(task.task_id, task);
}

function showLiveState() {
  if (state.paused) {
    const fresh = [...state.buffered.values()].filter((t) => !state.rows.has(t.task_id)).length;
    setLive("paused", `paused · ${state.buffered.size} updates, ${fresh} new`);
  } else if (source && source.readyState === EventSource.OPEN) setLive("live", "live");
  $("#pause").textContent = state.paused ? "Resume" : "Pause";
}

function togglePause() {
  state.paused = !state.paused;
  localStorage.setItem("tf-paused", state.paused ? "1" : "0");
  if (!state.paused && state.buffered.size) {
    applyChanges([...state.buffered.values()]);
    state.buffered.clear();
  }
  showLiveState();
}

// ---- the detail panel ------------------------------------------------------------------------------------

let detailTimer = null;
function scheduleDetailRefresh() {
  if (!detailTimer) detailTimer = setTimeout(() => { detailTimer = null; if (state.openId) renderDetail(state.openId); }, 500);
}

function openDetail(id) {
  state.openId = id;
  for (const tr of document.querySelectorAll("#tasks tbody tr")) tr.classList.toggle("open", tr.dataset.id === id);
  $("#detail").hidden = false;
  renderDetail(id);
}

function closeDetail() {
  state.openId = null;
  $("#detail").hidden = true;
  for (const tr of document.querySelectorAll("#tasks tbody tr.open")) tr.classList.remove("open");
}

function section(title, ...content) {
  return [h("h2", {}, title), ...content.flat()].filter(Boolean);
}

function definitionList(pairs) {
  return h("dl", {}, pairs.filter(([, v]) => v !== undefined).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v ?? "–")]));
}

/** The log lines of each attempt: the runtime writes "--- Retry n ---" between attempts. */
function logsByAttempt(logs) {
  const groups = [[]];
  for (const line of logs) {
    if (/^--- Retry \d+ ---$/.test(line)) groups.push([]);
    else groups[groups.length - 1].push(line);
  }
  return groups;
}

/** Each attempt as a bar on one time axis (task start to end), with the backoff gaps between them. */
function timeline(task) {
  const attempts = task.attempts || [];
  if (!attempts.length) return null;
  const t0 = new Date(attempts[0].start_time).getTime();
  const tEnd = Math.max(...attempts.map((a) => new Date(a.end_time || Date.now()).getTime()), t0 + 1);
  const width = 560, row = 18;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${attempts.length * row + 14}`, role: "img", "aria-label": "Attempt timeline" });
  attempts.forEach((a, i) => {
    const start = new Date(a.start_time).getTime(), end = new Date(a.end_time || Date.now()).getTime();
    const x = 70 + ((start - t0) / (tEnd - t0)) * (width - 80);
    const w = Math.max(2, ((end - start) / (tEnd - t0)) * (width - 80));
    const cls = a.error ? "bad" : a.end_time ? "ok" : "run";
    chart.append(svg("text", { x: 0, y: i * row + 12 }, `attempt ${a.number}`),
      svg("rect", { x, y: i * row + 3, width: w, height: row - 6, rx: 3, class: cls },
        svg("title", {}, `${fmtDuration((end - start) / 1000)}${a.error ? ` · ${a.error}` : ""}`)));
  });
  chart.append(svg("text", { x: 70, y: attempts.length * row + 12 }, "0"),
    svg("text", { x: width - 50, y: attempts.length * row + 12 }, fmtDuration((tEnd - t0) / 1000)));
  return h("div", { class: "timeline" }, chart);
}

async function renderDetail(id) {
  let task;
  try {
    task = (await api(`/${encodeURIComponent(id)}`)).body;
  } catch (err) {
    $("#detail-body").replaceChildren(h("p", { class: "empty" }, `Could not load the task: ${err.message}`));
    return;
  }
  if (state.openId !== id) return;
  $("#detail-title").textContent = `${task.func_name} · ${shortId(task.task_id)}`;
  $("#detail-title").title = task.task_id;
  $("#detail-retry").hidden = !RETRYABLE.has(task.status);
  $("#detail-cancel").hidden = !CANCELLABLE.has(task.status);
  const tags = Object.entries(task.tags || {});
  const parts = [
    definitionList([
      ["Task id", [h("span", { class: "mono", id: "detail-id" }, task.task_id), " ",
        h("button", { type: "button", class: "copy", title: "Copy the full id", onclick: () => copyText(task.task_id) }, "Copy")]],
      ["Function", task.func_name],
      ["Status", h("span", { class: `status ${task.status}` }, task.status)],
      ["Reason", task.status_reason || undefined],
      // With a store, the task's JSON names it (and so do the stream events of another instance's tasks).
      ["Instance", task.instance || state.rows.get(task.task_id)?.instance || undefined],
      ["Created", fmtTime(task.created_at)],
      ["Started", fmtTime(task.start_time)], ["Ended", fmtTime(task.end_time)],
      ["Duration", fmtDuration(task.duration)], ["Retries used", String(task.retries_used)],
      ["Tags", tags.length ? tags.map(([k, v]) => h("span", { class: "tag" }, `${k}: ${v}`)) : "–"],
    ]),
  ];
  if (task.args !== undefined) {
    const kwargs = Object.entries(task.kwargs || {}).map(([k, v]) => `${k}=${v}`);
    parts.push(...section("Arguments", h("pre", {}, [...task.args, ...kwargs].join(", ") || "(none)")));
  }
  const groups = logsByAttempt(task.logs || []);
  const attempts = task.attempts || [];
  if (attempts.length) {
    parts.push(...section("Attempts", timeline(task), attempts.map((a, i) =>
      h("div", { class: "attempt" },
        h("h3", {}, `Attempt ${a.number} · ${fmtTime(a.start_time)} · ${a.end_time ? fmtDuration((new Date(a.end_time) - new Date(a.start_time)) / 1000) : "running"}`),
        a.error ? h("div", { class: "err" }, a.error) : null,
        groups[i] && groups[i].length ? h("pre", { class: "logs" }, groups[i].join("\n")) : h("div", { class: "empty" }, "no log lines")))));
  } else if ((task.logs || []).length) {
    parts.push(...section("Logs", h("pre", { class: "logs" }, task.logs.join("\n"))));
  }
  if (task.stacktrace) parts.push(...section("Traceback", h("pre", { class: "traceback" }, task.stacktrace)));
  const fn = state.metrics?.charts?.functions?.[task.func_name];
  if (fn) {
    const stat = (label, value) => h("div", { class: "card" }, h("div", { class: "label" }, label), h("div", { class: "value" }, value));
    const where = state.metrics.charts.scope === "process" ? "runs in this process" : "runs of every instance";
    const durations = state.metrics.charts.sample ? ` (durations: latest ${state.metrics.charts.sample} runs)` : "";
    parts.push(...section(`${task.func_name}: ${where}${durations}`, h("div", { class: "stats" },
      stat("Runs", fn.runs), stat("Success rate", fn.success_rate === null ? "–" : `${fn.success_rate}%`),
      stat("Failed", fn.failed), stat("Min", fmtMs(fn.min_ms)), stat("Avg", fmtMs(fn.avg_ms)),
      stat("p95", fmtMs(fn.p95_ms)), stat("Max", fmtMs(fn.max_ms)))));
  }
  const recent = h("div", {}, "…");
  parts.push(...section("Recent runs of this function", recent));
  $("#detail-body").replaceChildren(...parts);
  api(`?func_name=${encodeURIComponent(task.func_name)}&limit=5`).then(({ body }) => {
    recent.replaceChildren(h("table", {}, h("tbody", {}, body.map((t) =>
      h("tr", { onclick: () => openDetail(t.task_id) }, h("td", { class: "mono", title: t.task_id }, shortId(t.task_id)),
        h("td", {}, h("span", { class: `status ${t.status}` }, t.status)),
        h("td", { class: "num" }, fmtDuration(t.duration)), h("td", {}, fmtTime(t.created_at)))))));
  }, () => recent.replaceChildren("–"));
}

// ---- actions ---------------------------------------------------------------------------------------------

/** "N tasks retried", with a link opening the (first) new task; concurrent retries of one task share it. */
function retryToast(done, newId) {
  if (!done) return;
  const text = `${done} task${done > 1 ? "s" : ""} retried`;
  if (!newId) { toast(text); return; }
  const link = h("a", { href: "#", class: "mono", title: newId, onclick: (e) => { e.preventDefault(); openDetail(newId); } }, shortId(newId));
  toast(h("span", {}, `${text}: `, link));
}

async function retry(ids) {
  let done = 0;
  let newId = null;
  const failures = [];
  for (const id of ids) {
    try {
      const { body } = await api(`/${encodeURIComponent(id)}/retry`, { method: "POST" });
      newId = newId || body.task_id;
      done += 1;
    } catch (err) {
      failures.push(err.message);
    }
  }
  retryToast(done, newId);
  if (failures.length) toast(`Retry refused: ${failures[0]}`, true);
}

async function onRetryOne() {
  const id = state.openId;
  if (id && (await confirmAction("Retry this task? A new task runs with the same arguments.", "Retry"))) await retry([id]);
}

async function onCancel() {
  const id = state.openId;
  if (!id || !(await confirmAction("Cancel this task?", "Cancel task"))) return;
  try {
    await api(`/${encodeURIComponent(id)}/cancel`, { method: "POST" });
    toast("Task cancelled");
  } catch (err) {
    toast(`Cancel refused: ${err.message}`, true);
  }
}

async function onBulkRetry() {
  const ids = [...state.selected];
  if (!ids.length || !(await confirmAction(`Retry ${ids.length} failed task${ids.length > 1 ? "s" : ""}?`, "Retry all"))) return;
  state.selected.clear();
  updateBulk();
  await retry(ids);
}

// ---- the supervision view --------------------------------------------------------------------------------

function limiter(l) {
  if (!l) return "unlimited";
  return `${l.borrowed}/${l.total === Infinity || l.total > 1e15 ? "∞" : l.total}${l.waiting ? ` (+${l.waiting} waiting)` : ""}`;
}

async function loadSupervision() {
  let data;
  try {
    data = (await api("/supervision")).body;
  } catch (err) {
    toast(`Could not load supervision: ${err.message}`, true);
    return;
  }
  const rows = [];
  const walk = (s, depth) => {
    rows.push(h("tr", {}, h("td", { class: "mono" }, `${"  ".repeat(depth)}${depth ? "└ " : ""}${s.name}`),
      h("td", {}, s.state), h("td", {}, s.policy), h("td", { class: "num" }, String(s.running)),
      h("td", { class: "num" }, String(s.waiting)), h("td", { class: "num" }, String(s.retrying)),
      h("td", { class: "num" }, String(s.restarts_in_window)), h("td", {}, limiter(s.limiter)),
      h("td", {}, limiter(s.thread_limiter)), h("td", { class: "num" }, String(s.succeeded)),
      h("td", { class: "num" }, String(s.failed))));
    for (const child of s.children || []) walk(child, depth + 1);
  };
  if (data.supervisor) walk(data.supervisor, 0);
  else rows.push(h("tr", {}, h("td", { colspan: 11, class: "empty" }, "Not running (no app lifespan).")));
  $("#supervisors tbody").replaceChildren(...rows);
  const opt = (v) => (v === null || v === undefined ? "–" : String(v));
  $("#functions tbody").replaceChildren(...data.functions.map((f) => h("tr", {},
    h("td", { class: "mono" }, f.name), h("td", { class: "fn-kind" }, f.kind),
    h("td", { class: "mono fn-queue" }, opt(f.queue)),
    // A priority orders a queue's waiting tasks: shown for a function with a queue, or a non-default one.
    h("td", { class: "num fn-priority" }, f.queue || f.priority ? String(f.priority) : "–"),
    h("td", {}, f.policy.name),
    h("td", { class: "num" }, opt(f.policy.retries)), h("td", { class: "num" }, opt(f.policy.delay)),
    h("td", { class: "num" }, opt(f.policy.backoff)), h("td", { class: "num" }, opt(f.policy.max_delay)),
    h("td", { class: "num" }, opt(f.policy.jitter)), h("td", { class: "num" }, opt(f.policy.timeout)),
    h("td", {}, f.persist ? "yes" : "no"), h("td", {}, f.requeue_on_interrupt ? "yes" : "no"))));
  for (const f of data.functions) if (!state.functions.has(f.name)) addFunctionOption(f.name);
  renderActors(data.actors || []);
  renderPolicies(data.config || { source: null, policies: [] });
}

function renderActors(actors) {
  const rows = actors.map((a) => h("tr", { class: a.state === "gave_up" ? "gave-up" : "" },
    h("td", { class: "mono" }, a.name), h("td", {}, a.state), h("td", {}, a.restart), h("td", {}, a.policy),
    h("td", { class: "num" }, String(a.restarts)), h("td", { class: "num" }, String(a.failures_in_row)),
    h("td", {}, `${a.max_restarts} in ${a.restart_window} s`), h("td", { class: "mono" }, a.last_error || "–")));
  if (!rows.length) rows.push(h("tr", {}, h("td", { colspan: 8, class: "empty" }, "No actors declared.")));
  $("#actors tbody").replaceChildren(...rows);
}

function renderPolicies(config) {
  $("#config-source").textContent = config.source ? `(${config.source})` : "(no configuration file)";
  const rows = [];
  for (const p of config.policies) {
    for (const [key, value] of Object.entries(p.values)) {
      rows.push(h("tr", {}, h("td", { class: "mono" }, p.name), h("td", {}, key),
        h("td", { class: "num" }, value === null ? "–" : String(value)), h("td", { class: "muted" }, p.sources[key])));
    }
  }
  if (!rows.length) rows.push(h("tr", {}, h("td", { colspan: 4, class: "empty" }, "No named policies.")));
  $("#policies tbody").replaceChildren(...rows);
}

let supervisionTimer = null;
function showTab(name) {
  for (const b of document.querySelectorAll(".tabs button")) b.setAttribute("aria-selected", String(b.dataset.tab === name));
  for (const section of document.querySelectorAll("main > .tab")) section.hidden = section.id !== `tab-${name}`;
  document.dispatchEvent(new CustomEvent("tf-tab", { detail: name })); // other views (audit.js) load on show
  clearInterval(supervisionTimer);
  if (name === "supervision") {
    loadSupervision();
    supervisionTimer = setInterval(loadSupervision, 3000);
  }
}

// ---- start -----------------------------------------------------------------------------------------------

function restart() {
  state.cursors = [null];
  state.selected.clear();
  loadPage();
}

function init() {
  $("#signout").hidden = !AUTH;
  const saved = JSON.parse(localStorage.getItem("tf-filters") || "{}");
  for (const [key, id] of [["status", "#f-status"], ["since", "#f-since"], ["tag", "#f-tag"]]) if (saved[key]) $(id).value = saved[key];
  let typing = null;
  const changed = () => {
    const f = filters();
    localStorage.setItem("tf-filters", JSON.stringify({ status: f.status, since: f.since, tag: f.tag }));
    clearTimeout(typing);
    typing = setTimeout(restart, 250);
  };
  $("#filters").addEventListener("input", changed);
  $("#filters").addEventListener("submit", (e) => e.preventDefault());
  for (const th of document.querySelectorAll("#tasks th[data-sort]")) {
    th.addEventListener("click", () => {
      const key = th.dataset.sort;
      state.sort = { key, dir: state.sort.key === key ? -state.sort.dir : key === "created_at" ? -1 : 1 };
      localStorage.setItem("tf-sort", JSON.stringify(state.sort));
      renderTable();
    });
  }
  $("#select-all").addEventListener("change", (e) => {
    for (const t of state.rows.values()) if (RETRYABLE.has(t.status)) toggleSelected(t.task_id, e.target.checked);
    renderTable();
  });
  $("#older").addEventListener("click", () => { state.cursors.push(state.nextCursor); loadPage(); });
  $("#newer").addEventListener("click", () => { state.cursors.pop(); loadPage(); });
  $("#pause").addEventListener("click", togglePause);
  $("#bulk-retry").addEventListener("click", onBulkRetry);
  $("#detail-close").addEventListener("click", closeDetail);
  $("#detail-retry").addEventListener("click", onRetryOne);
  $("#detail-cancel").addEventListener("click", onCancel);
  document.addEventListener("keydown", (e) => { if (e.key === "Escape" && !$("#confirm").open) closeDetail(); });
  for (const b of document.querySelectorAll(".tabs button")) b.addEventListener("click", () => showTab(b.dataset.tab));
  api("/supervision").then(({ body }) => body.functions.forEach((f) => addFunctionOption(f.name)), () => {});
  showLiveState();
  connect();
}

init();
