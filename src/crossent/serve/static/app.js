// The crossent playground: plain JavaScript, no library, no network beyond this server.
// The numbers all come from the API (crossent itself); this file edits the state, keeps it
// in the URL, asks the server and draws what it answers.

const MAX = 64; // rows and classes: the API takes at most 64 x 64 values
const DRAWN_ROWS = 8; // rows drawn in the charts
const SVGNS = "http://www.w3.org/2000/svg";

// What each loss edits: its first array ("logits" | "probs" | "logprobs"), the activation
// that makes logits probabilities, the target forms it takes, its options.
const LOSSES = {
  cross_entropy: { input: "logits", act: "softmax", targets: ["index", "soft", "multihot"],
    options: ["reduction", "label_smoothing", "ignore_index", "weight", "temperature"], compare: true },
  nll_loss: { input: "logprobs", act: null, targets: ["index", "soft"],
    options: ["reduction", "ignore_index", "weight"], compare: true },
  binary_cross_entropy: { input: "probs", act: null, targets: ["multihot", "soft"],
    options: ["reduction", "weight"], compare: true },
  binary_cross_entropy_with_logits: { input: "logits", act: "sigmoid", targets: ["multihot", "soft"],
    options: ["reduction", "label_smoothing", "weight", "pos_weight", "temperature"], compare: true },
  sigmoid_focal_loss: { input: "logits", act: "sigmoid", targets: ["multihot", "soft"],
    options: ["reduction", "alpha", "gamma", "temperature"], compare: false },
  softmax_focal_loss: { input: "logits", act: "softmax", targets: ["index", "soft"],
    options: ["reduction", "alpha", "gamma", "temperature"], compare: false },
  kl_divergence: { input: "probs", act: null, targets: ["soft"], options: ["base", "temperature"],
    compare: false, moving: 1 },
};

const DEFAULT_OPTIONS = { reduction: "mean", label_smoothing: 0, ignore_index: -100, weight: null,
  pos_weight: null, alpha: null, gamma: 2, temperature: 1, base: "e" };

let strings = { en: {}, zh: {} };
const state = {
  lang: "en", view: "playground", loss: "cross_entropy", edit: "logits",
  x: [[1.4, 3.2, 5.0], [0.4, 0.3, 0.7]], tmode: "index", t: [2, 1], sel: [0, 2],
  opt: { ...DEFAULT_OPTIONS }, real: false, example: null, plot: null,
};

// --- small helpers ----------------------------------------------------------------------

const $ = (id) => document.getElementById(id);
function tr(key, fill = {}) {
  let text = (strings[state.lang] || {})[key] ?? strings.en[key] ?? key;
  for (const [name, value] of Object.entries(fill)) text = text.replaceAll(`{${name}}`, value);
  return text;
}
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}
function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVGNS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value; else node.setAttribute(key, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}
function value(v) { // a JSON number of the API ("inf", "-inf", "nan" arrive as strings)
  if (typeof v === "number") return v;
  if (v === "inf") return Infinity;
  if (v === "-inf") return -Infinity;
  return NaN;
}
function num(v, digits = 6) {
  if (v === null || v === undefined) return "—";
  if (typeof v === "boolean") return String(v);
  if (typeof v === "string") return { nan: "NaN", inf: "∞", "-inf": "−∞" }[v] ?? v;
  if (Number.isNaN(v)) return "NaN";
  if (!Number.isFinite(v)) return v > 0 ? "∞" : "−∞";
  if (Number.isInteger(v)) return String(v);
  const size = Math.abs(v);
  if (size !== 0 && (size < 1e-4 || size >= 1e6)) return v.toExponential(digits - 1);
  return String(Number(v.toPrecision(digits)));
}
function formatArray(v, digits = 6) {
  if (Array.isArray(v)) return "[" + v.map((x) => formatArray(x, digits)).join(", ") + "]";
  return num(v, digits);
}
function clone(v) { return JSON.parse(JSON.stringify(v)); }
function rows() { return state.x.length; }
function classes() { return state.x[0].length; }
function spec() { return LOSSES[state.loss]; }
function inputKind() {
  const s = spec();
  return s.input === "logits" && state.edit === "probs" ? "probs" : s.input;
}

// JSON with the floats of soft targets written as floats ("1.0"): crossent reads integers
// as class indices, as the command line does.
class Floats { constructor(array) { this.array = array; } }
function encode(v) {
  if (v instanceof Floats) return encodeFloats(v.array);
  if (Array.isArray(v)) return "[" + v.map(encode).join(",") + "]";
  if (v && typeof v === "object") {
    return "{" + Object.entries(v).filter(([, x]) => x !== undefined)
      .map(([k, x]) => JSON.stringify(k) + ":" + encode(x)).join(",") + "}";
  }
  if (typeof v === "number" && !Number.isFinite(v)) return JSON.stringify(Number.isNaN(v) ? "nan" : v > 0 ? "inf" : "-inf");
  return JSON.stringify(v);
}
function encodeFloats(v) {
  if (Array.isArray(v)) return "[" + v.map(encodeFloats).join(",") + "]";
  if (!Number.isFinite(v)) return encode(v);
  return Number.isInteger(v) ? v.toFixed(1) : String(v);
}

// --- the state in the URL ------------------------------------------------------------------

