"""Labels enter through one door (vizattn.io.read_label): PNG only, told by content; turned like their image's
EXIF orientation; 1-bit labels read as 0 and 1. An EPS named .png never reaches Ghostscript."""
import io
import shutil
import os

import numpy as np
import pytest
from PIL import Image

from vizattn import io as vio
from vizattn.analyze import Job, analyze
from vizattn.labels import read_labels
from vizattn.errors import VizattnError

# PostScript that would write a file and then spin forever if an interpreter ever ran it
def eps(marker) -> bytes:
    return (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 32 24\n"
            + f"({marker}) (w) file dup (ran) writestring closefile\n{{ }} loop\n".encode() + b"showpage\n%%EOF\n")


def test_ghostscript_is_installed_in_ci_so_the_eps_refusal_is_real():
    if os.environ.get("CI") == "true":
        assert shutil.which("gs"), ".ci/run installs Debian's ghostscript"


def test_an_eps_named_png_is_refused_as_a_label_and_never_interpreted(tmp_path):
    marker = tmp_path / "ran.txt"
    data = eps(marker)
    with Image.open(io.BytesIO(data)) as im:  # an unrestricted open would hand it to the EPS plugin (Ghostscript)
        assert im.format == "EPS"
    with pytest.raises(VizattnError, match="not a PNG file"):
        vio.read_label(data, "a.png")
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir(), labels.mkdir()
    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(images / "a.png")
    (labels / "a.png").write_bytes(data)
    with pytest.raises(VizattnError, match="'a.png' is not a PNG file") as info:
        analyze(Job(model="criss_cross", images=str(images), labels=str(labels), queries=4), tmp_path / "out",
                progress=False)
    assert "\n" not in str(info.value)
    assert not marker.exists()


def test_one_bit_labels_read_class_one_as_one():
    bits = np.zeros((6, 9), bool)
    bits[2:4, 3:7] = True
    buf = io.BytesIO()
    Image.fromarray(bits).convert("1").save(buf, format="PNG")
    arr = vio.read_label(buf.getvalue(), "bits.png")
    assert arr.dtype == np.int64 and set(np.unique(arr).tolist()) == {0, 1}
    assert np.array_equal(arr, bits.astype(np.int64))


@pytest.mark.parametrize("orientation", [1, 3, 6, 8, 2, 5])
def test_a_label_turns_as_its_exif_rotated_image_does(tmp_path, orientation):
    """The image is a JPEG whose stored pixels are red where the label is 1; after both are read, the red pixels
    of the turned image are exactly the label's ones (no stretching)."""
    h, w = 24, 40  # stored: wider than tall
    label = np.zeros((h, w), np.uint8)
    label[3:10, 5:30] = 1
    stored = np.where(label[..., None] == 1, np.uint8([255, 0, 0]), np.uint8([0, 0, 255]))
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(stored).save(tmp_path / "im.jpg", quality=98, exif=exif.tobytes())
    Image.fromarray(label).save(tmp_path / "im.png")
    image = vio.read_image(tmp_path / "im.jpg")
    assert vio.image_geometry(tmp_path / "im.jpg") == (h, w, orientation)
    got = read_labels(tmp_path / "im.png", image.shape[:2], ["a", "b"], np.zeros((2, 3)), False,
                      vio.image_geometry(tmp_path / "im.jpg")[2])
    assert got.shape == image.shape[:2]
    assert np.array_equal(got, (image[..., 0] > 127).astype(np.int64))


def test_a_label_with_its_own_orientation_or_an_odd_mode_is_refused():
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    Image.fromarray(np.zeros((4, 5), np.uint8)).save(buf, format="PNG", exif=exif.tobytes())
    with pytest.raises(VizattnError, match="orientation of its own"):
        vio.read_label(buf.getvalue(), "turned.png")
    buf = io.BytesIO()
    Image.fromarray(np.zeros((4, 5, 2), np.uint8), "LA").save(buf, format="PNG")
    with pytest.raises(VizattnError, match="is a LA PNG"):
        vio.read_label(buf.getvalue(), "la.png")
    with pytest.raises(VizattnError, match="truncated"):
        buf = io.BytesIO()
        Image.fromarray(np.arange(4000, dtype=np.uint8).reshape(40, 100)).save(buf, format="PNG")
        vio.read_label(buf.getvalue()[:120], "cut.png")
