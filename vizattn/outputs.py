"""The one door every output goes out through: files are written only directly inside a real folder the user
named, never through a symbolic link, and a whole set of names is checked before the first byte is written."""
from __future__ import annotations

import os
from pathlib import Path

from vizattn.errors import VizattnError


def output_dir(out: str | Path) -> Path:
    """The folder named by --out, made if missing. Refused with one sentence: something there that is not a
    folder (a file, /dev/null) or a symbolic link (which could point writes anywhere)."""
    out = Path(out)
    if out.is_symlink():
        raise VizattnError(f"--out '{out}' is a symbolic link; vizattn writes only into a real folder it can see. "
                           "Give the folder itself.")
    if out.exists() and not out.is_dir():
        raise VizattnError(f"--out '{out}' exists and is not a folder; give a folder (it is made if missing).")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise VizattnError(f"--out '{out}' cannot be made ({err.strerror}); give a folder you can write to.") from None
    return out


def subfolder(out: Path, name: str) -> Path:
    """A folder directly inside `out` (made if missing), refused if something planted there is a link or a file."""
    _plain_name(name)
    folder = out / name
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise VizattnError(f"'{folder}' is a symbolic link or a file vizattn did not make; remove it or choose "
                           "another --out. Nothing was written.")
    folder.mkdir(exist_ok=True)
    return folder


def check_names(out: Path, names) -> None:
    """Before anything is written: none of these names inside `out` is a planted link or a folder."""
    for name in names:
        _plain_name(name)
        target = out / name
        if target.is_symlink() or target.is_dir():
            raise VizattnError(f"'{target}' is a symbolic link or a folder vizattn did not make; remove it or choose "
                               "another --out. Nothing was written.")


def write_into(out: Path, name: str, data: bytes) -> Path:
    """Write one file directly inside `out`, never through a symbolic link planted there and never elsewhere."""
    _plain_name(name)
    target = out / name
    if target.is_symlink():
        raise VizattnError(f"'{target}' is a symbolic link vizattn did not make; remove it or choose another --out.")
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    except OSError as err:
        raise VizattnError(f"'{target}' cannot be written ({err.strerror}); choose another --out.") from None
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return target


def replace_into(out: Path, name: str, data: bytes) -> Path:
    """`write_into` a temporary name, then rename into place: readers see the old file or the whole new one."""
    tmp = write_into(out, f".{name}.{os.getpid()}.tmp", data)
    os.replace(tmp, out / name)  # a rename replaces a planted link itself; it never writes through it
    return out / name


def read_small(folder: Path, name: str, limit: int = 1 << 20) -> bytes:
    """A small file directly inside `folder`, refused if it is a link, not a plain file or over `limit` bytes."""
    path = folder / name
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as err:
        raise VizattnError(f"'{path}' cannot be read ({err.strerror}; a symbolic link is refused); remove it or "
                           "choose another --out.") from None
    with os.fdopen(fd, "rb") as f:
        if not os.path.isfile(path) or os.fstat(f.fileno()).st_size > limit:
            raise VizattnError(f"'{path}' is not a small plain file vizattn wrote; remove it or choose another --out.")
        return f.read(limit + 1)


def _plain_name(name: str) -> None:
    if Path(name).name != name or name in ("", ".", ".."):
        raise VizattnError(f"'{name}' is not a plain file name; nothing was written.")
