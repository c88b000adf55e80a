// The notebook host of the panel grid (grid.js), as an anywidget ES module: vizattn/notebook.py sends the grid's
// args as the `_args` trait and the records' factors as the bytes trait `_blob`; a pin sets `pixel`.
function render({ model, el }) {
  const root = document.createElement("div");
  el.appendChild(root);
  const grid = VizattnGrid.mount(root, {
    tell(value) {
      if (value.y === undefined) return;
      model.set("pixel", [value.y, value.x]);
      model.save_changes();
    },
  });
  root.vizattn = grid;  // for the browser tests and `vizattn bench widget`: timings and pins per grid
  function draw() {
    const args = Object.assign({}, model.get("_args"));
    if (!args.panels) return;
    root.style.maxWidth = `${420 * args.columns}px`;  // one panel need not fill a wide notebook
    if (args.specs) {
      const b = model.get("_blob");  // a DataView over the message's buffer
      args.blob = b ? new Uint8Array(b.buffer, b.byteOffset, b.byteLength) : null;
    }
    grid.render(args);
  }
  draw();
  model.on("change:_args", draw);
  return () => model.off("change:_args", draw);
}

export default { render };
