// Jobline dashboard: a few views over the Jobs API (/api/v1), routed by the URL's hash.
// No framework and no external asset; every value from the API is set as text, never HTML.
"use strict";

const API = "/api/v1";
const TERMINAL = new Set(["COMPLETE", "ERROR", "STOPPED"]);
const STATUSES = ["QUEUED", "RUNNING", "STOPPING", "COMPLETE", "ERROR", "STOPPED"];
const LIST_EVERY_MS = 5000; // runs of a namespace or Pipeline
const PIPELINES_EVERY_MS = 15000;
const RUN_EVERY_MS = 3000; // one run, until it ends; its log when the operator saw new lines
const PAGE_LOG_LINES = 5000; // a run's page keeps the latest lines of its log, no more

let timers = [];
let view = 0; // bumped on every route change, so answers for an old view are dropped

class ApiError extends Error {
  constructor(status, reason, message) {
    super(message);
    this.status = status;
    this.reason = reason;
  }
}

// --- the API --------------------------------------------------------------

function token() {
  return sessionStorage.getItem("jobline.token");
}

async function call(method, path, body, accept) {
  const headers = { Accept: accept || "application/json" };
  if (token()) headers.Authorization = `Bearer ${token()}`;
  if (method !== "GET") headers["Content-Type"] = "application/json";
  const response = await fetch(API + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  if (response.status === 204) return null;
  if (!response.ok) {
    let problem = {};
    try { problem = await response.json(); } catch (e) { /* not JSON */ }
    throw new ApiError(response.status, problem.reason || response.statusText,
      problem.message || `HTTP ${response.status}`);
  }
  if (accept === "application/x-ndjson") {
    const text = await response.text();
    return { lines: text.split("\n").filter(Boolean).map((l) => JSON.parse(l)),
      gone: response.headers.get("Jobline-Lines-Gone") };
  }
  return response.json();
}

const enc = encodeURIComponent;

// --- building the page ----------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function badge(status) {
  return h("span", { class: `badge ${status}` }, status);
}

function when(stamp) {
  if (!stamp) return "";
  const d = new Date(stamp);
  return h("time", { datetime: stamp, title: stamp }, d.toLocaleString());
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 60) return `${Math.round(seconds * 10) / 10}s`;
  const m = Math.floor(seconds / 60), s = Math.round(seconds % 60);
  if (m < 60) return `${m}m${s}s`;
  return `${Math.floor(m / 60)}h${m % 60}m`;
}

function main() {
  return document.getElementById("main");
}

function show(...children) {
  const m = main();
  m.replaceChildren(...children);
  m.focus();
}

function errorBox(error) {
  const box = h("div", { class: "alert", role: "alert" });
  if (error instanceof ApiError && error.status === 403) {
    box.append(h("strong", {}, "Permission denied"),
      h("p", {}, error.message),
      h("p", {}, "Ask a cluster admin for a Role that allows this, or sign in with another token."));
  } else if (error instanceof ApiError && error.status === 401) {
    box.append(h("strong", {}, "Not signed in"), h("p", {}, error.message));
  } else {
    box.append(h("strong", {}, error.reason || "Error"), h("p", {}, error.message));
  }
  return box;
}

function every(ms, fn) {
  const mine = view;
  const tick = async () => {
    if (mine !== view) return;
    if (document.visibilityState === "visible") {
      try { await fn(); } catch (e) { report(e); }
    }
    if (mine === view) timers.push(setTimeout(tick, ms));
  };
  tick();
}

function report(error) {
  if (error instanceof ApiError && error.status === 401) return signInAgain(error);
  const slot = document.getElementById("problem");
  if (slot) slot.replaceChildren(errorBox(error));
  else show(errorBox(error));
  // A part that could not be read says so, rather than "Loading…" for ever; the next
  // successful poll fills it in.
  for (const waiting of document.querySelectorAll("main .loading")) {
    waiting.replaceWith(h("p", { class: "notice" }, "Not shown: see the error above."));
  }
}

function loading() {
  return h("p", { class: "notice loading" }, "Loading…");
}

function clearProblem() {
  const slot = document.getElementById("problem");
  if (slot) slot.replaceChildren();
}

// --- signing in -----------------------------------------------------------

let session = null;

async function whoami() {
  try {
    session = await call("GET", "/session");
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      signInAgain(e);
      return false;
    }
    show(errorBox(e));
    return false;
  }
  const who = document.getElementById("who");
  who.replaceChildren(`Signed in as ${session.user}`);
  if (token()) {
    who.append(" ", h("button", { type: "button", onclick: signOut }, "Sign out"));
  }
  return true;
}

