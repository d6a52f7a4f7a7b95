// melodiff studio: the page's whole client. No build step, no dependencies: plain DOM + fetch.
// Units: steps are 16th notes, a melody's steps_per_bar to a bar (16 in 4/4, 12 in 3/4 and 6/8); bar spans are
// half-open [start, end), 0-based (shown 1-based to people).
"use strict";

const MIN_BAR_WIDTH = 32; // px per bar in the piano roll: as wide as the page allows, within these bounds
const MAX_BAR_WIDTH = 120;
const ROW_HEIGHT = 7; // px per semitone
const HEADER = 14; // px for bar numbers
const $ = (id) => document.getElementById(id);
const SVG_NS = "http://www.w3.org/2000/svg";

const state = {
  melodies: new Map(), // id -> melody JSON (as the API returns it)
  order: [], // ids, oldest first
  active: null, // id of the melody the edit panel works on
  selection: null, // {start, end} bars, or null
  anchor: null, // bar where a click / drag started
  dragging: false,
  busy: false,
  limits: null,
  model: null, // GET /api/model: the model's window, the controls it takes and the styles it knows
};
const CONTROLS = { // the musician's controls: input id (= API field) -> its tooltip
  key: "the key, e.g. Em, F#m, Bb, D minor; empty: drawn from the training tunes. Generate only: infill, "
    + "continue and bridge keep the melody's key",
  range: "lowest-highest pitch, e.g. D4-B5 (C4 = 60) or 62-83: the new notes are moved by octaves into it; "
    + "empty: any",
  density: "note onsets per bar, 1 to 16; empty: free",
  style: "the training collection to write like; any: drawn from the training tunes",
};
const GUIDANCE_HELP = "how strongly the model's guide steers to a key, a tonic ending and the density and style asked "
  + "for; 0: not at all";

// ---- talking to the server ------------------------------------------------------------------------------------------
async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, options);
  } catch (err) {
    throw new Error("the server did not answer (is `melodiff serve` still running?)");
  }
  let body = null;
  try {
    body = await response.json();
  } catch (err) {
    body = null;
  }
  if (!response.ok) {
    const detail = body && body.detail ? body.detail : response.statusText;
    throw new Error(`${detail} (HTTP ${response.status})`);
  }
  return body;
}

function postJSON(path, payload) {
  return api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(payload) });
}

// GETs a text file (SVG, ABC); an error answer's JSON detail becomes the error's message.
async function fetchText(path) {
  let response;
  try {
    response = await fetch(path);
  } catch (err) {
    throw new Error("the server did not answer (is `melodiff serve` still running?)");
  }
  const text = await response.text();
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = JSON.parse(text).detail || detail; } catch (err) { /* not JSON: keep the status text */ }
    throw new Error(`${detail} (HTTP ${response.status})`);
  }
  return text;
}

function samplingFields() {
  const steps = $("steps").value.trim();
  return {
    num_samples: Number($("num-samples").value),
    seed: Number($("seed").value),
    sampler: $("sampler").value,
    steps: steps === "" ? null : Number(steps),
    temperature: Number($("temperature").value),
    ...($("guidance").disabled ? {} : { guidance: Number($("guidance").value) }),
  };
}

// The controls asked for (those set and that the model takes), as API fields; the key only for generate.
function controlFields(withKey) {
  const fields = {};
  for (const name of Object.keys(CONTROLS)) {
    const value = $(name).value.trim();
    if ((name === "key" && !withKey) || $(name).disabled || value === "") continue;
    fields[name] = name === "density" ? Number(value) : value;
  }
  return fields;
}

// Shows only the controls the model takes (the others disabled, saying why) and offers its styles.
function showControls(model) {
  for (const [name, help] of Object.entries(CONTROLS)) {
    const takes = model.controls.includes(name);
    const label = $(name).closest("label");
    $(name).disabled = !takes;
    label.classList.toggle("off", !takes);
    label.title = takes ? help : `this model takes no ${name} control (it has neither a guide nor tune contexts)`;
    $(name).title = label.title;
  }
  $("guidance").disabled = !model.guided;
  $("guidance").closest("label").classList.toggle("off", !model.guided);
  $("guidance").closest("label").title = model.guided ? GUIDANCE_HELP : "this model has no guide to steer with";
  const meters = model.meters.length ? model.meters : ["4/4"];
  const chosen = meters.includes($("meter").value) ? $("meter").value : meters[0];
  $("meter").replaceChildren(...meters.map((m) => new Option(m, m, m === chosen, m === chosen)));
  $("meter").disabled = meters.length < 2;
  $("meter").closest("label").title = meters.length < 2 ? `this model makes only ${meters[0]}`
    : "the meter of new melodies: bars are bars of it (infill, continue and bridge keep the melody's)";
  const select = $("style");
  select.replaceChildren(new Option("any", "", true, true));
  for (const style of model.styles) { // "music21:oneills1850" is shown as "oneills1850"
    select.appendChild(new Option(style.includes(":") ? style.slice(style.indexOf(":") + 1) : style, style));
  }
}

