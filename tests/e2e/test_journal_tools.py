"""End-to-end tests of the auditor's tools through the real `qx` executable, real journal files
and a real LMDB: the demo's journal replays to the demo's hashes, every audit query answers,
damage is reported with its location without touching the files, and a writer killed with SIGKILL
at random moments loses nothing it acknowledged.

Run by ctest with QX_BIN pointing at the executable (see tests/e2e/CMakeLists.txt).
"""

import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

QX = os.environ.get("QX_BIN", "qx")


def qx(*args, check=True):
    p = subprocess.run([QX, *map(str, args)], capture_output=True, text=True, timeout=600)
    if check and p.returncode != 0:
        raise AssertionError(f"qx {' '.join(map(str, args))} -> {p.returncode}\n{p.stderr}")
    return p


def hashes_of(text):
    return (re.search(r"state_hash=([0-9a-f]{16})", text).group(1),
            re.search(r"effects_hash=([0-9a-f]{16})", text).group(1))


def tree_digest(d: Path):
    h = hashlib.sha256()
    for f in sorted(d.rglob("*")):
        if f.is_file() and f.name != "lock.mdb":
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def demo_journal(tmp_path_factory):
    d = tmp_path_factory.mktemp("demo") / "journal"
    out = qx("demo", "--seed", 11, "--events", 30000, "--journal", d, "--snapshot-every", 10000)
    state, effects = hashes_of(out.stdout)
    assert f"journal={d} last_seq=30000" in out.stdout
    return d, state, effects


def test_replay_reproduces_the_demo_hashes(demo_journal):
    d, state, effects = demo_journal
    r = json.loads(qx("replay", d, "--json").stdout)
    assert (r["state_hash"], r["effects_hash"], r["last_seq"]) == (state, effects, 30000)
    s = json.loads(qx("replay", d, "--json", "--from-snapshot").stdout)
    assert (s["state_hash"], s["effects_hash"]) == (state, effects)
    assert s["from_snapshot_seq"] == 30000
    assert "ok" in qx("verify", d).stdout


def test_snapshot_list_shows_the_stored_snapshots_and_changes_nothing(demo_journal):
    d, _, _ = demo_journal
    before = tree_digest(d)
    assert json.loads(qx("snapshot", d, "--list", "--json").stdout) == \
        {"snapshot_seqs": [10000, 20000, 30000]}
    assert qx("snapshot", d, "--list").stdout == \
        "snapshot at seq 10000\nsnapshot at seq 20000\nsnapshot at seq 30000\n"
    assert tree_digest(d) == before
    assert qx("snapshot", d.parent / "nothing", "--list", check=False).returncode != 0


def test_replay_until_seq_agrees_with_snapshot_path(demo_journal):
    d, _, _ = demo_journal
    full = json.loads(qx("replay", d, "--json", "--until-seq", 15000).stdout)
    snap = json.loads(qx("replay", d, "--json", "--until-seq", 15000, "--from-snapshot").stdout)
    assert full["last_seq"] == 15000 == snap["last_seq"]
    assert snap["from_snapshot_seq"] == 10000
    assert (full["state_hash"], full["effects_hash"]) == (snap["state_hash"], snap["effects_hash"])
    t = json.loads(qx("replay", d, "--json", "--until-time", full["last_timestamp_ns"]).stdout)
    assert t["last_seq"] == 15000 and t["state_hash"] == full["state_hash"]


def test_audit_queries(demo_journal):
    d, _, _ = demo_journal
    st = json.loads(qx("audit", d, "statement", "#3", "--json").stdout)
    assert set(st) >= {"accounts", "positions", "orders", "trades"}
    acct = st["accounts"]["account_id"]
    for key in ("pre_balance", "balance", "available", "margin", "risk_ratio"):
        assert key in st["accounts"]
    events = json.loads(qx("audit", d, "events", "--account", acct).stdout)
    # A linear scan of the whole journal: every event that names the account itself must be in
    # the index's answer; the answer may hold more (trades where the account was the maker).
    everything = json.loads(qx("audit", d, "events").stdout)
    assert [e["seq"] for e in everything] == list(range(1, 30001))
    own = [e["seq"] for e in everything if acct in (e.get("account"), e.get("name"))]
    got = [e["seq"] for e in events]
    assert own and set(own) <= set(got) and got == sorted(got)
    assert all(e["type"] in ("NewOrder", "AmendOrder", "Settle", "SetRiskParams")
               for e in events if e["seq"] not in set(own))
    csv = qx("audit", d, "events", "--instrument", "IF2501", "--format", "csv").stdout.splitlines()
    assert csv[0].startswith("seq,timestamp_ns") and len(csv) > 10
    first_ts = json.loads(csv[1].split(",", 6)[6].strip('"').replace('""', '"'))["timestamp_ns"]
    window = json.loads(qx("audit", d, "events", "--from", first_ts, "--to", first_ts + 10**9).stdout)
    assert window and all(first_ts <= e["timestamp_ns"] <= first_ts + 10**9 for e in window)
    book = json.loads(qx("audit", d, "book", "IF2501", "--depth", 3, "--at-seq", 20000,
                         "--json").stdout)
    assert book["at_seq"] == 20000 and len(book["bids"]) <= 3 and len(book["asks"]) <= 3
    if book["bids"] and book["asks"]:
        assert book["bids"][0]["price_ticks"] < book["asks"][0]["price_ticks"]
    assert json.loads(qx("index", d, "--json").stdout)["indexed_seq"] == 30000
    again = json.loads(qx("audit", d, "events", "--account", acct).stdout)
    assert again == events


