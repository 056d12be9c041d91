"""Write the JSON Schema of the lcarchive catalog to catalog/schema/catalog.schema.json.

Run after changing lcarchive/models.py:  python tools/export_schema.py
The test suite checks that the committed schema is current.
"""

from __future__ import annotations

import sys
from pathlib import Path

from lcarchive.catalog.models import schema_json

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "catalog" / "schema" / "catalog.schema.json"


def schema_text() -> str:
    """Return the schema document as written to disk."""
    return schema_json()


def main(args: list[str] | None = None) -> int:
    SCHEMA_PATH.parent.mkdir(parents=True, exist_ok=True)
    SCHEMA_PATH.write_text(schema_text(), encoding="utf-8")
    print(f"wrote {SCHEMA_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