// Runs a sampling request as a job: posts it, polls until done, shows progress, adds the results.
async function runJob(path, payload) {
  if (state.busy) return;
  setBusy(true);
  clearError();
  showProgress(0, "submitting…");
  try {
    let job = await postJSON(path, payload);
    while (job.status === "queued" || job.status === "running") {
      showProgress(job.progress, job.status === "queued"
        ? `queued (${job.queue_position} ahead)` : `sampling… ${Math.round(job.progress * 100)}%`);
      job = await api(`/api/jobs/${job.id}?wait=0.5`);
    }
    if (job.status === "failed") throw new Error(job.error || "the job failed");
    for (const melody of job.melodies) addMelody(melody);
    selectMelody(job.melodies[0].id);
    $("seed").value = Number($("seed").value) + 1;
    showProgress(1, `${job.kind}: ${job.melodies.length} new melod${job.melodies.length === 1 ? "y" : "ies"}`);
  } catch (err) {
    showError(err.message);
  } finally {
    setBusy(false);
  }
}

// ---- status line ----------------------------------------------------------------------------------------------------
function showProgress(value, text) {
  $("progress").hidden = value >= 1;
  $("progress").value = value;
  $("status-text").textContent = text;
}

function showError(message) {
  $("progress").hidden = true;
  $("status-text").textContent = "";
  $("error").textContent = message;
  $("error").hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

function setBusy(busy) {
  state.busy = busy;
  document.body.classList.toggle("busy", busy);
  $("generate").disabled = busy;
  $("upload").disabled = busy;
  $("abc-open").disabled = busy;
  updateEditPanel();
}

// ---- melodies and piano rolls ---------------------------------------------------------------------------------------
function svg(tag, attrs, parent) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, value);
  if (parent) parent.appendChild(el);
  return el;
}

function numBars(melody) {
  return Math.max(1, Math.ceil(melody.num_steps / melody.steps_per_bar));
}

