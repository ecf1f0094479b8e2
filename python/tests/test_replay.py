"""qaexchange.replay against `qx replay --json` and the demo's own printed hashes."""
import shutil

import pytest

import qaexchange
from conftest import qx_json


def test_replay_matches_demo_and_qx(demo_journal):
    d, state, effects = demo_journal
    r = qaexchange.replay(d)
    q = qx_json("replay", d, "--json")
    assert (r.last_seq, r.state_hash, r.effects_hash) == (20000, state, effects)
    assert (r.last_seq, r.state_hash, r.effects_hash) == (
        q["last_seq"], q["state_hash"], q["effects_hash"])
    assert r.events_applied == q["events_applied"] == 20000
    assert r.last_timestamp_ns == q["last_timestamp_ns"]


@pytest.mark.parametrize("until", [1, 704, 5000, 19999])
def test_replay_until_seq_matches_qx(demo_journal, until):
    d, state, _ = demo_journal
    r = qaexchange.replay(str(d), until_seq=until)
    q = qx_json("replay", d, "--until-seq", until, "--json")
    assert r.last_seq == until
    assert (r.state_hash, r.effects_hash) == (q["state_hash"], q["effects_hash"])
    assert r.state_hash != state


def test_hash_text_is_16_lowercase_hex_digits(demo_journal):
    r = qaexchange.replay(demo_journal[0], until_seq=3)
    for h in (r.state_hash, r.effects_hash):
        assert len(h) == 16 and int(h, 16) >= 0 and h == h.lower()


def test_damaged_journal_raises_with_location(demo_journal, tmp_path):
    d = tmp_path / "damaged"
    shutil.copytree(demo_journal[0], d, ignore=shutil.ignore_patterns("lmdb"))
    seg = sorted(d.glob("*.qxj"))[0]
    data = bytearray(seg.read_bytes())
    data[len(data) // 2] ^= 0x40
    seg.write_bytes(bytes(data))
    with pytest.raises(RuntimeError, match=r"offset \d+"):
        qaexchange.replay(d)


def test_missing_directory_raises(tmp_path):
    with pytest.raises(RuntimeError):
        qaexchange.replay(tmp_path / "nope")
