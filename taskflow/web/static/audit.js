// taskflow dashboard: the Audit view (GET {base}/audit, newest first, cursor-paged; CSV via ?format=csv).
// Loaded after dashboard.js and uses its helpers (h, $, api, toast, fmtTime). Like it, it builds the DOM
// with text nodes only: there is no innerHTML here.
"use strict";

const audit = { cursors: [null], next: null, loaded: false };
const AUDIT_PAGE = 50;

async function loadAudit() {
  const cursor = audit.cursors[audit.cursors.length - 1];
  const query = new URLSearchParams({ limit: String(AUDIT_PAGE) });
  if (cursor) query.set("cursor", cursor);
  let result;
  try {
    result = await api(`/audit?${query}`);
  } catch (err) {
    toast(`Could not load the audit log: ${err.message}`, true);
    return;
  }
  audit.next = result.response.headers.get("X-Next-Cursor");
  const rows = result.body.map((e) => h("tr", { "data-entry": e.entry_id },
    h("td", { title: e.at }, fmtTime(e.at)), h("td", {}, e.actor), h("td", { class: "mono" }, e.client || "–"),
    h("td", {}, e.action), h("td", { class: "mono", title: e.target || "" }, e.target || "–"),
    h("td", { class: e.outcome === "ok" ? "" : "outcome-bad" }, e.outcome), h("td", {}, e.detail || "")));
  $("#audit tbody").replaceChildren(...rows);
  $("#audit-empty").hidden = rows.length > 0;
  $("#audit-older").disabled = !audit.next;
  $("#audit-newer").disabled = audit.cursors.length < 2;
}

document.addEventListener("tf-tab", (e) => {
  if (e.detail !== "audit") return;
  audit.cursors = [null];
  loadAudit();
});
$("#audit-csv").href = `${BASE}/audit?format=csv`;
$("#audit-older").addEventListener("click", () => { audit.cursors.push(audit.next); loadAudit(); });
$("#audit-newer").addEventListener("click", () => { audit.cursors.pop(); loadAudit(); });
