// taskflow dashboard: the Queues view (GET {base}/queues: each declared queue's waiting, running, limits,
// finished and rejected counts), refreshed every few seconds while the tab is shown, with an inline resize
// (PATCH {base}/queues/{name} with only the limits that changed; an empty box means no limit). Read-only
// principals see the figures without the resize controls (and the server refuses them anyway). Loaded
// after dashboard.js and uses its helpers (h, $, api, toast). It builds the DOM with text nodes only.
"use strict";

const queuesView = { timer: null, editing: false };
const QUEUES_REFRESH_MS = 3000;

function limitText(value) {
  return value === null ? "∞" : String(value);
}

function limitInput(name, key, value) {
  return h("input", {
    type: "number", min: "1", step: "1", class: `queue-limit queue-${key}`, "data-queue": name,
    "aria-label": `${key === "max_size" ? "Max size" : "Concurrency"} of ${name}`,
    placeholder: "∞", value: value === null ? "" : String(value),
    onfocus: () => { queuesView.editing = true; }, onblur: () => { queuesView.editing = false; },
  });
}

async function loadQueues() {
  if (queuesView.editing) return; // never overwrite what the user is typing
  let queues;
  try {
    queues = (await api("/queues")).body;
  } catch (err) {
    toast(`Could not load queues: ${err.message}`, true);
    return;
  }
  const rows = queues.map((q) => h("tr", { "data-queue": q.name },
    h("td", { class: "mono" }, q.name),
    h("td", { class: "num queue-pending" }, String(q.pending)),
    h("td", { class: "num queue-running" }, String(q.running)),
    h("td", { class: "num" }, h("span", { class: "queue-value" }, limitText(q.concurrency)),
      h("span", { class: "queue-edit" }, limitInput(q.name, "concurrency", q.concurrency))),
    h("td", { class: "num" }, h("span", { class: "queue-value" }, limitText(q.max_size)),
      h("span", { class: "queue-edit" }, limitInput(q.name, "max_size", q.max_size))),
    h("td", { class: "num" }, String(q.finished)),
    h("td", { class: "num queue-rejected" }, String(q.rejected)),
    h("td", { class: "sel" }, h("button", { type: "button", class: "queue-save queue-edit", onclick: () => saveQueue(q) }, "Save"))));
  $("#queues tbody").replaceChildren(...rows);
  $("#queues-empty").hidden = rows.length > 0;
  $("#queues-note").textContent = rows.length ? "Waiting tasks start by priority, then in order." : "";
}

function readLimit(input) {
  const text = input.value.trim();
  if (text === "") return null;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${input.getAttribute("aria-label")} must be a whole number ≥ 1, or empty for no limit`);
  return value;
}

async function saveQueue(queue) {
  const row = document.querySelector(`#queues tr[data-queue="${CSS.escape(queue.name)}"]`);
  const changes = {};
  try {
    for (const key of ["concurrency", "max_size"]) {
      const value = readLimit(row.querySelector(`.queue-${key}`));
      if (value !== queue[key]) changes[key] = value;
    }
  } catch (err) {
    toast(err.message, true);
    return;
  }
  if (!Object.keys(changes).length) {
    toast("Nothing changed");
    return;
  }
  try {
    await api(`/queues/${encodeURIComponent(queue.name)}`, {
      method: "PATCH", headers: { Accept: "application/json", "Content-Type": "application/json" },
      body: JSON.stringify(changes),
    });
  } catch (err) {
    toast(`Resize refused: ${err.message}`, true);
    return;
  }
  toast(`Queue ${queue.name} updated`);
  queuesView.editing = false;
  loadQueues();
}

document.addEventListener("tf-tab", (e) => {
  clearInterval(queuesView.timer);
  queuesView.timer = null;
  if (e.detail !== "queues") return;
  queuesView.editing = false;
  loadQueues();
  queuesView.timer = setInterval(() => { if (!document.hidden) loadQueues(); }, QUEUES_REFRESH_MS);
});
$("#queues-refresh").addEventListener("click", () => { queuesView.editing = false; loadQueues(); });
