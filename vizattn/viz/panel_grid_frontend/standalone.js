// The self-contained HTML host of the panel grid (grid.js): the args and the factors (base64) are embedded in the
// file (vizattn/export.py writes it); a pin is kept here and named in the title, as no server hears of it.
"use strict";

(() => {
  const args = JSON.parse(document.getElementById("vizattn-args").textContent);
  const b64 = document.getElementById("vizattn-blob").textContent.trim();
  args.blob = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
  const title = args.title;
  const named = p => Object.assign(args, { pixel: p, title: `${title} · pinned pixel (${p[0]}, ${p[1]})` });
  const grid = VizattnGrid.mount(document.getElementById("root"), {
    tell(value) { if (value.y !== undefined) grid.render(named([value.y, value.x])); },
    marks: document.body,
  });
  window.vizattnGrid = grid;
  grid.render(named(args.pixel));
})();
