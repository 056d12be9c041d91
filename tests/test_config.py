"""Settings without globals: an override holds in its own thread or task, and reaches the work
lcarchive hands to threads, to zarr's event loop and to worker processes."""

from __future__ import annotations

import dataclasses
import os
import pickle
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from lcarchive import config
from lcarchive.config import Settings, carry, override, settings
from lcarchive.downloads.context import off_loop
from lcarchive.ingest.parse import parsed_batches
from lcarchive.zarr_internals import sync
from tests.conftest import in_scope_files


def test_override_is_seen_inside_a_thread_pool_task() -> None:
    default = settings().read_jobs
    with override(read_jobs=default + 5), ThreadPoolExecutor(max_workers=2) as pool:
        carried = pool.submit(carry(lambda: settings().read_jobs)).result()
        bare = pool.submit(lambda: settings().read_jobs).result()
    assert carried == default + 5
    assert bare == default  # what carry() is for: a pool's thread starts from an empty context
    assert settings().read_jobs == default


def test_carried_function_runs_in_several_threads_at_once() -> None:
    barrier = threading.Barrier(4)

    def seen(_: int) -> int:
        barrier.wait(timeout=10)  # all four inside the carried context together
        return settings().batch_files

    with override(batch_files=3), ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(carry(seen), range(4))) == [3] * 4


def test_override_is_seen_by_a_coroutine_on_zarrs_loop_and_by_off_loop() -> None:
    async def on_loop() -> tuple[int, int, str]:
        # off_loop: the download's own threads, entered from zarr's event loop
        return (
            settings().coalesce_gap_bytes,
            await off_loop(lambda: settings().coalesce_gap_bytes),
            threading.current_thread().name,
        )

    with override(coalesce_gap_bytes=17):
        in_coroutine, in_writer, thread = sync(on_loop())
    assert thread != threading.current_thread().name  # it did run on zarr's loop thread
    assert (in_coroutine, in_writer) == (17, 17)
    assert sync(on_loop())[:2] == (settings().coalesce_gap_bytes,) * 2 != (17, 17)


def test_two_threads_with_different_overrides_do_not_see_each_others() -> None:
    both_set = threading.Barrier(2)
    seen: dict[int, tuple[int, int]] = {}

    def worker(value: int) -> None:
        with override(max_hdus=value):
            both_set.wait(timeout=10)  # the other thread's override is in force now too
            inside = settings().max_hdus
            both_set.wait(timeout=10)
        seen[value] = (inside, settings().max_hdus)

    threads = [threading.Thread(target=worker, args=(v,)) for v in (3, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    default = settings().max_hdus
    assert seen == {3: (3, default), 4: (4, default)}


def test_override_reaches_ingest_parse_worker_processes() -> None:
    files = [str(p) for p in in_scope_files()[:2]]
    assert len(files) == 2
    # two jobs, and a pool even for two files: each file is parsed in a worker process
    with override(max_hdus=1, parallel_min_files=1):
        batches = list(parsed_batches(files, None, None, jobs=2))
    refused = [item for batch in batches for item in batch]
    assert len(refused) == 2
    for item in refused:
        assert isinstance(item, tuple)  # (source, reason): refused by the worker's max_hdus of 1
        assert "more than 1 HDUs" in item[1]
    unchanged = [item for batch in parsed_batches(files, None, None, jobs=1) for item in batch]
    assert not any(isinstance(item, tuple) for item in unchanged)


def test_use_and_with_settings_put_given_settings_in_force() -> None:
    before = settings()
    given = dataclasses.replace(before, read_attempts=before.read_attempts + 5)
    assert config.WithSettings(settings, given)() is given
    with override(read_attempts=before.read_attempts + 1):
        task = config.WithSettings(settings)  # the settings where it is made go with it
    assert task.__name__ == "settings"  # Dask names its tasks by it
    assert pickle.loads(pickle.dumps(task))().read_attempts == before.read_attempts + 1
    with config.use(None):
        assert settings() is before
    assert settings() is before


def test_unknown_setting_is_refused() -> None:
    with pytest.raises(TypeError), override(no_such_setting=1):
        pass


def _read_in_child(env: dict[str, str]) -> subprocess.CompletedProcess:
    code = "import dataclasses, lcarchive.config as c; print(dataclasses.asdict(c.settings()))"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LCARCHIVE_")}
    return subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, timeout=120, check=False
    )


_FLOAT = next(f.name for f in dataclasses.fields(Settings) if f.type == "float")


@pytest.mark.parametrize(("field", "text", "expected"), [("max_hdus", "7", 7), (_FLOAT, "2.5", 2.5)])
def test_environment_sets_settings_by_type(field: str, text: str, expected: object) -> None:
    done = _read_in_child({f"LCARCHIVE_{field.upper()}": text})
    assert done.returncode == 0, done.stderr
    assert f"'{field}': {expected!r}" in done.stdout


@pytest.mark.parametrize(("field", "text", "message"), [("max_hdus", "many", "is no integer"), (_FLOAT, "soon", "is no number")])
def test_environment_value_of_the_wrong_type_names_the_variable(field: str, text: str, message: str) -> None:
    done = _read_in_child({f"LCARCHIVE_{field.upper()}": text})
    assert done.returncode != 0
    assert f"LCARCHIVE_{field.upper()}={text!r} {message}" in done.stderr


def test_every_setting_is_documented_with_its_variable() -> None:
    doc = Settings.__doc__ or ""
    for f in dataclasses.fields(Settings):
        assert f"{f.name} : " in doc, f.name
    from pathlib import Path

    page = (Path(__file__).parent.parent / "docs" / "cli.md").read_text()
    for f in dataclasses.fields(Settings):
        assert f"LCARCHIVE_{f.name.upper()}" in page, f.name
