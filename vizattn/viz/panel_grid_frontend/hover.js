// Attention rows computed in the browser from each record's factors (vizattn/viz/hover.py says which factors
// each kind sends), and their colouring exactly as vizattn.viz.overlay colours them on the server. The same
// records through AttentionRecord.query_map and through these formulas are compared by tests/viz/test_hover.py.
"use strict";

const VizattnHover = (() => {
  let half = null;  // float16 bit pattern -> float32, built once

  function halfTable() {
    const t = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) {
      const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
      t[h] = e === 0 ? s * f * 2 ** -24 : e === 31 ? (f ? NaN : s * Infinity) : s * (1 + f / 1024) * 2 ** (e - 15);
    }
    return t;
  }

  // the blob (Uint8Array) and its table -> [{data: Float32Array, shape}]
  function tensors(blob, table) {
    const bytes = blob.byteOffset % 4 ? blob.slice() : blob;
    return table.map(t => {
      const n = t.shape.reduce((a, b) => a * b, 1);
      if (t.dtype === "f4") return { data: new Float32Array(bytes.buffer, bytes.byteOffset + t.offset, n), shape: t.shape };
      half = half || halfTable();
      const bits = new Uint16Array(bytes.buffer, bytes.byteOffset + t.offset, n), data = new Float32Array(n);
      for (let i = 0; i < n; i++) data[i] = half[bits[i]];
      return { data: data, shape: t.shape };
    });
  }

  function softmax(a) {
    let m = -Infinity, s = 0;
    for (let i = 0; i < a.length; i++) if (a[i] > m) m = a[i];
    for (let i = 0; i < a.length; i++) { a[i] = Math.exp(a[i] - m); s += a[i]; }
    for (let i = 0; i < a.length; i++) a[i] /= s;
    return a;
  }

  // row p of group/head g from a source: precomputed rows (G×N×M), or softmax(scale·(q·k) + bias) with
  // q G×N×d and k G×M×d, and LESA's relative-position terms (terms 3×G weighting q·k, q·r_q, k·r_k)
  function sourceRow(src, T, g, p) {
    if (src.rows !== undefined) {
      const R = T[src.rows], [, N, M] = R.shape;
      return R.data.slice((g * N + p) * M, (g * N + p + 1) * M);
    }
    const Q = T[src.q], K = T[src.k], [, N, d] = Q.shape, M = K.shape[1];
    const q = Q.data.subarray((g * N + p) * d, (g * N + p + 1) * d), k = K.data, k0 = g * M * d;
    const out = new Float32Array(M);
    let rq = null, rk = null, a = null, G = Q.shape[0];
    if (src.rel_q !== undefined) { rq = T[src.rel_q].data; rk = T[src.rel_k].data; a = T[src.terms].data; }
    const span = rq ? T[src.rel_q].shape[1] : 0;  // 2N − 1 offsets
    for (let m = 0; m < M; m++) {
      let qk = 0;
      const km = k0 + m * d;
      for (let c = 0; c < d; c++) qk += q[c] * k[km + c];
      if (rq) {  // offsets i − j and j − i, indexed from −(N−1)
        let qr = 0, kr = 0;
        const iq = p - m + N - 1, ik = m - p + N - 1;
        for (let c = 0; c < d; c++) { qr += q[c] * rq[c * span + iq]; kr += k[km + c] * rk[c * span + ik]; }
        qk = a[g] * qk + a[G + g] * qr + a[2 * G + g] * kr;
      }
      out[m] = src.scale * qk;
    }
    if (src.bias !== undefined) {
      const B = T[src.bias].data, b0 = (g * N + p) * M;
      for (let m = 0; m < M; m++) out[m] += B[b0 + m];
    }
    return softmax(out);
  }

  // PyTorch's adaptive-pool regions of pyramid levels `sizes` over an h×w grid: [y0, y1, x0, x1] per anchor
  const boxCache = new Map();
  function anchorBoxes(sizes, h, w) {
    const key = sizes.join(",") + "/" + h + "x" + w;
    if (!boxCache.has(key)) {
      const boxes = [];
      for (const s of sizes) for (let i = 0; i < s; i++) for (let j = 0; j < s; j++) {
        boxes.push([Math.floor(i * h / s), Math.ceil((i + 1) * h / s), Math.floor(j * w / s), Math.ceil((j + 1) * w / s)]);
      }
      boxCache.set(key, boxes);
    }
    return boxCache.get(key);
  }

  function rows(spec, T, gy, gx) {
    const i = spec.qindep ? 0 : spec.qextra + gy * spec.grid[1] + gx;
    let row;
    if (spec.pick >= 0) row = sourceRow(spec.src, T, spec.pick, i);
    else {
      for (let g = 0; g < spec.heads; g++) {
        const r = sourceRow(spec.src, T, g, i);
        if (!row) row = r; else for (let m = 0; m < r.length; m++) row[m] += r[m];
      }
      for (let m = 0; m < row.length; m++) row[m] /= spec.heads;
    }
    row = row.subarray(spec.kextra);
    if (spec.keep) row = row.map((v, m) => (m >= spec.keep[0] && m < spec.keep[1] ? v : 0));
    const [h, w] = spec.out;
    if (!spec.boxes) return Float32Array.from(row);
    const out = new Float32Array(h * w);
    anchorBoxes(spec.boxes, h, w).forEach(([y0, y1, x0, x1], a) => {
      const v = row[a] / ((y1 - y0) * (x1 - x0));
      for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) out[y * w + x] += v;
    });
    return out;
  }

  // criss-cross: mass pushed back through loops (each H·W×(H+W): a position's column, then its row)
  function cross(spec, T, gy, gx) {
    const [h, w] = spec.grid;
    let mass = new Float32Array(h * w);
    mass[gy * w + gx] = 1;
    for (const r of spec.apply) {
      const att = T[spec.loops[r - 1]].data, out = new Float32Array(h * w), L = h + w;
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
        const m = mass[y * w + x];
        if (m === 0) continue;
        const b = (y * w + x) * L;
        for (let k = 0; k < h; k++) out[k * w + x] += m * att[b + k];
        for (let k = 0; k < w; k++) out[y * w + k] += m * att[b + h + k];
      }
      mass = out;
    }
    return mass;
  }

  // interlaced sparse attention on the padded grid: A_L within the query's long-range group, A_S within its
  // block, or the row of A_S·A_L; then cropped to the image's grid
  function isa(spec, T, gy, gx) {
    const [dh, dw] = spec.group, [oh, ow] = spec.lattice, [top, , left] = spec.pad, [h, w] = spec.grid;
    const Y = gy + top, X = gx + left, i = Math.floor(Y / dh), a = Y % dh, j = Math.floor(X / dw), b = X % dw;
    const W = ow * dw, m = new Float32Array(oh * dh * W);
    const longRow = (aa, bb) => sourceRow(spec.long, T, aa * dw + bb, i * ow + j);  // group (aa, bb), lattice point (i, j)
    const shortRow = sourceRow(spec.short, T, i * ow + j, a * dw + b);
    if (spec.view === "long") {
      const r = longRow(a, b);
      for (let ii = 0; ii < oh; ii++) for (let jj = 0; jj < ow; jj++) m[(ii * dh + a) * W + jj * dw + b] = r[ii * ow + jj];
    } else if (spec.view === "short") {
      for (let aa = 0; aa < dh; aa++) for (let bb = 0; bb < dw; bb++) m[(i * dh + aa) * W + j * dw + bb] = shortRow[aa * dw + bb];
    } else {
      for (let aa = 0; aa < dh; aa++) for (let bb = 0; bb < dw; bb++) {
        const s = shortRow[aa * dw + bb], r = longRow(aa, bb);
        for (let ii = 0; ii < oh; ii++) for (let jj = 0; jj < ow; jj++) m[(ii * dh + aa) * W + jj * dw + bb] = s * r[ii * ow + jj];
      }
    }
    const out = new Float32Array(h * w);
    for (let y = 0; y < h; y++) out.set(m.subarray((y + top) * W + left, (y + top) * W + left + w), y * w);
    return out;
  }

  // PSANet's point-wise spatial attention: logits M×N over a mask window centred on the position that predicts
  // them; positions outside the window take logit 0 (as PSAMask leaves them), then a softmax over all positions
  function psanet(spec, T, gy, gx) {
    const [h, w] = spec.grid, [mh, mw] = spec.mask, N = h * w, L = T[spec.logits].data, j = gy * w + gx;
    const cy = (mh - 1) >> 1, cx = (mw - 1) >> 1, row = new Float32Array(N);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      const n = y * w + x;
      // collect: offset n − j seen from j; distribute: offset j − n seen from n
      const dy = (spec.direction === "collect" ? y - gy : gy - y) + cy, dx = (spec.direction === "collect" ? x - gx : gx - x) + cx;
      if (dy >= 0 && dy < mh && dx >= 0 && dx < mw) row[n] = L[(dy * mw + dx) * N + (spec.direction === "collect" ? j : n)];
    }
    return softmax(row);
  }

  const FORMULAS = { rows: rows, cross: cross, isa: isa, psanet: psanet,
                     const: (spec, T) => Float32Array.from(T[spec.map].data) };

  // the map a record's view gives query cell (gy, gx), over spec.out
  function row(spec, T, gy, gx) { return FORMULAS[spec.f](spec, T, gy, gx); }

  // ---- colouring, as vizattn.viz.overlay.scale_range / scale / heat_layer ----

  function percentile(m, q) {  // numpy's default (linear) percentile
    const s = Float64Array.from(m).sort(), pos = (s.length - 1) * q / 100, lo = Math.floor(pos), hi = Math.min(lo + 1, s.length - 1);
    return s[lo] + (s[hi] - s[lo]) * (pos - lo);
  }

  function top(m, clip) {
    if (clip < 100) return percentile(m, clip);
    let t = -Infinity;
    for (let i = 0; i < m.length; i++) if (m[i] > t) t = m[i];
    return t;
  }

  const isLog = norm => norm === "log" || norm === "log shared";
  const isShared = norm => norm === "shared" || norm === "log shared";
  const RELATIVE = "relative to uniform", SPAN = 16, NEARLY = 0.05;  // as overlay.RELATIVE_SPAN, NEARLY_UNIFORM
  // drawn relative to its uniform level: a distribution (uniform = 1/N) under RELATIVE; a gate (null) keeps 0…1
  const isRelative = (norm, uniform) => norm === RELATIVE && uniform != null;

  // the weights at the colorbar's ends; `shared` the top shared by the panels of this kind (or null), `own`
  // the map's own top when the caller has it already (a percentile sorts the map), `uniform` 1/N or null
  function range(m, norm, shared, clip, own, uniform) {
    if (norm === RELATIVE) return uniform != null ? [uniform / SPAN, uniform * SPAN] : [0, 1];
    const t = isShared(norm) && shared ? shared : own ?? top(m, clip);
    if (isLog(norm)) {
      const hi = Math.max(t, 1e-12);
      let pos = Infinity;
      for (let i = 0; i < m.length; i++) if (m[i] > 0 && m[i] < pos) pos = m[i];
      return [Math.max(pos === Infinity ? 1e-12 : pos, hi * 1e-6), hi];
    }
    let lo = 0;
    for (let i = 0; i < m.length; i++) if (m[i] < lo) lo = m[i];
    return [lo, t];
  }

  // where 1/N sits along the colorbar (0 left, 1 right, outside when off the scale), null for a gate
  function uniformAt(norm, r, uniform) {
    if (uniform == null) return null;
    if (isRelative(norm, uniform)) return 0.5;
    if (isLog(norm)) return (Math.log10(uniform) - Math.log10(r[0])) / Math.max(Math.log10(r[1]) - Math.log10(r[0]), 1e-12);
    return r[1] > r[0] ? (uniform - r[0]) / (r[1] - r[0]) : 0;
  }

  // every cell within NEARLY of the uniform level (overlay.nearly_uniform)
  function nearlyUniform(m, uniform) {
    if (uniform == null) return false;
    for (let i = 0; i < m.length; i++) if (!(Math.abs(m[i] / uniform - 1) < NEARLY)) return false;
    return true;
  }

  // RGBA (Uint8ClampedArray) of map m: colour lut[⌊v·256⌋], opacity alpha·√v (relative to uniform: v from the
  // ratio to 1/N, 0.5 at it, and opacity alpha everywhere)
  function paint(m, lo, hi, norm, alpha, lut, uniform) {
    const out = new Uint8ClampedArray(m.length * 4), log = isLog(norm), rel = isRelative(norm, uniform);
    const llo = Math.log10(lo), span = log ? Math.max(Math.log10(hi) - llo, 1e-12) : hi - lo, l2 = 2 * Math.log2(SPAN);
    for (let i = 0; i < m.length; i++) {
      let v;
      if (rel) v = 0.5 + Math.log2(Math.max(m[i], 1e-300) / uniform) / l2;
      else if (log) v = (Math.log10(Math.max(m[i], 1e-300)) - llo) / span;
      else v = hi > lo ? (m[i] - lo) / span : 0;
      v = Math.min(1, Math.max(0, v));
      const c = lut[Math.min(255, Math.floor(v * 256))];
      out[4 * i] = c[0]; out[4 * i + 1] = c[1]; out[4 * i + 2] = c[2];
      out[4 * i + 3] = Math.round(255 * alpha * (rel ? 1 : Math.sqrt(v)));
    }
    return out;
  }

  // A − B of two maps on one grid (vizattn.diff): diverging around 0 on a symmetric scale ±max|A − B| (the
  // relative LUT, white at 0), opacity alpha·√(|A − B| / max): where the two agree the photo shows through
  function difference(a, b, opts) {
    const d = new Float32Array(a.map.length);
    let big = 0;
    for (let i = 0; i < d.length; i++) { d[i] = a.map[i] - b.map[i]; big = Math.max(big, Math.abs(d[i])); }
    big = Math.max(big, 1e-12);
    const rgba = new Uint8ClampedArray(d.length * 4), lut = opts.relativeLut;
    for (let i = 0; i < d.length; i++) {
      const c = lut[Math.min(255, Math.max(0, Math.floor((0.5 + d[i] / (2 * big)) * 256)))];
      rgba[4 * i] = c[0]; rgba[4 * i + 1] = c[1]; rgba[4 * i + 2] = c[2];
      rgba[4 * i + 3] = Math.round(255 * opts.alpha * Math.sqrt(Math.abs(d[i]) / big));
    }
    return { map: d, cell: a.cell, range: [-big, big], rgba: rgba, uniform: null, relative: false, at: null,
             nearly: false, diff: true };
  }

  // the feature-grid cell of image pixel (y, x) of an H×W image (vizattn.explore.cell_of)
  function cellOf(y, x, grid, shape) {
    return [Math.min(grid[0] - 1, Math.floor(y * grid[0] / shape[0])), Math.min(grid[1] - 1, Math.floor(x * grid[1] / shape[1]))];
  }

  // every panel's map for image pixel (y, x) of an H×W image, its colorbar range, its RGBA, its uniform level
  // (1/N for a distribution), where that sits on the colorbar and whether the map is nearly uniform. opts.lut
  // colours the maps, opts.relativeLut those drawn relative to uniform
  function draw(specs, T, kinds, shape, y, x, opts) {
    const maps = specs.map(s => {
      if (s.f === "diff") return null;  // below, from the two maps it subtracts
      const [gy, gx] = cellOf(y, x, s.grid, shape);
      const map = row(s, T, gy, gx);
      return { map: map, cell: [gy, gx], top: top(map, opts.clip) };
    });
    const shared = {};
    maps.forEach((m, i) => { if (m) shared[kinds[i]] = Math.max(shared[kinds[i]] ?? -Infinity, m.top); });
    specs.forEach((s, i) => { if (s.f === "diff") maps[i] = difference(maps[s.a], maps[s.b], opts); });
    maps.forEach((m, i) => {
      if (specs[i].f === "diff") return;
      // 1/N over the map's cells, or 1/tokens where the map is the patch part of a row over more keys (opts.keys)
      m.uniform = kinds[i] === "distribution" ? 1 / ((opts.keys && opts.keys[i]) || m.map.length) : null;
      m.relative = isRelative(opts.norm, m.uniform);
      m.range = range(m.map, opts.norm, isShared(opts.norm) ? shared[kinds[i]] : null, opts.clip, m.top, m.uniform);
      m.rgba = paint(m.map, m.range[0], m.range[1], opts.norm, opts.alpha, m.relative ? opts.relativeLut : opts.lut, m.uniform);
      m.at = uniformAt(opts.norm, m.range, m.uniform);
      m.nearly = nearlyUniform(m.map, m.uniform);
    });
    return maps;
  }

  return { tensors: tensors, row: row, range: range, paint: paint, draw: draw, cellOf: cellOf, uniformAt: uniformAt,
           nearlyUniform: nearlyUniform, isRelative: isRelative, RELATIVE: RELATIVE, SPAN: SPAN };
})();
