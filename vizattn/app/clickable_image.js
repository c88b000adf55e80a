// The clickable image (vizattn/app/clickable_image.py), a Streamlit v2 component drawn in the page: a JPEG sent as
// bytes, shown at its column's width. The pointer over it drives the panel grid on the page (streamlit.js registers
// each grid in window.vizattnGrids) as the grid's own panels do: a move shows the pixel under the pointer in every
// panel at once, a click pins it there (the grid then tells the page). With no grid on the page, a click goes to the
// page as {x, y, width, height, t}: the position in the shown image and its shown size (vizattn.app.pure.click_pixel).

const hosts = new WeakMap();

function same(a, b) {
  if (!a || !b || a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

// the panel grid now on screen (a grid in a closed tab has no width), or null
function shownGrid() {
  for (const grid of (window.vizattnGrids || new Map()).values()) {
    if (grid.root.isConnected && grid.root.getBoundingClientRect().width > 0 && typeof grid.pin === "function") return grid;
  }
  return null;
}

// a pointer event at the same fraction of the grid's first panel
function tell(grid, type, fx, fy) {
  const stage = grid.root.querySelector(".stage");
  if (!stage) return;
  const t = stage.getBoundingClientRect();
  stage.dispatchEvent(new MouseEvent(type, { bubbles: true, clientX: t.left + fx * t.width, clientY: t.top + fy * t.height }));
}

export default function ({ parentElement, data, setStateValue }) {
  let host = hosts.get(parentElement);
  if (!host) {
    const img = document.createElement("img");
    img.id = "image";
    img.alt = "the image: click a pixel to query it";
    img.style.cssText = "width:100%;display:block;cursor:crosshair;user-select:none;-webkit-user-drag:none;";
    img.draggable = false;
    parentElement.appendChild(img);
    const inside = v => Math.min(0.9999, Math.max(0, v));
    const at = e => { const r = img.getBoundingClientRect(); return [inside((e.clientX - r.left) / r.width), inside((e.clientY - r.top) / r.height)]; };
    img.addEventListener("mousemove", e => { const g = shownGrid(); if (g) tell(g, "mousemove", ...at(e)); });
    img.addEventListener("mouseleave", () => {
      const g = shownGrid(), stage = g && g.root.querySelector(".stage");
      if (stage) stage.dispatchEvent(new MouseEvent("mouseleave"));
    });
    img.addEventListener("click", e => {
      const [fx, fy] = at(e), g = shownGrid();
      if (g) {  // the image pixel, as the page maps the image's own clicks (vizattn.app.pure.click_pixel)
        g.pin(Math.floor(fy * img.naturalHeight), Math.floor(fx * img.naturalWidth), 0, e.timeStamp);
        tell(g, "mousemove", fx, fy);
        return;
      }
      const r = img.getBoundingClientRect();
      setStateValue("value", { x: fx * r.width, y: fy * r.height, width: r.width, height: r.height, t: Date.now() });
    });
    img.dataset.relay = "yes";
    host = { img: img, bytes: null, url: null };
    hosts.set(parentElement, host);
  }
  if (!(data instanceof Uint8Array) || same(data, host.bytes)) return;  // the page sends the same picture again
  const url = URL.createObjectURL(new Blob([data], { type: "image/jpeg" }));
  host.img.src = url;
  if (host.url) URL.revokeObjectURL(host.url);
  host.bytes = data.slice();
  host.url = url;
}