function matrixText(m) { return m.map((row) => row.map((v) => num(v, 8)).join(",")).join(";"); }
function parseMatrix(text) {
  const m = text.split(";").map((row) => row.split(",").map((v) => value(Number.isNaN(Number(v)) ? v.replace("∞", "inf").replace("−", "-") : Number(v))));
  if (!m.length || m.length > MAX || m.some((row) => row.length !== m[0].length || row.length > MAX || row.some(Number.isNaN))) return null;
  return m;
}
function readURL() {
  const q = new URLSearchParams(location.search);
  if (["en", "zh"].includes(q.get("lang"))) state.lang = q.get("lang");
  if (["playground", "examples", "curves"].includes(q.get("view"))) state.view = q.get("view");
  if (q.get("loss") in LOSSES) state.loss = q.get("loss");
  if (["logits", "probs"].includes(q.get("edit"))) state.edit = q.get("edit");
  const x = q.get("x") && parseMatrix(q.get("x"));
  if (x) state.x = x;
  if (["index", "soft", "multihot"].includes(q.get("tmode"))) state.tmode = q.get("tmode");
  if (q.get("t")) {
    if (state.tmode === "index") {
      const t = q.get("t").split(",").map(Number);
      if (t.every(Number.isInteger)) state.t = t;
    } else {
      const t = parseMatrix(q.get("t"));
      if (t) state.t = t;
    }
  }
  if (q.get("sel")) {
    const [r, c] = q.get("sel").split(",").map(Number);
    if (Number.isInteger(r) && Number.isInteger(c)) state.sel = [r, c];
  }
  for (const key of ["label_smoothing", "ignore_index", "gamma", "temperature", "alpha"]) {
    if (q.get(key) !== null && q.get(key) !== "" && Number.isFinite(Number(q.get(key)))) state.opt[key] = Number(q.get(key));
  }
  if (["none", "mean", "sum"].includes(q.get("reduction"))) state.opt.reduction = q.get("reduction");
  if (["e", "2"].includes(q.get("base"))) state.opt.base = q.get("base");
  for (const key of ["weight", "pos_weight"]) {
    const w = q.get(key) && q.get(key).split(",").map(Number);
    if (w && w.every(Number.isFinite)) state.opt[key] = w;
  }
  state.real = q.get("real") === "1";
  state.example = q.get("example");
  state.plot = q.get("plot");
  repair();
}
function writeURL() {
  const q = new URLSearchParams();
  q.set("lang", state.lang);
  if (state.view !== "playground") q.set("view", state.view);
  q.set("loss", state.loss);
  if (spec().input === "logits") q.set("edit", state.edit);
  q.set("x", matrixText(state.x));
  q.set("tmode", state.tmode);
  q.set("t", state.tmode === "index" ? state.t.join(",") : matrixText(state.t));
  q.set("sel", state.sel.join(","));
  for (const key of spec().options) {
    const v = state.opt[key];
    if (v === null || v === DEFAULT_OPTIONS[key]) continue;
    q.set(key, Array.isArray(v) ? v.join(",") : String(v));
  }
  if (state.real) q.set("real", "1");
  if (state.view === "examples" && state.example) q.set("example", state.example);
  if (state.view === "curves" && state.plot) q.set("plot", state.plot);
  const url = `${location.pathname}?${q}`;
  history.replaceState(null, "", url);
  $("permalink").href = url;
}

// Keeps the state consistent after any change: the target's form and shape follow the loss
// and the matrix, the selection stays inside the matrix, the options' vectors their length.
function repair() {
  const s = spec();
  if (!s.targets.includes(state.tmode)) convertTarget(s.targets[0]);
  const n = rows(), c = classes();
  if (state.tmode === "index") {
    state.t = Array.from({ length: n }, (_, i) => {
      const t = state.t[i];
      return Number.isInteger(t) && ((t >= 0 && t < c) || t === state.opt.ignore_index) ? t : 0;
    });
  } else {
    const fill = state.tmode === "soft" ? 1 / c : 0;
    state.t = Array.from({ length: n }, (_, i) => Array.from({ length: c }, (_, j) => {
      const row = Array.isArray(state.t[i]) ? state.t[i] : null;
      const v = row && Number.isFinite(row[j]) ? row[j] : fill;
      return state.tmode === "multihot" ? (v > 0 ? 1 : 0) : Math.min(Math.max(v, 0), 1);
    }));
  }
  for (const key of ["weight", "pos_weight"]) {
    const w = state.opt[key];
    if (Array.isArray(w)) state.opt[key] = Array.from({ length: c }, (_, j) => (Number.isFinite(w[j]) ? w[j] : 1));
  }
  const kind = inputKind();
  if (kind === "probs" || kind === "logprobs") {
    state.x = state.x.map((row) => row.map((v) => (kind === "probs" ? Math.min(Math.max(v, 0), 1) : Math.min(v, 0))));
  }
  state.sel = [Math.min(Math.max(state.sel[0], 0), n - 1), Math.min(Math.max(state.sel[1], 0), c - 1)];
}

function convertTarget(mode) {
  const c = classes();
  if (mode === state.tmode) return;
  if (state.tmode === "index") {
    state.t = state.t.map((t) => Array.from({ length: c }, (_, j) => (j === t ? 1 : 0)));
  } else if (mode === "index") {
    state.t = state.t.map((row) => row.indexOf(Math.max(...row)));
  }
  state.tmode = mode;
}

// The matrix as the loss takes it: probabilities edited for a loss of logits become logits
// (log p for softmax: softmax(log p) = p when the row sums to 1; log(p / (1 - p)) for sigmoid).
function lossInput() {
  return inputKind() === "probs" && spec().input === "logits" ? toLogits(state.x) : state.x;
}
function toLogits(probs) {
  if (spec().act === "softmax") return probs.map((row) => row.map((p) => Math.log(p)));
  return probs.map((row) => row.map((p) => Math.log(p) - Math.log1p(-p)));
}

function problem() {
  const s = spec();
  const target = state.tmode === "index" ? state.t : new Floats(state.t);
  const options = {};
  for (const key of s.options) {
    const v = state.opt[key];
    if (key === "base") options.base = v === "2" ? 2 : Math.E;
    else if (v !== null && v !== undefined) options[key] = Array.isArray(v) ? new Floats(v) : v;
  }
  if (options.temperature === 1) delete options.temperature;
  const x = lossInput();
  const body = s.moving === 1
    ? { loss: state.loss, logits: new Floats(state.t), target: x, options, lang: state.lang }
    : { loss: state.loss, logits: x, target, options, lang: state.lang };
  return body;
}

// --- talking to the server ------------------------------------------------------------------

