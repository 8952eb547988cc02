// The network drawing: input features, hidden layers and output as thumbnail canvases, links as SVG paths
// whose width and colour follow the weights. Hover a neuron: the big heatmap shows it. Hover a link or a
// bias: its value; click it: edit it. Click an input: toggle it. +/− change layers and neurons.

import { colorOf, decode, paintGrid } from "./draw.js";

const SVG = "http://www.w3.org/2000/svg";
const LEFT = 48; // room for the input labels

function el(tag, attrs = {}, parent = null) {
  const e = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

// Builds the drawing of one network into `root` and returns an object with update(frame).
// ctx: {which, state, info, features, activations, compact, set(changes), edit(msg), hover(h), tooltip(text, ev)};
// features: every input offered, [{key (URL key), label}], from the server's FEATURES registry.
// compact (side by side on a wide window): narrower columns and smaller nodes, so A and B fit next to each other.
export function buildNetwork(root, ctx) {
  root.innerHTML = "";
  const { info, state } = ctx;
  const FEATURE_KEYS = ctx.features.map(f => f.key);
  const COL = ctx.compact ? 84 : 96; // px between layer columns
  const prefix = ctx.which === "a" ? "" : "b.";
  const hidden = info.hidden, L = hidden.length;
  const maxNodes = Math.max(FEATURE_KEYS.length, ...hidden, 1);
  const pitch = Math.max(16, Math.min(ctx.compact ? 36 : 46, Math.floor((ctx.compact ? 300 : 420) / maxNodes)));
  const size = Math.max(10, pitch - 10);
  const width = LEFT + COL * (L + 1) + 60, height = pitch * maxNodes + 40;
  root.style.width = width + "px";
  root.style.height = height + 60 + "px";
  const svg = el("svg:svg", { width, height: height + 60, class: "links" }, root);
  const top = 56; // room for the per-layer controls
  const pos = []; // pos[col][i] = {x, y} (top-left of the node square)
  const activeFeatures = info.features;
  // column 0: every input TF offers; only the active ones are wired
  pos.push(FEATURE_KEYS.map((_, i) => ({ x: LEFT, y: top + i * pitch })));
  for (let l = 0; l < L; l++) {
    const n = hidden[l], off = (maxNodes - n) * pitch / 2;
    pos.push(Array.from({ length: n }, (_, i) => ({ x: LEFT + COL * (l + 1), y: top + off + i * pitch })));
  }
  const outOff = (maxNodes - 1) * pitch / 2;
  pos.push([{ x: LEFT + COL * (L + 1), y: top + outOff }]);

  // links: layer l connects column l (inputs: the active ones) to column l + 1
  const links = [];
  for (let l = 0; l <= L; l++) {
    const from = l === 0 ? activeFeatures.map(f => pos[0][FEATURE_KEYS.indexOf(f)]) : pos[l];
    const to = pos[l + 1];
    const layerLinks = [];
    to.forEach((b, i) => {
      from.forEach((a, j) => {
        const x1 = a.x + size, y1 = a.y + size / 2, x2 = b.x, y2 = b.y + size / 2, mx = (x1 + x2) / 2;
        const p = el("svg:path", { d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`, class: "link" }, svg);
        p.dataset.layer = l; p.dataset.i = i; p.dataset.j = j;
        layerLinks.push(p);
      });
    });
    links.push(layerLinks);
  }

  const thumbs = []; // thumbs[col][i] = canvas
  const biases = [];
  const node = (col, i, p, label, cls) => {
    const box = el("div", { class: `node ${cls}` }, root);
    box.style.left = p.x + "px"; box.style.top = p.y + "px";
    box.style.width = box.style.height = size + "px";
    const c = el("canvas", { width: 10, height: 10 }, box);
    if (label) { const t = el("span", { class: "node-label" }, box); t.textContent = label; }
    box.addEventListener("mouseenter", () => ctx.hover([ctx.which, col, col === 0 ? activeFeatures.indexOf(FEATURE_KEYS[i]) : i]));
    box.addEventListener("mouseleave", () => ctx.hover(null));
    if (col > 0) {
      const b = el("div", { class: "bias", title: "bias" }, box);
      b.dataset.layer = col - 1; b.dataset.i = i;
      biases.push(b);
    }
    return c;
  };
  thumbs.push(FEATURE_KEYS.map((f, i) => {
    const c = node(0, i, pos[0][i], ctx.features[i].label, activeFeatures.includes(f) ? "input active" : "input off");
    c.parentElement.dataset.feature = f;
    c.parentElement.addEventListener("click", () => ctx.set({ [prefix + f]: !activeFeatures.includes(f) }));
    return c;
  }));
  for (let l = 0; l < L; l++) thumbs.push(pos[l + 1].map((p, i) => node(l + 1, i, p, "", "hidden")));
  thumbs.push([node(L + 1, 0, pos[L + 1][0], "", "output")]);
  FEATURE_KEYS.forEach((f, i) => paintGrid(thumbs[0][i], decode(info.inputThumbs[f]), 10));

  // per-layer controls: neurons +/−, that layer's activation
  const shape = hidden.slice();
  for (let l = 0; l < L; l++) {
    const bar = el("div", { class: "layer-ctl" }, root);
    bar.style.left = (LEFT + COL * (l + 1) - 30) + "px";
    const plus = el("button", { class: "add-neuron", title: "Add a neuron", "aria-label": "Add a neuron" }, bar); plus.textContent = "+";
    const minus = el("button", { class: "remove-neuron", title: "Remove a neuron", "aria-label": "Remove a neuron" }, bar); minus.textContent = "−";
    const count = el("span", { class: "n-neurons" }, bar); count.textContent = `${hidden[l]} neurons`;
    plus.addEventListener("click", () => { if (shape[l] < ctx.maxNeurons) { shape[l]++; ctx.set({ [prefix + "networkShape"]: shape.join(",") }); } });
    minus.addEventListener("click", () => { if (shape[l] > 1) { shape[l]--; ctx.set({ [prefix + "networkShape"]: shape.join(",") }); } });
    const sel = el("select", { class: "layer-act", title: "activation of this layer" }, bar);
    for (const name of ctx.activations) { const o = el("option", { value: name }, sel); o.textContent = name; }
    sel.value = info.activations[l];
    sel.addEventListener("change", () => {
      const acts = info.activations.slice(); acts[l] = sel.value;
      ctx.set({ [prefix + "activations"]: acts.every(a => a === acts[0]) ? "" : acts.join(",") ,
                ...(acts.every(a => a === acts[0]) ? { [prefix + "activation"]: acts[0] } : {}) });
    });
  }
  const outLabel = el("div", { class: "layer-ctl out-label" }, root);
  outLabel.style.left = (LEFT + COL * (L + 1) - 30) + "px";
  outLabel.textContent = info.output === "softmax" ? `softmax ×${info.outputs}` : info.output;

  let weights = null;
  const describe = (t) => {
    const d = t.dataset, l = +d.layer, i = +d.i;
    if (!weights || !weights[l]) return null;
    if (t.classList.contains("bias")) return { layer: l, kind: "b", i, j: 0, value: weights[l].b[i] };
    return { layer: l, kind: "w", i, j: +d.j, value: weights[l].w[i][+d.j] };
  };
  const label = (w) => w.kind === "b" ? `bias of layer ${w.layer + 1} neuron ${w.i + 1}` : `weight ${w.j + 1}→${w.i + 1} into layer ${w.layer + 1}`;
  for (const t of [...links.flat(), ...biases]) {
    t.addEventListener("mousemove", ev => { const w = describe(t); if (w) ctx.tooltip(`${label(w)}: ${w.value.toFixed(3)}`, ev); });
    t.addEventListener("mouseleave", () => ctx.tooltip(null));
    t.addEventListener("click", ev => { ev.stopPropagation(); const w = describe(t); if (w) ctx.editor(label(w), w, ev); });
  }

  return {
    update(frame) {
      weights = frame.weights;
      frame.weights.forEach((layer, l) => {
        const ls = links[l]; let k = 0;
        layer.w.forEach(row => row.forEach(w => {
          const p = ls[k++];
          if (!p) return;
          p.style.stroke = colorOf(Math.max(-1, Math.min(1, w)));
          p.style.strokeWidth = Math.min(10, 1 + Math.abs(w) * 1.8).toFixed(2);
        }));
      });
      biases.forEach(b => { const v = weights[+b.dataset.layer].b[+b.dataset.i]; b.style.background = colorOf(Math.max(-1, Math.min(1, v))); });
      frame.thumbs.forEach((layer, l) => layer.forEach((b64, i) => paintGrid(thumbs[l + 1][i], decode(b64), 10)));
      paintGrid(thumbs[L + 1][0], decode(frame.outputThumb), 10);
    },
  };
}
