"""Every relative link in README.md and docs/*.md names a file that exists and, for a Markdown
file, a heading (GitHub's anchor rules) or an explicit ``<a id>`` that it has."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"```.*?```", re.S)
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _blank_fences(text: str) -> str:
    """``text`` with its fenced blocks blanked, line numbers kept."""
    return _FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but ``-`` and ``_`` dropped,
    spaces turned into hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors a Markdown file has (a repeated heading gets ``-1``, ``-2``, ...)."""
    text = _blank_fences(path.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    found: set[str] = set()
    for line in text.splitlines():
        heading = re.match(r"^#+\s+(.*)", line)
        if heading:
            base = slug(heading.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    found.update(re.findall(r'<a (?:id|name)="([^"]+)"', text))
    return found


def _anchors_of(file: Path, cache: dict[Path, set[str]]) -> set[str]:
    if file not in cache:
        cache[file] = anchors(file)
    return cache[file]


def broken_links(documents: list[Path]) -> list[str]:
    """``file:line: target`` for each relative link whose file or anchor is missing."""
    broken: list[str] = []
    cache: dict[Path, set[str]] = {}
    for document in documents:
        lines = _blank_fences(document.read_text(encoding="utf-8")).splitlines()
        for number, line in enumerate(lines, 1):
            for target in _LINK.findall(line):
                if target.startswith(("http://", "https://", "mailto:")):
                    continue
                path, _, fragment = target.partition("#")
                file = (document.parent / path).resolve() if path else document
                if not file.exists():
                    broken.append(f"{document.name}:{number}: {target} (no such file)")
                elif fragment and file.suffix == ".md" and fragment not in _anchors_of(file, cache):
                    broken.append(f"{document.name}:{number}: {target} (no such heading)")
    return broken


def test_every_relative_link_in_the_docs_resolves() -> None:
    assert broken_links(DOCUMENTS) == []


def test_a_link_to_a_missing_heading_or_file_is_named(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Wire format (`meerkat.ops.snapshot`, version 3)\n\n"
        "[ok](#wire-format-meerkatopssnapshot-version-3) [stale](#wire-format-meerkatopssnapshot-version-1)\n"
        "```\n[inside a fence](#ignored)\n```\n[gone](other.md)\n",
        encoding="utf-8",
    )
    assert broken_links([page]) == [
        "page.md:3: #wire-format-meerkatopssnapshot-version-1 (no such heading)",
        "page.md:7: other.md (no such file)",
    ]