async function api(path, body) {
  const response = await fetch(path, body === undefined ? {} : {
    method: "POST", headers: { "content-type": "application/json" }, body: encode(body),
  });
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}
function showError(message) {
  const box = $("error");
  if (!message) { box.hidden = true; box.textContent = ""; return; }
  box.hidden = false;
  box.replaceChildren(el("strong", { text: tr("error") + " " }), document.createTextNode(message));
}

let generation = 0;
let timer = null;
let pending = false; // a change waits for its computation (data-busy tells the tests)
function refresh(delay = 40) {
  writeURL();
  clearTimeout(timer);
  pending = true;
  document.body.setAttribute("data-busy", "1");
  timer = setTimeout(compute, delay);
}

async function compute() {
  pending = false;
  if (state.view !== "playground") { document.body.setAttribute("data-busy", "0"); return; }
  const mine = ++generation;
  const body = problem();
  const s = spec();
  document.body.setAttribute("data-busy", "1");
  try {
    const [trace, grad, curve, comparison, numerics] = await Promise.all([
      api("/api/explain", body),
      api("/api/gradient", body),
      api("/api/plot", { ...body, row: state.sel[0], column: state.sel[1] }),
      s.compare ? api("/api/compare", { ...body, real: state.real }) : Promise.resolve(null),
      s.input === "logits" ? api("/api/numerics", { logits: lossInput(), target: state.tmode === "index" ? state.t : null }) : Promise.resolve(null),
    ]);
    if (mine !== generation) return; // a newer state is on its way
    showError(null);
    drawResult(trace, grad);
    drawCharts(grad);
    drawCurve(curve);
    $("trace").replaceChildren(traceView(trace));
    drawFrameworks(comparison);
    drawNumerics(numerics);
  } catch (error) {
    if (mine === generation) showError(error.message);
  } finally {
    if (mine === generation && !pending) document.body.setAttribute("data-busy", "0");
  }
}

// --- the editors ------------------------------------------------------------------------------

function inputName() {
  return { logits: "z", probs: spec().moving === 1 ? "q" : "p", logprobs: "log p" }[inputKind()];
}
function range() {
  return { logits: [-10, 10, 0.1], probs: [0, 1, 0.01], logprobs: [-10, 0, 0.1] }[inputKind()];
}

function setEntry(i, j, v) {
  if (!Number.isFinite(v) && !(inputKind() === "logits" && v === -Infinity)) return;
  const kind = inputKind();
  if (kind === "probs") v = Math.min(Math.max(v, 0), 1);
  if (kind === "logprobs") v = Math.min(v, 0);
  const row = state.x[i];
  if (kind === "probs" && (spec().act === "softmax" || spec().moving === 1)) {
    // a distribution: the other entries share what is left, in their proportions
    const rest = row.reduce((a, b, k) => (k === j ? a : a + b), 0);
    for (let k = 0; k < row.length; k++) {
      if (k !== j) row[k] = rest > 0 ? (row[k] * (1 - v)) / rest : (1 - v) / (row.length - 1);
    }
  }
  row[j] = v;
  state.sel = [i, j];
}

function drawMatrix() {
  const table = $("matrix");
  const name = inputName();
  const [low, high, step] = range();
  const head = el("tr", {}, el("th", { scope: "col" }));
  for (let j = 0; j < classes(); j++) head.append(el("th", { scope: "col", text: tr("class.n", { n: j }) }));
  const body = el("tbody");
  state.x.forEach((row, i) => {
    const line = el("tr", { class: i === state.sel[0] ? "selected" : null });
    line.append(el("th", { scope: "row" }, el("button", {
      type: "button", class: "row-button", "aria-pressed": String(i === state.sel[0]),
      "aria-label": tr("select.row", { row: i }), text: tr("row.n", { n: i }),
      onclick: () => { state.sel = [i, state.sel[1]]; drawMatrix(); drawSliders(); refresh(); },
    })));
    row.forEach((v, j) => {
      const input = el("input", {
        type: "number", step: String(step), value: num(v, 8), min: inputKind() === "logits" ? null : String(low),
        max: inputKind() === "logits" ? null : String(high), inputmode: "decimal",
        "aria-label": tr("cell.label", { name, row: i, col: j }), id: `x-${i}-${j}`,
        class: i === state.sel[0] && j === state.sel[1] ? "moving" : null,
      });
      input.addEventListener("change", () => {
        setEntry(i, j, Number(input.value)); drawMatrix(); drawSliders(); refresh();
      });
      input.addEventListener("focus", () => {
        if (state.sel[0] !== i || state.sel[1] !== j) { state.sel = [i, j]; markMoving(); drawSliders(); refresh(); }
      });
      line.append(el("td", {}, input));
    });
    body.append(line);
  });
  table.replaceChildren(el("thead", {}, head), body);
  $("matrix-caption").textContent = tr({ logits: "inputs.logits", probs: spec().moving === 1 ? "inputs.q" : "inputs.probs", logprobs: "inputs.logprobs" }[inputKind()]);
}
function markMoving() {
  document.querySelectorAll("#matrix input.moving").forEach((node) => node.classList.remove("moving"));
  document.querySelectorAll("#matrix tr.selected").forEach((node) => node.classList.remove("selected"));
  const cell = $(`x-${state.sel[0]}-${state.sel[1]}`);
  if (cell) { cell.classList.add("moving"); cell.closest("tr").classList.add("selected"); }
  document.querySelectorAll("#matrix .row-button").forEach((node, i) => node.setAttribute("aria-pressed", String(i === state.sel[0])));
}

