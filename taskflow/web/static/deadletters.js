// taskflow dashboard: the Dead letters view (GET {base}/dead-letters: failed and interrupted tasks grouped by
// function and error), with a retry of a whole group (POST {base}/bulk-retry), and the Export link of the
// Tasks tab (GET {base}/export with the current filters). Loaded after dashboard.js and uses its helpers
// (h, $, api, toast, retryToast, confirmAction, filters, shortId, openDetail, fmtTime). The tab also holds
// the clear-history action (DELETE {base}/history), with a confirmation. Like dashboard.js, it builds the
// DOM with text nodes only: there is no innerHTML here.
"use strict";

async function loadDeadLetters() {
  const query = new URLSearchParams();
  const since = $("#dl-since").value;
  if (since) query.set("since", since);
  let body;
  try {
    body = (await api(`/dead-letters?${query}`)).body;
  } catch (err) {
    toast(`Could not load dead letters: ${err.message}`, true);
    return;
  }
  const rows = body.groups.map((g) => h("tr", {},
    h("td", { class: "mono" }, g.func_name),
    h("td", { class: "error", title: g.error }, g.error),
    h("td", { class: "num" }, String(g.count)),
    h("td", {}, Object.entries(g.statuses).map(([s, n]) => `${n} ${s}`).join(", ")),
    h("td", {}, h("a", { href: "#", class: "mono", title: g.newest_task_id, onclick: (e) => { e.preventDefault(); openDetail(g.newest_task_id); } }, shortId(g.newest_task_id)),
      " ", h("span", { class: "muted" }, fmtTime(g.newest_at))),
    h("td", { class: "sel" }, h("button", { type: "button", class: "dl-retry", onclick: () => retryGroup(g) }, `Retry ${g.task_ids.length}`))));
  $("#dead-letters tbody").replaceChildren(...rows);
  $("#dl-empty").hidden = rows.length > 0;
  $("#dl-note").textContent = body.complete ? "" : `The newest ${body.scanned} dead letters are grouped.`;
}

async function retryGroup(group) {
  const n = group.task_ids.length;
  const text = `Retry ${n} failed task${n > 1 ? "s" : ""} of ${group.func_name} (${group.error})?`;
  if (!(await confirmAction(text, "Retry group"))) return;
  let body;
  try {
    body = (await api("/bulk-retry", {
      method: "POST", headers: { Accept: "application/json", "Content-Type": "application/json" },
      body: JSON.stringify({ task_ids: group.task_ids }),
    })).body;
  } catch (err) {
    toast(`Retry refused: ${err.message}`, true);
    return;
  }
  const started = body.results.filter((r) => r.new_task_id).map((r) => r.new_task_id);
  retryToast(body.retried + body.already_retried, started[0]);
  const refused = body.results.find((r) => r.outcome === "refused" || r.outcome === "not_found");
  if (refused) toast(`Not retried: ${refused.detail || refused.outcome}`, true);
  loadDeadLetters();
}

/** Forget finished tasks older than the chosen age (DELETE {base}/history), after a confirmation. */
async function clearHistory() {
  const days = $("#clear-age").value;
  const text = `Forget every finished task older than ${days} day${days === "1" ? "" : "s"}? This cannot be undone.`;
  if (!(await confirmAction(text, "Clear history"))) return;
  try {
    const { body } = await api(`/history?value=${encodeURIComponent(days)}&unit=day`, { method: "DELETE" });
    toast(`${body.deleted} finished task${body.deleted === 1 ? "" : "s"} forgotten`);
  } catch (err) {
    toast(`Clear refused: ${err.message}`, true);
    return;
  }
  loadDeadLetters();
}

/** The Export link of the Tasks tab follows its filters (the id search is not a listing filter). */
function updateExportLink() {
  const f = filters();
  const q = new URLSearchParams({ format: "csv" });
  if (f.status) q.set("status", f.status);
  if (f.func) q.set("func_name", f.func);
  if (f.tag) q.set("tag", f.tag);
  if (f.since) q.set("since", f.since);
  $("#export-csv").href = `${BASE}/export?${q}`;
}

document.addEventListener("tf-tab", (e) => { if (e.detail === "dead-letters") loadDeadLetters(); });
$("#dl-since").addEventListener("change", loadDeadLetters);
$("#dl-refresh").addEventListener("click", loadDeadLetters);
$("#clear-history").addEventListener("click", clearHistory);
$("#filters").addEventListener("input", updateExportLink);
updateExportLink();
