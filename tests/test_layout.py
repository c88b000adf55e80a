"""The house as the README's Layout section states it: import-linter's contracts in pyproject.toml hold (layers,
lazy imports included, and independent foreign adapters), grimp finds no import cycle inside vizattn, ruff
passes, and the page stays thin."""
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*cmd) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_import_linter_contracts_hold():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
    out = _run(lint, "--no-cache")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "broken" not in out.stdout.lower().replace("0 broken", "")


def test_no_import_cycle_inside_vizattn():
    import grimp

    graph = grimp.build_graph("vizattn", cache_dir=None)  # lazy imports inside functions are edges too
    cycles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if graph.chain_exists(imported=module, importer=imported):  # imported reaches back to module
                cycles.append(f"{module} -> {imported}")
    assert not cycles, cycles


def test_ruff_passes():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or "ruff"
    out = _run(ruff, "check", ".")
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_page_is_thin_and_modules_small():
    assert len((ROOT / "app.py").read_text().splitlines()) <= 300
    one_job = {"vizattn/data/scenes.py"}  # the README's Layout section says why these are longer
    big = [str(p.relative_to(ROOT)) for p in (ROOT / "vizattn").rglob("*.py")
           if len(p.read_text().splitlines()) > 450 and str(p.relative_to(ROOT)) not in one_job]
    assert not big, big


def test_the_page_draws_before_pytorch_is_imported():
    """The page's own modules import no PyTorch: the sidebar draws while the first forward's imports happen."""
    code = "import sys, vizattn.app.page; print('torch' in sys.modules)"
    out = _run(sys.executable, "-c", code)
    assert out.returncode == 0 and out.stdout.strip().splitlines()[-1] == "False", out.stdout + out.stderr