function drawSliders() {
  const i = state.sel[0];
  const [low, high, step] = range();
  const name = inputName();
  $("sliders-legend").textContent = tr("sliders.heading", { row: i });
  const list = state.x[i].map((v, j) => {
    const id = `slider-${j}`;
    const shown = el("output", { for: id, text: num(v, 4) });
    const slider = el("input", {
      type: "range", id, min: String(low), max: String(high), step: String(step),
      value: String(Number.isFinite(v) ? v : low), class: j === state.sel[1] ? "moving" : null,
    });
    slider.addEventListener("input", () => {
      setEntry(i, j, Number(slider.value));
      shown.textContent = num(state.x[i][j], 4);
      syncRow(i);
      refresh();
    });
    slider.addEventListener("focus", () => {
      if (state.sel[1] !== j) { state.sel = [i, j]; markMoving(); drawSlidersMarks(); refresh(); }
    });
    return el("div", { class: "slider" }, el("label", { for: id, text: `${name}[${i}, ${j}]` }), slider, shown);
  });
  $("slider-list").replaceChildren(...list);
}
function drawSlidersMarks() {
  document.querySelectorAll("#slider-list input").forEach((node, j) => node.classList.toggle("moving", j === state.sel[1]));
}
function syncRow(i) { // the table's cells (and the other sliders of a distribution) follow a slider
  state.x[i].forEach((v, j) => {
    const cell = $(`x-${i}-${j}`);
    if (cell && document.activeElement !== cell) cell.value = num(v, 8);
    const slider = $(`slider-${j}`);
    if (slider && document.activeElement !== slider) {
      slider.value = String(v);
      slider.nextElementSibling.textContent = num(v, 4);
    }
  });
  markMoving();
}

function drawTarget() {
  const s = spec();
  document.querySelectorAll("#target-mode input").forEach((input) => {
    input.checked = input.value === state.tmode;
    input.disabled = !s.targets.includes(input.value);
    input.closest("label").hidden = !s.targets.includes(input.value);
  });
  const table = $("target");
  const c = classes();
  if (state.tmode === "index") {
    const body = el("tbody");
    state.t.forEach((t, i) => {
      const select = el("select", { "aria-label": tr("target.select.label", { row: i }), id: `t-${i}` });
      for (let j = 0; j < c; j++) select.append(el("option", { value: String(j), text: tr("class.n", { n: j }), selected: t === j }));
      if (s.options.includes("ignore_index")) {
        select.append(el("option", { value: "ignore", text: tr("target.ignored"), selected: t === state.opt.ignore_index }));
      }
      select.addEventListener("change", () => {
        state.t[i] = select.value === "ignore" ? state.opt.ignore_index : Number(select.value);
        refresh();
      });
      body.append(el("tr", {}, el("th", { scope: "row", text: tr("row.n", { n: i }) }), el("td", {}, select)));
    });
    table.replaceChildren(body);
    return;
  }
  const head = el("tr", {}, el("th", { scope: "col" }));
  for (let j = 0; j < c; j++) head.append(el("th", { scope: "col", text: tr("class.n", { n: j }) }));
  if (state.tmode === "soft") head.append(el("th", { scope: "col", text: tr("target.sum") }));
  const body = el("tbody");
  state.t.forEach((row, i) => {
    const line = el("tr", {}, el("th", { scope: "row", text: tr("row.n", { n: i }) }));
    const sum = el("td", { class: "sum" });
    const showSum = () => { sum.textContent = num(row.reduce((a, b) => a + b, 0), 4); };
    row.forEach((v, j) => {
      const label = tr("target.cell.label", { row: i, col: j });
      let input;
      if (state.tmode === "multihot") {
        input = el("input", { type: "checkbox", "aria-label": label, checked: v > 0, id: `t-${i}-${j}` });
        input.addEventListener("change", () => { row[j] = input.checked ? 1 : 0; refresh(); });
      } else {
        input = el("input", { type: "number", min: "0", max: "1", step: "0.05", value: num(v, 6), "aria-label": label, id: `t-${i}-${j}`, inputmode: "decimal" });
        input.addEventListener("change", () => {
          const x = Number(input.value);
          if (Number.isFinite(x)) row[j] = Math.min(Math.max(x, 0), 1);
          input.value = num(row[j], 6);
          showSum(); refresh();
        });
      }
      line.append(el("td", {}, input));
    });
    if (state.tmode === "soft") { showSum(); line.append(sum); }
    body.append(line);
  });
  table.replaceChildren(el("thead", {}, head), body);
}

function optionField(key) {
  const o = state.opt;
  const c = classes();
  const id = `opt-${key}`;
  const changed = () => { repair(); refresh(); };
  if (key === "reduction") {
    const select = el("select", { id });
    for (const r of ["mean", "sum", "none"]) select.append(el("option", { value: r, text: tr(`opt.reduction.${r}`), selected: o.reduction === r }));
    select.addEventListener("change", () => { o.reduction = select.value; changed(); });
    return el("label", { class: "field" }, el("span", { text: tr("opt.reduction") }), select);
  }
  if (key === "base") {
    const select = el("select", { id });
    for (const b of ["e", "2"]) select.append(el("option", { value: b, text: tr(`opt.base.${b}`), selected: o.base === b }));
    select.addEventListener("change", () => { o.base = select.value; changed(); });
    return el("label", { class: "field" }, el("span", { text: tr("opt.base") }), select);
  }
  if (key === "label_smoothing" || key === "temperature" || key === "gamma") {
    const [low, high, step] = { label_smoothing: [0, 1, 0.01], temperature: [0.1, 10, 0.1], gamma: [0, 5, 0.1] }[key];
    const shown = el("output", { for: id, text: num(o[key], 4) });
    const slider = el("input", { type: "range", id, min: String(low), max: String(high), step: String(step), value: String(o[key]) });
    slider.addEventListener("input", () => { o[key] = Number(slider.value); shown.textContent = num(o[key], 4); changed(); });
    return el("div", { class: "field slider" }, el("label", { for: id, text: tr(`opt.${key}`) }), slider, shown);
  }
  if (key === "ignore_index") {
    const input = el("input", { type: "number", id, step: "1", value: String(o.ignore_index) });
    input.addEventListener("change", () => {
      const v = Number(input.value);
      if (Number.isInteger(v)) {
        state.t = state.tmode === "index" ? state.t.map((t) => (t === o.ignore_index ? v : t)) : state.t;
        o.ignore_index = v;
      }
      input.value = String(o.ignore_index);
      drawTarget(); changed();
    });
    return el("label", { class: "field" }, el("span", { text: tr("opt.ignore_index") }), input);
  }
  if (key === "alpha") {
    const box = el("input", { type: "checkbox", id: `${id}-use`, checked: o.alpha !== null });
    const input = el("input", { type: "number", id, min: "0", max: "1", step: "0.05", value: String(o.alpha ?? 0.25), disabled: o.alpha === null });
    box.addEventListener("change", () => { o.alpha = box.checked ? Number(input.value) : null; input.disabled = !box.checked; changed(); });
    input.addEventListener("change", () => { const v = Number(input.value); if (Number.isFinite(v)) o.alpha = v; changed(); });
    return el("div", { class: "field" }, el("label", { class: "check" }, box, " ", el("span", { text: tr("opt.use_alpha") })),
      el("label", {}, el("span", { text: tr("opt.alpha") }), input));
  }
  // weight, pos_weight: one number per class, off by default
  const box = el("input", { type: "checkbox", id: `${id}-use`, checked: Array.isArray(o[key]) });
  const list = el("div", { class: "vector" });
  if (Array.isArray(o[key])) {
    o[key].forEach((w, j) => {
      const input = el("input", { type: "number", step: "0.1", min: "0", value: num(w, 6), "aria-label": tr(`opt.${key}.n`, { n: j }), id: `${id}-${j}` });
      input.addEventListener("change", () => { const v = Number(input.value); if (Number.isFinite(v)) o[key][j] = v; changed(); });
      list.append(input);
    });
  }
  box.addEventListener("change", () => { o[key] = box.checked ? Array(c).fill(1) : null; drawOptions(); changed(); });
  return el("div", { class: "field" }, el("label", { class: "check" }, box, " ", el("span", { text: tr(`opt.${key}`) })), list);
}
function drawOptions() {
  $("options").replaceChildren(...spec().options.map(optionField));
}

