"""Every Python example of README.md and docs/ runs, verbatim, against the demo archive.

The demo archive is what ``tools/demo.sh`` builds: every light curve of ../shared/data/lightcurves
ingested into ``./demo-archive``, then tagged ``dr1`` as the README does. The names the examples
give it (``archive``, ``my-archive``, ``s3://bucket/prefix``...) are copies of it, locally or in
a bucket of the tests' moto server. The tutorials (docs/tutorials/) run when the docs are built
(markdown-exec), so they are not run here.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from conftest import DATA, REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
_BLOCK = re.compile(r"^```python([^\n]*)\n(.*?)^```", re.S | re.M)


def blocks(page: Path) -> list[str]:
    """The Python blocks of a page that no one else runs (markdown-exec runs ``exec="true"`` ones)."""
    return blocks_of(page.read_text())


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the demo archive (tools/demo.sh's job, and the README's tag), and the
    light curves as ``data/``."""
    import lcarchive

    folder = tmp_path_factory.mktemp("docs")
    archive = lcarchive.Archive(str(folder / "demo-archive"))
    report = archive.ingest([str(DATA)])
    assert report.added and all("bad" in Path(source).parts for source, _ in report.skipped), report.skipped
    archive.tag("dr1")
    return folder


def test_every_page_with_python_has_blocks_found():
    found = {page.name: len(blocks(page)) for page in PAGES}
    assert found["README.md"] >= 1 and found["index.md"] >= 2 and found["format.md"] >= 4, found


@pytest.fixture(scope="module")
def bucket(moto_server: str, demo: Path):
    """A public bucket ``bucket`` on the tests' moto server; ``put(prefix)`` copies the demo
    archive under a prefix (once: no example writes to the bucket)."""
    import boto3
    import fsspec
    import requests

    from conftest import aws_environ

    requests.post(f"{moto_server}/moto-api/reset", timeout=10)
    environ = aws_environ(moto_server)
    boto3.client(
        "s3", endpoint_url=moto_server, aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).create_bucket(Bucket="bucket", ACL="public-read")
    fs = fsspec.filesystem(
        "s3",
        key="testing",
        secret="testing",
        skip_instance_cache=True,
        client_kwargs={"endpoint_url": moto_server, "region_name": "us-east-1"},
        s3_additional_kwargs={"ACL": "public-read"},
    )  # the examples read it with {"anon": True} too
    done: set[str] = set()

    def put(prefix: str) -> None:
        if prefix not in done:
            fs.put(str(demo / "demo-archive"), f"bucket/{prefix}", recursive=True)
            done.add(prefix)

    return environ, put


def _code(text: str) -> str:
    """The code of a page's blocks without their comments (a URL in a comment is not read)."""
    return "\n".join(line.split("#", 1)[0] for code in blocks_of(text) for line in code.splitlines())


def blocks_of(text: str) -> list[str]:
    return [code for options, code in _BLOCK.findall(text) if 'exec="true"' not in options]


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p)], ids=lambda p: p.name)
def test_examples_run(page: Path, demo: Path, bucket, tmp_path: Path, monkeypatch):
    environ, put = bucket
    code = _code(page.read_text())
    work = tmp_path / "work"
    work.mkdir()
    if re.search(r"\.(ingest|tag|rollback)\(|rollback_family\(", code):  # examples that write: a copy of their own
        shutil.copytree(demo / "demo-archive", work / "demo-archive")
    else:
        os.symlink(demo / "demo-archive", work / "demo-archive")
    for name in set(re.findall(r'"(?:\./)?([\w-]*archive)"', code)) - {"demo-archive"}:
        os.symlink(work / "demo-archive", work / name)
    os.symlink(DATA, work / "data")
    for prefix in sorted(set(re.findall(r"s3://bucket/([\w-]+)", code))):
        put(prefix)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(work)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict = {"__name__": "__docs__"}
    for i, block in enumerate(blocks(page)):
        try:
            exec(compile(block, f"{page.name}, block {i + 1}", "exec"), namespace)  # noqa: S102 - the docs' own examples
        except Exception as exc:
            pytest.fail(f"{page.name}, block {i + 1}: {type(exc).__name__}: {exc}")
