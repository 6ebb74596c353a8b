"""What a user sees on the terminal: our lines, real warnings and errors, one progress line.

Quiet by default. TensorFlow's C++ logging prints start-up chatter (the absl ``InitializeLog``
notice, oneDNN, CUDA-stub and CPU-feature lines) while it is imported, before
``TF_CPP_MIN_LOG_LEVEL`` is consulted, and advisory lines at run time that this variable does
govern. A program started as ``python -m mmnas_tf.<entry point>`` imports this module first
(through ``mmnas_tf.cli``), which, before TensorFlow is imported: reads ``--verbosity`` from the
command line, sets ``TF_CPP_MIN_LOG_LEVEL`` from it (a value the user exported is kept when no
``--verbosity`` is given, and sets the verbosity instead), and imports TensorFlow with the C++ log
lines below that level filtered out of stderr (everything else written meanwhile is passed on).
Importing this module anywhere else (a library user, the tests) changes nothing.

``--verbosity``: 0 (default) our lines, Python warnings and errors; 1 adds TensorFlow's C++
warnings and errors and absl INFO; 2 everything TensorFlow logs.

Progress (:class:`Progress`, the one implementation: data writing, training, search, evaluation,
hard-negative mining) goes to stderr: a self-updating line on a terminal; one line per pass (an
epoch, a split) when stderr is not a terminal; nothing under ``--noprogress``
(:func:`set_progress`).
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import TextIO

from mmnas_tf import machine

#: --verbosity -> TF_CPP_MIN_LOG_LEVEL (0 shows INFO and up, 1 WARNING, 2 ERROR, 3 FATAL only).
#: At 0 even C++ ERROR lines are hidden: on a CPU machine they are advisories (no CUDA driver,
#: oneDNN falling back to Eigen); a failing op raises a Python exception that carries its error.
CPP_LOG_LEVEL = {0: 3, 1: 1, 2: 0}
VERBOSITY_HELP = (
    "0: our lines, Python warnings and errors; 1: also TensorFlow's C++ warnings and errors and "
    "absl INFO; 2: everything TensorFlow logs. Default 0, or what TF_CPP_MIN_LOG_LEVEL implies."
)

#: A C++ log line: absl's ``I0000 00:00:1712345678.123456  1234 file.cc:12] ...`` or TensorFlow's
#: older ``2024-01-02 03:04:05.678901: I path/file.cc:12] ...``; group ``level`` is I/W/E/F.
CPP_LINE = re.compile(
    r"^(?:(?P<level>[IWEF])\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [^\s\]]+:\d+\]"
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: (?P<level2>[IWEF]) [^\s\]]+:\d+\])"
)
_ABSL_NOTICE = "WARNING: All log messages before absl::InitializeLog() is called"
_LEVELS = "IWEF"


def verbosity_from_argv(argv: Sequence[str]) -> int | None:
    """The ``--verbosity`` value of a command line (``--verbosity=N`` or ``--verbosity N``);
    None when absent or not an integer (the flag parser reports a bad value)."""
    for i, arg in enumerate(argv):
        if arg.startswith("--verbosity="):
            value = arg.split("=", 1)[1]
        elif arg == "--verbosity" and i + 1 < len(argv):
            value = argv[i + 1]
        else:
            continue
        try:
            return int(value)
        except ValueError:
            return None
    return None


def resolve_verbosity(flag: int | None, environ) -> int:
    """``flag`` (clipped to 0..2) when given; else the verbosity that an exported
    ``TF_CPP_MIN_LOG_LEVEL`` implies (0 -> 2, 1 -> 1, 2 or more -> 0); else 0."""
    if flag is not None:
        return min(max(flag, 0), 2)
    try:
        level = int(environ.get("TF_CPP_MIN_LOG_LEVEL", ""))
    except ValueError:
        return 0
    return 2 if level <= 0 else 1 if level == 1 else 0


def filter_cpp_log(text: str, verbosity: int) -> str:
    """``text`` (native stderr output) without the C++ log lines that ``verbosity`` hides and
    without absl's ``InitializeLog`` notice below verbosity 2. A line that is neither continues the
    message before it (multi-line messages: the CPU-feature list, Grappler's type dumps) and is
    kept or hidden with it; lines before the first message are kept."""
    if verbosity >= 2:
        return text
    minimum = CPP_LOG_LEVEL[verbosity]
    kept, dropping = [], False
    for line in text.splitlines(keepends=True):
        match = CPP_LINE.match(line)
        if match:
            level = match.group("level") or match.group("level2")
            dropping = _LEVELS.index(level) < minimum
        elif line.startswith(_ABSL_NOTICE):
            dropping = True
        # any other line continues the message before it (kept or dropped with it)
        if not dropping:
            kept.append(line)
    return "".join(kept)


def import_quietly(module: str, verbosity: int) -> None:
    """Imports ``module`` (TensorFlow) with file descriptor 2 (where its C++ code writes)
    captured, then writes the capture back through :func:`filter_cpp_log`. Python's
    ``sys.stderr`` writes meanwhile go straight to the terminal, so the capture holds only native
    output (a line there that is not a log line continues the message before it)."""
    if module in sys.modules:
        return
    python_stderr = sys.stderr
    python_stderr.flush()
    saved = os.dup(2)
    # not closed here: a logging handler made during the import may keep writing to it
    sys.stderr = os.fdopen(
        os.dup(saved),
        "w",
        buffering=1,
        errors="backslashreplace",
        encoding=getattr(python_stderr, "encoding", None) or "utf-8",
    )
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            importlib.import_module(module)
        finally:
            sys.stderr.flush()
            sys.stderr = python_stderr
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", "replace")
            python_stderr.write(filter_cpp_log(text, verbosity))
            python_stderr.flush()


def quiet_start(argv: Sequence[str], environ=os.environ, machine_settings: bool = True) -> int:
    """Sets ``TF_CPP_MIN_LOG_LEVEL`` for the command line's verbosity and imports TensorFlow
    quietly; returns the verbosity. ``machine_settings``: also sets ``TF_ENABLE_ONEDNN_OPTS``
    from ``--onednn_opts`` or the machine's choice (off for a program whose numerics are pinned
    to TensorFlow's own default, such as the benchmark's table builders)."""
    flag = verbosity_from_argv(argv[1:])
    verbosity = resolve_verbosity(flag, environ)
    if flag is not None or "TF_CPP_MIN_LOG_LEVEL" not in environ:
        environ["TF_CPP_MIN_LOG_LEVEL"] = str(CPP_LOG_LEVEL[verbosity])
    if machine_settings:  # TensorFlow reads it once, at import
        serving = main_module() in machine.SERVING_PROGRAMS
        machine.set_onednn_env(argv[1:], environ, serving=serving)
    import_quietly("tensorflow", verbosity)
    return verbosity


# ---- progress -------------------------------------------------------------------------------

_progress = {"enabled": True}


def set_progress(enabled: bool) -> None:
    """Turns progress output on or off for the process (``--[no]progress``)."""
    _progress["enabled"] = bool(enabled)


def progress_enabled() -> bool:
    return _progress["enabled"]


def format_seconds(seconds: float) -> str:
    """``m:ss`` or ``h:mm:ss``."""
    seconds = int(max(seconds, 0) + 0.5)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _field(name: str, value) -> str:
    if isinstance(value, float):
        return f"{name} {value:.4g}"
    return f"{name} {value}"


class Progress:
    """Progress of ``total`` units (None = unknown) on stderr: done/total, rate, fields, ETA.

    On a terminal (``stream.isatty()``) :meth:`update` rewrites one line at most every
    ``interval`` seconds; otherwise it writes nothing and :meth:`close` (or :meth:`write_line`)
    writes one line per pass. ``enabled`` False (default: the process's ``--[no]progress``)
    writes nothing at all. The rate (and so the ETA) leaves out the first update, which usually
    pays for tracing. ``clock`` and ``is_tty`` are for tests.

    Args:
      total: units of the pass.
      label: leads the line.
      unit: the rate's unit (``"cycles"`` -> ``12.5 cycles/s``).
      later: units of the passes after this one that the ETA covers (the rest of a run or of a
        search phase), named by ``eta_label`` (``ETA run 3:20``).
    """

    def __init__(
        self,
        total: int | None,
        label: str,
        enabled: bool | None = None,
        unit: str = "",
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        interval: float = 0.5,
        is_tty: bool | None = None,
        later: int = 0,
        eta_label: str = "",
    ):
        self.total, self.label, self.unit = total, label, unit
        self.later, self.eta_label = later, eta_label
        self.enabled = progress_enabled() if enabled is None else enabled
        self.stream = stream or sys.stderr
        self.tty = _isatty(self.stream) if is_tty is None else is_tty
        self.clock, self.interval = clock, interval
        self.done, self.start = 0, clock()
        self.first: tuple[int, float] | None = None  # (done, time) after the first update
        self._shown, self._width, self.fields, self.last_line = None, 0, {}, ""

    def rate(self) -> float | None:
        """Units per second after the first update (None until a second one)."""
        if self.first is None or self.done <= self.first[0]:
            return None
        return (self.done - self.first[0]) / max(self.clock() - self.first[1], 1e-9)

    def eta(self) -> float | None:
        """Seconds left of this pass and the ``later`` units at the current rate (None without a
        total or a rate)."""
        rate = self.rate()
        if self.total is None or not rate:
            return None
        return (max(self.total - self.done, 0) + self.later) / rate

    def line(self) -> str:
        count = f"{self.done}/{self.total}" if self.total is not None else f"{self.done}"
        parts = [f"{self.label}: {count}" if self.label else count]
        parts += [_field(k, v) for k, v in self.fields.items() if v is not None]
        rate, eta = self.rate(), self.eta()
        if rate is not None:
            number = f"{rate:.1f}" if rate < 100 else f"{rate:.0f}"
            parts.append(f"{number} {self.unit}/s" if self.unit else f"{number}/s")
        if eta is not None and (self.done < (self.total or 0) or self.later):
            name = f"ETA {self.eta_label}" if self.eta_label else "ETA"
            parts.append(f"{name} {format_seconds(eta)}")
        return " - ".join(parts)

    def update(self, n: int = 1, **fields) -> None:
        """``n`` more units done; ``fields`` (``loss=...``) join the line (None hides one)."""
        self.done += n
        self.fields.update(fields)
        now = self.clock()
        if self.first is None:
            self.first = (self.done, now)
        if not (self.enabled and self.tty):
            return
        if self._shown is None or now - self._shown >= self.interval or self.done == self.total:
            self._shown = now
            self._rewrite(self.line())

    def write_line(self, text: str) -> None:
        """A line that stays (an epoch's summary), in both modes; replaces the self-updating one."""
        if not self.enabled:
            return
        self.clear()
        self.stream.write(text + "\n")
        self.stream.flush()

    def clear(self) -> None:
        """Blanks the self-updating line (before other output, e.g. a line on stdout)."""
        if self.enabled and self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0

    def close(self, **fields) -> str:
        """Ends the pass: its line stays (the one line when not a terminal); returns it."""
        self.fields.update(fields)
        self.last_line = self.line()
        self.write_line(self.last_line)
        return self.last_line

    def _rewrite(self, text: str) -> None:
        self.last_line = text
        pad = max(self._width - len(text), 0)
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()
        self._width = len(text)


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def main_module() -> str | None:
    """The module this process runs as ``python -m`` (None for a script or an interpreter)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return None if spec is None else spec.name


def running_as_program() -> bool:
    """Whether this process is ``python -m mmnas_tf.<module>``."""
    return (main_module() or "").startswith("mmnas_tf.")


if running_as_program():
    quiet_start(sys.argv)
