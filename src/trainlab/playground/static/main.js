// The page: one WebSocket to this tab's session. The server owns the state (it validates every change and
// answers with the whole state, which goes into the URL); the page draws the frames it asks for, one at a
// time, so drawing never queues up behind training.

import { decode, paintChart, paintGrid, paintPoints, paintThumb, CLASS_COLORS } from "./draw.js";
import { buildNetwork } from "./network.js";

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

// What tests and benchmarks read: frames drawn, latest epochs and losses per network.
const pg = window.playground = { framesDrawn: 0, framesReceived: 0, nets: {}, state: null, messages: [], connected: false };

let ws = null, spec = null, specByKey = {}, state = null, last = null;
let playing = false, inFlight = false, hover = null, pending = null;
let features = []; // every input offered, [{key, label}], from the server's FEATURES registry
const lastDataset = {}; // problem → the set last shown for it: switching back returns to it, as in TF
const panels = {}; // which → {root, network, rows, info}

function send(obj) { if (ws && ws.readyState === 1) ws.send(JSON.stringify(obj)); }
function set(changes) { send({ type: "set", changes }); }

function connect() {
  ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  ws.onopen = () => { pg.connected = true; $("#connection").textContent = ""; send({ type: "init", query: [location.search.slice(1), location.hash.slice(1)].filter(Boolean).join("&") }); };
  ws.onclose = ev => {
    pg.connected = false;
    $("#connection").textContent = ev.code === 1013 ? "too many sessions — close another tab, then reload"
      : "disconnected — reload the page";
  };
  ws.onmessage = ev => {
    const msg = JSON.parse(ev.data);
    if (msg.type === "state") onState(msg);
    else if (msg.type === "frame") onFrame(msg);
    else if (msg.type === "message") showMessage(msg.text, msg.level);
    else if (msg.type === "config") showConfig(msg);
    else if (msg.type === "saved") showMessage(`Saved network ${msg.net.toUpperCase()} as ${msg.path} — try: trainlab evaluate ${msg.path}`, "info");
  };
}

function showMessage(text, level = "error") {
  pg.messages.push({ text, level });
  const box = $("#messages");
  for (const line of String(text).split("\n")) {
    const div = document.createElement("div");
    div.className = `message ${level}`;
    div.textContent = line;
    div.title = "click to dismiss";
    div.addEventListener("click", () => div.remove());
    box.appendChild(div);
  }
  while (box.children.length > 8) box.firstChild.remove();
}

function fmt(v) { // a loss or accuracy; the server sends only finite numbers (None for anything else)
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  return Math.abs(v) >= 1e4 ? v.toExponential(2) : v.toFixed(3);
}

// --- controls --------------------------------------------------------------------------------------------

function fillSelect(sel, p) {
  sel.innerHTML = "";
  for (const o of p.options) {
    const opt = document.createElement("option");
    opt.value = String(o); opt.textContent = String(o);
    sel.appendChild(opt);
  }
}

function bindControls(root, prefix) {
  for (const input of $$("[data-key]", root)) {
    const key = input.dataset.key, p = specByKey[key];
    if (!p) continue;
    const full = p.perNet ? prefix + key : key;
    input.dataset.full = full;
    if (input.tagName === "SELECT") fillSelect(input, p);
    input.addEventListener("change", () => {
      const value = input.type === "checkbox" ? input.checked : input.value;
      if (key === "compare" && value) { // B starts as a copy of A, then differs where the user changes it
        const copy = { compare: true };
        for (const s of spec) if (s.perNet) copy["b." + s.key] = toText(state[s.key]);
        set(copy);
      } else if (key === "problem") { // a problem type comes with one of its datasets
        const sets = datasetsOf(value);
        set({ problem: value, dataset: sets.includes(lastDataset[value]) ? lastDataset[value] : sets[0] });
      } else set({ [full]: value });
    });
    if (input.type === "range") input.addEventListener("input", () => { const o = $(`[data-show="${key}"]`, root); if (o) o.textContent = input.value; });
  }
}

function toText(v) { return Array.isArray(v) ? v.join(",") : String(v); }

function showControls(root) {
  for (const input of $$("[data-full]", root)) {
    const v = state[input.dataset.full];
    if (input.type === "checkbox") input.checked = !!v;
    else if (input.tagName === "SELECT") {
      const i = [...input.options].findIndex(o => o.value === String(v) || Number(o.value) === v);
      input.selectedIndex = Math.max(0, i);
    } else input.value = toText(v);
  }
  for (const out of $$("[data-show]", root)) {
    const key = out.dataset.show, p = specByKey[key];
    const full = p && p.perNet && root.dataset.which === "b" ? "b." + key : key;
    if (state[full] !== undefined) out.textContent = toText(state[full]);
  }
}

