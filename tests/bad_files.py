"""A corpus of odd and broken files, written by the tests that need one (nothing is stored).

:func:`write_image_corpus` fills a class folder with every kind of file a user's MRI folder may
hold and returns what the one image rule (``medrepro.data.images``) must make of each.
:func:`fill_disk` fills a small file system; :func:`small_disk` mounts one (root only).
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

USED = None  # the rule's verdict for a file it reads


def picture(seed: int = 0, size=(40, 48)) -> np.ndarray:
    """A smooth grey test picture ``(H, W)`` uint8 (JPEG-friendly, distinct per seed)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size[0], 0:size[1]]
    img = 120 + 80 * np.sin(x / (4 + seed % 5)) * np.cos(y / 6) + rng.normal(0, 3, size)
    return img.clip(0, 255).astype(np.uint8)


def _encoded(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose header declares ``width × height`` pixels (CRC fixed)."""
    data = bytearray(_encoded(Image.new("L", (8, 8)), "PNG"))
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return bytes(data)


def write_image_corpus(folder: Path, *, seed: int = 0) -> dict[str, str | None]:
    """Write the corpus into ``folder``; return ``{name: expected problem, or None if used}``.

    Names carry spaces, parentheses and non-ASCII letters, as real folders do.
    """
    folder.mkdir(parents=True, exist_ok=True)
    gray = Image.fromarray(picture(seed))
    rgb = gray.convert("RGB")
    good = _encoded(gray, "JPEG", quality=92)
    files: dict[str, bytes] = {
        "good (1).jpg": good,
        "ünïcödé (2).jpg": _encoded(rgb, "JPEG", quality=90),
        "png inside (1).jpg": _encoded(rgb, "PNG"),
        "bmp inside (1).jpg": _encoded(rgb, "BMP"),
        "cmyk (1).jpg": _encoded(rgb.convert("CMYK"), "JPEG", quality=95),
        "sixteen bit (1).png": _encoded(Image.fromarray(picture(seed).astype(np.uint16) * 257),
                                        "PNG"),
        "alpha (1).png": _encoded(Image.merge("RGBA", (*rgb.split(), gray.point(lambda v: 128))),
                                  "PNG"),
        "zero (1).jpg": b"",
        "truncated (1).jpg": good[: len(good) // 2],
        "notes (1).jpg": b"this is not an image\n",
        "tiff inside (1).jpg": _encoded(rgb, "TIFF"),
        "bomb (1).png": png_bomb(),
        "readme.txt": b"about these images\n",
        ".DS_Store": b"\0\0\0\1Bud1",
    }
    frames = [f.convert("P", palette=Image.Palette.ADAPTIVE)
              for f in (rgb, rgb.transpose(Image.Transpose.FLIP_LEFT_RIGHT))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    files["animated (1).jpg"] = buf.getvalue()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    (folder / "folder (1).jpg").mkdir()
    os.symlink("loop (1).jpg", folder / "loop (1).jpg")
    os.symlink("nowhere.jpg", folder / "dangling (1).jpg")
    os.mkfifo(folder / "fifo (1).jpg")
    return {"good (1).jpg": USED, "ünïcödé (2).jpg": USED, "png inside (1).jpg": USED,
            "bmp inside (1).jpg": USED, "cmyk (1).jpg": USED, "sixteen bit (1).png": USED,
            "alpha (1).png": USED, "animated (1).jpg": USED,
            "zero (1).jpg": "empty file", "truncated (1).jpg": "truncated or corrupt",
            "notes (1).jpg": "not an image", "tiff inside (1).jpg": "unsupported format",
            "bomb (1).png": "too large", "readme.txt": "not an image name",
            "folder (1).jpg": "not a file", "loop (1).jpg": "broken link",
            "dangling (1).jpg": "broken link", "fifo (1).jpg": "not a file"}


def fill_disk(folder: Path, *, leave: int = 0) -> Path:
    """Write ``folder/ballast`` until the file system is full (less ``leave`` bytes)."""
    ballast = Path(folder) / "ballast"
    with open(ballast, "ab") as fh:
        try:
            while True:
                free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
                if free <= leave:
                    break
                fh.write(b"\0" * min(1 << 16, max(1, free - leave)))
                fh.flush()
        except OSError:
            pass
    return ballast


@contextlib.contextmanager
def small_disk(where: Path, *, size: str = "8m"):
    """A tmpfs of ``size`` mounted at ``where`` for the block (root only; else pytest skips:
    a full disk cannot be had without one)."""
    import pytest

    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
            capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root (a real full disk is the point)")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)