function drawEditors() {
  $("loss").value = state.loss;
  const logits = spec().input === "logits";
  $("edit-mode").hidden = !logits;
  document.querySelectorAll("#edit-mode input").forEach((input) => { input.checked = input.value === state.edit; });
  $("edit-hint").hidden = !(logits && state.edit === "probs");
  drawMatrix(); drawSliders(); drawTarget(); drawOptions();
  $("real").checked = state.real;
  $("numerics-intro").textContent = tr("numerics.intro", { f16: "11.09", f32: "88.72" });
}

// --- the results ---------------------------------------------------------------------------

function drawResult(trace, grad) {
  const out = $("loss-value");
  out.textContent = formatArray(trace.value, 8);
  out.setAttribute("data-value", JSON.stringify(trace.value));
  const each = grad.each;
  $("per-row").textContent = Array.isArray(each) ? formatArray(each, 5) : num(each, 5);
}

function barChart(values, { signed = false, marked = new Set(), title = "", max = null } = {}) {
  const width = 220, height = 70, pad = 4;
  const numbers = values.map(value);
  const finite = numbers.filter(Number.isFinite);
  const top = max ?? Math.max(1e-12, ...finite.map(Math.abs));
  const base = signed ? height / 2 : height - pad;
  const scale = signed ? (height / 2 - pad) / top : (height - 2 * pad) / top;
  const step = (width - 2 * pad) / numbers.length;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "bars", role: "img", "aria-label": `${title}: ${values.map((v) => num(v, 3)).join(", ")}` });
  chart.append(svg("line", { x1: pad, x2: width - pad, y1: base, y2: base, class: "axis" }));
  numbers.forEach((v, j) => {
    const size = Number.isFinite(v) ? Math.min(Math.abs(v) * scale, signed ? height / 2 - pad : height - 2 * pad) : 0;
    const y = v >= 0 ? base - size : base;
    const cls = `bar${marked.has(j) ? " target" : ""}${v < 0 ? " negative" : ""}`;
    chart.append(svg("rect", { x: pad + j * step + step * 0.12, y, width: step * 0.76, height: Math.max(size, 0.5), class: cls },
      svg("title", { text: `${j}: ${num(values[j], 6)}` })));
  });
  return chart;
}

function targetMarks(i) {
  if (state.tmode === "index") return new Set([state.t[i]]);
  return new Set(state.t[i].flatMap((v, j) => (v > 0 ? [j] : [])));
}

function drawCharts(grad) {
  const holder = $("charts");
  const probs = grad.probs;
  const matrix = Array.isArray(probs[0]) ? probs : [probs];
  const gradient = grad.grad_each === null ? null : Array.isArray(grad.grad_each[0]) ? grad.grad_each : [grad.grad_each];
  const items = matrix.slice(0, DRAWN_ROWS).map((row, i) => {
    const marks = targetMarks(i);
    const figure = el("figure", { class: "row-chart" },
      el("figcaption", { text: `${tr("row.n", { n: i })} · ${tr("charts.target")}: ${state.tmode === "index" ? (state.t[i] === state.opt.ignore_index ? tr("target.ignored") : state.t[i]) : formatArray(state.t[i], 3)}` }),
      el("div", { class: "chart-label", text: tr("charts.probs") }), barChart(row, { marked: marks, title: tr("charts.probs"), max: 1 }));
    if (gradient) {
      figure.append(el("div", { class: "chart-label", text: tr(spec().act ? "charts.grad" : "charts.grad.probs") }),
        barChart(gradient[i], { signed: true, marked: marks, title: tr("charts.grad") }));
    }
    return figure;
  });
  if (gradient === null) items.push(el("p", { class: "hint", text: tr("charts.nograd") }));
  if (matrix.length > DRAWN_ROWS) items.push(el("p", { class: "hint", text: tr("charts.more", { n: DRAWN_ROWS }) }));
  holder.replaceChildren(...items);
}

