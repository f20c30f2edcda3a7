// MotionSight review page: plain JS, no build step. Talks to server.py's /api and /media.
"use strict";

const params = new URLSearchParams(location.search);
const token = params.get("token");
let reviewer = params.get("reviewer"); // null: the server's --reviewer
let current = null; // the last state from the server
let busy = false;
let view = "original";

const $ = (id) => document.getElementById(id);

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

async function api(path, body) {
  const url = new URL(path, location.href);
  if (body === undefined && reviewer) url.searchParams.set("reviewer", reviewer);
  const options = { headers: {} };
  if (token) options.headers["X-Review-Token"] = token;
  if (body !== undefined) {
    options.method = "POST";
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify({ reviewer: reviewer, ...body });
  }
  const response = await fetch(url, options);
  let data = null;
  try { data = await response.json(); } catch (e) { data = null; }
  if (!response.ok) {
    throw new Error((data && data.error) || `${response.status} ${response.statusText}`);
  }
  return data;
}

function setView(name) {
  if (!current || !current.pair) return;
  view = name;
  for (const b of document.querySelectorAll(".view")) {
    b.classList.toggle("active", b.dataset.view === name);
  }
  const video = $("video");
  $("view-status").textContent = name === "original" ? "" : `loading ${name}…`;
  video.src = current.pair.media[name];
  video.load();
  video.play().catch(() => {});
}

function render(state) {
  const samePair = current && current.pair && state.pair && current.pair.id === state.pair.id;
  current = state;
  reviewer = state.reviewer;
  $("who").textContent = `reviewer: ${state.reviewer}`;
  $("done").textContent = state.done;
  $("left").textContent = state.left;
  $("bar-fill").style.width = `${(100 * state.done) / Math.max(1, state.total)}%`;
  const others = Object.entries(state.per_reviewer)
    .map(([name, n]) => `${name} ${n}`).join(", ");
  $("per-reviewer").textContent = others ? `per reviewer: ${others}` : "";
  $("undo").disabled = !state.can_undo;
  $("undo-finished").disabled = !state.can_undo;
  for (const c of document.querySelectorAll(".choice")) c.classList.remove("picked");
  if (state.finished) {
    $("review").hidden = true;
    $("finished").hidden = false;
    $("finished-summary").textContent =
      `${state.total} pairs, all decided by ${state.reviewer}: ` +
      `${state.done - state.skipped} chosen, ${state.skipped} skipped. ` +
      `Decisions per reviewer: ${others || "none"}.`;
    $("export-command").textContent = state.export_command;
    $("video").removeAttribute("src");
    document.body.dataset.state = "finished";
    return;
  }
  $("finished").hidden = true;
  $("review").hidden = false;
  const pair = state.pair;
  $("question").textContent = pair.question;
  $("text-left").textContent = pair.left;
  $("text-right").textContent = pair.right;
  $("clip-name").textContent = `pair ${pair.index + 1} of ${state.total} · ${pair.video}`;
  if (!samePair) setView("original");
  document.body.dataset.state = "ready";
  document.body.dataset.pair = pair.id;
}

async function act(path, body, picked) {
  if (busy) return;
  busy = true;
  document.body.dataset.state = "busy";
  if (picked) picked.classList.add("picked");
  try {
    render(await api(path, body));
    showError("");
  } catch (e) {
    showError(e.message);
    try { render(await api("api/state")); } catch (e2) { /* keep the first message */ }
  } finally {
    busy = false;
    if (document.body.dataset.state === "busy") document.body.dataset.state = "ready";
  }
}

function choose(side) {
  if (!current || !current.pair) return;
  act("api/decide", { pair: current.pair.id, action: "choose", side }, $(`choice-${side}`));
}

function skip() {
  if (!current || !current.pair) return;
  act("api/decide", { pair: current.pair.id, action: "skip" });
}

function undo() {
  if (current && current.can_undo) act("api/undo", {});
}

function toggleHelp(show) {
  const help = $("help");
  help.hidden = show === undefined ? !help.hidden : !show;
}

document.addEventListener("keydown", (e) => {
  if (e.repeat || e.ctrlKey || e.metaKey || e.altKey) return;
  const keys = {
    ArrowLeft: () => choose("left"),
    ArrowRight: () => choose("right"),
    s: skip,
    u: undo,
    "?": () => toggleHelp(),
    Escape: () => toggleHelp(false),
    "1": () => setView("original"),
    "2": () => setView("spotlight"),
    "3": () => setView("trails"),
    " ": () => { const v = $("video"); if (v.paused) v.play().catch(() => {}); else v.pause(); },
  };
  const run = keys[e.key];
  if (run) {
    e.preventDefault();
    run();
  }
});

$("choice-left").addEventListener("click", () => choose("left"));
$("choice-right").addEventListener("click", () => choose("right"));
$("skip").addEventListener("click", skip);
$("undo").addEventListener("click", undo);
$("undo-finished").addEventListener("click", undo);
$("help-button").addEventListener("click", () => toggleHelp());
for (const b of document.querySelectorAll(".view")) {
  b.addEventListener("click", () => setView(b.dataset.view));
}

const video = $("video");
video.addEventListener("canplay", () => {
  $("view-status").textContent = view === "original" ? "" : `${view}: the 16 sampled frames`;
});
video.addEventListener("error", async () => {
  if (!video.getAttribute("src")) return;
  let message = `cannot play the ${view} view`;
  try { await api(video.getAttribute("src").replace(/^\//, "")); } catch (e) { message += `: ${e.message}`; }
  $("view-status").textContent = message;
});

api("api/state").then(render).catch((e) => showError(e.message));