function drawRoll(melody) {
  const bars = numBars(melody);
  const pitches = melody.notes.map((n) => n.pitch);
  let lo = pitches.length ? Math.min(...pitches) - 2 : 58;
  let hi = pitches.length ? Math.max(...pitches) + 2 : 74;
  if (hi - lo < 24) { const pad = Math.ceil((24 - (hi - lo)) / 2); lo -= pad; hi += pad; }
  const available = $("melodies").clientWidth - 32;
  const barWidth = Math.max(MIN_BAR_WIDTH, Math.min(MAX_BAR_WIDTH, Math.floor(available / bars)));
  const width = bars * barWidth;
  const height = HEADER + (hi - lo + 1) * ROW_HEIGHT;
  const x = (step) => (step / melody.steps_per_bar) * barWidth;
  const roll = svg("svg", { class: "roll", width, height, "data-bar-width": barWidth,
    viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": `piano roll, ${bars} bars of ${melody.meter}, ${melody.notes.length} notes` });
  if (melody.regenerated) {
    const [a, b] = melody.regenerated;
    svg("rect", { class: "regenerated", x: x(a), y: HEADER, width: x(b) - x(a), height: height - HEADER }, roll);
  }
  for (let bar = 0; bar <= bars; bar++) {
    svg("line", { class: `bar-line${bar % 2 === 0 ? " chunk" : ""}`, x1: bar * barWidth, x2: bar * barWidth,
      y1: HEADER, y2: height }, roll);
    if (bar < bars) svg("text", { class: "bar-number", x: bar * barWidth + 3, y: 10 }, roll).textContent = bar + 1;
  }
  for (const note of melody.notes) {
    svg("rect", { class: "note", x: x(note.start), y: HEADER + (hi - note.pitch) * ROW_HEIGHT,
      width: Math.max(x(note.end) - x(note.start) - 1, 1), height: ROW_HEIGHT - 1,
      "data-pitch": note.pitch, "data-start": note.start, "data-end": note.end }, roll);
  }
  svg("rect", { class: "selection", x: 0, y: HEADER, width: 0, height: height - HEADER, visibility: "hidden" }, roll);
  svg("line", { class: "playhead", x1: 0, x2: 0, y1: HEADER, y2: height, visibility: "hidden" }, roll);
  for (let bar = 0; bar < bars; bar++) {
    const hit = svg("rect", { class: "bar-hit", x: bar * barWidth, y: 0, width: barWidth, height,
      "data-bar": bar }, roll);
    hit.addEventListener("mousedown", (event) => {
      event.preventDefault();
      selectBars(melody.id, bar, event.shiftKey);
      state.dragging = true;
    });
    hit.addEventListener("mouseenter", () => {
      if (state.dragging && state.active === melody.id) selectBars(melody.id, bar, true);
    });
  }
  return roll;
}

function audioURL(id, kind) {
  return `/api/melodies/${id}/${kind}?tempo=${Number($("tempo").value) || 120}&program=${$("program").value}`;
}

function addMelody(melody) {
  state.melodies.set(melody.id, melody);
  state.order.push(melody.id);
  const card = document.createElement("article");
  card.className = "melody";
  card.id = `melody-${melody.id}`;
  card.dataset.id = melody.id;
  const header = document.createElement("header");
  const label = document.createElement("strong");
  label.className = "label";
  label.textContent = melody.label;
  const meta = document.createElement("span");
  meta.className = "meta muted";
  meta.textContent = `${numBars(melody)} bars · ${melody.notes.length} notes`;
  header.append(label, meta);
  const wrap = document.createElement("div");
  wrap.className = "roll-wrap";
  wrap.appendChild(drawRoll(melody));
  const actions = document.createElement("div");
  actions.className = "card-actions";
  const play = document.createElement("button");
  play.type = "button";
  play.className = "play";
  play.textContent = "▶ Play";
  const audio = document.createElement("audio");
  audio.controls = true;
  audio.hidden = true;
  audio.preload = "none";
  play.addEventListener("click", () => playMelody(melody.id, card, audio));
  const midi = document.createElement("a");
  midi.className = "midi";
  midi.textContent = "⬇ MIDI";
  midi.download = `melodiff-${melody.id.slice(0, 8)}.mid`;
  midi.href = audioURL(melody.id, "midi");
  midi.addEventListener("click", () => { midi.href = audioURL(melody.id, "midi"); });
  const sheetWrap = document.createElement("div");
  sheetWrap.className = "sheet-wrap";
  sheetWrap.hidden = true;
  const toggle = document.createElement("button");
  toggle.type = "button";
  toggle.className = "sheet-toggle";
  toggle.textContent = "♪ Notation";
  toggle.setAttribute("aria-pressed", "false");
  toggle.addEventListener("click", () => {
    const show = sheetWrap.hidden;
    card.dataset.sheetClosed = show ? "" : "yes"; // a sheet closed by hand stays closed when its bars are clicked
    showSheet(melody.id, show);
  });
  const downloads = [["musicxml", "⬇ MusicXML"], ["abc", "⬇ ABC"], ["svg", "⬇ SVG"]].map(([kind, text]) => {
    const link = document.createElement("a");
    link.className = `download-${kind}`;
    link.textContent = text;
    link.download = `melodiff-${melody.id.slice(0, 8)}.${kind}`;
    link.href = notationURL(melody.id, kind);
    link.addEventListener("click", () => { link.href = notationURL(melody.id, kind); });
    return link;
  });
  const copy = document.createElement("button");
  copy.type = "button";
  copy.className = "copy-abc";
  copy.textContent = "Copy ABC";
  copy.addEventListener("click", () => copyABC(melody.id, actions));
  actions.append(play, audio, midi, toggle, ...downloads, copy);
  card.append(header, wrap, sheetWrap, actions);
  const kept = keptCheck(melody);
  if (kept) card.appendChild(kept);
  $("melodies").prepend(card);
  refreshTargets();
}

// ---- notation -------------------------------------------------------------------------------------------------------
function notationURL(id, kind) {
  return `/api/melodies/${id}/${kind}?tempo=${Number($("tempo").value) || 120}`;
}

// Shows (or hides) a melody's engraved sheet under its piano roll, fetched once per tempo. The server's SVG (Verovio)
// is parsed, stripped of anything active and put inline, so that its bars (g.measure, in order) can be coloured and
// clicked like the piano roll's.
async function showSheet(id, show = true) {
  const card = $(`melody-${id}`);
  if (!card) return;
  const wrap = card.querySelector(".sheet-wrap");
  wrap.hidden = !show;
  card.querySelector(".sheet-toggle").setAttribute("aria-pressed", String(show));
  const url = notationURL(id, "svg");
  if (!show || wrap.dataset.url === url) return;
  wrap.dataset.url = url;
  wrap.replaceChildren(document.createTextNode("engraving…"));
  try {
    const text = await fetchText(url);
    const root = new DOMParser().parseFromString(text, "image/svg+xml").documentElement;
    if (root.namespaceURI !== SVG_NS || root.localName !== "svg") throw new Error("the server sent no SVG");
    for (const el of root.querySelectorAll("script, foreignObject, a")) el.remove();
    for (const el of [root, ...root.querySelectorAll("*")]) {
      for (const attr of [...el.attributes]) if (/^on/i.test(attr.name)) el.removeAttribute(attr.name);
    }
    const sheet = document.importNode(root, true);
    sheet.classList.add("sheet");
    sheet.setAttribute("role", "img");
    const melody = state.melodies.get(id);
    const [a, b] = melody.regenerated || [0, 0];
    sheet.querySelectorAll("g.measure").forEach((measure, bar) => {
      measure.dataset.bar = bar;
      const step = bar * melody.steps_per_bar;
      if (step >= a && step < b) measure.classList.add("regenerated");
      measure.addEventListener("mousedown", (event) => {
        event.preventDefault();
        selectBars(id, bar, event.shiftKey);
        state.dragging = true;
      });
      measure.addEventListener("mouseenter", () => {
        if (state.dragging && state.active === id) selectBars(id, bar, true);
      });
    });
    sheet.setAttribute("aria-label", `sheet music, ${sheet.querySelectorAll("g.measure").length} bars`);
    wrap.replaceChildren(sheet);
    for (const measure of sheet.querySelectorAll("g.measure")) { // a bar is clickable between its notes too
      const box = measure.getBBox();
      measure.prepend(svg("rect", { class: "measure-hit", x: box.x, y: box.y, width: box.width, height: box.height,
        fill: "transparent", style: "stroke: none" })); // inline: Verovio's own style strokes every rect
    }
    drawSelection();
  } catch (err) {
    delete wrap.dataset.url;
    wrap.replaceChildren();
    wrap.hidden = true;
    card.querySelector(".sheet-toggle").setAttribute("aria-pressed", "false");
    showError(`notation: ${err.message}`);
  }
}

async function copyABC(id, actions) {
  clearError();
  let text;
  try {
    text = await fetchText(notationURL(id, "abc"));
  } catch (err) {
    showError(`ABC: ${err.message}`);
    return;
  }
  try {
    await navigator.clipboard.writeText(text);
    showProgress(1, "ABC copied to the clipboard");
  } catch (err) { // no clipboard access (a page served to another machine over plain HTTP): show it to copy by hand
    let area = actions.querySelector(".abc-text");
    if (!area) {
      area = document.createElement("textarea");
      area.className = "abc-text";
      area.readOnly = true;
      area.rows = 6;
      actions.appendChild(area);
    }
    area.value = text;
    area.select();
    showProgress(1, "the browser does not allow copying here: the ABC is selected below, copy it with Ctrl+C");
  }
}

function playMelody(id, card, audio) {
  audio.src = audioURL(id, "wav");
  audio.hidden = false;
  const head = card.querySelector(".playhead");
  const stepsPerSecond = ((Number($("tempo").value) || 120) / 60) * 4;
  const barWidth = Number(card.querySelector(".roll").dataset.barWidth);
  const tick = () => {
    head.setAttribute("visibility", audio.paused || audio.ended ? "hidden" : "visible");
    const px = (audio.currentTime * stepsPerSecond / state.melodies.get(id).steps_per_bar) * barWidth;
    head.setAttribute("x1", px);
    head.setAttribute("x2", px);
    if (!audio.paused && !audio.ended) requestAnimationFrame(tick);
  };
  audio.onplay = () => requestAnimationFrame(tick);
  audio.onerror = () => showError("could not load the audio for this melody");
  audio.play().catch(() => { /* autoplay refused or no audio device: the controls stay usable */ });
}

// The bars a result kept must be exactly its source's: compares the notes that start outside the regenerated span
// (those before it cut at its start) with the source's. Returns a <p> saying so, or null for generated melodies.
function keptCheck(melody) {
  if (!melody.regenerated || !melody.parents.length) return null;
  const sources = melody.parents.map((id) => state.melodies.get(id));
  if (sources.some((s) => !s)) return null;
  const [a, b] = melody.regenerated;
  const sig = (notes, from, to, shift) => notes
    .map((n) => ({ pitch: n.pitch, start: n.start + shift, end: n.end + shift }))
    .filter((n) => n.start >= from && n.start < to)
    .map((n) => `${n.pitch}@${n.start}-${Math.min(n.end, to)}`).join(",");
  let same = sig(melody.notes, 0, a, 0) === sig(sources[0].notes, 0, a, 0);
  const after = sources.length > 1 ? sig(sources[1].notes, b, Infinity, b) : sig(sources[0].notes, b, Infinity, 0);
  same = same && sig(melody.notes, b, Infinity, 0) === after;
  const p = document.createElement("p");
  p.className = `kept ${same ? "ok" : "bad"}`;
  const span = `bars ${a / melody.steps_per_bar + 1}–${b / melody.steps_per_bar} regenerated (shaded)`;
  p.textContent = same ? `${span}; every other bar is identical to the source ✓`
    : `${span}; the kept bars differ from the source ✗`;
  return p;
}

// ---- selection and the edit panel -----------------------------------------------------------------------------------
function selectMelody(id) {
  if (state.active !== id) { state.selection = null; state.anchor = null; }
  state.active = id;
  for (const card of document.querySelectorAll(".melody")) card.classList.toggle("active", card.dataset.id === id);
  drawSelection();
  refreshTargets();
  const card = $(`melody-${id}`);
  if (card && !card.dataset.sheetClosed) showSheet(id); // the selected melody is shown as notation too
}

function selectBars(id, bar, extend) {
  selectMelody(id);
  if (!extend || state.anchor === null) state.anchor = bar;
  state.selection = { start: Math.min(state.anchor, bar), end: Math.max(state.anchor, bar) + 1 };
  drawSelection();
}

function drawSelection() {
  for (const rect of document.querySelectorAll(".roll .selection")) rect.setAttribute("visibility", "hidden");
  for (const bar of document.querySelectorAll(".sheet g.measure.selected")) bar.classList.remove("selected");
  const melody = state.melodies.get(state.active);
  const sel = state.selection;
  if (melody && sel) {
    for (const bar of document.querySelectorAll(`#melody-${melody.id} .sheet g.measure`)) {
      if (Number(bar.dataset.bar) >= sel.start && Number(bar.dataset.bar) < sel.end) bar.classList.add("selected");
    }
    const rect = document.querySelector(`#melody-${melody.id} .selection`);
    const barWidth = Number(rect.ownerSVGElement.dataset.barWidth);
    rect.setAttribute("x", sel.start * barWidth);
    rect.setAttribute("width", (sel.end - sel.start) * barWidth);
    rect.setAttribute("visibility", "visible");
  }
  const text = !melody ? "Click a bar on a piano roll or in the notation to select it; shift-click or drag to select "
    + "several."
    : sel ? `Selected: bars ${sel.start + 1}–${sel.end} of “${melody.label}”`
      : `Selected: “${melody.label}” (click bars to choose some to infill)`;
  $("selection-text").textContent = text;
  $("sel-start").value = sel ? sel.start + 1 : "";
  $("sel-end").value = sel ? sel.end : "";
  updateEditPanel();
}

function updateEditPanel() {
  const melody = state.melodies.get(state.active);
  const bars = melody ? numBars(melody) : 1;
  for (const id of ["sel-start", "sel-end"]) { $(id).disabled = !melody; $(id).max = bars; }
  $("infill").disabled = state.busy || !melody || !state.selection;
  $("continue").disabled = state.busy || !melody;
  $("bridge-target").disabled = !melody || state.order.length < 2;
  $("bridge").disabled = state.busy || !melody || !$("bridge-target").value;
}

function refreshTargets() {
  const select = $("bridge-target");
  const previous = select.value;
  select.replaceChildren();
  for (const id of [...state.order].reverse()) {
    if (id === state.active) continue;
    const option = document.createElement("option");
    option.value = id;
    option.textContent = state.melodies.get(id).label;
    select.appendChild(option);
  }
  if ([...select.options].some((o) => o.value === previous)) select.value = previous;
  updateEditPanel();
}

function selectionFromInputs() {
  const start = Number($("sel-start").value) - 1;
  const end = Number($("sel-end").value);
  if (Number.isInteger(start) && Number.isInteger(end) && start >= 0 && end > start) {
    state.anchor = start;
    state.selection = { start, end };
    drawSelection();
  }
}

// ---- wiring ---------------------------------------------------------------------------------------------------------
async function uploadFile(event) {
  event.preventDefault();
  const file = $("file").files[0];
  if (!file || state.busy) return;
  clearError();
  if (state.limits && file.size > state.limits.max_upload_bytes) {
    showError(`${file.name} is larger than ${(state.limits.max_upload_bytes / 1e6).toFixed(1)} MB`);
    return;
  }
  setBusy(true);
  showProgress(0, `reading ${file.name}…`);
  try {
    const form = new FormData();
    form.append("file", file);
    showRead(await api("/api/melodies", { method: "POST", body: form }));
  } catch (err) {
    showError(err.message);
  } finally {
    setBusy(false);
  }
}

function showRead(result) {
  // melodies read from an upload or a pasted ABC tune: added, the first selected
  for (const melody of result.melodies) addMelody(melody);
  selectMelody(result.melodies[0].id);
  showProgress(1, result.message);
}

async function pasteABC(event) {
  event.preventDefault();
  const text = $("abc-text").value;
  if (!text.trim() || state.busy) return;
  clearError();
  setBusy(true);
  showProgress(0, "reading the ABC…");
  try {
    showRead(await postJSON("/api/melodies/abc", { text }));
  } catch (err) {
    showError(err.message);
  } finally {
    setBusy(false);
  }
}

function wire() {
  $("generate-form").addEventListener("submit", (event) => {
    event.preventDefault();
    runJob("/api/generate", { ...samplingFields(), ...controlFields(true), bars: Number($("bars").value),
      form: $("form").value.trim() || "auto", meter: $("meter").value });
  });
  $("upload-form").addEventListener("submit", uploadFile);
  $("abc-form").addEventListener("submit", pasteABC);
  $("tempo").addEventListener("change", () => { // the sheets' tempo marks follow the tempo
    for (const wrap of document.querySelectorAll(".sheet-wrap:not([hidden])")) {
      showSheet(wrap.closest(".melody").dataset.id);
    }
  });
  $("dice").addEventListener("click", () => { $("seed").value = Math.floor(Math.random() * 1e6); });
  $("infill").addEventListener("click", () => runJob("/api/infill", { ...samplingFields(), ...controlFields(false),
    melody_id: state.active, start_bar: state.selection.start, end_bar: state.selection.end }));
  $("continue").addEventListener("click", () => runJob("/api/continue", { ...samplingFields(),
    ...controlFields(false), melody_id: state.active, bars: Number($("continue-bars").value) }));
  $("bridge").addEventListener("click", () => runJob("/api/bridge", { ...samplingFields(), ...controlFields(false),
    first_id: state.active, second_id: $("bridge-target").value, bars: Number($("bridge-bars").value) }));
  $("bridge-target").addEventListener("change", updateEditPanel);
  $("meter").addEventListener("change", async () => { // each meter's model takes its own controls and styles
    try {
      state.model = await api(`/api/model?meter=${encodeURIComponent($("meter").value)}`);
      showControls(state.model);
    } catch (err) {
      showError(err.message);
    }
  });
  $("sel-start").addEventListener("change", selectionFromInputs);
  $("sel-end").addEventListener("change", selectionFromInputs);
  window.addEventListener("mouseup", () => { state.dragging = false; });
}

async function checkHealth() {
  let health;
  try {
    health = await api("/api/health");
  } catch (err) {
    $("health").textContent = "server not reachable";
    showError(err.message);
    return;
  }
  state.limits = health.limits;
  $("bars").max = health.limits.max_bars;
  $("num-samples").max = health.limits.max_samples;
  $("steps").max = health.limits.max_steps;
  $("health").textContent = "loading the model…";
  try {
    state.model = await api("/api/model"); // loads the model if the server has not yet
  } catch (err) {
    $("health").textContent = "the model did not load";
    showError(err.message);
    return;
  }
  $("bars").value = Math.min(state.model.window_bars, 8);
  showControls(state.model);
  $("health").textContent = `ready · model window ${state.model.window_bars} bars · controls: `
    + `${state.model.controls.join(", ")} · audio: ${health.fluidsynth ? "FluidSynth" : "built-in synthesiser"}`;
}

wire();
checkHealth();