function datasetsOf(problem) {
  const p = specByKey.dataset;
  return p.options.filter(n => n !== "upload" && p.tasks[n] === problem);
}

// One button per generated set: its picture (points the server sent, drawn as TF does) and its name under it;
// only the current problem type's sets are shown.
function buildDatasets() {
  const box = $("#datasets");
  box.innerHTML = "";
  const p = specByKey.dataset;
  for (const name of p.options) {
    if (name === "upload") continue;
    const b = document.createElement("button");
    b.className = "dataset"; b.dataset.name = name; b.dataset.task = p.tasks[name];
    b.title = `${name} (${p.tasks[name]})`;
    const thumb = document.createElement("canvas");
    thumb.className = "thumb"; thumb.width = thumb.height = 100;
    paintThumb(thumb, p.thumbs[name] || [], p.tasks[name]);
    const label = document.createElement("span");
    label.textContent = name;
    b.append(thumb, label);
    b.addEventListener("click", () => set({ dataset: name }));
    box.appendChild(b);
  }
}

function makePanel(which) {
  const root = $("#panel-template").content.firstElementChild.cloneNode(true);
  root.dataset.which = which;
  $(".net-name", root).textContent = which === "a" ? "A" : "B";
  $("#panels").appendChild(root);
  const prefix = which === "a" ? "" : "b.";
  bindControls(root, prefix);
  $(".add-layer", root).addEventListener("click", () => {
    const shape = state[prefix + "networkShape"].slice();
    if (shape.length < specMax.layers) { shape.push(2); set({ [prefix + "networkShape"]: shape.join(",") }); }
  });
  $(".remove-layer", root).addEventListener("click", () => {
    const shape = state[prefix + "networkShape"].slice(0, -1);
    set({ [prefix + "networkShape"]: shape.join(",") });
  });
  $(".save-run", root).addEventListener("click", () => send({ type: "save_run", net: which, name: $(".run-name", root).value }));
  $(".copy-config", root).addEventListener("click", () => send({ type: "copy_config", net: which }));
  const heat = $(".heat", root);
  heat.addEventListener("mouseleave", () => {});
  panels[which] = { root, network: null, rows: [], info: null, frame: null };
  return panels[which];
}

const specMax = { layers: 10, neurons: 32 };
// Side by side puts A and B in two columns from this width on (style.css has the same breakpoint).
const wide = window.matchMedia("(min-width: 1300px)");
wide.addEventListener("change", () => { if (last && state && state.compare) onState({ ...last, notes: [] }); });

function onState(msg) {
  if (msg.spec) {
    spec = msg.spec; specByKey = Object.fromEntries(spec.map(p => [p.key, p]));
    features = spec.filter(p => p.feature).map(p => ({ key: p.key, label: p.label }));
    buildDatasets();
    bindControls($("#data"), ""); bindControls($("#top"), "");
  }
  state = msg.state; pg.state = state; last = msg;
  playing = msg.playing;
  history.replaceState(null, "", "?" + msg.query);
  for (const n of msg.notes) showMessage(n, "warning");
  const active = state.compare ? ["a", "b"] : ["a"];
  for (const w of Object.keys(panels)) if (!active.includes(w)) { panels[w].root.remove(); delete panels[w]; delete pg.nets[w]; }
  for (const w of active) {
    const panel = panels[w] || makePanel(w);
    const info = msg.nets[w];
    const compact = !!state.compare && wide.matches;
    const structure = JSON.stringify([info.features, info.hidden, info.activations, info.output, info.outputs,
                                      info.inputThumbs, compact]);
    if (panel.structure !== structure || !panel.network) {
      panel.structure = structure;
      panel.info = info;
      panel.network = buildNetwork($(".network", panel.root), {
        which: w, info, state, compact, features, activations: specByKey.activation.options,
        maxNeurons: specMax.neurons,
        set, hover: h => { hover = h; send({ type: "frame", hover }); inFlight = true; },
        tooltip, editor,
      });
      $(".n-layers", panel.root).textContent = `${info.hidden.length} hidden layer${info.hidden.length === 1 ? "" : "s"}`;
    }
    showControls(panel.root);
  }
  showControls($("#data")); showControls($("#top"));
  if (state.dataset !== "upload") lastDataset[state.problem] = state.dataset;
  $$("#datasets .dataset").forEach(b => {
    b.classList.toggle("selected", b.dataset.name === state.dataset);
    b.hidden = b.dataset.task !== state.problem;
  });
  $("#classes-field").hidden = !specByKey.dataset.multiclass.includes(state.dataset);
  showPlaying(playing);
  document.body.classList.toggle("compare", !!state.compare);
  drawPoints();
}

