"""Errors raised by lcarchive.

Every error subclasses ``LcarchiveError`` and a builtin exception, so callers
can catch either. Messages name the input and the reason.
"""

from __future__ import annotations

__all__ = [
    "ArchiveBusyError",
    "ArchiveNotFoundError",
    "BadInputError",
    "CorruptFileError",
    "DamagedArchiveError",
    "DamagedObjectError",
    "DestinationError",
    "InputTooLargeError",
    "InvalidIdentifierError",
    "InvalidTargetError",
    "LcarchiveError",
    "MixedProductsError",
    "ObservationNotFoundError",
    "PixelFileError",
    "StoreAccessError",
    "StoreError",
    "TargetNotFoundError",
    "UnknownProductError",
    "UnknownVariableError",
    "UnrecognizedProductError",
    "closest",
]


def closest(name: str, known: list[str], cutoff: float = 0.6) -> list[str]:
    """Up to three of ``known`` closest to a mistyped ``name`` (difflib), for "did you mean"."""
    import difflib

    return difflib.get_close_matches(name, known, n=3, cutoff=cutoff)


class LcarchiveError(Exception):
    """Base class of all lcarchive errors."""


class BadInputError(LcarchiveError, ValueError):
    """An input file cannot be ingested.

    Parameters
    ----------
    source : str
        The file name or URL given.
    reason : str
        Why it was refused.
    """

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")


class CorruptFileError(BadInputError):
    """The file is empty, truncated or not readable as FITS/HDF5."""


class UnrecognizedProductError(BadInputError):
    """The file is readable but is no light-curve product lcarchive knows."""


class PixelFileError(UnrecognizedProductError):
    """The file is a pixel file (a target pixel file, a TESScut/astrocut cutout, a full-frame image
    or a cut of one), not a light curve: its reason names the kind and the evidence."""


class InputTooLargeError(BadInputError):
    """The input is larger than lcarchive reads (``Settings.max_input_bytes``), or inflates beyond
    ``Settings.max_decompressed_bytes``: refused before it is read whole, in bounded time and memory."""


class InvalidTargetError(BadInputError):
    """The file's target ID is missing or not a valid TIC/KIC/EPIC ID."""


class ArchiveNotFoundError(LcarchiveError, FileNotFoundError):
    """No archive (no ``catalog.json``) at the given URL."""

    def __init__(self, url: str, reason: str | None = None) -> None:
        self.url = url
        self.reason = reason or "no lcarchive archive here (no catalog repository; ingest files into it first)"
        super().__init__(f"{url}: {self.reason}")


class DamagedArchiveError(LcarchiveError, ValueError):
    """A file of the archive itself (``catalog.json``, the target index) cannot be read.

    Parameters
    ----------
    url : str
        The archive's root.
    name : str
        The damaged file, relative to the root.
    problem : str
        What is wrong with it, one line.
    """

    def __init__(self, url: str, name: str, problem: str) -> None:
        self.url = url
        self.name = name
        super().__init__(f"{url}/{name} is damaged ({problem}); rebuild it from the groups with: lcarchive catalog build {url}")


class InvalidIdentifierError(LcarchiveError, ValueError):
    """An observation ID (or another name that becomes a path or key) is not of the allowed form."""

    def __init__(self, value: str, what: str = "observation ID") -> None:
        self.value = value
        super().__init__(f"{value!r} is not a valid {what} (lower-case letters, digits, '_' and '-', e.g. tess-spoc-2min-s0001)")


class DamagedObjectError(LcarchiveError, ValueError):
    """A stored object of the archive is damaged: a checksum that does not match, a chunk that does
    not decode, or a chunk the metadata promises that is missing.

    Parameters
    ----------
    key : str
        The object (repository path and key, e.g. ``observations/tess-spoc-2min-s0001:.../flux/c/0/0``).
    reason : str
        What is wrong with it.
    """

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"{key}: {reason}" if key else reason)


class ObservationNotFoundError(LcarchiveError, KeyError):
    """The archive has no observation with this ID."""

    def __init__(self, id: str, known: list[str] | None = None) -> None:
        self.id = id
        close = closest(id, known or [], cutoff=0.8)
        guess = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        listed = sorted(known or [])
        hint = f"; known: {', '.join(listed[:20])}{' ...' if len(listed) > 20 else ''}" if listed and not close else ""
        super().__init__(f"no observation {id!r} in the archive{guess}{hint}")

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable
        return str(self.args[0])


class UnknownVariableError(LcarchiveError, KeyError):
    """Variables asked for that none of the groups read has."""

    def __init__(self, names: list[str], known: list[str]) -> None:
        self.names = names
        close = sorted({m for n in names for m in closest(n, known)})
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        super().__init__(
            f"no variable {', '.join(map(repr, names))} in the observations read{hint}; they have: {', '.join(sorted(known))}"
        )

    def __str__(self) -> str:
        return str(self.args[0])


class MixedProductsError(LcarchiveError, ValueError):
    """A bare target number names stars of several missions' catalogs (KIC 123 and TIC 123 are
    different stars): the caller must say which, with a catalog prefix or ``product=``. Several
    products of one mission are not an error: the mission's default is read (``Product.default_rank``)."""

    def __init__(self, target: int, products: dict[str, list[str]], catalogs: list[str] | None = None) -> None:
        self.target = target
        self.products = products
        listed = "; ".join(f"{p}: {', '.join(obs)}" for p, obs in sorted(products.items()))
        if catalogs:
            named = " or ".join(f"'{c} {target}'" for c in catalogs)
            super().__init__(f"target {target} is a star of several catalogs here ({listed}); name one: {named} (or product=...)")
        else:
            super().__init__(
                f"target {target} has light curves of {len(products)} products ({listed}); "
                f"choose one with product=... (or observation=...)"
            )


class UnknownProductError(LcarchiveError, ValueError):
    """A product name that no product definition has."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        close = closest(name, known)
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        super().__init__(f"no product {name!r}{hint}; products: {', '.join(sorted(known))}")


class TargetNotFoundError(LcarchiveError, KeyError):
    """The target is not in the archive (or not in the given observation)."""

    def __init__(self, target: int | str, where: str = "the archive") -> None:
        self.target = target
        super().__init__(f"target {target} is not in {where}")

    def __str__(self) -> str:
        return str(self.args[0])


class StoreError(LcarchiveError, OSError):
    """The object store or file system failed (unreachable endpoint, throttling that outlasted
    the retries, a reset connection...). The original error is kept as ``__cause__``."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"{url}: {reason}")

    def __str__(self) -> str:
        return f"{self.url}: {self.reason}"


class StoreAccessError(StoreError, PermissionError):
    """The store refused access (wrong or missing credentials, a bucket policy)."""


class ArchiveBusyError(StoreError):
    """``lcarchive gc`` found writers holding the archive (an ingest, a compute, a tag) and did
    not wait for them, or not long enough (:mod:`lcarchive.store.leases`)."""


class DestinationError(LcarchiveError, OSError):
    """A download's destination cannot be written (read-only, not a folder, no room)."""

    def __init__(self, dest: str, reason: str) -> None:
        self.dest = dest
        self.reason = reason
        super().__init__(f"{dest}: {reason}")

    def __str__(self) -> str:
        return f"{self.dest}: {self.reason}"


class ExportError(LcarchiveError, ValueError):
    """A light curve cannot be written in the format asked for (e.g. FITS from a group that
    stores no FITS headers)."""
