"""The attention grid: what the browser needs to draw panels itself (`panel_grid_frontend/`), for its three hosts:
the app's Streamlit component, the notebook widget (`vizattn.notebook`) and the self-contained HTML export.

With hover-follow (`vizattn.viz.hover`) it receives each record's factors and computes and colours every
panel's map in the browser, for the pinned query and for the pixel under the pointer. Over the size budget
it falls back to what follows: per pinned query, each panel's heatmap from the server.

Plotly remounts a chart whenever its figure changes (Streamlit keys the element on the figure), so a
click on a 9-panel grid paid for a fresh plot of every panel while the old one stayed on screen until
the run ended. This grid stays mounted: per click it receives each panel's heatmap as a tiny RGBA PNG at
feature-grid resolution (coloured and blended exactly as `heat_overlay`: opacity alpha·√v), its weights
for hover, and the query cell; the photo underneath is sent once per image and reused.
"""
from __future__ import annotations

import base64
import hashlib
import html
import json
from pathlib import Path

import numpy as np
from PIL import Image

from vizattn.text import plain
from vizattn.viz.figures import shared_tops
from vizattn.viz.hover import BUDGET, factors, lookup_table
from vizattn.viz.overlay import (data_uri, RELATIVE_CMAP, backdrop, colormap, heat_layer, is_log, is_relative, is_shared,
                                  nearly_uniform, scale_range, uniform_position)

FRONTEND = Path(__file__).resolve().parent / "panel_grid_frontend"
#: the browser's formulas and the grid, then one host: what each host's page or module is made of
CORE = ("hover.js", "grid.js")


def photo_uri(image: np.ndarray, max_side: int = 640, under: str = "photo") -> str:
    """The photo under the panels (as `backdrop` makes it) as a JPEG data URI, shrunk to `max_side`: panels are
    drawn a few hundred pixels wide, so a 1024-px upload need not travel at full size with every click."""
    img = Image.fromarray(backdrop(image, under))
    img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return data_uri(np.asarray(img), "JPEG", quality=90)


def heat_rgba(grid_map: np.ndarray, alpha: float = 0.6, cmap: str = "inferno", norm: str = "per-map",
              vmax: float | None = None, clip: float = 100.0, uniform: float | None = None) -> np.ndarray:
    """gh×gw×4 uint8: the colormapped map with opacity alpha·√v, so the browser's alpha blending over the
    photo gives the same picture as `heat_overlay` (nearest upsampling, as `explore.to_image`)."""
    heat, a = heat_layer(grid_map, np.clip(alpha, 0, 1), cmap, norm, vmax, None, clip, uniform)
    return np.dstack([heat, np.round(255 * a).astype(np.uint8)])


def colorbar_css(cmap: str, stops: int = 9) -> str:
    """The colormap as a CSS linear gradient (left 0, right 1), for the colorbar under every panel."""
    colours = colormap(np.linspace(0, 1, stops), cmap)
    return "linear-gradient(to right, " + ", ".join(f"rgb({r},{g},{b})" for r, g, b in colours) + ")"


