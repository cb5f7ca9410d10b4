"""Build: the engine and the row making are compiled with mypyc where they can be (README).

``pip install .`` compiles the modules in ``COMPILED`` with mypyc (the compiler of
the mypy project, for the type-annotated Python this package is written in) into C
extensions that take the place of the ``.py`` files: the same code, about 1.3 times
faster end to end. Everything else stays Python. An editable install
(``pip install -e .``) compiles nothing, so that an edited module is the module run;
``TCPFLOW_ANALYZER_PURE=1`` turns compiling off for any install. A machine without
a C compiler gets the pure-Python package and a warning: the results are the same
(``tests/compiled_check.py`` checks that on every capture).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

COMPILED = [
    "tcpflow_analyzer/seq.py",
    "tcpflow_analyzer/states.py",
    "tcpflow_analyzer/segment.py",
    "tcpflow_analyzer/shard.py",
    "tcpflow_analyzer/compact.py",
    "tcpflow_analyzer/zeek.py",
    "tcpflow_analyzer/tracker.py",
    "tcpflow_analyzer/findings.py",
    "tcpflow_analyzer/freeze.py",
    "tcpflow_analyzer/fastread.py",
    "tcpflow_analyzer/csvtext.py",
    "tcpflow_analyzer/rows.py",
]

# The build environment has none of the type stubs of the development one (numpy,
# pandas-stubs): what they type is Any here, which compiles to the same dynamic calls.
# The strict check is CI's mypy run; these let the rest through.
_MYPY_FLAGS = [
    "--ignore-missing-imports",
    "--no-warn-unused-ignores",
    "--no-warn-return-any",
    "--allow-subclassing-any",
    "--allow-untyped-calls",
]

# The setuptools commands that build a wheel to install (not metadata, not editable).
_BUILDS = {"bdist_wheel", "build", "build_ext", "install"}


def _warn(message: str) -> None:
    print(f"tcpflow-analyzer build: {message}", file=sys.stderr)


def _ext_modules() -> list[Any]:
    if os.environ.get("TCPFLOW_ANALYZER_PURE") == "1":
        _warn("TCPFLOW_ANALYZER_PURE=1: nothing compiled (pure Python)")
        return []
    if not _BUILDS.intersection(sys.argv[1:]):
        return []  # metadata or an editable install: nothing to compile
    try:
        from mypyc.build import mypycify
    except ImportError:
        _warn("mypyc is not available: nothing compiled (pure Python)")
        return []
    try:
        return list(mypycify([*_MYPY_FLAGS, *COMPILED], opt_level="3", debug_level="0"))
    except (Exception, SystemExit) as exc:  # the pure package works the same, only slower
        _warn(f"mypyc failed ({exc!r}): nothing compiled (pure Python)")
        return []


class OptionalBuildExt(build_ext):
    """Build the compiled modules if a C compiler can; otherwise install pure Python."""

    def run(self) -> None:
        if self.editable_mode:
            return  # editable: the .py files are what runs
        try:
            super().run()
        except Exception as exc:
            self._give_up(exc)

    def build_extension(self, ext: Any) -> None:
        if not self.extensions:
            return  # given up on an earlier one
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._give_up(exc)

    def _give_up(self, exc: Exception) -> None:
        """All or nothing: the compiled modules share one library, so remove any built."""
        _warn(f"could not compile ({exc}): installing pure Python")
        for ext in self.extensions:
            path = self.get_ext_fullpath(ext.name)
            if os.path.exists(path):
                os.remove(path)
        self.extensions = []


setup(ext_modules=_ext_modules(), cmdclass={"build_ext": OptionalBuildExt})
