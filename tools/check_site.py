#!/usr/bin/env python
"""Check a built documentation site: every tutorial page ran and holds its plots.

    python tools/check_site.py SITE_DIR

For each ``tutorials/<page>/index.html``: at least the number of ``<img>`` elements with PNG data
that its source page's ``show(...)`` calls make, and no Python traceback in the page. Exit 1 with
one line per problem.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "tutorials"


def problems(site: Path) -> list[str]:
    found = []
    sources = sorted(DOCS.glob("*.md"))
    if not sources:
        return [f"no tutorials in {DOCS}"]
    for source in sources:
        page = site / "tutorials" / source.stem / "index.html"
        if not page.is_file():
            found.append(f"{page}: not built")
            continue
        text = page.read_text()
        expected = len(re.findall(r"^show\(", source.read_text(), flags=re.M))
        images = len(re.findall(r'<img [^>]*src="data:image/png;base64,', text))
        if images < expected or images == 0:
            found.append(f"{page}: {images} plot image(s), {expected} expected")
        if "Traceback (most recent call last)" in text:
            found.append(f"{page}: a code block failed (a traceback is in the page)")
    return found


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    found = problems(Path(args[0]))
    for line in found:
        print(line, file=sys.stderr)
    if not found:
        print(f"tutorials: {len(list(DOCS.glob('*.md')))} pages ran, with their plots")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
