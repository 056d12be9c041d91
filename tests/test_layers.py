"""The package's layers (docs/contributing.md): every import of an lcarchive module goes to its
own layer or one below, and no modules import each other in a cycle. Read from the source with
``ast`` (imports inside functions and under ``TYPE_CHECKING`` included)."""

from __future__ import annotations

import ast
from pathlib import Path

import lcarchive

ROOT = Path(lcarchive.__file__).parent

LAYERS = [
    # 0: what every layer uses: errors, settings, the catalog's models and content, identifiers, clients
    {"errors", "config", "catalog", "identifiers", "aliases", "clients", "timescales", "zarr_internals"},
    # 1: input formats
    {"formats"},
    # 2: the store format (layout), and the conventions of what is stored (quality flags, CF attributes)
    {"layout", "quality", "conventions"},
    # 3: the store
    {"store"},
    # 4: reading (the read handle, stars, the accessor, search) and writing (ingest, migrate)
    {"handle", "stars", "accessor", "search", "ingest", "migrate"},
    # 5: the user's facade
    {"archive"},
    # 6: what runs over an archive
    {"downloads", "export", "compute", "integrity", "repair", "xarray_backend"},
    # 7: the command line and the package's entry
    {"cli", "__init__"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _room(path: Path) -> str:
    """The layer unit of a module: its top-level module or package under lcarchive/."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return parts[0]


def _imports(path: Path) -> set[str]:
    """The lcarchive units a module imports (the package's ``__version__`` aside)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.startswith("lcarchive"):
            if node.module == "lcarchive":
                found.update(a.name for a in node.names if a.name != "__version__")
            else:
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("lcarchive."))
    return found


def _edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        room = _room(path)
        edges.setdefault(room, set()).update(_imports(path) - {room})
    return edges


def test_every_module_has_a_layer():
    assert set(_edges()) <= set(RANK), f"modules with no layer in LAYERS: {sorted(set(_edges()) - set(RANK))}"


def test_imports_go_down_the_layers():
    upward = sorted(
        (room, target) for room, targets in _edges().items() for target in targets if RANK.get(target, 99) > RANK[room]
    )
    assert not upward, f"imports of a higher layer: {upward}"


def test_no_import_cycle_between_modules():
    edges = _edges()
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(room: str, path: list[str]) -> bool:
        state[room] = 1
        for target in sorted(edges.get(room, ())):
            if state.get(target) == 1:
                cycle.extend([*path, room, target])
                return True
            if state.get(target) is None and visit(target, [*path, room]):
                return True
        state[room] = 2
        return False

    for room in sorted(edges):
        if state.get(room) is None and visit(room, []):
            break
    assert not cycle, f"import cycle: {' -> '.join(cycle)}"


def test_the_checks_see_real_imports():
    """The reader of imports finds what a module imports: the handle reads through the store."""
    edges = _edges()
    assert "store" in edges["handle"]
    assert "handle" in edges["archive"]
    assert edges["cli"] >= {"archive", "downloads"}
