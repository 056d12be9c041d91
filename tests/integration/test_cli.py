"""The lcarchive command, run as a user runs it (a subprocess of the installed entry point)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

import lcarchive

from conftest import DATA, lcarchive_command

LCARCHIVE = lcarchive_command()


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([LCARCHIVE, *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"lcarchive {' '.join(args)} -> {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def test_help_explains_each_command(capsys):
    top = run("--help").stdout
    for command in ("ingest", "ls", "catalog"):
        assert command in top
    assert "--target" in run("ls", "--help").stdout
    for sub in ("build", "show", "schema"):
        assert sub in run("catalog", "--help").stdout
    # read as a person reads it: real metavars, arguments without braces, an example for each command
    commands = [
        "ingest",
        "download",
        "search",
        "verify",
        "rollback",
        "compute",
        "export",
        "ls",
        "history",
        "tag",
        "alias",
        "gc",
        "migrate",
        ["catalog", "show"],
        ["catalog", "build"],
        ["catalog", "schema"],
    ]
    from lcarchive.cli import main

    for command in commands:  # in this process: 15 interpreters starting would take a minute
        words = command if isinstance(command, list) else [command]
        assert main([*words, "--help"]) == 0
        text = capsys.readouterr().out
        assert "Examples:\n    lcarchive " + " ".join(words) in text, words
        assert not re.search(r"<(str|int|float|bool|path|list\[)", text), (words, text)  # no Python types as metavars
        assert "{" not in text.splitlines()[0], text.splitlines()[0]
        if words == ["download"]:  # required arguments are not shown as optional ones
            assert text.splitlines()[0] == "Usage: lcarchive download [OPTIONS] ARCHIVE DEST | --verify DEST"
            # --format lists the output-format registry's formats (the help is re-wrapped to the terminal)
            from lcarchive.downloads.formats import FORMATS

            assert list(FORMATS) == ["zarr", "fits", "parquet", "csv", "hdf5"]
            assert "zarr, fits, parquet, csv or hdf5 (SkyPortal photometric series)." in " ".join(text.split())
    assert run("--version").stdout.strip() == f"lcarchive {__import__('lcarchive').__version__}"


def test_ingest_ls_show_build(tmp_path):
    root = str(tmp_path / "arch")
    good = run("ingest", root, str(DATA / "kepler"), str(DATA / "qlp" / "*.fits"))
    assert "ingested 7 light curve(s)" in good.stdout
    listing = json.loads(run("ls", root, "--json").stdout)
    assert {o["id"] for o in listing} == {
        "kepler-lc-q02",
        "kepler-lc-q03",
        "kepler-lc-q04",
        "kepler-lc-q05",
        "tess-qlp-s0024",
        "tess-qlp-s0025",
    }
    for obs in listing:
        assert {"id", "url", "group", "n_targets", "n_cadences"} <= set(obs)
        with xr.open_dataset(obs["url"], engine="lcarchive", group=obs["id"]) as ds:
            assert ds.sizes["target"] == obs["n_targets"] and ds.sizes["cadence"] == obs["n_cadences"]
    only = json.loads(run("ls", root, "--json", "--target", "10002792").stdout)
    assert [o["id"] for o in only] == ["kepler-lc-q02", "kepler-lc-q05"]
    missing = run("ls", root, "--target", "1", check=False)
    assert missing.returncode == 1 and "target 1" in missing.stderr
    missing = run("ls", root, "--target", "1", "--json", check=False)
    assert missing.returncode == 1 and json.loads(missing.stdout) == []
    summary = run("catalog", "show", root).stdout
    assert "6 observation(s)" in summary and "3 target(s)" in summary
    full = json.loads(run("catalog", "show", root, "--json").stdout)
    shutil.rmtree(tmp_path / "arch" / "catalog")  # the catalog repository lost whole: rebuilt from the groups
    run("catalog", "build", root)
    assert json.loads(run("catalog", "show", root, "--json").stdout) == full


def test_bad_inputs_exit_nonzero_listing_them(tmp_path):
    root = str(tmp_path / "arch")
    result = run("ingest", root, str(DATA / "bad"), str(DATA / "spoc-2min" / "target_s0002.fits"), check=False)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    for bad in (DATA / "bad").glob("*.fits"):
        assert bad.name in result.stderr
    assert "ingested 1 light curve(s)" in result.stdout
    assert [o["id"] for o in json.loads(run("ls", root, "--json").stdout)] == ["tess-spoc-2min-s0002"]


def test_errors_are_one_line_messages(tmp_path):
    result = run("ls", str(tmp_path / "none"), check=False)
    assert result.returncode == 2
    assert "no such folder" in result.stderr and "Traceback" not in result.stderr


def test_module_entry_point_matches_script():
    out = subprocess.run([sys.executable, "-m", "lcarchive.cli", "--help"], capture_output=True, text=True, check=True)
    assert "ingest" in out.stdout


def test_light_curve_numbers_from_cli_archive(tmp_path):
    import lcarchive

    root = str(tmp_path / "arch")
    run("ingest", root, str(DATA / "k2"))
    archive = lcarchive.open_archive(root)
    ds = archive.open_observation("k2-lc-c05")
    assert ds.sizes["target"] == 9
    assert np.all(ds["target"].values >= 200000000)


def test_usage_errors_are_messages_not_tracebacks(tmp_path):
    for args in (["ingest"], ["ls", str(tmp_path), "--bogus"], ["ingest", str(tmp_path), "x.fits", "-o", "novalue"]):
        result = run(*args, check=False)
        assert result.returncode == 2, (args, result.returncode, result.stderr)
        assert "Traceback" not in result.stderr and result.stderr.strip()


def test_ctrl_c_during_an_ingest_ends_with_one_calm_line_and_a_rerun_completes(tmp_path):
    import signal
    import time

    root = tmp_path / "a"
    inputs = [str(DATA / d) for d in ("spoc-2min", "qlp", "kepler", "tess-spoc")]
    # as a terminal's Ctrl-C: SIGINT with its default disposition (a shell's background job ignores it);
    # batches of 4 files, so that some are committed before it
    proc = subprocess.Popen(
        [lcarchive_command(), "ingest", str(root), *inputs],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "LCARCHIVE_BATCH_FILES": "4"},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509 - no threads yet
    )
    snapshots = root / "catalog" / "snapshots"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (snapshots.exists() and len(list(snapshots.iterdir())) >= 4):
        time.sleep(0.02)  # two batches' catalog commits (after the repository's first snapshot and "archive created")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    said = err.strip().splitlines()
    assert said[0] == f"creating a new archive at {root}" and len(said) == 2, err
    assert "Traceback" not in err and "Task was destroyed" not in err
    # one line: what was committed (as the archive now holds it) and that a re-run completes the rest
    line = re.fullmatch(
        r"lcarchive: interrupted\. At least (\d+) batch\(es\) of this ingest were committed \((\d+) light "
        r"curve\(s\) stored, the last as archive version (\w+)\); nothing half-written is visible; running the "
        r"same command again completes the rest\.",
        said[1],
    )
    assert line, said[1]
    archive = lcarchive.open_archive(str(root))
    versions = [h["snapshot"] for h in archive.history()]  # newest first
    assert int(line[1]) >= 1 and line[3] in versions
    # the batches reported are in the archive; one more may have been committed as the interrupt came
    assert versions.index(line[3]) <= 1 and 0 < int(line[2]) <= len(archive.search(include_superseded=True))
    rerun = subprocess.run([lcarchive_command(), "ingest", str(root), *inputs], capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    listing = json.loads(
        subprocess.run([lcarchive_command(), "ls", str(root), "--json"], capture_output=True, text=True, check=True).stdout
    )
    whole = tmp_path / "whole"
    subprocess.run([lcarchive_command(), "ingest", str(whole), *inputs], capture_output=True, text=True, timeout=600, check=True)
    expected = json.loads(
        subprocess.run([lcarchive_command(), "ls", str(whole), "--json"], capture_output=True, text=True, check=True).stdout
    )
    assert [(o["id"], o["n_targets"]) for o in listing] == [(o["id"], o["n_targets"]) for o in expected]


def test_ingest_says_when_it_creates_an_archive_and_refuses_a_missing_input(tmp_path):
    root = tmp_path / "new"
    missing = run("ingest", str(root), str(DATA / "keplr"), check=False)
    assert missing.returncode == 2 and missing.stderr.strip() == f"lcarchive: no such file or folder: {DATA / 'keplr'}"
    assert not root.exists()  # nothing written
    first = run("ingest", str(root), str(DATA / "kepler"))
    assert f"creating a new archive at {root}" in first.stderr
    again = run("ingest", str(root), str(DATA / "kepler"))
    assert "creating" not in again.stderr and "0 light curve(s) into 0 group(s)" in again.stdout
    # a mistyped observation: the closest IDs are offered
    wrong = run("download", str(root), str(tmp_path / "d"), "--observation", "kepler-lc-q2", check=False)
    assert "kepler-lc-q2 (did you mean kepler-lc-q02" in wrong.stderr
    import lcarchive

    with pytest.raises(lcarchive.ObservationNotFoundError, match="did you mean 'kepler-lc-q02'"):
        lcarchive.open_archive(str(root)).light_curve(10002792, observation="kepler-lc-q2")


def test_gc_shows_before_it_deletes(tmp_path, monkeypatch):
    monkeypatch.setenv("LCARCHIVE_GC_SAFETY_SECONDS", "0")  # nothing else writes to this archive
    root = str(tmp_path / "a")
    run("ingest", root, str(DATA / "kepler" / "kplr010002792-2009259160929_llc.fits"))
    run("ingest", root, str(DATA / "kepler"))
    before = json.loads(run("history", root, "--json").stdout)
    n = len(before)  # the two ingests and the archive's creation
    shown = run("gc", root)
    assert f"{n} version(s)" in shown.stdout and "nothing deleted" in shown.stdout
    dry = run("gc", root, "--older-than", "0", "--dry-run")
    assert f"would expire {n - 2} version(s)" in dry.stdout and "nothing deleted" in dry.stdout  # not the root
    assert [v["snapshot"] for v in before[1:-1]] == [line.split()[0] for line in dry.stdout.splitlines()[2:]]
    assert json.loads(run("history", root, "--json").stdout) == before
    done = run("gc", root, "--older-than", "0")
    assert done.stdout.startswith(f"{n - 2} version(s)") and len(json.loads(run("history", root, "--json").stdout)) == 2
