// taskflow dashboard: the Schedules view (GET {base}/schedules): each periodic schedule with its trigger,
// next run, last run and its outcome, and its pause / resume / run-now actions (POST
// {base}/schedules/{name}/pause|resume|run); then the waiting one-off runs with a cancel action (POST
// {base}/schedules/once/{key}/cancel). Loaded after dashboard.js and uses its helpers (h, $, api, toast,
// confirmAction, shortId, openDetail, fmtTime). The actions sit in `td.sel` cells, hidden for read-only
// users (the server refuses them with 403 anyway). No innerHTML here: text nodes only.
"use strict";

function scheduleAction(path, verb) {
  return async () => {
    try {
      const { body } = await api(path, { method: "POST" });
      toast(body.task_id ? `${verb}: task ${shortId(body.task_id)}` : verb);
    } catch (err) {
      toast(`${verb} refused: ${err.message}`, true);
    }
    loadSchedules();
  };
}

function lastRunCell(run) {
  if (!run) return h("td", { class: "muted" }, "never");
  const link = h("a", { href: "#", class: "mono", title: run.task_id, onclick: (e) => { e.preventDefault(); openDetail(run.task_id); } }, shortId(run.task_id));
  const status = run.status || "unknown";
  return h("td", {}, link, " ", h("span", { class: `status ${status}` }, status), " ", h("span", { class: "muted" }, fmtTime(run.end_time || run.created_at)));
}

async function loadSchedules() {
  let body;
  try {
    body = (await api("/schedules")).body;
  } catch (err) {
    toast(`Could not load schedules: ${err.message}`, true);
    return;
  }
  const rows = body.schedules.map((s) => {
    const name = encodeURIComponent(s.name);
    const toggle = s.paused
      ? h("button", { type: "button", class: "sched-resume", onclick: scheduleAction(`/schedules/${name}/resume`, `Resumed ${s.name}`) }, "Resume")
      : h("button", { type: "button", class: "sched-pause", onclick: scheduleAction(`/schedules/${name}/pause`, `Paused ${s.name}`) }, "Pause");
    const runNow = h("button", { type: "button", class: "sched-run", onclick: scheduleAction(`/schedules/${name}/run`, `Ran ${s.name}`) }, "Run now");
    return h("tr", { "data-schedule": s.name },
      h("td", { class: "mono" }, s.name),
      h("td", { class: "mono", title: s.trigger.timezone || "UTC" }, s.trigger.expression),
      h("td", {}, s.paused ? h("span", { class: "badge paused" }, "paused") : fmtTime(s.next_run)),
      lastRunCell(s.last_run),
      h("td", { class: "num" }, String(s.skipped)),
      h("td", { class: "sel actions" }, toggle, " ", runNow));
  });
  $("#schedules tbody").replaceChildren(...rows);
  $("#schedules-empty").hidden = rows.length > 0;
  const once = body.one_offs.map((o) => h("tr", {},
    h("td", { class: "mono" }, o.run_key),
    h("td", { class: "mono" }, o.func_name),
    h("td", {}, fmtTime(o.fire_at)),
    h("td", { class: "sel actions" }, h("button", { type: "button", class: "once-cancel", onclick: async () => {
      if (!(await confirmAction(`Cancel the one-off run ${o.run_key}?`, "Cancel run"))) return;
      await scheduleAction(`/schedules/once/${encodeURIComponent(o.run_key)}/cancel`, `Cancelled ${o.run_key}`)();
    } }, "Cancel"))));
  $("#one-offs tbody").replaceChildren(...once);
  $("#one-offs-empty").hidden = once.length > 0;
}

document.addEventListener("tf-tab", (e) => { if (e.detail === "schedules") loadSchedules(); });
document.addEventListener("DOMContentLoaded", () => { $("#schedules-refresh").addEventListener("click", loadSchedules); });