function lineChart({ series, xscale = "linear", xlabel = "", ylabel = "", point = null, slope = null, legend = true, room = 560 }) {
  // drawn at the size it is shown (the text stays readable on a phone)
  const width = Math.min(Math.max(room, 300), 760), height = Math.round(width * 0.55);
  const left = 56, right = 12, top = 12, bottom = 44;
  const tx = xscale === "log" ? (v) => Math.log10(v) : (v) => v;
  const points = series.flatMap((s) => s.x.map((x, k) => [tx(value(x)), value(s.y[k])])).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (!points.length) return el("p", { class: "hint", text: "—" });
  let [x0, x1] = [Math.min(...points.map((p) => p[0])), Math.max(...points.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...points.map((p) => p[1])), Math.max(...points.map((p) => p[1]))];
  if (y1 - y0 < 1e-12) { y0 -= 0.5; y1 += 0.5; }
  [y0, y1] = niceRange(y0, y1);
  if (x1 - x0 < 1e-12) { x0 -= 0.5; x1 += 0.5; }
  const X = (v) => left + ((v - x0) / (x1 - x0)) * (width - left - right);
  const Y = (v) => top + (1 - (v - y0) / (y1 - y0)) * (height - top - bottom);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "lines", role: "img", "aria-label": `${ylabel} / ${xlabel}` });
  const clip = `clip-${Math.random().toString(36).slice(2)}`;
  chart.append(svg("defs", {}, svg("clipPath", { id: clip }, svg("rect", { x: left, y: top, width: width - left - right, height: height - top - bottom }))));
  for (const [a, b, t] of [[x0, x1, "x"], [y0, y1, "y"]]) {
    for (let k = 0; k <= 4; k++) {
      const v = a + ((b - a) * k) / 4;
      if (t === "x") {
        chart.append(svg("line", { x1: X(v), x2: X(v), y1: top, y2: height - bottom, class: "grid" }));
        chart.append(svg("text", { x: X(v), y: height - bottom + 16, class: "tick", "text-anchor": "middle", text: num(xscale === "log" ? 10 ** v : v, 3) }));
      } else {
        chart.append(svg("line", { x1: left, x2: width - right, y1: Y(v), y2: Y(v), class: "grid" }));
        chart.append(svg("text", { x: left - 6, y: Y(v) + 4, class: "tick", "text-anchor": "end", text: num(v, 3) }));
      }
    }
  }
  chart.append(svg("text", { x: (left + width - right) / 2, y: height - 6, class: "label", "text-anchor": "middle", text: xlabel }));
  chart.append(svg("text", { x: 12, y: (top + height - bottom) / 2, class: "label", "text-anchor": "middle", transform: `rotate(-90 12 ${(top + height - bottom) / 2})`, text: ylabel }));
  const group = svg("g", { "clip-path": `url(#${clip})` });
  series.forEach((s, k) => {
    let d = "";
    let pen = false;
    s.x.forEach((x, m) => {
      const px = tx(value(x)), py = value(s.y[m]);
      if (!Number.isFinite(px) || !Number.isFinite(py)) { pen = false; return; }
      d += `${pen ? "L" : "M"}${X(px).toFixed(1)},${Y(py).toFixed(1)}`;
      pen = true;
    });
    group.append(svg("path", { d, class: `series s${k % 11}` }));
  });
  if (point && Number.isFinite(point[0]) && Number.isFinite(point[1])) {
    if (Number.isFinite(slope)) {
      const dx = (x1 - x0) / 6;
      group.append(svg("line", { x1: X(point[0] - dx), y1: Y(point[1] - slope * dx), x2: X(point[0] + dx), y2: Y(point[1] + slope * dx), class: "tangent" }));
    }
    group.append(svg("circle", { cx: X(point[0]), cy: Y(point[1]), r: 5, class: "point" }));
  }
  chart.append(group);
  const figure = el("div", { class: "line-chart" }, chart);
  if (legend && series.length > 1) {
    figure.append(el("ul", { class: "legend" }, ...series.map((s, k) => el("li", {}, el("span", { class: `swatch s${k % 11}` }), document.createTextNode(s.label)))));
  }
  return figure;
}

function niceRange(low, high) { // the range widened to multiples of a round step (1, 2, 2.5, 5 x 10^k)
  const raw = (high - low) / 4;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw);
  return [Math.floor(low / step + 1e-9) * step, Math.ceil(high / step - 1e-9) * step];
}

function drawCurve(curve) {
  const [i, j] = curve.position.length === 2 ? curve.position : [0, curve.position[0]];
  const name = spec().moving === 1 ? "q" : spec().input === "logits" ? "z" : inputName();
  $("curve").replaceChildren(lineChart({
    room: $("curve").clientWidth,
    series: [{ x: curve.x, y: curve.y, label: tr("result.loss") }], xlabel: `${name}[${i}, ${j}]`, ylabel: tr("result.loss"),
    point: [value(curve.current), value(curve.value)], slope: curve.slope === null ? null : value(curve.slope),
  }));
  let caption = tr("curve.caption", { name, row: i, col: j });
  if (curve.slope !== null) caption += ` ${tr("curve.slope")} = ${num(curve.slope, 5)}.`;
  $("curve-caption").textContent = caption;
}

