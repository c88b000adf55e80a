"""What a user installs: the wheel (not editable) carries the bundled models and the app. Built here, installed
into a fresh virtual environment (its dependencies taken from this one's site-packages, so nothing is
downloaded), and run from another folder: `vizattn models`, a bundled model's prediction, `vizattn app` until its
health check answers."""
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp / "dist")], check=True, timeout=300, cwd=tmp)
    wheel = next((tmp / "dist").glob("vizattn-*.whl"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = next((venv / "lib").glob("python3*/site-packages"))
    # the dependencies (torch, streamlit, …) from this environment; its .pth files (our editable install among
    # them) are not processed for a path listed this way, so only the wheel's vizattn can be imported
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps",
                    "-q", str(wheel)], check=True, timeout=300)
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    return wheel, venv, elsewhere


def test_the_wheel_carries_the_models_and_the_app_but_no_development_tools(installed):
    names = zipfile.ZipFile(installed[0]).namelist()
    assert "vizattn/pretrained/criss_cross.safetensors" in names and "vizattn/pretrained/criss_cross.json" in names
    assert "vizattn/app/page.py" in names and "vizattn/viz/panel_grid_frontend/hover.js" in names
    assert "vizattn/app/clickable_image.js" in names and "vizattn/viz/panel_grid_frontend/streamlit.js" in names
    assert "vizattn/pretrained/opening/criss_cross.safetensors" in names and "vizattn/viz/colormaps.json" in names
    assert not any(n.startswith(("benchmarks/", "tests/")) for n in names)


def test_models_and_a_prediction_from_another_folder(installed):
    _, venv, elsewhere = installed
    out = subprocess.run([str(venv / "bin" / "vizattn"), "models"], cwd=elsewhere, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert "criss_cross" in out.stdout and "psa_parallel" in out.stdout
    code = ("import numpy as np, vizattn; from vizattn.evaluate import predict; from vizattn.data import "
            "generate_scene; m = vizattn.load('criss_cross'); s = generate_scene(1000000007, (96, 96)); "
            "p = predict(m, s.image); print(vizattn.__file__); print(float((p == s.labels).mean())); "
            "from vizattn.opening import read_opening; print(read_opening().pixel == (192, 192))")
    out = subprocess.run([str(venv / "bin" / "python"), "-c", code], cwd=elsewhere, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    where, accuracy, opening = out.stdout.split()
    assert where.startswith(str(venv)) and float(accuracy) > 0.5  # the bundled weights, not random ones
    assert opening == "True"  # the page's kept opening travels with the weights it was written from


def test_vizattn_app_serves_from_the_installed_package(installed):
    _, venv, elsewhere = installed
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([str(venv / "bin" / "vizattn"), "app", "--port", str(port)], cwd=elsewhere,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline, answer = time.monotonic() + 120, b""
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                answer = urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=5).read()
                break
            except OSError:
                time.sleep(0.3)
        assert answer == b"ok", proc.stdout.read1().decode(errors="replace") if proc.poll() is not None else "no answer"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
