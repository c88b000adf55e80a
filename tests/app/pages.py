"""The page under AppTest, opened on a model named in the sidebar's path field (a file, a folder or a factory)."""
from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def page_with(path: str, timeout: int = 180) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.run()
    at.sidebar.radio(key="model_source").set_value("a checkpoint path on this machine").run()
    at.sidebar.text_input(key="ckpt_path").set_value(path).run()
    assert not at.exception, at.exception
    return at


def grid_payloads(at: AppTest) -> list[tuple[dict, bytes]]:
    """(args, factors) of every panel grid the last run sent, in tree order (AppTest shows a custom component as an
    unknown element; its one binary payload is unpacked as streamlit.js unpacks it)."""
    from vizattn.app.panel_grid import unpack

    def walk(node):
        yield node
        for child in getattr(node, "children", {}).values():
            yield from walk(child)

    return [unpack(el.proto.bytes) for el in walk(at._tree)
            if getattr(el, "type", "") == "bidi_component" and "vizattn_panel_grid" in el.proto.component_name]
