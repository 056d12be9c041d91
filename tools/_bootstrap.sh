# Sourced by tools/demo.sh and tools/test.sh: make .venv with Python >= 3.12 and install lcarchive.
# Usage: source tools/_bootstrap.sh EXTRAS   (EXTRAS e.g. "test,docs"; empty for none)
set -euo pipefail
LCARCHIVE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LCARCHIVE_VENV:-$LCARCHIVE_ROOT/.venv}"

find_python() {
    local candidates=("${PYTHON:-}" python3.12 python3.13 python3)
    local pyenv_root
    pyenv_root="$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"
    candidates+=("$pyenv_root"/versions/3.12*/bin/python3.12 "$pyenv_root"/versions/3.13*/bin/python3.13)
    for c in "${candidates[@]}"; do
        [ -n "$c" ] || continue
        if "$c" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; then
            command -v "$c" 2>/dev/null || echo "$c"
            return 0
        fi
    done
    echo "lcarchive needs Python >= 3.12; none found (set PYTHON=/path/to/python3.12)" >&2
    return 1
}

if [ ! -x "$VENV/bin/python" ]; then
    PY="$(find_python)"
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
stamp="$VENV/.lcarchive-installed-${1:-base}"
if [ ! -f "$stamp" ] || [ "$LCARCHIVE_ROOT/pyproject.toml" -nt "$stamp" ]; then
    spec="$LCARCHIVE_ROOT"
    [ -n "${1:-}" ] && spec="$LCARCHIVE_ROOT[$1]"
    log="$VENV/.lcarchive-install.log"
    if ! "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$spec" >"$log" 2>&1; then
        cat "$log" >&2
        echo "installing lcarchive into $VENV failed" >&2
        exit 1
    fi
    touch "$stamp"
fi
export PATH="$VENV/bin:$PATH"
