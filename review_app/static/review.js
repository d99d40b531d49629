// The reviewer's page: one leased image at a time, the next one already loaded.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);
  const undoSeconds = Number(document.querySelector(".review").dataset.undoSeconds || 120);
  const buttons = { ok: $("btn-ok"), defect: $("btn-defect"), skip: $("btn-skip"), undo: $("btn-undo") };
  const image = $("image");
  const loupe = $("loupe");
  let current = null;     // the image on screen
  let upcoming = null;    // the next image, leased and preloaded
  let history = [];       // this session's decisions still inside the undo window, newest first
  let emptyTimer = null;
  let busy = false;
  let loupeAt = { x: 0.5, y: 0.5 };

  function post(path, body) {
    return fetch(path, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body),
    });
  }

  async function reason(response) {
    try { return (await response.json()).error || "HTTP " + response.status; } catch (e) { return "HTTP " + response.status; }
  }

  async function lease(exclude) {
    const query = exclude.filter(Boolean).map((n) => "exclude=" + encodeURIComponent(n)).join("&");
    const response = await fetch("/api/next?" + query, { credentials: "same-origin" });
    if (!response.ok) throw new Error("Could not get the next image: " + (await reason(response)));
    const item = await response.json();
    if (item.empty) return null;
    new Image().src = item.url;  // prefetch, so showing it is instant
    return item;
  }

  // Feedback: kind is "success", "conflict" or "error"; the icon and the words differ, not only the colour.
  const ICONS = { success: "✓", conflict: "⚠", error: "✕" };
  function say(kind, text) {
    const status = $("status");
    status.className = "status " + kind;
    status.querySelector(".icon").textContent = ICONS[kind];
    status.querySelector(".text").textContent = text;
  }

  function waited(arrived) {
    const since = (Date.now() - new Date(arrived).getTime()) / 60000;
    if (!arrived || Number.isNaN(since)) return "–";
    if (since < 1) return "less than a minute";
    if (since < 60) return Math.round(since) + " min";
    const hours = Math.floor(since / 60);
    return hours + " h " + Math.round(since % 60) + " min";
  }

  function show(item) {
    current = item;
    $("loading").hidden = true;
    if (!item) {
      image.hidden = true;
      loupe.hidden = true;
      $("empty").hidden = false;
      ["name", "model", "waited"].forEach((id) => { $(id).textContent = "–"; });
      setEnabled(false);
      if (!emptyTimer) emptyTimer = setInterval(refill, 10000);
      return;
    }
    clearInterval(emptyTimer); emptyTimer = null;
    $("empty").hidden = true;
    image.src = item.url;
    image.alt = "Cast part " + item.display_name;
    image.hidden = false;
    $("name").textContent = item.display_name;
    const score = item.model_score === null ? "?" : Math.round(item.model_score * 100) + "%";
    $("model").textContent = (item.model_label || "?") + " (" + score + ")";
    $("waited").textContent = waited(item.arrived);
    $("waited").title = item.arrived ? new Date(item.arrived).toLocaleString() : "";
    setEnabled(true);
    placeLoupe();
  }

  function setEnabled(on) {
    buttons.ok.disabled = buttons.defect.disabled = buttons.skip.disabled = !on;
    buttons.undo.disabled = history.length === 0;
  }

  async function refill() {
    try {
      if (!current) show(await lease([]));
      if (current && !upcoming) upcoming = await lease([current.name]);
      refreshCount();
    } catch (err) { say("error", err.message); }
  }

  async function advance(exclude) {
    const next = upcoming;
    upcoming = null;
    show(next);
    if (!next) show(await lease(exclude));
    if (current) upcoming = await lease([current.name, ...exclude]);
  }

  function count(delta) {
    const n = Math.max(0, Number(sessionStorage.getItem("decided") || 0) + delta);
    sessionStorage.setItem("decided", String(n));
    $("session-count").textContent = n;
  }

  async function decide(label) {
    if (!current || busy) return;
    busy = true;
    const item = current;
    try {
      const pending = post("/api/decide", { name: item.name, generation: item.generation, label: label });
      await advance([item.name]);
      const response = await pending;
      if (response.status === 409) {
        say("conflict", item.display_name + ": already decided by someone else. Nothing was saved; here is the next one.");
      } else if (!response.ok) {
        say("error", item.display_name + ": not saved (" + (await reason(response)) + "). It returns to the queue.");
      } else {
        const decision = await response.json();
        history.unshift({ name: decision.name, display: item.display_name, label: label, at: Date.now() });
        renderHistory();
        count(1);
        say("success", "Saved: " + item.display_name + " is " + label + ".");
      }
    } catch (err) { say("error", item.display_name + ": " + err.message); }
    busy = false;
    setEnabled(Boolean(current));
    refreshCount();
  }

  async function skip() {
    if (!current || busy) return;
    busy = true;
    const item = current;
    try {
      await post("/api/skip", { name: item.name });
      await advance([item.name]);
      say("success", "Skipped " + item.display_name + "; it stays in the queue.");
    } catch (err) { say("error", err.message); }
    busy = false;
  }

  async function undo(entry) {
    if (!entry || busy) return;
    busy = true;
    try {
      const response = await post("/api/undo", { decision: entry.name });
      if (response.ok) {
        const restored = await response.json();
        if (upcoming) await post("/api/skip", { name: upcoming.name });
        upcoming = current;
        show(restored);
        count(-1);
        say("success", "Undone: " + restored.display_name + " is back, yours to decide again.");
      } else if (response.status === 409) {
        say("conflict", entry.display + ": could not undo, " + (await reason(response)) + ".");
      } else {
        say("error", entry.display + ": could not undo (" + (await reason(response)) + ").");
      }
    } catch (err) { say("error", err.message); }
    history = history.filter((h) => h !== entry);
    renderHistory();
    busy = false;
    setEnabled(Boolean(current));
    refreshCount();
  }

  function renderHistory() {
    const now = Date.now();
    history = history.filter((h) => now - h.at < undoSeconds * 1000);
    const list = $("history");
    list.replaceChildren(...history.map((entry) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = "Undo";
      button.setAttribute("aria-label", "Undo " + entry.display + " (" + entry.label + ")");
      button.addEventListener("click", () => undo(entry));
      li.append(entry.display + " → " + entry.label + " ", button);
      return li;
    }));
    buttons.undo.disabled = history.length === 0;
  }

  // The loupe: the image at native resolution (at least 2×) around a point, by mouse or by key.
  function toggle(button, on) { button.setAttribute("aria-pressed", String(on)); }
  function placeLoupe() {
    if (loupe.hidden || !image.naturalWidth) return;
    const box = image.getBoundingClientRect(), stage = $("stage").getBoundingClientRect();
    const zoom = Math.max(2, image.naturalWidth / box.width);
    loupe.style.backgroundImage = 'url("' + image.src + '")';
    loupe.style.backgroundSize = (box.width * zoom) + "px " + (box.height * zoom) + "px";
    const x = loupeAt.x * box.width, y = loupeAt.y * box.height;
    loupe.style.left = (box.left - stage.left + x - loupe.offsetWidth / 2) + "px";
    loupe.style.top = (box.top - stage.top + y - loupe.offsetHeight / 2) + "px";
    loupe.style.backgroundPosition = (loupe.offsetWidth / 2 - x * zoom) + "px " + (loupe.offsetHeight / 2 - y * zoom) + "px";
  }
  function setLoupe(on) { loupe.hidden = !on || image.hidden; toggle($("btn-loupe"), on); placeLoupe(); }
  image.addEventListener("load", placeLoupe);
  $("stage").addEventListener("mousemove", (event) => {
    const box = image.getBoundingClientRect();
    loupeAt = { x: Math.min(1, Math.max(0, (event.clientX - box.left) / box.width)),
                y: Math.min(1, Math.max(0, (event.clientY - box.top) / box.height)) };
    placeLoupe();
  });
  function moveLoupe(dx, dy) {
    loupeAt = { x: Math.min(1, Math.max(0, loupeAt.x + dx)), y: Math.min(1, Math.max(0, loupeAt.y + dy)) };
    placeLoupe();
  }
  function setLevels(on) { image.classList.toggle("levels", on); loupe.classList.toggle("levels", on); toggle($("btn-levels"), on); }
  function setFit(on) { image.classList.toggle("fit", on); toggle($("btn-fit"), on); placeLoupe(); }

  async function refreshCount() {
    try {
      const response = await fetch("/api/queue", { credentials: "same-origin" });
      const body = await response.json();
      $("remaining").textContent = body.unclear + (body.capped ? "+" : "");
    } catch (err) { /* the count is a courtesy; the queue still works */ }
    if (current) $("waited").textContent = waited(current.arrived);
  }

  buttons.ok.addEventListener("click", () => decide("ok"));
  buttons.defect.addEventListener("click", () => decide("defect"));
  buttons.skip.addEventListener("click", skip);
  buttons.undo.addEventListener("click", () => undo(history[0]));
  $("btn-loupe").addEventListener("click", () => setLoupe(loupe.hidden));
  $("btn-levels").addEventListener("click", () => setLevels(!image.classList.contains("levels")));
  $("btn-fit").addEventListener("click", () => setFit(!image.classList.contains("fit")));
  document.addEventListener("keydown", (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.target.closest && event.target.closest("input, textarea, select")) return;
    const inHistory = event.target.closest && event.target.closest("#history");
    if (inHistory && (event.key === "ArrowDown" || event.key === "ArrowUp")) {
      const all = [...$("history").querySelectorAll("button")];
      const at = all.indexOf(event.target) + (event.key === "ArrowDown" ? 1 : -1);
      if (all[at]) all[at].focus();
      event.preventDefault();
      return;
    }
    if (!loupe.hidden && event.key.startsWith("Arrow")) {
      const step = 0.05;
      moveLoupe({ ArrowLeft: -step, ArrowRight: step }[event.key] || 0, { ArrowUp: -step, ArrowDown: step }[event.key] || 0);
      event.preventDefault();
      return;
    }
    if (event.key === "Enter" || (inHistory && event.key === " ")) return;  // a focused button acts
    const key = event.key.toLowerCase();
    const action = { o: () => decide("ok"), 1: () => decide("ok"), d: () => decide("defect"),
      2: () => decide("defect"), s: skip, " ": skip, u: () => undo(history[0]), z: () => undo(history[0]),
      l: () => setLoupe(loupe.hidden), c: () => setLevels(!image.classList.contains("levels")),
      f: () => setFit(!image.classList.contains("fit")),
      h: () => { const first = $("history").querySelector("button"); if (first) first.focus(); } }[key];
    if (action) { event.preventDefault(); action(); }
  });
  $("session-count").textContent = sessionStorage.getItem("decided") || "0";
  setInterval(refreshCount, 15000);
  setInterval(renderHistory, 5000);
  refill();
})();
