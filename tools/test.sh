#!/usr/bin/env bash
# Run the test suite (sets up .venv with the test extras first). Extra arguments go to pytest.
source "$(dirname "${BASH_SOURCE[0]}")/_bootstrap.sh" test
cd "$LCARCHIVE_ROOT"
python -m pytest "$@"
