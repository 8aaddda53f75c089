"""The code of the documentation: fenced Python blocks, gathered into the files they build.

Each Python block of a tested page names the file it belongs to: ```` ```python title="ivr.py" ````
(Material shows the title above the block). The blocks of one title, in page order, are that
file; a test writes it out and imports or runs it. A Python block without a title is an error,
so nothing on a tested page escapes the tests.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

DOCS = Path(__file__).resolve().parents[2] / "docs"

_FENCE = re.compile(
    r"^(?P<indent>[ ]*)(?P<fence>```+)(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)(?P=fence)[ ]*$",
    re.MULTILINE | re.DOTALL,
)
_TITLE = re.compile(r'title="(?P<title>[^"]+)"')


def files_of(page: str) -> dict[str, str]:
    """The files the Python blocks of `page` (a path below docs/) build, by title."""
    text = (DOCS / page).read_text()
    files: dict[str, str] = {}
    for match in _FENCE.finditer(text):
        info = match.group("info").strip()
        if not info.startswith(("python", "py ")) and info != "py":
            continue
        title = _TITLE.search(info)
        if title is None:
            line = text.count("\n", 0, match.start()) + 1
            raise AssertionError(f"{page}:{line}: a Python block without title= is not tested")
        indent = len(match.group("indent"))
        body = "".join(line[indent:] + "\n" for line in match.group("body").splitlines())
        name = title.group("title")
        files[name] = files.get(name, "") + ("\n" if name in files else "") + body
    return files


def write(page: str, directory: Path) -> dict[str, Path]:
    """Write the files of `page` into `directory`; return their paths by title."""
    paths = {}
    for name, source in files_of(page).items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
        paths[name] = path
    return paths


def load(page: str, name: str, directory: Path) -> ModuleType:
    """Import the file `name` that `page` builds (written into `directory`) as a module."""
    path = write(page, directory)[name]
    module_name = f"docs_{path.stem}_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