def test_bad_input_gets_a_one_line_reason(tmp_path, demo_journal):
    d, _, _ = demo_journal
    for args in (["replay", tmp_path / "missing"], ["audit", d, "statement", "nobody"],
                 ["audit", d, "book", "XX9999"], ["replay", d, "--until-time", "yesterday"]):
        p = qx(*args, check=False)
        assert p.returncode != 0
        assert p.stderr.startswith("qx: ") and p.stderr.count("\n") == 1, p.stderr
    assert qx("replay", "--until-seq", "-3", d, check=False).returncode == 2


def damaged_copy(src: Path, dst: Path, damage):
    shutil.copytree(src, dst)
    seg = sorted(dst.glob("*.qxj"))[0]
    damage(seg)
    return dst


@pytest.mark.parametrize("kind", ["flip", "truncate_middle", "swap", "version"])
def test_damage_is_reported_with_location_and_nothing_changes(tmp_path, demo_journal, kind):
    d, _, _ = demo_journal
    small = tmp_path / "small"
    qx("demo", "--seed", 5, "--events", 3000, "--journal", small)
    seg = sorted(small.glob("*.qxj"))[0]
    data = bytearray(seg.read_bytes())
    if kind == "flip":
        data[5000] ^= 0x55
    elif kind == "truncate_middle":
        # Cut 100 bytes out of the middle: records after the cut are misframed.
        del data[20000:20100]
    elif kind == "swap":
        # Swap the first two records (sizes read from their length fields).
        a = 80
        la = 56 + ((int.from_bytes(data[a:a + 4], "little") + 7) & ~7)
        lb = 56 + ((int.from_bytes(data[a + la:a + la + 4], "little") + 7) & ~7)
        data[a:a + la + lb] = data[a + la:a + la + lb] + data[a:a + la]
    elif kind == "version":
        data[16] = 42  # semantics version, header CRC left stale
    seg.write_bytes(bytes(data))
    before = tree_digest(small)
    for cmd in (["verify", small], ["replay", small], ["recover", small]):
        p = qx(*cmd, check=False)
        assert p.returncode == 1, (cmd, p.stdout, p.stderr)
        assert seg.name in p.stderr and "offset" in p.stderr, p.stderr
    assert tree_digest(small) == before


def crc32c(data: bytes) -> int:
    c = 0xFFFFFFFF
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
    return c ^ 0xFFFFFFFF


def based_copy(src: Path, dst: Path, base: int):
    """Writes into dst what a follower that installed src's snapshot at `base` would journal: one
    segment with src's records after `base` and base.qxb (the formats of replay/journal.h).
    Returns the chain hash of record `base`."""
    records, chain = [], None
    for seg in sorted(src.glob("*.qxj")):
        data = seg.read_bytes()
        header, at = data[:80], 80
        while at < len(data):
            size = 56 + ((int.from_bytes(data[at:at + 4], "little") + 7) & ~7)
            seq = int.from_bytes(data[at + 8:at + 16], "little")
            if seq == base:
                chain = data[at + 24:at + 56]
            elif seq > base:
                records.append(data[at:at + size])
            at += size
    assert chain is not None
    dst.mkdir()
    h = bytearray(header)
    h[24:32] = (base + 1).to_bytes(8, "little")
    h[32:64] = chain
    h[76:80] = crc32c(bytes(h[:76])).to_bytes(4, "little")
    (dst / f"{base + 1:020d}.qxj").write_bytes(bytes(h) + b"".join(records))
    b = b"QXJBASE1" + (1).to_bytes(4, "little") + bytes(4) + base.to_bytes(8, "little") + chain
    (dst / "base.qxb").write_bytes(b + crc32c(b).to_bytes(4, "little"))
    return chain