function showPlaying(on) { // the icon, and the name screen readers and get_by_role read
  const b = $("#play");
  b.classList.toggle("playing", on);
  b.textContent = on ? "\u275A\u275A" : "\u25B6";
  b.setAttribute("aria-label", on ? "Pause" : "Run");
}

function drawPoints() {
  if (!last) return;
  for (const [w, panel] of Object.entries(panels)) {
    paintPoints($(".points", panel.root), last.train, last.test,
      { showTest: state.showTestData, task: last.task, k: last.classes || 2 });
  }
}

function onFrame(msg) {
  inFlight = false;
  pg.framesReceived++;
  playing = msg.playing;
  for (const [w, f] of Object.entries(msg.nets)) {
    const panel = panels[w];
    if (!panel) continue;
    // rows arrive once each, except the current epoch's again after an edit: it replaces the one shown
    if (f.rows.length) while (panel.rows.length && panel.rows[panel.rows.length - 1][0] >= f.rows[0][0]) panel.rows.pop();
    panel.rows.push(...f.rows);
    panel.frame = f;
  }
  pending = msg;
}

function drawFrame(msg) {
  for (const [w, f] of Object.entries(msg.nets)) {
    const panel = panels[w];
    if (!panel) continue;
    const root = panel.root, rows = panel.rows, lastRow = rows[rows.length - 1];
    const multi = f.confidence !== undefined;
    const heat = $(".heat", root);
    if (f.hover && hover && hover[0] === w) {
      paintGrid(heat, decode(f.hover.image), 100, { discretize: state.discretize });
      $(".hover-label", root).textContent = f.hover.layer === 0 ? "input" : `layer ${f.hover.layer}, neuron ${f.hover.i + 1}`;
    } else {
      paintGrid(heat, decode(multi ? f.confidence : f.boundary), 100,
        { discretize: state.discretize, classes: multi ? decode(f.boundary) : null, k: last.classes || 2 });
      $(".hover-label", root).textContent = "";
    }
    panel.network.update(f);
    paintChart($(".chart", root), rows);
    if (lastRow) {
      $(".test-loss", root).textContent = fmt(lastRow[2]);
      $(".train-loss", root).textContent = fmt(lastRow[1]);
      const cls = last.task === "classification";
      $(".test-acc", root).textContent = cls ? `acc ${fmt(lastRow[4])}` : "";
      $(".train-acc", root).textContent = cls ? `acc ${fmt(lastRow[3])}` : "";
      pg.nets[w] = { epoch: f.epoch, trainLoss: lastRow[1], testLoss: lastRow[2], trainAcc: lastRow[3], testAcc: lastRow[4], stopped: f.stopped };
    }
    if (f.verdict !== undefined) {
      const v = $(".verdict", root);
      v.className = `verdict ${f.verdict ? f.verdict.severity : ""}`;
      const text = f.verdict && f.verdict.severity === "info" ? f.verdict.text.split(". Try:")[0] : (f.verdict || {}).text;
      v.textContent = f.verdict ? `${f.verdict.title}${text ? " — " + text : ""}` : "";
      pg.nets[w] && (pg.nets[w].verdict = f.verdict);
    }
    $(".stopped", root).textContent = f.stopped ? `stopped: ${f.stopped}` : "";
    drawConfusion($(".confusion", root), f.confusion);
  }
  const a = msg.nets.a;
  if (a) $("#epoch").textContent = String(a.epoch).padStart(6, "0").replace(/(\d{3})(\d{3})$/, "$1,$2");
  showPlaying(msg.playing);
}

