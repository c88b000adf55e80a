"""The one input layer: every image mode and format enters as RGB; every bad byte string is refused with
VizattnError (never another exception, never a hang, never code run)."""
import io

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from vizattn import VizattnError
from tests.evil import evil_checkpoints
from vizattn.io import MAX_IMAGE_PIXELS, read_checkpoint, read_image


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


RGB = Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8))


def grey16(values: np.ndarray) -> Image.Image:
    return Image.frombytes("I;16", (30, 20), values.astype("<u2").tobytes())


def _encodable():
    """Every (mode, format) pair PIL can write, encoded once."""
    out = {}
    for mode in ("L", "LA", "P", "RGBA", "I;16", "CMYK", "1", "RGB"):
        im = grey16(np.arange(600) * 100) if mode == "I;16" else RGB.convert(mode)
        for fmt in ("PNG", "TIFF", "WEBP", "BMP", "JPEG"):
            try:
                out[f"{mode}-{fmt}"] = encode(im, fmt)
            except (OSError, ValueError, KeyError):
                pass
    return out


ENCODED = _encodable()


def test_the_mode_matrix_covers_what_people_upload():
    assert {"I;16-PNG", "CMYK-JPEG", "CMYK-TIFF", "P-PNG", "LA-PNG", "RGBA-WEBP", "L-BMP"} <= set(ENCODED)


@pytest.mark.parametrize("key", sorted(ENCODED))
def test_every_mode_and_format_becomes_rgb(key):
    out = read_image(ENCODED[key], f"x.{key.split('-')[1].lower()}")
    assert out.shape == (20, 30, 3) and out.dtype == np.uint8


def test_sixteen_bit_grey_keeps_its_range():
    out = read_image(encode(grey16(np.linspace(0, 65535, 600)), "PNG"))
    assert out.min() == 0 and out.max() == 255


def test_exif_orientation_is_applied():
    tall = Image.new("RGB", (30, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° on display
    assert read_image(encode(tall, "JPEG", exif=exif)).shape == (30, 20, 3)


def test_large_images_are_shrunk_and_bombs_refused():
    big = Image.new("RGB", (3000, 1500))
    assert read_image(encode(big, "PNG"), max_side=1024).shape == (512, 1024, 3)
    side = int(MAX_IMAGE_PIXELS ** 0.5) + 1
    bomb = encode(Image.new("1", (side, side)), "PNG")  # a few kB that would decode to > 16 M pixels
    assert len(bomb) < 100_000
    with pytest.raises(VizattnError, match="decompression bomb"):
        read_image(bomb)


def _valid_files():
    state = {"w": torch.arange(6.0).reshape(2, 3)}
    buf = io.BytesIO()
    torch.save(state, buf)
    from safetensors.torch import save as st_save

    return {"png": encode(RGB, "PNG"), "jpeg": encode(RGB, "JPEG"), "pt": buf.getvalue(), "safetensors": st_save(state)}


VALID = _valid_files()
FUZZ = settings(max_examples=60, deadline=3000, suppress_health_check=[HealthCheck.too_slow])


def _image_or_refusal(data):
    try:
        out = read_image(data, "fuzz.png")
    except VizattnError:
        return
    assert out.ndim == 3 and out.shape[2] == 3 and out.dtype == np.uint8


def _checkpoint_or_refusal(data, name):
    try:
        state, meta = read_checkpoint(data, name)
    except VizattnError:
        return
    assert all(isinstance(v, torch.Tensor) for v in state.values()) and isinstance(meta, dict)


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes_never_escape_the_image_reader(data):
    _image_or_refusal(data)


def truncated_and_mutated(valid: bytes, data) -> tuple[bytes, bytes]:
    """A prefix of a valid file, and the whole file with up to 8 bytes overwritten."""
    blob = bytearray(valid)
    cut = data.draw(st.integers(0, len(blob)))
    for _ in range(data.draw(st.integers(0, 8))):
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    return bytes(valid[:cut]), bytes(blob)


@FUZZ
@given(st.sampled_from(["png", "jpeg"]), st.data())
def test_truncated_and_mutated_images(kind, data):
    for blob in truncated_and_mutated(VALID[kind], data):
        _image_or_refusal(blob)


@FUZZ
@given(st.binary(max_size=4096), st.sampled_from(["x.safetensors", "x.pt", "x.pth", "x"]))
def test_random_bytes_never_escape_the_checkpoint_reader(data, name):
    _checkpoint_or_refusal(data, name)


@FUZZ
@given(st.sampled_from(["pt", "safetensors"]), st.data())
def test_truncated_and_mutated_checkpoints(kind, data):
    for blob in truncated_and_mutated(VALID[kind], data):
        _checkpoint_or_refusal(blob, f"x.{kind}")


def test_code_in_a_checkpoint_never_runs_through_the_loader(tmp_path):
    target = tmp_path / "ran.txt"
    for name, blob in evil_checkpoints(target).items():
        with pytest.raises(VizattnError):
            read_checkpoint(blob, name)
        (tmp_path / name).write_bytes(blob)
        with pytest.raises(VizattnError):
            read_checkpoint(tmp_path / name)
    assert not target.exists()


def test_code_in_a_checkpoint_never_runs_through_the_cli(tmp_path, capsys):
    from vizattn.cli import main

    target = tmp_path / "ran.txt"
    for name, blob in evil_checkpoints(target).items():
        (tmp_path / name).write_bytes(blob)
        assert main(["evaluate", "--model", str(tmp_path / name), "--scenes", "1"]) == 2
        assert "Traceback" not in capsys.readouterr().err
    assert not target.exists()


def test_missing_and_oversized_files(tmp_path, monkeypatch):
    with pytest.raises(VizattnError, match="No checkpoint file"):
        read_checkpoint(tmp_path / "nope.safetensors")
    import vizattn.io as vio

    monkeypatch.setattr(vio, "MAX_CHECKPOINT_BYTES", 10)
    (tmp_path / "big.pt").write_bytes(b"x" * 11)
    with pytest.raises(VizattnError, match="larger than"):
        vio.read_checkpoint(tmp_path / "big.pt")


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="FIFOs are POSIX")
def test_a_fifo_named_like_a_run_file_is_a_sentence_not_a_wait(tmp_path):
    """A FIFO where a run's file should be (a hostile --out folder, or a folder the Data set tab opens) blocks an
    open for reading until a writer comes: every reader of vizattn's small files refuses it at once instead."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    from vizattn.app.sections.dataset import read_file
    from vizattn.io import read_json_object
    from vizattn.outputs import read_small

    fifo = tmp_path / "summary.json"
    os.mkfifo(fifo)
    reads = {"read_small": lambda: read_small(tmp_path, "summary.json"),
             "read_json_object": lambda: read_json_object(fifo, "the summary"),
             "the Data set tab": lambda: read_file(tmp_path, "summary.json")}
    pool = ThreadPoolExecutor(1)
    try:
        for name, read in reads.items():
            with pytest.raises(VizattnError, match="not a regular file|not a plain file") as refused:
                pool.submit(read).result(timeout=10)  # a blocked open would time out here instead
            assert str(fifo) in str(refused.value) or name == "read_json_object", (name, refused.value)
    finally:
        try:  # a reader blocked on the FIFO (the bug) returns once a writer opens it: the pool can then end
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass
        pool.shutdown(wait=True)
