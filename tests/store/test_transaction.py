"""lcarchive.store.repos.transaction on real icechunk repositories (local disk under its commit
lock, and moto S3): commits, conflicting commits redone on a fresh session, rebases of changes to
other chunks, a change that raises, the retry limit, and concurrent increments that all land."""

from __future__ import annotations

import os
import tempfile
import threading

import icechunk as ic
import numpy as np
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

from lcarchive.config import override
from lcarchive.errors import StoreError
from lcarchive.store.repos import open_repository, storage_for, transaction

CELLS = 6


def _new_repository(root: str, relative: str = "repo") -> tuple[ic.Repository, str | None]:
    """A repository with an int64 array ``cells`` of one-cell chunks, all 0; and its commit lock
    (local disk) or None (an object store, whose conditional writes need none)."""
    repo = open_repository(storage_for(root, relative), create=True)
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="cells", shape=(CELLS,), chunks=(1,), dtype="int64", fill_value=0)
    session.commit("cells")
    lock = None if "://" in root else os.path.join(root, relative + ".lock")
    return repo, lock


def _cells(repo: ic.Repository) -> np.ndarray:
    return zarr.open_array(repo.readonly_session(branch="main").store, path="cells", mode="r")[:]


def _add(cell: int, amount: int = 1):
    def change(session: ic.Session) -> int:
        array = zarr.open_array(session.store, path="cells")
        value = int(array[cell]) + amount
        array[cell] = value
        return value

    return change


def _tip(repo: ic.Repository) -> str:
    return repo.lookup_branch("main")


def test_a_change_is_committed_with_its_message_and_metadata(tmp_path):
    repo, lock = _new_repository(str(tmp_path))
    snapshot, result = transaction(repo, _add(2, 5), lambda value: f"cell 2 is {value}", {"inputs": ["a.fits"]}, lock)
    assert result == 5 and snapshot == _tip(repo)
    newest = next(iter(repo.ancestry(branch="main")))
    assert newest.message == "cell 2 is 5" and newest.metadata["inputs"] == ["a.fits"]
    np.testing.assert_array_equal(_cells(repo), [0, 0, 5, 0, 0, 0])


def test_nothing_to_change_commits_nothing(tmp_path):
    repo, lock = _new_repository(str(tmp_path))
    before = _tip(repo)
    assert transaction(repo, lambda session: None, "nothing", lock_path=lock) == (None, None)
    assert transaction(repo, lambda session: "read only", "nothing", lock_path=lock) == (None, "read only")
    assert _tip(repo) == before


def test_a_change_that_raises_leaves_nothing_committed(tmp_path):
    repo, lock = _new_repository(str(tmp_path))
    before = _tip(repo)

    def change(session: ic.Session) -> int:
        _add(0, 7)(session)
        raise RuntimeError("the input was refused half-way")

    with pytest.raises(RuntimeError, match="half-way"):
        transaction(repo, change, "never", lock_path=lock)
    assert _tip(repo) == before
    np.testing.assert_array_equal(_cells(repo), np.zeros(CELLS))


def _racing(repo: ic.Repository, cell: int, other_cell: int, times: int):
    """A change of ``cell`` during whose first ``times`` runs another writer commits a change of
    ``other_cell`` (after this session opened, before it commits)."""
    calls = []

    def change(session: ic.Session) -> int:
        calls.append(session.snapshot_id)
        if len(calls) <= times:
            other = repo.writable_session("main")
            _add(other_cell, 100)(other)
            other.commit("the other writer")
        return _add(cell)(session)

    return change, calls


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_a_conflict_on_the_same_chunk_is_redone_on_a_fresh_session(kind, tmp_path, request):
    root = request.getfixturevalue("s3") if kind == "s3" else str(tmp_path)
    repo, lock = _new_repository(root)
    change, calls = _racing(repo, 1, 1, times=2)
    snapshot, result = transaction(repo, change, "mine", lock_path=lock)
    assert len(calls) == 3 and len(set(calls)) == 3  # redone twice, each time on the newest snapshot
    assert result == 201 and snapshot == _tip(repo)
    np.testing.assert_array_equal(_cells(repo), [0, 201, 0, 0, 0, 0])  # both writers' changes, none lost
    assert [s.message for s in repo.ancestry(branch="main")][:3] == ["mine", "the other writer", "the other writer"]


def test_a_change_of_other_chunks_is_rebased_not_redone(tmp_path):
    repo, lock = _new_repository(str(tmp_path))
    change, calls = _racing(repo, 3, 4, times=1)
    transaction(repo, change, "mine", lock_path=lock)
    assert len(calls) == 1
    assert next(iter(repo.ancestry(branch="main"))).metadata["__icechunk"]["rebase_attempts"] == 1
    np.testing.assert_array_equal(_cells(repo), [0, 0, 0, 1, 100, 0])


def test_the_retry_limit_is_reported(tmp_path):
    repo, lock = _new_repository(str(tmp_path))
    change, calls = _racing(repo, 0, 0, times=10**6)
    with (
        override(commit_attempts=3),
        pytest.raises(StoreError, match="other writers kept committing first: gave up after 3 attempts"),
    ):
        transaction(repo, change, "mine", lock_path=lock)
    assert len(calls) == 3
    np.testing.assert_array_equal(_cells(repo), [300, 0, 0, 0, 0, 0])  # only the other writer's commits


def _increments(repo: ic.Repository, lock: str | None, cells: list[int]) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(len(cells))

    def work(cell: int) -> None:
        try:
            start.wait()
            transaction(repo, _add(cell), f"+1 to {cell}", lock_path=lock)
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(c,)) for c in cells]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return errors


@settings(max_examples=10)  # each example makes a repository and races threads on it
@given(cells=st.lists(st.integers(0, CELLS - 1), min_size=2, max_size=6))
def test_concurrent_increments_all_land(cells):
    with tempfile.TemporaryDirectory() as root:
        repo, lock = _new_repository(root)
        assert _increments(repo, lock, cells) == []
        np.testing.assert_array_equal(_cells(repo), np.bincount(cells, minlength=CELLS))
        assert len(list(repo.ancestry(branch="main"))) == 2 + len(cells)  # initial, cells, one commit each


def test_concurrent_increments_all_land_on_s3(s3):
    repo, lock = _new_repository(s3, "counters")
    cells = [0, 0, 0, 1, 1, 5]
    assert _increments(repo, lock, cells) == []
    np.testing.assert_array_equal(_cells(repo), np.bincount(cells, minlength=CELLS))
