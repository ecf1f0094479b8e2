"""Shared fixtures: the `qx` executable (QX_BIN, set by ctest) and a demo journal made with it."""
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

QX = os.environ.get("QX_BIN") or shutil.which("qx")


def qx(*args):
    if not QX:
        pytest.skip("no qx executable (set QX_BIN)")
    p = subprocess.run([QX, *map(str, args)], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, f"qx {' '.join(map(str, args))} -> {p.returncode}\n{p.stderr}"
    return p.stdout


def qx_json(*args):
    return json.loads(qx(*args))


@pytest.fixture(scope="session")
def demo_journal(tmp_path_factory):
    """`qx demo --seed 1 --events 20000` journaled, with the hashes the demo printed."""
    d = tmp_path_factory.mktemp("demo") / "journal"
    out = qx("demo", "--seed", 1, "--events", 20000, "--journal", d)
    state = re.search(r"state_hash=([0-9a-f]{16})", out).group(1)
    effects = re.search(r"effects_hash=([0-9a-f]{16})", out).group(1)
    return Path(d), state, effects
