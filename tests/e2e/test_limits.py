"""End-to-end test of the engine's limits through a real `qx serve --demo`: an admin sets them,
orders past them are refused with their reason, and bad or oversized limits are refused before
they are journaled.

Run by ctest with QX_BIN pointing at the executable (see tests/e2e/CMakeLists.txt).
"""
import subprocess

from test_server import QX, Server, server, write_config  # noqa: F401  (server: the fixture)


def status(server):
    return server.get("/api/admin/status", "admin").json()


def test_limits_are_set_shown_and_enforced(server):
    r = server.post("/api/admin/limits", {"orders_per_level": 1}, "admin")
    assert r.status_code == 200 and r.json()["status"] == "OK", r.text
    assert [e["kind"] for e in r.json()["effects"]] == ["LIMITS_SET"]
    assert status(server)["limits"] == {"instruments": 0, "accounts": 0, "orders": 0,
                                        "orders_per_account": 0, "orders_per_level": 1}

    assert server.order("alice", "alice-01", "BUY", "3800.0", 1,
                        time_condition="GTC").json()["status"] == "ACCEPTED"
    r = server.order("bob", "bob-01", "BUY", "3800.0", 1)
    assert (r.json()["status"], r.json()["reason"]) == ("REJECTED", "PRICE_LEVEL_FULL"), r.text

    # Room for one order more than are live; absent fields keep their values.
    live = status(server)["orders_resting"] + status(server)["stops_pending"]
    r = server.post("/api/admin/limits", {"orders": live + 1}, "admin")
    assert r.json()["status"] == "OK", r.text
    assert status(server)["limits"]["orders_per_level"] == 1
    assert server.order("bob", "bob-01", "BUY", "3799.0", 1).json()["status"] == "ACCEPTED"
    r = server.order("alice", "alice-01", "BUY", "3798.0", 1)
    assert (r.json()["status"], r.json()["reason"]) == ("REJECTED", "ORDER_LIMIT"), r.text
    # Cancelling makes room again.
    orders = server.get("/api/orders/bob-01", "bob").json()
    r = server.post("/api/order/cancel", {"account": "bob-01", "order_id": int(list(orders)[0])},
                    "bob")
    assert r.json()["status"] == "CANCELLED", r.text
    assert server.order("alice", "alice-01", "BUY", "3798.0", 1).json()["status"] == "ACCEPTED"


def test_bad_or_oversized_limits_are_refused_and_change_nothing(server):
    before = status(server)
    for body, status_code in [({}, 400),
                              ({"orders": -1}, 400),
                              ({"orders": "many"}, 400),
                              ({"orders": 1.5}, 400),
                              ({"orders": 100_000_001}, 400),
                              ({"instruments": 1_000_001}, 400),
                              ({"orders_per_level": 2 ** 32}, 400),
                              ({"accounts": [1]}, 400),
                              # 100M accounts and 100M orders budget 51.2e9 bytes: more than
                              # half of any machine this runs on.
                              ({"accounts": 100_000_000, "orders": 100_000_000}, 400)]:
        r = server.post("/api/admin/limits", body, "admin")
        assert r.status_code == status_code, (body, r.text)
        assert "error" in r.json(), r.text
    r = server.post("/api/admin/limits", {"orders": 10}, "alice")
    assert r.status_code == 403, r.text
    after = status(server)
    assert (after["last_seq"], after["state_hash"], after["limits"]) == \
        (before["last_seq"], before["state_hash"], before["limits"])
    assert server.get("/healthz").status_code == 200


def test_limits_from_the_config_file_are_journaled_once(tmp_path):
    limits = {"instruments": 50, "accounts": 1000, "orders": 5000, "orders_per_account": 100,
              "orders_per_level": 2}
    config = write_config(tmp_path, engine_limits=limits)
    s = Server(tmp_path / "data", extra=("--config", config))
    try:
        assert "journaled the engine limits of the config file" in s.output()
        first = status(s)
        assert first["limits"] == limits
        s.order("alice", "alice-01", "BUY", "3800.0", 1, time_condition="GTC")
        s.order("bob", "bob-01", "BUY", "3800.0", 1, time_condition="GTC")
        r = s.order("bob", "bob-01", "BUY", "3800.0", 1)
        assert r.json()["reason"] == "PRICE_LEVEL_FULL", r.text
        seq = status(s)["last_seq"]
    finally:
        assert s.stop() == 0
    # The same file again: the journal already holds these limits, nothing is journaled.
    s = Server(tmp_path / "data", extra=("--config", config))
    try:
        assert "journaled the engine limits" not in s.output()
        again = status(s)
        assert (again["last_seq"], again["limits"]) == (seq, limits)
    finally:
        assert s.stop() == 0


def test_bad_engine_limits_in_the_config_file_stop_the_start_naming_them(tmp_path):
    for limits, message in (({"orders": -1}, "engine_limits.orders must be a whole number"),
                            ({"order": 5}, "engine_limits: unknown key 'order'"),
                            ({"orders": "many"}, "engine_limits.orders must be a whole number"),
                            ({"orders": 100_000_001},
                             "engine_limits.orders must be a whole number from 0 to 100000000"),
                            ({"accounts": 100_000_000, "orders": 90_000_000},
                             "above the engine's maxima or its 32 GiB budget"),
                            ([1, 2], "engine_limits must be an object")):
        p = subprocess.run([QX, "serve", "--demo", "--data-dir", str(tmp_path / "d"), "--http",
                            "127.0.0.1:0", "--tcp", "127.0.0.1:0",
                            "--config", write_config(tmp_path, engine_limits=limits)],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode != 0, limits
        line = p.stderr.splitlines()[-1]
        assert "engine_limits" in line and message in line, (limits, line)