def grid_args(image: np.ndarray, panels, titles: list[str] | None = None, cmap: str = "inferno",
              norm: str = "per-map", alpha: float = 0.6, columns: int = 3, title: str = "",
              base: str | None = None, clip: float = 100.0, under: str = "photo", subtitles: list[str] | None = None,
              live=None, budget: int = BUDGET) -> dict:
    """JSON-ready arguments of the panel grid (one binary argument, `blob`, with hover-follow). `base` is the
    photo's data URI when the caller has it cached (made with the same `under`). `live`: the panels' factors
    as `live_factors` made them (for hover-follow), None to build them here, False for the server path."""
    h, w = image.shape[:2]
    pixel = panels[0].pixel if panels else (h // 2, w // 2)
    args = dict(
        image=base or photo_uri(image, under=under),
        shape=[h, w], pixel=[int(v) for v in pixel], columns=int(columns), title=title,
        colorbar=colorbar_css(cmap), relative_colorbar=colorbar_css(RELATIVE_CMAP), log=is_log(norm), norm=norm,
        clip=float(clip), alpha=float(np.clip(alpha, 0, 1)),
        panels=[dict(title=titles[i] if titles else p.title, subtitle=subtitles[i] if subtitles else "",
                     kind="weights" if p.uniform is None else "distribution", keys=p.tokens,
                     grid=[int(v) for v in p.grid_shape])
                for i, p in enumerate(panels)],
    )
    if live is None:
        live = live_factors(panels, budget)
    if live:
        key, specs, table, blob = live
        return dict(args, factors_key=key, specs=specs, table=table, blob=blob, lut=lookup_table(cmap),
                    relative_lut=lookup_table(RELATIVE_CMAP))
    tops = shared_tops(panels, clip) if is_shared(norm) else [None] * len(panels)
    for p, d, top in zip(panels, args["panels"], tops):
        u = p.uniform
        d.update(heat=data_uri(heat_rgba(p.grid_map, alpha, cmap, norm, top, clip, u)),
                 range=[float(v) for v in scale_range(p.grid_map, norm, top, None, clip, u)],
                 uniform=u, at=uniform_position(p.grid_map, norm, top, None, clip, u),
                 relative=is_relative(norm, u), nearly=nearly_uniform(p.grid_map, u),
                 weights=base64.b64encode(np.ascontiguousarray(p.grid_map, "<f4").tobytes()).decode(),
                 cell=[int(v) for v in p.cell], box=[int(v) for v in p.cell_box])
    return args


def live_factors(panels, budget: int = BUDGET):
    """(key, specs, table, blob) for hover-follow over these panels' records and views, or None (a kind with no
    browser formula, or more than `budget` bytes). The key names the factors: the browser decodes a blob once."""
    made = factors([(p.record, p.view) for p in panels], budget) if all(p.record is not None for p in panels) else None
    if made is None:
        return None
    specs, table, blob = made
    key = hashlib.sha256(blob)  # the blob as it is, not copied to append the specs
    key.update(json.dumps(specs, sort_keys=True).encode())
    return key.hexdigest()[:20], specs, table, blob


def frontend_text(*names: str) -> str:
    """The named files of the front end, joined: one source for every host, read from the package (no build)."""
    return "\n".join((FRONTEND / name).read_text(encoding="utf-8") for name in names)


def widget_esm() -> str:
    """The notebook widget's ES module: the grid and its anywidget host (`render({model, el})`)."""
    return frontend_text(*CORE, "widget.js")


def split_blob(args: dict) -> tuple[dict, bytes]:
    """(the JSON-ready args, the binary factors): hosts other than Streamlit send the blob on its own."""
    rest = {k: v for k, v in args.items() if k != "blob"}
    return rest, bytes(args.get("blob") or b"")


def _script_json(value) -> str:
    # inside <script>: no "</script>" or "<!--" can come from a file-borne name
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def standalone_html(args: dict, heading: list[str], note: str = "") -> str:
    """One self-contained page of the live grid (`args` from grid_args with factors): the front end and its CSS
    inline, the factors base64 in the file, the photo a data URI; it opens from disk with no network. `heading`:
    the lines that name what it shows (model, view, pixel, scale), above the grid."""
    rest, blob = split_blob(args)
    lines = "".join(f"<div>{html.escape(plain(line, 1000), quote=False)}</div>" for line in heading)
    note = f'<p class="vizattn-note">{html.escape(plain(note, 1000), quote=False)}</p>' if note else ""
    width = 420 * max(1, int(args.get("columns", 3)))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(plain(heading[0], 1000) if heading else "vizattn panel grid")}</title>
<style>
body {{ margin: 12px; font-family: "Source Sans Pro", "Source Sans 3", sans-serif; color: #31333f; }}
header {{ font-size: 13px; color: #555; margin-bottom: 8px; }}
#root {{ max-width: {width}px; }}
{frontend_text("style.css")}
</style>
</head>
<body>
<header>{lines}{note}<div>Move the pointer over a panel to see that pixel's attention; click to pin it (arrow keys
move it by one cell).</div></header>
<div id="root"></div>
<script type="application/json" id="vizattn-args">{_script_json(rest)}</script>
<script type="text/plain" id="vizattn-blob">{base64.b64encode(blob).decode()}</script>
<script>
{frontend_text(*CORE, "standalone.js")}
</script>
</body>
</html>
"""