function signOut() {
  sessionStorage.removeItem("jobline.token");
  location.hash = "#/";
  location.reload();
}

// No token, or one the apiserver no longer accepts (expired): ask for one, saying why
// when there was one.
function signInAgain(error) {
  const had = Boolean(token());
  sessionStorage.removeItem("jobline.token");
  session = null;
  login(had ? error : null);
}

function login(error) {
  stopTimers();
  const input = h("textarea", { id: "token", name: "token", rows: 4, required: true,
    autocomplete: "off", spellcheck: "false" });
  const form = h("form", { class: "login", onsubmit: async (event) => {
    event.preventDefault();
    sessionStorage.setItem("jobline.token", input.value.trim());
    if (await whoami()) route();
  } },
  h("label", { for: "token" }, "Kubernetes bearer token"),
  input,
  h("p", { class: "notice" },
    "The server acts with this token only, so your RBAC decides what you see and do. ",
    "It is kept in this browser tab's session until you sign out. ",
    "Get one with: kubectl create token SERVICE-ACCOUNT"),
  h("button", { type: "submit", class: "primary" }, "Sign in"));
  show(h("h1", {}, "Sign in"), error ? errorBox(error) : "", form);
}

// --- routes ---------------------------------------------------------------

function stopTimers() {
  view += 1;
  timers.forEach(clearTimeout);
  timers = [];
}

function currentNamespace() {
  return localStorage.getItem("jobline.namespace") || (session && session.namespace) || "default";
}

// A malformed escape in a typed or pasted address (say, "%E0%A4%A") is taken as it is.
function decodePart(part) {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

async function route() {
  stopTimers();
  if (!session && !(await whoami())) return;
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodePart);
  if (parts[0] !== "ns" || !parts[1]) {
    location.replace(`#/ns/${enc(currentNamespace())}`);
    return;
  }
  const ns = parts[1];
  localStorage.setItem("jobline.namespace", ns);
  document.getElementById("namespace").value = ns;
  if (parts[2] === "jobs" && parts[3]) return runPage(ns, parts[3]);
  if (parts[2] === "pipelines" && parts[3]) return pipelinePage(ns, parts[3]);
  return namespacePage(ns);
}

// --- a namespace: its Pipelines and runs ----------------------------------

function namespacePage(ns) {
  document.title = `${ns} · Jobline`;
  const pipelines = h("div", { class: "scroll" }, loading());
  const runs = runsTable(ns, null);
  show(h("h1", {}, `Namespace ${ns}`), h("div", { id: "problem" }),
    h("section", { "aria-labelledby": "pipelines-h" },
      h("h2", { id: "pipelines-h" }, "Pipelines"), pipelines),
    runs);
  every(PIPELINES_EVERY_MS, async () => {
    const found = await call("GET", `/namespaces/${enc(ns)}/pipelines`);
    clearProblem();
    pipelines.replaceChildren(pipelineTable(ns, found.items));
    runs.setPipelines(found.items.map((p) => p.name));
  });
}

function pipelineTable(ns, items) {
  if (!items.length) return h("p", { class: "notice" }, "No Pipelines in this namespace.");
  return h("table", {},
    h("thead", {}, h("tr", {},
      ...["Name", "Schedule", "Last run", "Status", "Next run", "Waiting", "Running"].map((c, i) =>
        h("th", { scope: "col", class: i === 1 || i === 4 ? "hide-narrow" : null }, c)))),
    h("tbody", {}, ...items.map((p) => h("tr", {},
      h("td", { class: "wrap" }, h("a", { href: `#/ns/${enc(ns)}/pipelines/${enc(p.name)}` }, p.name)),
      h("td", { class: "hide-narrow" }, p.suspend ? `${p.schedule || ""} (suspended)` : p.schedule || "by hand"),
      h("td", { class: "wrap" }, p.lastRun ? h("a", { href: `#/ns/${enc(ns)}/jobs/${enc(p.lastRun.name)}` },
        p.lastRun.name) : ""),
      h("td", {}, p.lastRun && p.lastRun.phase ? badge(p.lastRun.phase) : ""),
      h("td", { class: "hide-narrow" }, when(p.nextScheduleTime)),
      h("td", {}, String(p.queuedRuns || 0)),
      h("td", {}, String((p.activeRuns || []).length))))));
}