function traceView(trace, { checks = false } = {}) {
  const parts = [];
  if (trace.source) parts.push(el("p", { class: "source", text: `${tr("source")}: ${trace.source}` }));
  parts.push(el("p", { class: "call" }, el("code", { text: trace.function })));
  const list = el("ol", { class: "steps" });
  for (const step of trace.steps) {
    const values = Object.entries(step.values).map(([label, v]) => `${label} = ${formatArray(v)}`).join("\n");
    list.append(el("li", { class: "step" },
      el("h4", { text: step.name }),
      el("p", { class: "meaning", text: step.meaning }),
      el("div", { class: "formula-row" },
        el("img", { class: "formula", src: `/api/formula?latex=${encodeURIComponent(step.latex)}`, alt: step.text }),
        el("code", { class: "plain", text: step.text })),
      el("pre", { class: "values", text: values })));
  }
  parts.push(list);
  if (checks && trace.checks.length) {
    const table = el("table", { class: "checks" }, el("thead", {}, el("tr", {},
      el("th", { scope: "col", text: tr("checks.quantity") }), el("th", { scope: "col", text: tr("checks.seed") }),
      el("th", { scope: "col", text: tr("checks.crossent") }), el("th", { scope: "col" }))));
    const body = el("tbody");
    trace.checks.forEach((check) => {
      const status = check.matches ? "matches" : check.erratum ? "differs" : "DIFFERS";
      body.append(el("tr", { class: `check-row ${status}` },
        el("td", { text: check.label }), el("td", {}, el("code", { class: "seed-value", text: check.seed })),
        el("td", {}, el("code", { class: "crossent-value", text: formatArray(check.crossent, 8) })),
        el("td", { class: "status", text: tr(`checks.${status}`) })));
    });
    table.append(body);
    parts.unshift(el("div", { class: "scroll" }, table));
  }
  const notes = [...trace.checks.filter((c) => c.erratum).map((c) => `${c.label}: ${c.erratum}`), ...trace.notes];
  if (notes.length) parts.push(el("div", { class: "notes" }, el("h4", { text: tr("notes") }), ...notes.map((n) => el("p", { class: "note", text: n }))));
  return el("div", {}, ...parts);
}

function drawFrameworks(comparison) {
  const holder = $("frameworks");
  if (comparison === null) { holder.replaceChildren(el("p", { class: "hint", text: tr("frameworks.none") })); return; }
  const real = comparison.rows.some((row) => row.real !== null) || state.real;
  const table = el("table", { class: "frameworks" }, el("thead", {}, el("tr", {},
    el("th", { scope: "col", text: tr("frameworks.convention") }), el("th", { scope: "col", text: tr("frameworks.value") }),
    real ? el("th", { scope: "col", text: tr("frameworks.realvalue") }) : null,
    el("th", { scope: "col", text: tr("frameworks.reason") }))));
  const body = el("tbody");
  for (const row of comparison.rows) {
    const framework = row.real === null ? row.real_status : `${num(row.real, 6)} (${row.real_status})`;
    body.append(el("tr", { class: row.reason || row.error ? "differs" : null },
      el("td", {}, el("code", { text: row.convention })), el("td", { class: "number", text: row.error ?? num(row.value, 6) }),
      real ? el("td", { text: framework }) : null, el("td", { text: row.reason })));
  }
  table.append(body);
  const parts = [table];
  if (comparison.ignored_options.length) parts.push(el("p", { class: "hint", text: tr("frameworks.ignored", { options: comparison.ignored_options.join(", ") }) }));
  holder.replaceChildren(...parts);
}

function drawNumerics(numerics) {
  const holder = $("numerics");
  const show = numerics !== null;
  $("times10").hidden = !show; $("div10").hidden = !show;
  if (!show) { holder.replaceChildren(el("p", { class: "hint", text: tr("numerics.only_logits") })); return; }
  const i = state.sel[0];
  const tables = numerics.dtypes.map((d) => {
    const lines = [["z", lossInput()[i]], ["numerics.exp", d.exp[i]], ["numerics.naive", d.naive[i]],
      ["numerics.shifted", d.shifted[i]], ["numerics.exp_shifted", d.exp_shifted[i]], ["numerics.stable", d.stable[i]]];
    const body = el("tbody", {}, ...lines.map(([key, row]) => el("tr", { class: key.replace(".", "-") },
      el("th", { scope: "row", text: key === "z" ? "z" : tr(key) }),
      ...row.map((v) => el("td", { class: typeof v === "string" ? "bad" : null, text: num(v, 5) })))));
    if (d.naive_loss !== null) {
      body.append(el("tr", {}, el("th", { scope: "row", text: tr("numerics.naive_loss") }), el("td", { class: typeof d.naive_loss[i] === "string" ? "bad" : null, text: num(d.naive_loss[i], 6) })));
      body.append(el("tr", {}, el("th", { scope: "row", text: tr("numerics.stable_loss") }), el("td", { text: num(d.stable_loss[i], 6) })));
    }
    return el("div", { class: `dtype ${d.dtype}` },
      el("h4", {}, document.createTextNode(`${d.dtype} `), el("span", { class: d.overflowed ? "badge bad" : "badge ok", text: tr(d.overflowed ? "numerics.overflowed" : "numerics.ok") })),
      el("div", { class: "scroll" }, el("table", { class: "numbers" }, el("caption", { text: tr("numerics.row", { row: i }) }), body)));
  });
  holder.replaceChildren(...tables, el("p", { class: "hint", text: tr("numerics.note16") }));
}

// --- the examples and curves ---------------------------------------------------------------

async function drawExamples() {
  const list = await api(`/api/examples?lang=${state.lang}`);
  $("example-list").replaceChildren(...list.map((e) => el("li", {}, el("button", {
    type: "button", class: "example-button", "data-name": e.name, "aria-pressed": String(e.name === state.example),
    onclick: () => { state.example = e.name; writeURL(); drawExamples(); },
  }, el("span", { class: "seed", text: tr("seed.n", { n: e.seed }) }), document.createTextNode(` ${e.title}`)))));
  const detail = $("example");
  if (!state.example || !list.some((e) => e.name === state.example)) {
    detail.replaceChildren(el("p", { class: "hint", text: tr("examples.choose") }));
    return;
  }
  const trace = await api(`/api/examples/${encodeURIComponent(state.example)}?lang=${state.lang}`);
  const parts = [el("h3", { text: `${trace.name}: ${trace.title}` })];
  if (trace.playground) {
    parts.push(el("button", { type: "button", class: "open-example", text: tr("examples.open"), onclick: () => openExample(trace.playground) }));
  }
  parts.push(traceView(trace, { checks: true }));
  detail.replaceChildren(...parts);
  detail.setAttribute("data-example", trace.name);
}

