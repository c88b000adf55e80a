// A grid of attention panels that stays mounted between reruns: new maps replace the old images in
// place (no re-layout, no chart library), hover reads the weight from the map itself, and a click on a
// panel sends that image pixel back as the new query. Speaks Streamlit's component protocol directly.
"use strict";

function send(type, data) {
  window.parent.postMessage(Object.assign({ isStreamlitMessage: true, type: type }, data), "*");
}

let state = null;        // the last args
let figures = [];        // one {root, caption, base, heat, cell, mark, weights} per panel
let layoutKey = "";
const tip = document.getElementById("tip");

function decodeWeights(b64) {
  const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
  return new Float32Array(bytes.buffer);
}

function pct(v, total) { return (100 * v / total) + "%"; }

// a weight as a reader wants it on a colorbar: 0 as 0, small ones in powers of ten
function weight(v) {
  if (v === 0) return "0";
  return Math.abs(v) < 0.01 ? v.toExponential(1) : v.toPrecision(2);
}

function build(n, columns) {
  const grid = document.getElementById("grid");
  grid.innerHTML = "";
  grid.style.gridTemplateColumns = `repeat(${Math.min(columns, Math.max(1, n))}, minmax(0, 1fr))`;
  figures = [];
  for (let i = 0; i < n; i++) {
    const root = document.createElement("figure");
    root.innerHTML = '<figcaption></figcaption><div class="stage"><img class="base" alt=""><img class="heat" alt="">' +
                     '<div class="cell"></div><div class="mark"></div></div>' +
                     '<div class="bar"><span class="lo"></span><div class="grad"></div><span class="hi"></span></div>';
    grid.appendChild(root);
    const f = { root: root, caption: root.querySelector("figcaption"), stage: root.querySelector(".stage"),
                base: root.querySelector("img.base"), heat: root.querySelector("img.heat"),
                cell: root.querySelector(".cell"), mark: root.querySelector(".mark"), index: i,
                grad: root.querySelector(".grad"), lo: root.querySelector(".lo"), hi: root.querySelector(".hi") };
    f.stage.addEventListener("mousemove", e => hover(f, e));
    f.stage.addEventListener("mouseleave", () => { tip.hidden = true; });
    f.stage.addEventListener("click", e => click(f, e));
    figures.push(f);
  }
}

// the image pixel under the mouse, and the grid cell containing it (the same rule as vizattn.explore.cell_of)
function locate(f, e) {
  const r = f.stage.getBoundingClientRect();
  const [h, w] = state.shape;
  const y = Math.min(h - 1, Math.max(0, Math.floor((e.clientY - r.top) / r.height * h)));
  const x = Math.min(w - 1, Math.max(0, Math.floor((e.clientX - r.left) / r.width * w)));
  const p = state.panels[f.index];
  const gy = Math.min(p.grid[0] - 1, Math.floor(y * p.grid[0] / h));
  const gx = Math.min(p.grid[1] - 1, Math.floor(x * p.grid[1] / w));
  return { y: y, x: x, gy: gy, gx: gx, p: p };
}

function hover(f, e) {
  const at = locate(f, e);
  const v = f.weights[at.gy * at.p.grid[1] + at.gx];
  tip.textContent = "";
  [`${at.p.title}`, `pixel (${at.y}, ${at.x}) · cell (${at.gy}, ${at.gx})`, `weight ${v.toPrecision(4)}`].forEach(t => {
    const d = document.createElement("div"); d.textContent = t; tip.appendChild(d);
  });
  tip.hidden = false;
  const right = e.clientX + 14 + tip.offsetWidth > window.innerWidth;
  tip.style.left = (right ? e.clientX - 14 - tip.offsetWidth : e.clientX + 14) + "px";
  tip.style.top = Math.max(0, e.clientY - tip.offsetHeight - 8) + "px";
}

function click(f, e) {
  const at = locate(f, e);
  send("streamlit:setComponentValue", { value: { y: at.y, x: at.x, panel: f.index, t: Date.now() }, dataType: "json" });
}

// arrow keys on a focused grid move the query by one feature-grid cell of the first panel
document.addEventListener("keydown", e => {
  const step = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] }[e.key];
  if (!step || !state || !state.panels.length) return;
  e.preventDefault();
  const [h, w] = state.shape, [gh, gw] = state.panels[0].grid;
  const y = Math.min(h - 1, Math.max(0, state.pixel[0] + step[0] * Math.round(h / gh)));
  const x = Math.min(w - 1, Math.max(0, state.pixel[1] + step[1] * Math.round(w / gw)));
  if (y !== state.pixel[0] || x !== state.pixel[1]) {
    send("streamlit:setComponentValue", { value: { y: y, x: x, panel: -1, t: Date.now() }, dataType: "json" });
  }
});

function render(args) {
  state = args;
  const n = args.panels.length;
  const key = n + "/" + args.columns;
  if (key !== layoutKey) { build(n, args.columns); layoutKey = key; }
  document.getElementById("title").textContent = args.title || "";
  const [h, w] = args.shape;
  const loads = [];
  args.panels.forEach((p, i) => {
    const f = figures[i];
    f.caption.textContent = p.title;
    f.caption.title = p.title;
    f.grad.style.background = args.colorbar;
    f.lo.textContent = weight(p.range[0]);
    f.hi.textContent = weight(p.range[1]) + (args.log ? " (log)" : "");
    f.weights = decodeWeights(p.weights);
    for (const [img, src] of [[f.base, args.image], [f.heat, p.heat]]) {
      if (img.getAttribute("src") !== src) {
        img.src = src;
        loads.push(img.decode().catch(() => null));
      }
    }
    const [y0, y1, x0, x1] = p.box;
    Object.assign(f.cell.style, { top: pct(y0, h), height: pct(y1 - y0, h), left: pct(x0, w), width: pct(x1 - x0, w) });
    Object.assign(f.mark.style, { top: pct(args.pixel[0] + 0.5, h), left: pct(args.pixel[1] + 0.5, w) });
  });
  // tell Streamlit our height once the images are decoded, and leave a mark the browser tests can wait on
  Promise.all(loads).then(() => {
    send("streamlit:setFrameHeight", { height: document.documentElement.scrollHeight });
    document.body.dataset.rendered = args.title || "";
  });
}

window.addEventListener("message", e => {
  if (e.data && e.data.type === "streamlit:render") render(e.data.args);
});
new ResizeObserver(() => send("streamlit:setFrameHeight", { height: document.documentElement.scrollHeight }))
  .observe(document.body);
send("streamlit:componentReady", { apiVersion: 1 });