function runsTable(ns, pipeline) {
  const pipelineFilter = h("select", { id: "filter-pipeline" }, h("option", { value: "" }, "All"));
  const statusFilter = h("select", { id: "filter-status" }, h("option", { value: "" }, "All"),
    ...STATUSES.map((s) => h("option", { value: s }, s)));
  const body = h("div", { class: "scroll", "aria-live": "polite" },
    loading());
  const filters = h("div", { class: "filters" },
    pipeline ? "" : h("div", {}, h("label", { for: "filter-pipeline" }, "Pipeline"), pipelineFilter),
    h("div", {}, h("label", { for: "filter-status" }, "Status"), statusFilter));
  const section = h("section", { "aria-labelledby": "runs-h" },
    h("h2", { id: "runs-h" }, "Runs"), filters, body);
  const load = async () => {
    const query = new URLSearchParams({ limit: "50" });
    if (pipeline || pipelineFilter.value) query.set("pipeline", pipeline || pipelineFilter.value);
    if (statusFilter.value) query.set("status", statusFilter.value);
    const found = await call("GET", `/namespaces/${enc(ns)}/jobs?${query}`);
    clearProblem();
    body.replaceChildren(runRows(ns, found.items, !pipeline));
  };
  pipelineFilter.addEventListener("change", () => load().catch(report));
  statusFilter.addEventListener("change", () => load().catch(report));
  section.setPipelines = (names) => {
    const chosen = pipelineFilter.value;
    pipelineFilter.replaceChildren(h("option", { value: "" }, "All"),
      ...names.map((n) => h("option", { value: n, selected: n === chosen }, n)));
  };
  every(LIST_EVERY_MS, load);
  return section;
}

function runRows(ns, items, withPipeline) {
  if (!items.length) return h("p", { class: "notice" }, "No runs.");
  const head = ["Run", withPipeline ? "Pipeline" : null, "Status", "Exit", "Started", "Duration"]
    .filter(Boolean);
  return h("table", { id: "runs" },
    h("caption", {}, "Newest first; updates on its own."),
    h("thead", {}, h("tr", {}, ...head.map((c) =>
      h("th", { scope: "col", class: c === "Started" || c === "Pipeline" ? "hide-narrow" : null }, c)))),
    h("tbody", {}, ...items.map((j) => h("tr", { "data-run": j.name },
      h("td", { class: "wrap" }, h("a", { href: `#/ns/${enc(ns)}/jobs/${enc(j.name)}` }, j.name)),
      withPipeline ? h("td", { class: "hide-narrow wrap" }, j.pipeline) : null,
      h("td", {}, badge(j.status)),
      h("td", {}, j.exitCode === null ? "" : String(j.exitCode)),
      h("td", { class: "hide-narrow" }, when(j.startTime)),
      h("td", {}, duration(j.durationSeconds))))));
}

// --- a Pipeline: its details, the start form and its runs -----------------

async function pipelinePage(ns, name) {
  document.title = `${name} · Jobline`;
  const mine = view;
  let p;
  try {
    p = await call("GET", `/namespaces/${enc(ns)}/pipelines/${enc(name)}`);
  } catch (e) {
    show(h("h1", {}, `Pipeline ${name}`), errorBox(e));
    return;
  }
  if (mine !== view) return;
  show(h("p", {}, h("a", { href: `#/ns/${enc(ns)}` }, `← Namespace ${ns}`)),
    h("h1", {}, `Pipeline ${name}`),
    h("div", { id: "problem" }),
    p.description ? h("p", {}, p.description) : "",
    h("dl", { class: "fields" },
      h("dt", {}, "Schedule"), h("dd", {}, p.schedule ? `${p.schedule} (${p.timeZone})` : "by hand"),
      h("dt", {}, "Next run"), h("dd", {}, when(p.nextScheduleTime) || "none"),
      h("dt", {}, "Concurrency"), h("dd", {}, `${p.concurrencyPolicy}, ${p.maxConcurrentRuns} at once`),
      h("dt", {}, "Ready"), h("dd", {}, `${p.ready || "Unknown"}${p.readyMessage ? `: ${p.readyMessage}` : ""}`)),
    startForm(ns, p),
    runsTable(ns, name));
}

