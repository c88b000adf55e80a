"""Through a real kernel (nbclient, ipykernel): `vizattn.show(...)` renders as a widget view, and a bad model is
one VizattnError line in the cell, never a traceback from inside vizattn or the widget."""
import nbformat
import pytest
from nbclient import NotebookClient

from benchmarks.browser import ROOT, notebook_json
from vizattn.zoo import available

pytestmark = pytest.mark.skipif(not available(), reason="needs the bundled models in vizattn/pretrained/")


def test_show_renders_a_widget_view_and_a_bad_model_is_one_sentence(tmp_path):
    nb = nbformat.reads(notebook_json([
        'import vizattn\nw = vizattn.show("criss_cross", "scene:3", pixel=(20, 30))\nw',
        "print(w.pixel, len(w.capture))",
        'vizattn.show("no_such_model", "scene:3")',
        'vizattn.show("criss_cross", "no/such/image.png")',
    ]), as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(ROOT)}}).execute()
    shown, printed, model, image = (c.outputs for c in nb.cells)
    views = [o for o in shown if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(views) == 1 and views[0]["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]
    assert printed[0]["text"].strip() == "(20, 30) 1"
    for outputs, says in ((model, "'no_such_model' is neither a bundled model"), (image, "no/such/image.png")):
        (err,) = outputs
        assert err["output_type"] == "error" and err["ename"] == "VizattnError" and says in err["evalue"]
        assert err["traceback"] == [f"VizattnError: {err['evalue']}"]  # one line, no frames
