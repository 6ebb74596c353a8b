"""Writing a file so that it is either whole or as it was: what a full disk or Ctrl-C leaves."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TextIO


@contextlib.contextmanager
def replaced_when_written(path: str) -> Iterator[TextIO]:
    """A text file, written at ``path.tmp``, that replaces ``path`` once whole (a rename). On an
    error (a full disk, Ctrl-C) the temporary file is removed and ``path`` stays as it was; an
    OSError without a file name (a failed flush) is raised again naming ``path``.

    Example::

        with replaced_when_written("run.json") as f:
            json.dump(data, f)
    """
    tmp = path + ".tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            yield f
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(e, OSError) and e.filename is None and e.errno:
            raise OSError(e.errno, os.strerror(e.errno), path) from e
        raise