function startForm(ns, p) {
  // The controls by variable name, in a map of the form's own: form.elements[name] would
  // give the form's own fields (priority) or methods (length, item) for some names.
  const controls = new Map();
  const fields = p.variables.map((v) => {
    const id = `var-${v.name}`;
    const control = v.enum
      ? h("select", { id, name: v.name, required: v.required },
        v.required && v.default == null ? h("option", { value: "" }, "choose…") : "",
        ...v.enum.map((value) => h("option", { value, selected: value === v.default }, value)))
      : h("input", { id, name: v.name, value: v.default ?? "", required: v.required && v.default == null,
        "aria-describedby": v.description ? `${id}-help` : null });
    controls.set(v.name, control);
    return h("div", {},
      h("label", { for: id }, v.name, v.required ? h("span", { class: "required" }, " (required)") : ""),
      control,
      v.description ? h("small", { id: `${id}-help`, class: "notice" }, ` ${v.description}`) : "");
  });
  const priority = h("input", { id: "priority", name: "priority", type: "number", value: "0", step: "1" });
  const result = h("div", { "aria-live": "polite" });
  const form = h("form", { class: "start", id: "start-form", onsubmit: async (event) => {
    event.preventDefault();
    const variables = {};
    for (const v of p.variables) {
      const value = controls.get(v.name).value;
      if (value !== "" || v.required) variables[v.name] = value;
    }
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const run = await call("POST", `/namespaces/${enc(ns)}/pipelines/${enc(p.name)}/jobs`,
        { variables, priority: Number(priority.value || 0) });
      location.hash = `#/ns/${enc(ns)}/jobs/${enc(run.name)}`;
    } catch (e) {
      result.replaceChildren(errorBox(e));
    } finally {
      button.disabled = false;
    }
  } },
  ...fields,
  h("div", {}, h("label", { for: "priority" }, "Priority (higher runs first when queued)"), priority),
  h("div", {}, h("button", { type: "submit", class: "primary" }, "Start a run")),
  result);
  return h("section", { "aria-labelledby": "start-h" }, h("h2", { id: "start-h" }, "Start a run"), form);
}

// --- a run: its status, variables, outputs and log ------------------------

function runPage(ns, name) {
  document.title = `${name} · Jobline`;
  const path = `/namespaces/${enc(ns)}/jobs/${enc(name)}`;
  const summary = h("div", { "aria-live": "polite" }, loading());
  const log = h("ol", { class: "log", id: "log", tabindex: "0", "aria-label": "Log lines" });
  const logNote = h("p", { class: "notice", id: "log-note" });
  const stopButton = h("button", { type: "button", class: "danger", id: "stop", onclick: async () => {
    if (!confirm(`Stop run ${name}?`)) return;
    try { await call("PUT", `${path}/stopped`); await refresh(); } catch (e) { report(e); }
  } }, "Stop");
  const deleteButton = h("button", { type: "button", class: "danger", id: "delete", onclick: async () => {
    if (!confirm(`Delete run ${name}? Its log tail goes with it.`)) return;
    try { await call("DELETE", path); location.hash = `#/ns/${enc(ns)}`; } catch (e) { report(e); }
  } }, "Delete");
  let run = null;
  let next = 0; // the next log line to ask for
  let done = false;

  show(h("p", {}, h("a", { href: `#/ns/${enc(ns)}` }, `← Namespace ${ns}`)),
    h("h1", {}, `Run ${name}`),
    h("div", { id: "problem" }),
    h("div", { class: "actions" }, stopButton, deleteButton),
    h("div", { class: "run-layout" },
      summary,
      h("section", { "aria-labelledby": "log-h" }, h("h2", { id: "log-h" }, "Log"), logNote, log)));

  async function readLog() {
    const found = await call("GET", `${path}/logs?sequence=${next}`, undefined, "application/x-ndjson");
    if (!found) return;
    if (found.gone && next === 0) {
      const first = found.lines.length ? found.lines[0].sequence : 0;
      logNote.textContent = `Lines 0-${first - 1} are gone with the pod; the run keeps its last lines.`;
    }
    for (const { sequence, line } of found.lines) {
      if (sequence < next) continue;
      log.append(h("li", {}, h("span", { class: "n" }, String(sequence)), h("span", {}, line)));
      next = sequence + 1;
    }
    if (log.children.length > PAGE_LOG_LINES) {
      while (log.children.length > PAGE_LOG_LINES) log.firstElementChild.remove();
      logNote.textContent = `Showing the last ${PAGE_LOG_LINES} lines; \`jobline logs ${name}\` prints them all.`;
    }
    if (found.lines.length) log.scrollTop = log.scrollHeight;
  }

  async function refresh() {
    run = await call("GET", path);
    clearProblem();
    summary.replaceChildren(...runSummary(ns, run));
    document.getElementById("log-h").textContent =
      run.logContainer ? `Log of container ${run.logContainer}` : "Log";
    stopButton.disabled = TERMINAL.has(run.status) || run.stopRequested;
    // The log costs the apiserver three requests: read it when the operator has seen lines
    // this page has not shown, and once more at the end.
    const ended = TERMINAL.has(run.status);
    if (run.podName && (run.logLines > next || ended)) await readLog();
    if (ended) {
      done = true;
      if (!log.children.length) logNote.textContent = "No log lines.";
    }
  }

  const mine = view;
  const tick = async () => {
    if (mine !== view) return;
    try {
      if (document.visibilityState === "visible") await refresh();
    } catch (e) {
      report(e);
    }
    if (!done && mine === view) timers.push(setTimeout(tick, RUN_EVERY_MS));
  };
  tick();
}

