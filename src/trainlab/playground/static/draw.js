// Drawing: TF Playground's colour scale, the boundary heatmap, points, neuron thumbnails, the loss chart.
// Values arrive as uint8 0..255 for −1..+1 (see frames.quantize); a 256-entry lookup table turns them into
// RGB without parsing colours per pixel (which TF Playground's profile shows dominating its frame time).

const ORANGE = [0xf5, 0x93, 0x22], GREY = [0xe8, 0xea, 0xeb], BLUE = [0x08, 0x77, 0xbd];
export const CLASS_COLORS = ["#f59322", "#0877bd", "#2ca02c", "#9467bd", "#d62728", "#8c564b", "#e377c2", "#17becf"];
const CLASS_RGB = CLASS_COLORS.map(hex => [1, 3, 5].map(i => parseInt(hex.slice(i, i + 2), 16)));

function lerp(a, b, t) { return a.map((v, i) => Math.round(v + (b[i] - v) * t)); }

// LUT[q] = RGB for value q/127.5 − 1: orange (−1) → grey (0) → blue (+1).
export const LUT = new Uint8Array(256 * 3);
for (let q = 0; q < 256; q++) {
  const v = q / 127.5 - 1;
  const c = v < 0 ? lerp(GREY, ORANGE, -v) : lerp(GREY, BLUE, v);
  LUT.set(c, q * 3);
}

export function colorOf(value) { // a number in [−1, 1] → css colour
  const q = Math.max(0, Math.min(255, Math.round((value + 1) * 127.5)));
  return `rgb(${LUT[q * 3]},${LUT[q * 3 + 1]},${LUT[q * 3 + 2]})`;
}

export function decode(b64) {
  const s = atob(b64), out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

const scratch = new Map(); // n → an n×n offscreen canvas, reused every frame
function offscreen(n) {
  if (!scratch.has(n)) { const c = document.createElement("canvas"); c.width = c.height = n; scratch.set(n, c); }
  return scratch.get(n);
}

// Paint n×n values (Uint8Array, row 0 at the top) scaled onto `canvas`. `classes`: per-cell class ids
// with `values` as confidence (multi-class); `discretize`: only the sign (or the class) is shown.
export function paintGrid(canvas, values, n, { discretize = false, classes = null, k = 2 } = {}) {
  const off = offscreen(n), octx = off.getContext("2d");
  const img = octx.createImageData(n, n), px = img.data;
  for (let i = 0; i < n * n; i++) {
    let r, g, b;
    if (classes) {
      const c = CLASS_RGB[classes[i] % CLASS_RGB.length];
      const conf = values[i] / 255;                       // max probability, 1/k .. 1
      const t = discretize ? 1 : Math.max(0, (conf - 1 / k) / (1 - 1 / k));
      r = GREY[0] + (c[0] - GREY[0]) * t; g = GREY[1] + (c[1] - GREY[1]) * t; b = GREY[2] + (c[2] - GREY[2]) * t;
    } else {
      const q = discretize ? (values[i] >= 128 ? 255 : 0) : values[i];
      r = LUT[q * 3]; g = LUT[q * 3 + 1]; b = LUT[q * 3 + 2];
    }
    px[i * 4] = r; px[i * 4 + 1] = g; px[i * 4 + 2] = b; px[i * 4 + 3] = 255;
  }
  octx.putImageData(img, 0, 0);
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = n > 20 && !discretize; // discretized: crisp cells, only the class colours
  ctx.drawImage(off, 0, 0, canvas.width, canvas.height);
}

// Train points with a white ring, test points (when shown) with a black ring, as TF draws them.
export function paintPoints(canvas, train, test, { showTest = false, task = "classification", k = 2 } = {}) {
  const ctx = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  const fill = task === "regression" ? (l => colorOf(Math.max(-1, Math.min(1, l))))
    : k === 2 ? (l => (l > 0 ? CLASS_COLORS[1] : CLASS_COLORS[0])) : (l => CLASS_COLORS[l % CLASS_COLORS.length]);
  const draw = (pts, ring) => {
    ctx.strokeStyle = ring; ctx.lineWidth = 1;
    for (const [x, y, l] of pts) {
      ctx.beginPath();
      ctx.arc((x + 6) / 12 * w, (6 - y) / 12 * h, 3, 0, 2 * Math.PI);
      ctx.fillStyle = fill(l); ctx.fill(); ctx.stroke();
    }
  };
  draw(train, "white");
  if (showTest) draw(test, "black");
}

// A dataset's button picture, as TF draws it: its noiseless points as 4×4 squares over [−6, 6]² in the class
// colours (regression: the value on the colour scale). rows: [[x1, x2, label]], labels ±1 or values.
export function paintThumb(canvas, rows, task) {
  const ctx = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  for (const [x, y, l] of rows) {
    ctx.fillStyle = task === "regression" ? colorOf(Math.max(-1, Math.min(1, l))) : CLASS_COLORS[l > 0 ? 1 : 0];
    ctx.fillRect(Math.round((x + 6) / 12 * w) - 2, Math.round((6 - y) / 12 * h) - 2, 4, 4);
  }
}

// Loss over epochs: training grey, test black (TF's colours); thinned to ≤ 2 points per pixel.
export function paintChart(canvas, rows) {
  const ctx = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  if (rows.length < 2) return;
  let max = 0;
  for (const r of rows) { if (r[1] > max) max = r[1]; if (r[2] > max) max = r[2]; }
  max = max || 1;
  const step = Math.max(1, Math.floor(rows.length / (2 * w)));
  const last = rows[rows.length - 1][0] || 1;
  for (const [col, color] of [[1, "#aaa"], [2, "#000"]]) {
    ctx.beginPath(); ctx.strokeStyle = color; ctx.lineWidth = 1.5;
    for (let i = 0; i < rows.length; i += step) {
      const v = rows[i][col];
      if (v === null) continue;
      const x = rows[i][0] / last * (w - 2) + 1, y = h - 2 - v / max * (h - 4);
      i === 0 ? ctx.moveTo(x, y) : ctx.lineTo(x, y);
    }
    ctx.stroke();
  }
}
