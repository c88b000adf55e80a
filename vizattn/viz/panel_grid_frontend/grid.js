// A grid of attention panels that stays mounted between renders: the one front end of the Streamlit component
// (streamlit.js), the notebook widget (widget.js) and the self-contained HTML export (standalone.js), each a thin host.
// With the records' factors (args.specs and the binary args.blob, see vizattn/viz/hover.py) the panels follow the
// pointer: every move computes each panel's row for the pixel under it (hover.js) and repaints, with no server
// round trip; a click pins that query and tells the host. Without factors (a grid over the size budget) the host
// sends each pinned query's heatmaps. All state lives in the instance, so several grids can share one page.
"use strict";

const VizattnGrid = (() => {
  function decodeWeights(b64) {
    const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
    return new Float32Array(bytes.buffer);
  }

  function pct(v, total) { return (100 * v / total) + "%"; }

  // a weight as a reader wants it on a colorbar: 0 as 0, small ones in powers of ten
  function weight(v) {
    if (Math.abs(v) < 1e-12) return "0";
    return Math.abs(v) < 0.01 ? v.toExponential(1) : v.toPrecision(2);
  }

  // after the next frame is painted: the time a person waits, pushed to `list` (kept to its last 10,000)
  function timeFrame(list, t0) {
    requestAnimationFrame(() => setTimeout(() => { list.push(performance.now() - t0); if (list.length > 10000) list.shift(); }, 0));
  }

  // Fill `root` with a grid. host: {tell(value) — a pin or a request, height(px) — optional, marks — optional
  // element that also receives the data marks (live, rendered, showing) the browser tests wait on}
  function mount(root, host) {
    root.classList.add("vizattn");
    root.tabIndex = 0;  // arrow keys move the query while the grid has the focus (and only then)
    root.innerHTML = '<div class="vizattn-title"></div><div class="vizattn-cells"></div><div class="vizattn-tip" hidden></div>';
    const titleEl = root.querySelector(".vizattn-title"), gridEl = root.querySelector(".vizattn-cells");
    const tip = root.querySelector(".vizattn-tip");
    const marks = [root].concat(host.marks ? [host.marks] : []);
    const mark = (name, value) => marks.forEach(m => { m.dataset[name] = value; });

    let state = null;        // the last args
    let figures = [];        // one {root, name, sub, stage, base, heat, canvas, cell, mark, lo, hi, grad, u, ul, note} per panel
    let layoutKey = "";
    let factors = null;      // {key, T}: the decoded tensors of the current (model, image)
    let hovering = null;     // [y, x] under the pointer, or null
    let asked = null;        // the factors key last asked for
    let announce = false;    // new factors decoded: tell the host once they are drawn
    let shown = [];          // what each panel shows now: {map, grid, range, uniform}
    // what every panel shows now (its map, row-major over its grid), for tests that compare it with the records
    const maps = () => shown.map(s => ({ map: Array.from(s.map), grid: s.grid }));
    const grid = { timings: [], pinTimings: [], factorBytes: 0, render: render, pin: pin, root: root, maps: maps };

    // the grid can compute rows: it has specs and the factors they index
    function ready() { return !!(state && state.specs && factors && factors.key === state.factors_key); }

    function build(n, columns) {
      gridEl.innerHTML = "";
      gridEl.style.gridTemplateColumns = `repeat(${columns}, minmax(0, 1fr))`;  // one panel size, however many panels
      figures = [];
      for (let i = 0; i < n; i++) {
        const fig = document.createElement("figure");
        fig.innerHTML = '<figcaption><div class="name"></div><div class="sub"></div></figcaption>' +
                        '<div class="stage"><img class="base" alt=""><img class="heat" alt=""><canvas class="heat"></canvas>' +
                        '<div class="cell"></div><div class="mark"></div></div>' +
                        '<div class="bar"><span class="lo"></span><div class="grad"><div class="u" hidden></div>' +
                        '<span class="ul" hidden></span></div><span class="hi"></span></div><div class="note"></div>';
        gridEl.appendChild(fig);
        const q = s => fig.querySelector(s);
        const f = { root: fig, name: q(".name"), sub: q(".sub"), stage: q(".stage"), base: q("img.base"),
                    heat: q("img.heat"), canvas: q("canvas"), cell: q(".cell"), mark: q(".mark"), index: i,
                    grad: q(".grad"), lo: q(".lo"), hi: q(".hi"), u: q(".u"), ul: q(".ul"), note: q(".note") };
        f.stage.addEventListener("mousemove", e => move(f, e));
        f.stage.addEventListener("mouseleave", leave);
        f.stage.addEventListener("click", e => click(f, e));
        figures.push(f);
      }
    }

    // the image pixel under the mouse (clamped inside the image)
    function locate(f, e) {
      const r = f.stage.getBoundingClientRect();
      const [h, w] = state.shape;
      return [Math.min(h - 1, Math.max(0, Math.floor((e.clientY - r.top) / r.height * h))),
              Math.min(w - 1, Math.max(0, Math.floor((e.clientX - r.left) / r.width * w)))];
    }

    // the pixels of a feature-grid cell (vizattn.explore.cell_box)
    function cellBox(gy, gx, cells) {
      const [h, w] = state.shape;
      return [Math.ceil(gy * h / cells[0]), Math.ceil((gy + 1) * h / cells[0]), Math.ceil(gx * w / cells[1]), Math.ceil((gx + 1) * w / cells[1])];
    }

    function place(f, y, x, box) {
      const [h, w] = state.shape, [y0, y1, x0, x1] = box;
      Object.assign(f.cell.style, { top: pct(y0, h), height: pct(y1 - y0, h), left: pct(x0, w), width: pct(x1 - x0, w) });
      Object.assign(f.mark.style, { top: pct(y + 0.5, h), left: pct(x + 0.5, w) });
    }

    // the colorbar of what a panel shows (s: {range, uniform, at, relative, nearly}): its ends in weights (relative
    // to uniform: as ratios to 1/N), a mark at the uniform level 1/N of a distribution, and a note when the scale is
    // not the chosen one (a gate under "relative to uniform") or the map is nearly uniform
    function label(f, s, kind) {
      const range = s.range;
      if (s.diff) {  // A − B: a symmetric diverging scale, its 0 marked where the uniform level goes elsewhere
        f.grad.style.background = state.relative_colorbar;
        f.lo.textContent = "−" + weight(range[1]);
        f.hi.textContent = "+" + weight(range[1]);
        f.u.hidden = f.ul.hidden = false;
        f.u.style.left = f.ul.style.left = "50%";
        f.ul.style.transform = "translateX(-50%)";
        f.ul.textContent = "0";
        f.ul.title = f.u.title = "A − B = 0: red where A attends more, blue where B does";
        f.note.textContent = "";
        return;
      }
      f.grad.style.background = s.relative ? state.relative_colorbar : state.colorbar;
      f.lo.textContent = s.relative ? `×1/${VizattnHover.SPAN}` : weight(range[0]);
      f.hi.textContent = s.relative ? `×${VizattnHover.SPAN} (log)` : weight(range[1]) + (state.log ? " (log)" : "");
      const marked = s.at !== null && s.at !== undefined;
      f.u.hidden = f.ul.hidden = !marked;
      if (marked) {
        const at = Math.min(1, Math.max(0, s.at));
        f.u.style.left = f.ul.style.left = pct(at, 1);
        // the label stays inside the bar: anchored at its left end near 0, at its right end near 1
        f.ul.style.transform = at < 0.15 ? "translateX(-2px)" : at > 0.85 ? "translateX(calc(-100% + 2px))" : "translateX(-50%)";
        f.ul.textContent = s.at < 0 ? "◂ uniform" : s.at > 1 ? "uniform ▸" : "uniform";
        f.ul.title = f.u.title = `uniform level 1/N = ${weight(s.uniform)} (N = ${Math.round(1 / s.uniform)} cells)` +
                                 (s.at < 0 || s.at > 1 ? ", off this scale" : "");
      }
      const notes = [];
      if (state.norm === VizattnHover.RELATIVE && kind !== "distribution") notes.push("gate: absolute 0…1 (not a distribution)");
      if (s.nearly) notes.push("nearly uniform (within 5% of 1/N everywhere)");
      f.note.textContent = notes.join(" · ");
    }

    // live: compute and paint every panel's map for image pixel (y, x)
    function drawLive(y, x) {
      const maps = VizattnHover.draw(state.specs, factors.T, state.panels.map(p => p.kind), state.shape, y, x,
                                     { norm: state.norm, clip: state.clip, alpha: state.alpha, lut: state.lut,
                                       relativeLut: state.relative_lut, keys: state.panels.map(p => p.keys || 0) });
      shown = maps.map((m, i) => ({ map: m.map, grid: state.specs[i].out, range: m.range, uniform: m.uniform }));
      maps.forEach((m, i) => {
        const f = figures[i], s = state.specs[i], [oh, ow] = s.out;
        if (f.canvas.width !== ow || f.canvas.height !== oh) { f.canvas.width = ow; f.canvas.height = oh; }
        f.canvas.getContext("2d").putImageData(new ImageData(m.rgba, ow, oh), 0, 0);
        place(f, y, x, cellBox(m.cell[0], m.cell[1], s.grid));
        label(f, m, state.panels[i].kind);
      });
      mark("showing", `${y},${x}`);
      // the title says which query the panels show: the pinned one, or the one under the pointer
      const pinned = state.pixel[0] === y && state.pixel[1] === x;
      titleEl.textContent = (state.title || "") + (pinned ? "" : ` · showing (${y}, ${x}) under the pointer; click to pin it`);
    }

    function move(f, e) {
      const at = locate(f, e);
      if (ready() && (!hovering || hovering[0] !== at[0] || hovering[1] !== at[1])) {
        hovering = at;
        drawLive(at[0], at[1]);
        timeFrame(grid.timings, e.timeStamp);
      }
      showTip(f, e, at);
    }

    function showTip(f, e, at) {
      const s = shown[f.index];
      if (!s) return;
      const [gy, gx] = VizattnHover.cellOf(at[0], at[1], s.grid, state.shape);
      const v = s.map[gy * s.grid[1] + gx];
      const ratio = s.uniform ? ` (×${(v / s.uniform).toPrecision(2)} uniform)` : "";
      const pin = hovering ? " · click to pin" : "";
      // a difference panel holds A's weight minus B's there, not a weight of its own
      const value = state.panels[f.index].kind === "diff" ? `A − B ${v < 0 ? "−" : "+"}${Math.abs(v).toPrecision(3)}${pin}`
        : hovering ? `its own weight ${v.toPrecision(3)}${ratio}${pin}` : `weight ${v.toPrecision(4)}${ratio}`;
      const lines = [state.panels[f.index].title, `pixel (${at[0]}, ${at[1]}) · cell (${gy}, ${gx})`, value];
      tip.textContent = "";
      lines.forEach(t => { const d = document.createElement("div"); d.textContent = t; tip.appendChild(d); });
      tip.hidden = false;
      // placed inside the grid's own box (a notebook scrolls; a fixed tip would be placed against the wrong frame)
      const r = root.getBoundingClientRect(), px = e.clientX - r.left, py = e.clientY - r.top;
      const right = px + 14 + tip.offsetWidth > r.width;
      tip.style.left = Math.max(0, right ? px - 14 - tip.offsetWidth : px + 14) + "px";
      tip.style.top = Math.max(0, py - tip.offsetHeight - 8) + "px";
    }

    // the pointer left the panels: back to the pinned query
    function leave() {
      tip.hidden = true;
      if (hovering && ready()) { hovering = null; drawLive(state.pixel[0], state.pixel[1]); }
      hovering = null;
    }

    // every value sent says which factors this grid holds, so a host need not send them again with the next render
    function tell(value) {
      value.have = factors ? factors.key : null;
      value.t = Date.now();
      host.tell(value);
    }

    // a click pins the query here at once: the panels (and the title) show it before the host has heard of it;
    // `t0` (the click's timestamp) times click → painted into pinTimings
    function pin(y, x, panel, t0) {
      if (!state) return;
      state.pixel = [y, x];
      hovering = null;
      if (ready()) drawLive(y, x);
      if (t0 !== undefined) timeFrame(grid.pinTimings, t0);
      // the host hears of it once the pinned panels are on screen: its own work (a page's rerun request, a kernel
      // message) must not hold back the frame that shows them
      const value = { y: y, x: x, panel: panel };
      if (ready()) requestAnimationFrame(() => setTimeout(() => tell(value), 0));
      else tell(value);
    }

    function click(f, e) {
      const [y, x] = locate(f, e);
      pin(y, x, f.index, e.timeStamp);
    }

    // arrow keys on the focused grid move the query by one feature-grid cell of the first panel
    root.addEventListener("keydown", e => {
      const step = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] }[e.key];
      if (!step || !state || !state.panels.length) return;
      e.preventDefault();
      e.stopPropagation();  // a notebook would move between cells
      const [h, w] = state.shape, [gh, gw] = state.panels[0].grid;
      const y = Math.min(h - 1, Math.max(0, state.pixel[0] + step[0] * Math.round(h / gh)));
      const x = Math.min(w - 1, Math.max(0, state.pixel[1] + step[1] * Math.round(w / gw)));
      if (y !== state.pixel[0] || x !== state.pixel[1]) pin(y, x, -1);
    });

    function fitHeight() {
      if (host.height) host.height(Math.ceil(root.getBoundingClientRect().height) + 2);
    }

    function render(args) {
      state = args;
      const n = args.panels.length;
      const key = n + "/" + args.columns;
      if (key !== layoutKey) { build(n, args.columns); layoutKey = key; }
      titleEl.textContent = args.title || "";
      const live = !!args.specs;
      if (live && (!factors || factors.key !== args.factors_key)) {
        if (args.blob && args.blob.byteLength) {  // new factors: decode once, and say so (a host may then leave them out)
          factors = { key: args.factors_key, T: VizattnHover.tensors(args.blob, args.table) };
          grid.factorBytes = args.blob.byteLength;
          asked = null;  // held now: should the host later leave out factors we do not hold, we ask again
          announce = true;
        } else {  // the host believes we hold factors we do not (this grid was mounted anew): ask for them once
          if (asked !== args.factors_key) { asked = args.factors_key; tell({ need: args.factors_key }); }
          return;
        }
      }
      const loads = [];
      args.panels.forEach((p, i) => {
        const f = figures[i];
        f.name.textContent = p.title;
        f.name.title = p.title;
        f.sub.textContent = p.subtitle || "";
        f.heat.hidden = live;
        f.canvas.hidden = !live;
        const sources = [[f.base, args.image]].concat(live ? [] : [[f.heat, p.heat]]);
        for (const [img, src] of sources) {
          if (img.getAttribute("src") !== src) {
            img.src = src;
            loads.push(img.decode().catch(() => null));
          }
        }
        if (!live) {
          shown[i] = { map: decodeWeights(p.weights), grid: p.grid, range: p.range, uniform: p.uniform };
          place(f, args.pixel[0], args.pixel[1], p.box);
          label(f, p, p.kind);
        }
      });
      if (live) {
        shown.length = n;
        const at = hovering || args.pixel;  // a new render while the pointer is on the panels keeps what it points at
        drawLive(at[0], at[1]);
      }
      // tell the host our height once the images are decoded, and leave a mark the browser tests can wait on
      Promise.all(loads).then(() => {
        fitHeight();
        mark("live", live ? "yes" : "no");
        mark("rendered", args.title || "");
        // the host hears which factors we hold once the panels are drawn: what it does then (a page's rerun, which
        // on the first screen loads the live model) must not hold back the first frame
        if (announce) { announce = false; tell({}); }
      });
    }

    new ResizeObserver(fitHeight).observe(root);
    return grid;
  }

  return { mount: mount };
})();