// Reasons of a QUEUED run that will not start without a fix (the operator's NEEDS_ATTENTION).
const NEEDS_ATTENTION = new Set(["ImagePullFailed", "ConfigError", "MountFailed", "StartFailed",
  "Unschedulable", "PodCreationFailed", "Inadmissible", "KueueNotInstalled"]);

function runSummary(ns, j) {
  const parts = [];
  if (j.status === "ERROR" || (j.status === "STOPPED" && j.reason !== "Stopped")) {
    parts.push(h("div", { class: "failure", role: "status" },
      h("p", {}, h("strong", {}, j.reason || j.status)), h("p", {}, j.message || "")));
  } else if (j.status === "QUEUED" && NEEDS_ATTENTION.has(j.reason)) {
    // Its pod cannot start until someone fixes what the kubelet says.
    parts.push(h("div", { class: "failure waiting", role: "status" },
      h("p", {}, h("strong", {}, j.reason)), h("p", {}, j.message || "")));
  }
  const failed = j.failure
    ? `${j.failure.kind} container ${j.failure.container}` +
      (j.failure.exitCode === null ? "" : `, exit code ${j.failure.exitCode}`) +
      (j.failure.reason ? ` (${j.failure.reason})` : "")
    : "";
  const rows = [
    ["Status", badge(j.status)],
    ["Reason", j.reason || ""],
    ["Message", j.message || ""],
    ["Failed container", failed],
    ["Pipeline", h("a", { href: `#/ns/${enc(ns)}/pipelines/${enc(j.pipeline)}` }, j.pipeline)],
    ["Exit code", j.exitCode === null ? "" : String(j.exitCode)],
    ["Created", when(j.created)],
    ["Started", when(j.startTime)],
    ["Ended", when(j.endTime)],
    ["Duration", duration(j.durationSeconds)],
    ["Attempts", String(j.attempts)],
    ["Started by", j.creator.type === "Schedule" ? `schedule, for ${j.creator.scheduledTime}` : "hand"],
    ["Priority", String(j.priority)],
    ["Queue position", j.queuePosition === null ? "" : String(j.queuePosition)],
    ["Stop requested", j.stopRequested ? "yes" : "no"],
  ];
  // Fields without a value yet (no exit code while running) are left out.
  parts.push(h("dl", { class: "fields", id: "run-fields" },
    ...rows.filter(([, v]) => v !== "").flatMap(([k, v]) =>
      [h("dt", {}, k), h("dd", { "data-field": k }, v)])));
  const vars = Object.entries(j.variables || {});
  parts.push(h("h2", {}, "Variables"), vars.length
    ? h("dl", { class: "fields" }, ...vars.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]))
    : h("p", { class: "notice" }, "None."));
  parts.push(h("h2", {}, "Outputs"), (j.outputs || []).length
    ? h("div", { class: "scroll" }, h("table", {},
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Name"), h("th", { scope: "col" }, "Records"))),
      h("tbody", {}, ...j.outputs.map((o) => h("tr", {}, h("td", {}, o.name),
        h("td", {}, o.records === null || o.records === undefined ? "" : String(o.records)))))))
    : h("p", { class: "notice" }, "None."));
  return parts;
}

// --- start ----------------------------------------------------------------

document.getElementById("namespace-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const ns = document.getElementById("namespace").value.trim();
  if (ns) location.hash = `#/ns/${enc(ns)}`;
});

async function fillNamespaces() {
  try {
    const found = await call("GET", "/namespaces");
    document.getElementById("namespaces").replaceChildren(
      ...found.items.map((n) => h("option", { value: n })));
  } catch (e) {
    /* may not list namespaces: type one in */
  }
}

window.addEventListener("hashchange", route);
route().then(() => { if (session) fillNamespaces(); });
