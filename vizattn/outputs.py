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


def read_bounded(path: Path, what: str, limit: int = 1 << 20, fix: str = "fix or remove it") -> bytes:
    """The bytes of a small regular file at `path`: never through a link, never waiting on a FIFO or a device (it
    is opened without blocking and must be a regular file), at most `limit` bytes; anything else is one sentence
    naming `what` the file is and what to do (`fix`)."""
    import errno
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        reason = "a symbolic link is refused" if err.errno == errno.ELOOP else (err.strerror or type(err).__name__)
        raise VizattnError(f"{what} cannot be read ({reason}); {fix}.") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise VizattnError(f"{what} is not a regular file; {fix}.")
        data = b"" if info.st_size > limit else f.read(limit + 1)  # refused unread when it says it is too large
    if info.st_size > limit or len(data) > limit:  # (or grew while read)
        raise VizattnError(f"{what} is larger than {limit / 2**20:g} MB, far beyond what it should hold; it was not "
                           f"read: {fix}.")
    return data


def read_small(folder: Path, name: str, limit: int = 1 << 20) -> bytes:
    """A small file directly inside `folder` that vizattn wrote (read_bounded)."""
    return read_bounded(folder / name, f"'{folder / name}'", limit, "remove it or choose another --out")


def _plain_name(name: str) -> None:
    if Path(name).name != name or name in ("", ".", ".."):
        raise VizattnError(f"'{name}' is not a plain file name; nothing was written.")
