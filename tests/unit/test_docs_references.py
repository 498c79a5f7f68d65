"""The repository is self-contained: every document the README, the docs and the code refer to lives in docs/,
and nothing points outside the repository (before: the README and code referred to a design document that
was not in it)."""

from __future__ import annotations

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOURCES = [
    ROOT / "README.md",
    ROOT / "Makefile",
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted((ROOT / "plugins").rglob("*.py")),
    *sorted((ROOT / "include").rglob("*.py")),
    *sorted((ROOT / "scripts").glob("*.py")),
    *sorted((ROOT / "dags").glob("*.py")),
]
DOC_LINK = re.compile(r"(?<![\w/])(docs/[a-z0-9_./-]+\.md)")  # ours are lower-case; SDK docs are CamelCase


# A line citing another repository's file (``segmentio/public-api-sdk-python`` ``docs/...``) is a primary source.
OTHER_REPOSITORY = re.compile(r"(segmentio|rudderlabs|apache)/[\w.-]+")


def test_every_referenced_document_is_in_docs():
    missing = []
    for source in SOURCES:
        for line in source.read_text(encoding="utf-8").splitlines():
            if OTHER_REPOSITORY.search(line):
                continue
            missing += [
                f"{source.relative_to(ROOT)} -> {ref}"
                for ref in DOC_LINK.findall(line)
                if not (ROOT / ref).is_file()
            ]
    assert not missing, missing


def test_nothing_points_outside_the_repository():
    # The team's design notes live beside the checkout, not in it; the pattern is assembled from its parts so this
    # guard does not itself spell a path outside the repository.
    notes, folder = re.escape("DESIGN" + ".md"), "shared"
    outside = re.compile(rf"{folder}/{notes}|\.\./{folder}|/work/{folder}|(?<![\w/]){notes}")
    found = [f"{s.relative_to(ROOT)}: {m.group(0)}" for s in SOURCES for m in outside.finditer(s.read_text())]
    assert not found, found
