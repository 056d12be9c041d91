"""The bytes of an input: a local file, or an object at any fsspec URL."""

from __future__ import annotations

import os

from lcarchive.config import settings
from lcarchive.errors import CorruptFileError, InputTooLargeError

__all__ = ["read_source"]


def read_source(source: str, storage_options: dict | None = None, table: bool = False) -> bytes:
    """The bytes of an input file (local path or fsspec URL; object stores read with one GET).

    A file larger than ``Settings.max_input_bytes`` (``max_table_bytes`` for a CSV/Parquet table
    of many light curves, ``table=True``) is refused by the size its file system gives (a sparse
    file of GBs costs nothing), and an object by the first limit + 1 bytes read of it: never
    read whole.

    Raises
    ------
    CorruptFileError
        No such file, a directory, or unreadable (the store's failure named).
    InputTooLargeError
        Larger than ``Settings.max_input_bytes``.
    """
    from lcarchive.clients import classify, first_line, read_object

    if table:
        limit = settings().max_table_bytes
        too_large = (
            f"larger than {limit} bytes (Settings.max_table_bytes): refused unread; split the table, or "
            "raise LCARCHIVE_MAX_TABLE_BYTES"
        )
    else:
        limit = settings().max_input_bytes
        too_large = (
            f"larger than {limit} bytes (Settings.max_input_bytes): no light-curve file is so large; refused "
            "unread (LCARCHIVE_MAX_INPUT_BYTES raises the limit)"
        )
    try:
        if "://" not in source or source.startswith("file://"):
            with open(source.removeprefix("file://"), "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size > limit:
                    raise InputTooLargeError(source, f"{size} bytes: {too_large}")
                data = f.read(limit + 1)  # a file growing meanwhile is still bounded
        else:
            data = read_object(source, storage_options, limit)
    except InputTooLargeError:
        raise
    except FileNotFoundError as exc:
        raise CorruptFileError(source, "no such file" if classify(exc) != "no such bucket" else "no such bucket") from exc
    except IsADirectoryError as exc:
        raise CorruptFileError(source, "is a directory") from exc
    except Exception as exc:
        kind = classify(exc)
        if kind is None:
            raise
        raise CorruptFileError(source, f"cannot be read: {kind} ({first_line(str(exc) or type(exc).__name__)})") from exc
    if len(data) > limit:
        raise InputTooLargeError(source, too_large)
    return data
