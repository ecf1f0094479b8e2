"""The examples end to end (examples/*.py on the shared data, skipped without it): each prints a
statistics table and `journal=DIR state_hash=HEX`, `qx replay DIR --json` agrees, a second run
prints the same, and without data they say so and exit non-zero."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import qx_json

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("QX_SHARED_DATA", ROOT.parent / "shared" / "data"))
NEEDS = {"market_maker_lobster": DATA / "lobster" / "AMZN_2012-06-21_5",
         "momentum_btcusdt": DATA / "ticks" / "binance_usdm_btcusdt_2024-08-08"}


def run(name, out, env=None):
    return subprocess.run([sys.executable, str(ROOT / "examples" / f"{name}.py"), "--out",
                           str(out)], capture_output=True, text=True, timeout=900,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize("name", sorted(NEEDS))
def test_example_replays_and_is_deterministic(tmp_path, name):
    if not NEEDS[name].is_dir():
        pytest.skip(f"shared data not present: {NEEDS[name]}")
    first = run(name, tmp_path / "out")
    assert first.returncode == 0, first.stderr
    m = re.search(r"^journal=(\S+) state_hash=([0-9a-f]{16})$", first.stdout.splitlines()[-1])
    assert m, first.stdout
    assert "pnl" in first.stdout and "fills" in first.stdout
    assert (tmp_path / "out" / "equity.png").read_bytes()[:4] == b"\x89PNG"
    q = qx_json("replay", m.group(1), "--json")
    assert q["state_hash"] == m.group(2)
    second = run(name, tmp_path / "out")
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout


@pytest.mark.parametrize("name", sorted(NEEDS))
def test_example_without_data_says_so(tmp_path, name):
    p = run(name, tmp_path / "out", {"QX_SHARED_DATA": str(tmp_path / "nowhere")})
    assert p.returncode != 0
    assert "data not found" in p.stderr
