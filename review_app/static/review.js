// The reviewer's page: one leased image at a time in this tab, the next one already loaded.
//
// What the page promises the reviewer:
// - a key decides only the image on screen: loaded, painted and fully in view, and never by
//   auto-repeat (holding a key decides one image);
// - "Saved" appears only for what the server stored, and every other message is the server's reason;
// - the image on screen stays leased to this tab while it is visible (renewed), and a closing tab
//   gives its images back.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);
  const page = document.querySelector(".review");
  const undoSeconds = Number(page.dataset.undoSeconds || 120);
  const renewSeconds = Number(page.dataset.renewSeconds || 100);
  const tab = (crypto.randomUUID && crypto.randomUUID()) || String(Math.random()).slice(2) + Date.now();
  const buttons = { ok: $("btn-ok"), defect: $("btn-defect"), unusable: $("btn-unusable"),
    skip: $("btn-skip"), undo: $("btn-undo"), retry: $("btn-retry") };
  const image = $("image");
  const loupe = $("loupe");
  const heatmap = $("heatmap");
  // The reviewer's choice of map and opacity holds for the session, image after image.
  let heatOn = sessionStorage.getItem("heatmap") !== "off";
  $("heat-opacity").value = sessionStorage.getItem("heatOpacity") || $("heat-opacity").value;
  let current = null;     // the image on screen (leased to this tab as "view")
  let ready = false;      // current is painted and fully in view: keys may decide it
  let upcoming = null;    // the next image, leased as "prefetch" and preloaded
  let history = [];       // this session's decisions still inside the undo window, newest first
  let emptyTimer = null;
  let busy = false;
  let loupeAt = { x: 0.5, y: 0.5 };

  function post(path, body) {
    return fetch(path, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({ tab: tab, ...body }),
    });
  }

  async function reason(response) {
    try { return (await response.json()).error || "HTTP " + response.status; } catch (e) { return "HTTP " + response.status; }
  }

  async function lease(kind, exclude, reclaim) {
    const response = await post("/api/next", { kind: kind, exclude: exclude.filter(Boolean), reclaim: Boolean(reclaim) });
    if (response.status === 409) {
      const body = await response.json().catch(() => ({}));
      const err = new Error("Could not get an image: " + (body.error || "HTTP 409"));
      err.tooMany = body.reason === "too_many";  // other tabs of yours hold your share: they may be taken back
      throw err;
    }
    if (!response.ok) throw new Error("Could not get an image: " + (await reason(response)));
    const item = await response.json();
    if (item.empty) return null;
    item.confirmed = item.lease === "view";  // a prefetched image is confirmed when it is shown
    item.preloaded = new Image();  // prefetch, so showing it is instant
    item.preloaded.src = item.url;
    if (item.heatmap_url) { item.preloadedHeat = new Image(); item.preloadedHeat.src = item.heatmap_url; }
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

  // Why a person is asked, in the plant's words (README: the review app).
  const MEASURES = { brightness: "brightness", contrast: "contrast", sharpness: "sharpness (focus)",
    width: "width", height: "height" };
  function why(item) {
    const said = (item.model_label || "?") + " (" + (item.model_score === null ? "?" : Math.round(item.model_score * 100) + "%") + ")";
    if (item.unclear_reason === "no_model") return ["No model yet: every photo is decided by a person.", "–"];
    if (item.unclear_reason === "unusual_input") {
      const measure = (item.unclear_detail || "").split(" ")[0];
      return ["This photo is unlike the photos the model learned from (" + (MEASURES[measure] || "its measures") + "): "
        + (item.unclear_detail || "") + ". Check the camera and the light.", said + ", not trusted for this photo"];
    }
    if (item.unclear_reason === "anomalous") return ["The model said ok, but the part looks unlike good parts.", said];
    return ["The model was unsure.", said];
  }

  function setReady(on) {
    ready = on;
    for (const key of ["ok", "defect", "unusable", "skip"]) buttons[key].disabled = !on;
    buttons.undo.disabled = history.length === 0;
  }

  // Ready only once the image is decoded, painted, and wholly inside the window.
  function fullyVisible() {
    if (image.hidden || !image.naturalWidth) return false;
    const box = image.getBoundingClientRect();
    return box.width > 0 && box.top >= 0 && box.left >= 0 && box.bottom <= window.innerHeight && box.right <= window.innerWidth;
  }
  function checkReady() {
    // Ready means a key press now acts: never while a decision is on its way.
    if (current && current.confirmed && !ready && !busy && $("failed").hidden && image.complete && fullyVisible()) setReady(true);
    else if (ready && !fullyVisible()) setReady(false);
  }
  image.addEventListener("load", () => requestAnimationFrame(() => requestAnimationFrame(() => { placeLoupe(); placeHeatmap(); checkReady(); })));
  image.addEventListener("error", () => {
    if (!current) return;
    setReady(false);
    image.hidden = true;
    $("failed").hidden = false;
    buttons.skip.disabled = false;
    buttons.retry.disabled = false;
  });
  window.addEventListener("resize", () => { placeHeatmap(); checkReady(); });
  heatmap.addEventListener("error", () => { heatmap.hidden = true; });  // the photo still decides
  window.addEventListener("scroll", checkReady, { passive: true });

  function show(item) {
    current = item;
    setReady(false);
    $("loading").hidden = true;
    $("failed").hidden = true;
    buttons.retry.disabled = true;
    showHeatmap(item);
    if (!item) {
      image.hidden = true;
      loupe.hidden = true;
      $("empty").hidden = false;
      for (const id of ["name", "model", "why", "waited"]) $(id).textContent = "–";
      if (!emptyTimer) emptyTimer = setInterval(refill, 10000);
      return;
    }
    clearInterval(emptyTimer); emptyTimer = null;
    $("empty").hidden = true;
    image.hidden = false;
    image.alt = "Cast part " + item.display_name;
    image.src = item.url;
    $("name").textContent = item.display_name;
    $("name").title = item.display_name;
    const [reasonText, said] = why(item);
    $("why").textContent = reasonText;
    $("model").textContent = said;
    $("waited").textContent = waited(item.arrived);
    $("waited").title = item.arrived ? new Date(item.arrived).toLocaleString() : "";
    if (image.complete && image.naturalWidth) requestAnimationFrame(() => requestAnimationFrame(checkReady));
  }

  // The prefetched image is painted at once; keys wait until the server confirms this tab still
  // holds it (at the end of the queue another reviewer may have taken it to look at).
  async function confirm(item, exclude) {
    const response = await post("/api/show", { name: item.name, generation: item.generation });
    if (current !== item) return;
    if (response.ok) { item.confirmed = true; checkReady(); return; }
    say("conflict", item.display_name + ": " + (await reason(response)) + ". Here is the next one.");
    present(await lease("view", [item.name, ...exclude]), exclude);
  }

  // One prefetch at a time; what it brings is the next image, unless the tab shows that one already
  // (a view request answered while it was on its way gets the tab's own prefetched image).
  let prefetching = null;
  async function prefetch(exclude) {
    if (!current || upcoming || prefetching) return;
    prefetching = lease("prefetch", [current.name, ...exclude]);
    try {
      const next = await prefetching;
      if (!next || (current && next.name === current.name)) return;
      if (upcoming) await post("/api/skip", { name: next.name });  // an undo filled the slot meanwhile
      else upcoming = next;
    } finally { prefetching = null; }
  }

  // Every image goes on screen this way: shown at once, and keys wait until the server has
  // confirmed this tab holds it for viewing.
  function present(item, exclude) {
    show(item);
    if (item && !item.confirmed) confirm(item, exclude).catch((err) => say("error", err.message));
  }

  async function refill(reclaim) {
    try {
      if (!current) present(await lease("view", [], reclaim), []);
      $("btn-reclaim").hidden = true;
      await prefetch([]);
      refreshCount();
    } catch (err) {
      if (err.tooMany && !current) {
        $("btn-reclaim").hidden = false;
        if (!emptyTimer) emptyTimer = setInterval(refill, 10000);  // quiet tabs' photos come back by themselves
      }
      say(err.tooMany ? "conflict" : "error", err.message);
    }
  }

  // Why a key that would decide cannot act now: the page says so instead of doing nothing.
  function notNow() {
    if (busy) return "Still saving your last answer; press again in a moment.";
    if (!current) return "There is no photo on screen to decide.";
    if (!$("failed").hidden) return "The photo did not load: R tries again, S skips it.";
    if (!current.confirmed) return "Checking this photo is still yours; press again in a moment.";
    if (!image.complete || !image.naturalWidth) return "The photo is still loading; press again when it is shown.";
    if (!fullyVisible()) return "The photo is not wholly in view: scroll to it or press F to fit it.";
    return "";
  }

  // The next image, at once: the prefetched one (waiting for it if it is on its way), else a new
  // lease. The next prefetch waits for the caller, so a tab never holds more than two images.
  async function advance(exclude) {
    if (prefetching) await prefetching.catch(() => null);
    const next = upcoming && !exclude.includes(upcoming.name) ? upcoming : null;
    upcoming = null;
    present(next || (await lease("view", exclude)), exclude);
  }

  function count(delta) {
    const n = Math.max(0, Number(sessionStorage.getItem("decided") || 0) + delta);
    sessionStorage.setItem("decided", String(n));
    $("session-count").textContent = n;
  }

  const WORDS = { ok: "ok", defect: "defect", unusable: "not a part / unusable" };

  async function decide(label, byKey) {
    if (current && !ready && !busy) checkReady();  // it may hold already, before its next check
    if (!current || !ready || busy) {
      if (byKey) say("conflict", "Not decided: " + (notNow() || "the photo is not ready yet; press again."));
      return;
    }
    busy = true;
    setReady(false);
    const item = current;
    let stalled = null;  // the next photo could not come; the decision's own answer still counts
    try {
      const pending = post("/api/decide", { name: item.name, generation: item.generation, label: label });
      await advance([item.name]).catch((err) => { stalled = err; });
      const response = await pending;
      if (response.status === 409) {
        say("conflict", item.display_name + ": not saved: " + (await reason(response)) + ".");
      } else if (!response.ok) {
        say("error", item.display_name + ": not saved (" + (await reason(response)) + ").");
      } else {
        const decision = await response.json();
        history.unshift({ name: decision.name, generation: decision.generation, display: item.display_name,
          label: decision.label, at: Date.now() });
        renderHistory();
        count(1);
        say("success", "Saved: " + item.display_name + " is " + WORDS[decision.label] + "."
          + (stalled ? " " + stalled.message : ""));
      }
      if (stalled && !current) await refill();  // a photo after all, or the reason there is none
    } catch (err) { say("error", item.display_name + ": " + err.message); }
    busy = false;
    checkReady();
    refreshCount();
    prefetch([item.name]).catch((err) => say("error", err.message));  // outside busy: keys act meanwhile
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
    checkReady();
    prefetch([item.name]).catch((err) => say("error", err.message));
  }

  async function retry() {
    if (!current || busy) return;
    const response = await post("/api/renew", { name: current.name, generation: current.generation });
    if (!response.ok) { say("conflict", current.display_name + ": " + (await reason(response)) + "."); return; }
    current.url = (await response.json()).url;
    show(current);
  }

  async function undo(entry) {
    if (!entry || busy) return;
    busy = true;
    setReady(false);
    try {
      const response = await post("/api/undo", { decision: entry.name, generation: entry.generation });
      if (response.ok) {
        const restored = await response.json();
        restored.confirmed = true;
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
    checkReady();
    refreshCount();
  }

  // The entry each history button undoes: the list is redrawn as entries expire, and a reviewer
  // moving through it with the keyboard keeps their place across a redraw.
  const entryOf = new WeakMap();

  function renderHistory() {
    const now = Date.now();
    const list = $("history");
    const focused = list.contains(document.activeElement) ? entryOf.get(document.activeElement) : null;
    const before = history;
    history = history.filter((h) => now - h.at < undoSeconds * 1000);
    list.replaceChildren(...history.map((entry) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      entryOf.set(button, entry);
      button.type = "button";
      button.textContent = "Undo";
      button.setAttribute("aria-label", "Undo " + entry.display + " (" + WORDS[entry.label] + ")");
      button.addEventListener("click", () => undo(entry));
      const text = document.createElement("span");
      text.className = "name";
      text.textContent = entry.display + " → " + WORDS[entry.label];
      li.append(text, " ", button);
      return li;
    }));
    buttons.undo.disabled = history.length === 0;
    if (focused) {  // the same entry, or, once it has expired, the one that took its place
      const all = [...list.querySelectorAll("button")];
      const same = all.find((b) => entryOf.get(b) === focused);
      const next = same || all[Math.min(before.indexOf(focused), all.length - 1)];
      if (next) next.focus();
    }
  }

  // The image on screen stays this tab's while it is visible; a lapse is told, not hidden.
  async function renew() {
    if (!current || document.visibilityState !== "visible" || busy) return;
    const item = current;
    const response = await post("/api/renew", { name: item.name, generation: item.generation });
    if (response.status === 409 && current === item) {
      say("conflict", item.display_name + ": " + (await reason(response)) + ". Here is the next one.");
      await advance([item.name]);
      await prefetch([item.name]);
    }
  }

  // A closing tab gives its images back at once, instead of after the lease runs out.
  window.addEventListener("pagehide", () => {
    const names = [current && current.name, upcoming && upcoming.name].filter(Boolean);
    if (!names.length) return;
    const form = new FormData();
    form.append("csrf_token", csrf);
    form.append("tab", tab);
    names.forEach((n) => form.append("name", n));
    navigator.sendBeacon("/api/release", form);
  });

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
  function setFit(on) {
    image.classList.toggle("fit", on);
    toggle($("btn-fit"), on);
    requestAnimationFrame(() => { placeLoupe(); placeHeatmap(); setReady(false); checkReady(); });
  }

  // The anomaly map, over the photo it was made of. An image without one looks as it always did:
  // no overlay, no legend, and M does nothing.
  function showHeatmap(item) {
    const has = Boolean(item && item.heatmap_url);
    $("btn-heatmap").disabled = !has;
    $("heat-legend").hidden = !has;
    heatmap.removeAttribute("src");
    heatmap.hidden = true;
    if (!has) return;
    heatmap.src = item.heatmap_url;
    setHeatmap(heatOn);
  }
  function placeHeatmap() {
    if (heatmap.hidden || image.hidden || !image.naturalWidth) return;
    const box = image.getBoundingClientRect(), stage = $("stage").getBoundingClientRect();
    Object.assign(heatmap.style, { left: (box.left - stage.left) + "px", top: (box.top - stage.top) + "px",
      width: box.width + "px", height: box.height + "px" });
  }
  function setHeatmap(on) {
    heatOn = on;
    sessionStorage.setItem("heatmap", on ? "on" : "off");
    toggle($("btn-heatmap"), on);
    heatmap.hidden = !on || !heatmap.getAttribute("src");
    heatmap.style.opacity = String($("heat-opacity").value / 100);
    placeHeatmap();
  }
  $("heat-opacity").addEventListener("input", () => {
    sessionStorage.setItem("heatOpacity", $("heat-opacity").value);
    heatmap.style.opacity = String($("heat-opacity").value / 100);
  });

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
  buttons.unusable.addEventListener("click", () => decide("unusable"));
  buttons.skip.addEventListener("click", skip);
  buttons.retry.addEventListener("click", retry);
  buttons.undo.addEventListener("click", () => undo(history[0]));
  $("btn-reclaim").addEventListener("click", () => refill(true));
  $("btn-loupe").addEventListener("click", () => setLoupe(loupe.hidden));
  $("btn-levels").addEventListener("click", () => setLevels(!image.classList.contains("levels")));
  $("btn-fit").addEventListener("click", () => setFit(!image.classList.contains("fit")));
  $("btn-heatmap").addEventListener("click", () => setHeatmap(!heatOn));
  document.addEventListener("keydown", (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.target.closest && event.target.closest("input:not([type=range]), textarea, select")) return;
    // The map's opacity slider keeps its arrow keys; every other key still decides, as it did
    // before the reviewer touched the slider.
    if (event.target.type === "range" && (event.key.startsWith("Arrow") || event.key === "Home" || event.key === "End")) return;
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
    const deciding = { o: "ok", 1: "ok", d: "defect", 2: "defect", n: "unusable", 3: "unusable" }[key];
    if (event.repeat && (deciding || "suz ".includes(key))) { event.preventDefault(); return; }  // one press, one image
    const action = deciding ? () => decide(deciding, true) : { s: skip, " ": skip, r: retry, u: () => undo(history[0]), z: () => undo(history[0]),
      l: () => setLoupe(loupe.hidden), c: () => setLevels(!image.classList.contains("levels")),
      f: () => setFit(!image.classList.contains("fit")),
      m: () => { if (!$("btn-heatmap").disabled) setHeatmap(!heatOn); },
      h: () => { const first = $("history").querySelector("button"); if (first) first.focus(); } }[key];
    if (action) { event.preventDefault(); action(); }
  });
  $("session-count").textContent = sessionStorage.getItem("decided") || "0";
  setInterval(refreshCount, 15000);
  setInterval(renderHistory, 5000);
  setInterval(renew, renewSeconds * 1000);
  setInterval(checkReady, 500);
  refill();
})();
