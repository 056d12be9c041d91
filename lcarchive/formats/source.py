"""The bytes of an input: a local file, or an object at any fsspec URL."""

from __future__ import annotations

from lcarchive.errors import CorruptFileError

__all__ = ["read_source"]


def read_source(source: str, storage_options: dict | None = None) -> bytes:
    """The bytes of an input file (local path or fsspec URL; object stores read with one GET).

    Raises
    ------
    CorruptFileError
        No such file, a directory, or unreadable (the store's failure named).
    """
    from lcarchive.clients import classify, first_line, read_object

    try:
        if "://" not in source or source.startswith("file://"):
            with open(source.removeprefix("file://"), "rb") as f:
                return f.read()
        return read_object(source, storage_options)
    except FileNotFoundError as exc:
        raise CorruptFileError(source, "no such file" if classify(exc) != "no such bucket" else "no such bucket") from exc
    except IsADirectoryError as exc:
        raise CorruptFileError(source, "is a directory") from exc
    except Exception as exc:
        kind = classify(exc)
        if kind is None:
            raise
        raise CorruptFileError(source, f"cannot be read: {kind} ({first_line(str(exc) or type(exc).__name__)})") from exc
