// The reviewer's page: one leased image at a time, the next one already loaded.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);
  const buttons = { ok: $("btn-ok"), defect: $("btn-defect"), skip: $("btn-skip"), undo: $("btn-undo") };
  let current = null;     // the image on screen
  let upcoming = null;    // the next image, leased and preloaded
  let lastDecision = null;
  let emptyTimer = null;
  let busy = false;

  function post(path, body) {
    return fetch(path, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body),
    });
  }

  async function lease(exclude) {
    const query = exclude.filter(Boolean).map((n) => "exclude=" + encodeURIComponent(n)).join("&");
    const response = await fetch("/api/next?" + query, { credentials: "same-origin" });
    if (!response.ok) throw new Error("next image: HTTP " + response.status);
    const item = await response.json();
    if (item.empty) return null;
    new Image().src = item.url;  // prefetch, so showing it is instant
    return item;
  }

  function say(text) { $("status").textContent = text; }

  function show(item) {
    current = item;
    const img = $("image");
    $("loading").hidden = true;
    if (!item) {
      img.hidden = true;
      $("empty").hidden = false;
      ["name", "model", "arrived"].forEach((id) => { $(id).textContent = "–"; });
      setEnabled(false);
      if (!emptyTimer) emptyTimer = setInterval(refill, 10000);
      return;
    }
    clearInterval(emptyTimer); emptyTimer = null;
    $("empty").hidden = true;
    img.src = item.url;
    img.alt = "Cast part " + item.display_name;
    img.hidden = false;
    $("name").textContent = item.display_name;
    const score = item.model_score === null ? "?" : Math.round(item.model_score * 100) + "%";
    $("model").textContent = (item.model_label || "?") + " (" + score + ")";
    $("arrived").textContent = item.arrived ? new Date(item.arrived).toLocaleString() : "–";
    setEnabled(true);
  }

  function setEnabled(on) {
    buttons.ok.disabled = buttons.defect.disabled = buttons.skip.disabled = !on;
    buttons.undo.disabled = !lastDecision;
  }

  async function refill() {
    try {
      if (!current) show(await lease([]));
      if (current && !upcoming) upcoming = await lease([current.name]);
      refreshCount();
    } catch (err) { say(err.message); }
  }

  async function advance(exclude) {
    const next = upcoming;
    upcoming = null;
    show(next);
    if (!next) show(await lease(exclude));
    if (current) upcoming = await lease([current.name, ...exclude]);
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
        say(item.display_name + " was already decided by another reviewer; here is the next one.");
      } else if (!response.ok) {
        say("Could not save the decision (HTTP " + response.status + "); the image returns to the queue.");
      } else {
        lastDecision = await response.json();
        const n = Number(sessionStorage.getItem("decided") || 0) + 1;
        sessionStorage.setItem("decided", String(n));
        $("session-count").textContent = n;
        say("Saved: " + item.display_name + " is " + label + ".");
      }
    } catch (err) { say(err.message); }
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
      say("Skipped " + item.display_name + ".");
    } catch (err) { say(err.message); }
    busy = false;
  }

  async function undo() {
    if (!lastDecision || busy) return;
    busy = true;
    try {
      const response = await post("/api/undo", { decision: lastDecision.name });
      if (response.ok) {
        const restored = await response.json();
        if (upcoming) await post("/api/skip", { name: upcoming.name });
        upcoming = current;
        show(restored);
        const n = Math.max(0, Number(sessionStorage.getItem("decided") || 0) - 1);
        sessionStorage.setItem("decided", String(n));
        $("session-count").textContent = n;
        say("Undone: " + restored.display_name + " is back for review.");
      } else {
        say("Could not undo (HTTP " + response.status + ").");
      }
    } catch (err) { say(err.message); }
    lastDecision = null;
    busy = false;
    setEnabled(Boolean(current));
    refreshCount();
  }

  async function refreshCount() {
    try {
      const response = await fetch("/api/queue", { credentials: "same-origin" });
      const body = await response.json();
      $("remaining").textContent = body.unclear + (body.capped ? "+" : "");
    } catch (err) { /* the count is a courtesy; the queue still works */ }
  }

  buttons.ok.addEventListener("click", () => decide("ok"));
  buttons.defect.addEventListener("click", () => decide("defect"));
  buttons.skip.addEventListener("click", skip);
  buttons.undo.addEventListener("click", undo);
  document.addEventListener("keydown", (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.target.closest && event.target.closest("input, textarea, select")) return;
    const key = event.key.toLowerCase();
    const action = { o: () => decide("ok"), 1: () => decide("ok"), d: () => decide("defect"),
      2: () => decide("defect"), s: skip, " ": skip, u: undo, z: undo }[key];
    if (action) { event.preventDefault(); action(); }
  });
  $("session-count").textContent = sessionStorage.getItem("decided") || "0";
  setInterval(refreshCount, 15000);
  refill();
})();
