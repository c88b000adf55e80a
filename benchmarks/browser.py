"""Start the app on 127.0.0.1 and drive Debian's chromium with playwright: shared by the browser test and
`vizattn bench app` (playwright is imported only here, only when used)."""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                 "--proxy-server=http://127.0.0.1:9"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def app_server(timeout: float = 60.0, times: dict | None = None, script: Path | None = None,
               vizattn_app: bool = False, env: dict | None = None, port: int | None = None):
    """A Streamlit server on 127.0.0.1 (on `port`, else a free one), yielded once healthy: `streamlit run app.py`
    (or another `script`), or `vizattn app` from the installed package. `times["launched"]` receives the
    perf_counter time of the launch; the health check is asked every 20 ms, so that time is known to 20 ms."""
    port = port or free_port()
    if times is not None:
        times["launched"] = time.perf_counter()
    if vizattn_app:
        cmd = [sys.executable, "-m", "vizattn.cli", "app", "--port", str(port)]
    else:
        cmd = [sys.executable, "-m", "streamlit", "run", str(script or ROOT / "app.py"), "--server.headless", "true",
               "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.02)
        else:
            raise RuntimeError("the Streamlit server did not become healthy")
        yield url
    finally:
        proc.terminate()  # only the process this helper started
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def browser_page(width: int = 1400, height: int = 1000):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
            yield context.new_page()
        finally:
            browser.close()


def wait_idle(page, timeout_ms: int = 120_000) -> None:
    """Until Streamlit has finished the script run (its status widget gone, no element shown as stale)."""
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=timeout_ms)
    page.wait_for_function("!document.querySelector('[data-stale=\"true\"]')", timeout=timeout_ms)


def marker(page, element_id: str = "panel-state") -> str:
    return page.locator(f"#{element_id}").inner_text(timeout=120_000)


def wait_change(page, element_id: str, before: str, timeout: float = 60.0) -> str:
    """Until the marker #element_id no longer reads `before`; returns what it reads now."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        now = marker(page, element_id)
        if now != before:
            return now
        time.sleep(0.01)
    raise TimeoutError(f"#{element_id} did not change")


def click_image(page, fx: float, fy: float) -> None:
    """Click the clickable image at fractions (fx, fy) of its displayed size."""
    img = page.locator(".st-key-image_click img").first
    img.wait_for(timeout=120_000)
    img.scroll_into_view_if_needed()
    box = img.bounding_box()
    img.click(position={"x": box["width"] * fx, "y": box["height"] * fy})


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()
    wait_idle(page)


def panel_grid(page):
    """The first panel grid (the app's own component, drawn in the page in a shadow root, which playwright's CSS
    locators enter) on the page."""
    return page.locator(".vizattn").first


def grid_marked(page, marks: str):
    """The panel grid whose root carries `marks` (a CSS attribute selector such as "[data-showing='1,2']"): the
    grid marks its root with what it shows (live, rendered, showing) once it is drawn."""
    return page.locator(f".vizattn{marks}").first


# the panel grid on screen (streamlit.js registers each grid by its key; one in a closed tab has no width)
SHOWN_GRID = ("[...(window.vizattnGrids || new Map()).values()]"
              ".find(g => g.root.isConnected && g.root.getBoundingClientRect().width > 0)")


def grid_eval(page, body: str):
    """Evaluate the JS expression `body` in the page with `grid` bound to the panel grid on screen (grid.js's
    instance: timings, pinTimings, factorBytes, maps(), pin)."""
    return page.evaluate(f"(() => {{ const grid = {SHOWN_GRID}; return {body}; }})()")


def wait_grid(page, title_end: str, timeout_ms: int = 120_000) -> None:
    """Until a panel grid has drawn the figure whose title ends with `title_end`: its images decoded and in
    place (the grid marks its root with the title of what it shows only then)."""
    grid_marked(page, f"[data-rendered$='{title_end}']").wait_for(state="attached", timeout=timeout_ms)


@contextlib.contextmanager
def lab_server(folder: Path, timeout: float = 90.0):
    """JupyterLab on a free port of 127.0.0.1 serving `folder`, with a token and no browser of its own; yields
    its base URL with the token (`{url}/lab/tree/NAME?token=…`) once its API answers. The app is exposed in the
    page as `window.jupyterapp` so a test can run cells through Lab's own commands. Config, data of its own and
    runtime files stay in `folder`/.jupyter-*; the extensions come from the environment (no network)."""
    import secrets

    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "JUPYTER_CONFIG_DIR": str(folder / ".jupyter-config"),
           "JUPYTER_RUNTIME_DIR": str(folder / ".jupyter-runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(folder / ".jupyter-settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(folder / ".jupyter-workspaces")}
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={folder}",
           "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=", "--LabApp.check_for_updates_class="
           "jupyterlab.NeverCheckForUpdate", "--ServerApp.terminals_enabled=False", "--LabApp.extension_manager=readonly",
           "--allow-root"]
    news = folder / ".jupyter-settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True, exist_ok=True)
    news.write_text('{"fetchNews": "false", "checkForUpdates": false}')  # no question about fetching news
    log = open(folder / ".jupyter-lab.log", "wb")
    proc = subprocess.Popen(cmd, cwd=folder, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited: {(folder / '.jupyter-lab.log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2).read()
                break
            except OSError:
                time.sleep(0.3)
        else:
            raise RuntimeError("jupyter lab did not answer")
        yield url, token
    finally:
        proc.terminate()  # only the process this helper started (its kernels are its children and go with it)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def notebook_json(cells: list[str]) -> str:
    """A notebook (nbformat 4) of these code cells, for Lab or nbclient to run."""
    import json

    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": [{"cell_type": "code", "id": f"c{i}", "metadata": {}, "execution_count": None, "outputs": [],
                   "source": src} for i, src in enumerate(cells)]})


def lab_run_cell(page, index: int) -> None:
    """Run cell `index` of the open notebook through Lab's own command (the app is exposed by lab_server)."""
    page.evaluate("async (i) => { const app = window.jupyterapp, nb = app.shell.currentWidget.content;"
                  " nb.activeCellIndex = i; await app.commands.execute('notebook:run-cell'); }", index)


def lab_open(page, base: str, token: str, name: str, timeout_ms: int = 120_000) -> None:
    """Open notebook `name` in Lab and wait until its kernel is idle, ready to run cells."""
    page.goto(f"{base}/lab/tree/{name}?token={token}")
    page.wait_for_function("() => { const a = window.jupyterapp, w = a && a.shell.currentWidget;"
                           " const k = w && w.sessionContext && w.sessionContext.session &&"
                           " w.sessionContext.session.kernel; return !!(k && k.status === 'idle'); }",
                           timeout=timeout_ms)
