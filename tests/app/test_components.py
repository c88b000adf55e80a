"""The page's two components as the page sends them: the grid's one binary payload (its JSON args, then the
factors, read back as streamlit.js reads it) and the clickable image's JPEG."""
import io

import numpy as np
from PIL import Image

from vizattn.app.clickable_image import jpeg
from vizattn.app.panel_grid import pack, unpack


def test_the_grid_payload_carries_the_args_and_the_factors_byte_for_byte():
    factors = bytes(range(256)) * 3
    args = {"title": "criss_cross at pixel (1, 2)", "panels": [{"title": "naïve · ü"}], "blob": factors}
    data = pack(args, "attn_grid")
    assert int.from_bytes(data[:4], "little") == len(data) - 4 - len(factors)  # the JSON's length, then the JSON
    rest, blob = unpack(data)
    assert blob == factors
    assert rest == {"title": "criss_cross at pixel (1, 2)", "panels": [{"title": "naïve · ü"}], "key": "attn_grid"}
    rest, blob = unpack(pack(dict(args, blob=None), "compare_grid"))  # the grid holds them: the args alone
    assert blob == b"" and rest["key"] == "compare_grid"


def test_the_clickable_image_is_sent_as_a_jpeg_of_the_shown_picture():
    shown = np.zeros((30, 50, 3), np.uint8)
    shown[:, 25:] = 200
    picture = Image.open(io.BytesIO(jpeg(shown)))
    assert picture.format == "JPEG" and picture.size == (50, 30)
    back = np.asarray(picture.convert("RGB")).astype(int)
    assert np.abs(back[:, :20] - 0).max() <= 4 and np.abs(back[:, 30:] - 200).max() <= 4
