"""MkDocs hook: links from docs/ to files of the repository that are not pages of the site.

The Markdown in docs/ is read on GitHub as well as on the site, so it links to the repository's
own files (`../schemas/request.schema.json`, `../examples/bridge.py`, `deploy/`). MkDocs knows
only the files under docs/, and would warn about those links (fatal under `--strict`). This hook
points each such link at the file in the repository (`extra.repository` in mkdocs.yml) when the
file or folder exists, and leaves the link alone otherwise, so that a link to nothing still
fails the build.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

# A Markdown inline link or image target: ](target) or ](target "title"), target relative.
_LINK = re.compile(r"\]\((?!https?:|mailto:|#|/)([^)\s#]+)(#[^)\s]*)?((?:\s+\"[^\"]*\")?)\)")
_BRANCH = "main"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    docs_dir = Path(config["docs_dir"]).resolve()
    repo_root = docs_dir.parent
    repo_url = str(config["extra"]["repository"]).rstrip("/")
    page_dir = posixpath.dirname(page.file.src_uri)

    def repoint(match: re.Match[str]) -> str:
        target, anchor, title = match.group(1), match.group(2) or "", match.group(3)
        inside = posixpath.normpath(posixpath.join(page_dir, target))
        if files.get_file_from_path(inside) is not None:
            return match.group(0)  # a page or file of the site: MkDocs checks it
        path = (docs_dir / inside).resolve()
        if not path.is_relative_to(repo_root) or not path.exists():
            return match.group(0)  # broken: left for MkDocs to report
        relative = path.relative_to(repo_root).as_posix()
        kind = "tree" if path.is_dir() else "blob"
        return f"]({repo_url}/{kind}/{_BRANCH}/{relative}{anchor}{title})"

    return _LINK.sub(repoint, markdown)