function openExample(example) {
  const matrix = (v) => (Array.isArray(v[0]) ? v : [v]).map((row) => row.map(value));
  state.loss = example.loss;
  state.edit = "logits";
  const s = LOSSES[example.loss];
  const first = matrix(s.moving === 1 ? example.target : example.logits);
  state.x = first;
  const target = s.moving === 1 ? example.logits : example.target;
  const flat = Array.isArray(target[0]);
  if (!flat && target.every(Number.isInteger) && s.targets.includes("index")) {
    state.tmode = "index"; state.t = target;
  } else {
    const t = matrix(target);
    state.tmode = t.flat().every((v) => v === 0 || v === 1) && s.targets.includes("multihot") ? "multihot" : "soft";
    state.t = t;
  }
  state.opt = { ...DEFAULT_OPTIONS, ...example.options };
  state.sel = [0, 0];
  showView("playground");
}

async function drawPlots() {
  const list = await api(`/api/plot?lang=${state.lang}`);
  $("plot-list").replaceChildren(...list.map((p) => el("li", {}, el("button", {
    type: "button", class: "plot-button", "data-name": p.name, "aria-pressed": String(p.name === state.plot),
    onclick: () => { state.plot = p.name; writeURL(); drawPlots(); },
  }, el("strong", { text: p.name }), document.createTextNode(` — ${p.description}`)))));
  const detail = $("plot");
  if (!state.plot || !list.some((p) => p.name === state.plot)) {
    detail.replaceChildren(el("p", { class: "hint", text: tr("curves.choose") }));
    return;
  }
  const plot = await api(`/api/plot/${encodeURIComponent(state.plot)}?lang=${state.lang}`);
  detail.replaceChildren(el("h3", { text: plot.title }), el("p", { class: "hint", text: plot.description }),
    lineChart({ series: plot.series, xscale: plot.xscale, xlabel: plot.xlabel, ylabel: plot.ylabel, room: detail.clientWidth - 32 }));
}

// --- views and language ----------------------------------------------------------------------

function showView(view) {
  state.view = view;
  for (const name of ["playground", "examples", "curves"]) {
    $(`view-${name}`).hidden = name !== view;
    document.querySelector(`[data-view="${name}"]`).setAttribute("aria-pressed", String(name === view));
  }
  writeURL();
  const done = view === "playground" ? (drawEditors(), compute()) : view === "examples" ? drawExamples() : drawPlots();
  Promise.resolve(done).catch((error) => showError(error.message));
}

function applyLanguage() {
  document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
  document.title = tr("title");
  document.querySelectorAll("[data-i18n]").forEach((node) => { node.textContent = tr(node.dataset.i18n); });
  document.querySelectorAll("[data-i18n-aria]").forEach((node) => { node.setAttribute("aria-label", tr(node.dataset.i18nAria)); });
  document.querySelectorAll("[data-lang]").forEach((node) => node.setAttribute("aria-pressed", String(node.dataset.lang === state.lang)));
  const select = $("loss");
  select.replaceChildren(...Object.keys(LOSSES).map((name) => el("option", { value: name, text: tr(`loss.${name}`) })));
  select.value = state.loss;
}

async function main() {
  strings = await (await fetch("/static/strings.json")).json();
  readURL();
  applyLanguage();
  document.querySelectorAll("[data-lang]").forEach((node) => node.addEventListener("click", () => {
    state.lang = node.dataset.lang; applyLanguage(); showView(state.view);
  }));
  document.querySelectorAll("[data-view]").forEach((node) => node.addEventListener("click", () => showView(node.dataset.view)));
  $("loss").addEventListener("change", () => {
    const before = inputKind();
    state.loss = $("loss").value;
    if (inputKind() !== before) state.x = state.x.map((row) => row.map(() => ({ logits: 0, probs: 1 / row.length, logprobs: -Math.log(row.length) }[inputKind()])));
    repair(); drawEditors(); refresh();
  });
  document.querySelectorAll("#edit-mode input").forEach((input) => input.addEventListener("change", () => {
    if (!input.checked || input.value === state.edit) return;
    // keep the same probabilities: p = softmax(z) or sigmoid(z) from the server, z = log p back
    if (input.value === "logits") {
      state.x = lossInput(); state.edit = "logits"; repair(); drawEditors(); refresh();
      return;
    }
    api("/api/gradient", { ...problem(), options: {} }).then((grad) => {
      state.edit = "probs";
      state.x = grad.probs.map((row) => row.map(value));
      repair(); drawEditors(); refresh();
    }).catch((error) => showError(error.message));
  }));
  document.querySelectorAll("#target-mode input").forEach((input) => input.addEventListener("change", () => {
    if (input.checked) { convertTarget(input.value); repair(); drawTarget(); refresh(); }
  }));
  $("add-row").addEventListener("click", () => {
    if (rows() >= MAX) return;
    state.x.push(clone(state.x[rows() - 1]));
    state.t.push(clone(state.t[state.t.length - 1]));
    repair(); drawEditors(); refresh();
  });
  $("remove-row").addEventListener("click", () => {
    if (rows() <= 1) return;
    state.x.pop(); state.t.pop(); repair(); drawEditors(); refresh();
  });
  $("add-class").addEventListener("click", () => {
    if (classes() >= MAX) return;
    const fresh = { logits: 0, probs: 0, logprobs: -10 }[inputKind()];
    state.x.forEach((row) => row.push(fresh));
    if (state.tmode !== "index") state.t.forEach((row) => row.push(0));
    repair(); drawEditors(); refresh();
  });
  $("remove-class").addEventListener("click", () => {
    if (classes() <= 1) return;
    state.x.forEach((row) => row.pop());
    if (state.tmode !== "index") state.t.forEach((row) => row.pop());
    repair(); drawEditors(); refresh();
  });
  $("real").addEventListener("change", () => { state.real = $("real").checked; refresh(); });
  for (const [id, factor] of [["times10", 10], ["div10", 0.1]]) {
    $(id).addEventListener("click", () => {
      if (inputKind() !== "logits") return;
      state.x = state.x.map((row) => row.map((v) => v * factor));
      drawMatrix(); drawSliders(); refresh();
    });
  }
  showView(state.view);
}

main().catch((error) => showError(error.message));
