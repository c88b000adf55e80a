// The Streamlit host of the panel grid (grid.js): a Streamlit v2 component, drawn in the page itself (in a shadow
// root, no frame of its own). vizattn/app/panel_grid.py sends one binary payload: a 4-byte length, the grid's JSON
// args, then the records' factors (none once the grid said it holds them). A pin or "I hold these factors" goes
// back as the one state value `value`. The clickable image (vizattn/app/clickable_image.js) finds the grid on the
// page through window.vizattnGrids; `vizattn bench app` and the browser tests read each grid's timings there too.

const hosts = new WeakMap();  // the component's element -> {grid, last}: Streamlit calls us again for each render
window.vizattnGrids = window.vizattnGrids || new Map();  // component key -> grid

function unpack(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getUint32(0, true);
  const args = new TextDecoder().decode(bytes.subarray(4, 4 + n));
  const blob = bytes.subarray(4 + n);
  return { args: args, blob: blob.byteLength ? blob : null };
}

export default function ({ parentElement, data, setStateValue }) {
  let host = hosts.get(parentElement);
  if (!host) {
    const root = document.createElement("div");
    parentElement.appendChild(root);
    const grid = VizattnGrid.mount(root, { tell: value => setStateValue("value", value), marks: root });
    host = { grid: grid, last: null, root: root };
    hosts.set(parentElement, host);
  }
  if (!(data instanceof Uint8Array) || data.byteLength < 4) return;
  const { args, blob } = unpack(data), last = host.last, same = !!last && last.args === args;
  const factors = !!blob || (same && last.factors);
  // Streamlit calls again with the same args as the page around it changes, and the page sends them without the
  // factors once we hold them: nothing new to draw, and drawing it again would undo a pin the page has not heard
  // of yet. The same args bring something only when they bring factors we lacked.
  if (same && (last.factors || !factors)) return;
  const parsed = JSON.parse(args);
  host.grid.render(Object.assign(parsed, { blob: blob }));
  host.last = { args: args, factors: factors };  // only once drawn: args that failed to draw are drawn when re-sent
  host.root.dataset.key = parsed.key || "";
  window.vizattnGrids.set(parsed.key || "", host.grid);
}