function drawConfusion(table, m) {
  if (!m || !m.length) { table.replaceChildren(); return; }
  const key = JSON.stringify(m);
  if (table.dataset.key === key) return;
  table.dataset.key = key;
  // Built as elements and styled through the CSSOM: the page's CSP (style-src 'self') drops style="" markup.
  const cell = (tag, text, parent) => { const c = document.createElement(tag); c.textContent = text; parent.appendChild(c); return c; };
  const classHead = (i, parent) => { const th = cell("th", String(i), parent); th.className = "class"; th.style.color = CLASS_COLORS[i % CLASS_COLORS.length]; };
  const caption = document.createElement("caption");
  caption.textContent = "Test confusion (rows: true, columns: predicted)";
  const head = document.createElement("tr");
  cell("th", "", head);
  m.forEach((_, j) => classHead(j, head));
  const rows = m.map((row, i) => {
    const tr = document.createElement("tr");
    classHead(i, tr);
    const total = row.reduce((s, v) => s + v, 0) || 1;
    row.forEach((v, j) => {
      const td = cell("td", String(v), tr);
      td.className = i === j ? "diag" : "off";
      // shade: the share of the true class's points in this cell (right: blue, wrong: orange)
      td.style.backgroundColor = `rgba(${i === j ? "8, 119, 189" : "245, 147, 34"}, ${(0.08 + 0.6 * v / total).toFixed(3)})`;
    });
    return tr;
  });
  table.replaceChildren(caption, head, ...rows);
}

// --- tooltip, weight editor, config dialog ---------------------------------------------------------------

function tooltip(text, ev) {
  const t = $("#tooltip");
  if (!text) { t.hidden = true; return; }
  t.hidden = false; t.textContent = text;
  t.style.left = ev.pageX + 12 + "px"; t.style.top = ev.pageY + 12 + "px";
}

function editor(label, w, ev) {
  const box = $("#editor");
  const which = ev.target.closest(".panel").dataset.which;
  box.hidden = false;
  box.style.left = ev.pageX + "px"; box.style.top = ev.pageY + "px";
  $(".what", box).textContent = label;
  const input = $(".value", box);
  input.value = w.value.toFixed(4);
  input.focus(); input.select();
  const done = ok => {
    box.hidden = true;
    if (ok) send({ type: "edit", net: which, layer: w.layer, kind: w.kind, i: w.i, j: w.j, value: input.value });
  };
  $(".ok", box).onclick = () => done(true);
  $(".cancel", box).onclick = () => done(false);
  input.onkeydown = e => { if (e.key === "Enter") done(true); if (e.key === "Escape") done(false); };
}

function showConfig(msg) {
  const dlg = $("#config-dialog");
  $("textarea", dlg).value = msg.yaml;
  dlg.showModal();
  if (navigator.clipboard) navigator.clipboard.writeText(msg.yaml).catch(() => {});
}

// --- data buttons, player ---------------------------------------------------------------------------------

function downloadCsv() {
  if (!last) return;
  const rows = ["x1,x2,label"];
  for (const [x, y, l] of [...last.train, ...last.test]) rows.push(`${x},${y},${l}`);
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([rows.join("\n") + "\n"], { type: "text/csv" }));
  a.download = `playground-${state.dataset}-${state.seed}.csv`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

function upload(file) {
  if (!file) return;
  if (file.size > 1_000_000) { showMessage(`CSV file must be at most 1000 kB. Got ${Math.round(file.size / 1000)} kB. Upload fewer rows.`); return; }
  const reader = new FileReader();
  reader.onload = () => send({ type: "upload", text: reader.result });
  reader.readAsText(file);
}

function setup() {
  $("#play").addEventListener("click", () => { playing = !playing; send({ type: playing ? "play" : "pause" }); });
  $("#step").addEventListener("click", () => send({ type: "step" }));
  $("#reset").addEventListener("click", () => send({ type: "reset" }));
  $("#regenerate").addEventListener("click", () => send({ type: "regenerate" }));
  $("#download").addEventListener("click", downloadCsv);
  $("#upload").addEventListener("change", ev => { upload(ev.target.files[0]); ev.target.value = ""; });
  document.addEventListener("click", ev => { if (!ev.target.closest("#editor")) $("#editor").hidden = true; });
  for (const key of ["showTestData"]) document.addEventListener("change", ev => { if (ev.target.dataset && ev.target.dataset.key === key) drawPoints(); });
  connect();
  const tick = () => {
    requestAnimationFrame(tick);
    if (pending) { const f = pending; pending = null; drawFrame(f); pg.framesDrawn++; }
    if (!inFlight && ws && ws.readyState === 1 && state) { send({ type: "frame", hover }); inFlight = true; }
  };
  requestAnimationFrame(tick);
}

setup();