def test_a_journal_based_on_a_snapshot_verifies_and_replays(demo_journal, tmp_path):
    """A journal starting after seq 20000 (base.qxb) verifies, naming its base, and replays from
    a stored snapshot at or after its base to the hashes of the whole journal; without such a
    snapshot replay says so."""
    d, state, effects = demo_journal
    b = tmp_path / "based"
    chain = based_copy(d, b, 20000)
    v = qx("verify", b).stdout
    assert f"starts after seq 20000 (base chain {chain.hex()})" in v and "last_seq=30000" in v, v
    assert "ok" in v
    j = json.loads(qx("verify", b, "--json").stdout)
    assert j["base"] == {"seq": 20000, "chain": chain.hex()} and j["records"] == 10000, j
    plain = json.loads(qx("verify", d, "--json").stdout)
    assert "base" not in plain and "starts after" not in qx("verify", d).stdout

    bare = tmp_path / "bare"
    shutil.copytree(b, bare)
    p = qx("replay", bare, check=False)
    assert p.returncode == 1 and "starts after seq 20000" in p.stderr and \
        "no valid snapshot at or after seq 20000" in p.stderr, p.stderr

    shutil.copytree(d / "lmdb", b / "lmdb")  # snapshots at 10000, 20000 and 30000
    r = json.loads(qx("replay", b, "--json").stdout)
    assert (r["state_hash"], r["effects_hash"], r["last_seq"]) == (state, effects, 30000)
    r = json.loads(qx("replay", b, "--json", "--until-seq", 25000).stdout)
    full = json.loads(qx("replay", d, "--json", "--until-seq", 25000).stdout)
    assert r["from_snapshot_seq"] == 20000 and r["events_applied"] == 5000
    assert (r["state_hash"], r["effects_hash"]) == (full["state_hash"], full["effects_hash"])
    p = qx("replay", b, "--until-seq", 19999, check=False)
    assert p.returncode == 1 and "starts after seq 20000" in p.stderr, p.stderr
    # The indexes (copied with the store: rebuilt) cover every journaled record, from the base on.
    assert "indexes rebuilt up to seq 30000" in qx("index", b).stdout
    rows = qx("audit", b, "events", "--format", "csv").stdout.splitlines()[1:]
    assert len(rows) == 10000 and rows[0].startswith("20001,"), rows[:2]


def test_torn_tail_is_reported_then_cut_by_recover(tmp_path):
    d = tmp_path / "j"
    qx("demo", "--seed", 6, "--events", 2000, "--journal", d)
    seg = sorted(d.glob("*.qxj"))[-1]
    with open(seg, "ab") as f:
        f.write(b"\x10\x00\x00\x00partial")
    p = qx("verify", d, check=False)
    assert p.returncode == 1 and "torn tail" in p.stderr
    r = json.loads(qx("recover", d, "--json").stdout)
    assert r["last_seq"] == 2000 and any("cut torn tail" in n for n in r["notes"])
    assert qx("verify", d).returncode == 0


def test_sigkill_loses_nothing_acknowledged(tmp_path):
    """A writer killed with SIGKILL at random moments, 50 times: after reopening, every event it
    reported durable is there, recovery (snapshot + tail) equals a full replay, and verify passes.
    """
    rng = random.Random(int(os.environ.get("QX_CRASH_SEED", "20261126")))
    print(f"crash test seed {os.environ.get('QX_CRASH_SEED', '20261126')}")
    kills = int(os.environ.get("QX_CRASH_KILLS", "50"))
    for i in range(kills):
        d = tmp_path / f"crash{i}"
        proc = subprocess.Popen(
            [QX, "demo", "--seed", str(i + 1), "--events", "100000000", "--journal", str(d),
             "--snapshot-every", str(rng.choice([2000, 5000, 20000])), "--print-durable"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        acked = 0
        deadline = time.monotonic() + rng.uniform(0.05, 0.8)
        fd = proc.stdout.fileno()
        os.set_blocking(fd, False)
        buf = b""

        def drain():
            nonlocal buf
            while True:
                try:
                    chunk = os.read(fd, 65536)
                except BlockingIOError:
                    return
                if not chunk:
                    return
                buf += chunk

        while time.monotonic() < deadline:
            drain()
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        drain()
        buf = buf.decode()
        for m in re.finditer(r"durable=(\d+)", buf):
            acked = max(acked, int(m.group(1)))
        if not d.exists():
            assert acked == 0
            continue
        rec = json.loads(qx("recover", d, "--json").stdout)
        assert rec["last_seq"] >= acked, (i, rec, acked)
        full = json.loads(qx("replay", d, "--json").stdout)
        assert (full["state_hash"], full["effects_hash"], full["last_seq"]) == \
            (rec["state_hash"], rec["effects_hash"], rec["last_seq"])
        assert qx("verify", d).returncode == 0
