"""End-to-end tests of `qx serve` through a real process on a free loopback port with a temporary
data directory: login, a full trade between the demo traders, the auth and role matrix, bad input,
/metrics through promtool, graceful restart and SIGKILL under load.

Run by ctest with QX_BIN pointing at the executable (see tests/e2e/CMakeLists.txt).
"""

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

QX = os.environ.get("QX_BIN", "qx")
PW = {"admin": "admin-demo-pw", "alice": "alice-demo-pw", "bob": "bob-demo-pw",
      "viewer": "viewer-demo-pw", "auditor": "auditor-demo-pw"}


class Server:
    """A running `qx serve --demo` on free loopback ports (HTTP and binary TCP), read from its log."""

    def __init__(self, data_dir: Path, extra=(), env=None, verify=True, cert=None,
                 split_stderr=False, demo=True):
        self.data_dir = data_dir
        self.verify = verify
        self.cert = cert  # (certificate, key) files of a TLS client certificate
        self.log = data_dir.parent / f"{data_dir.name}-{time.monotonic_ns()}.log"
        self.errlog = self.log.with_suffix(".stderr") if split_stderr else None
        self.proc = subprocess.Popen(
            [QX, "serve", *(["--demo"] if demo else []), "--data-dir", str(data_dir), "--http",
             "127.0.0.1:0", "--tcp", "127.0.0.1:0", *extra],
            stdout=open(self.log, "w"),
            stderr=open(self.errlog, "w") if split_stderr else subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 60
        while True:
            text = self.log.read_text()
            m = re.search(r"listening on (https?://127\.0\.0\.1:\d+)", text)
            t = re.search(r"binary TCP on (?:tcp|tls)://(127\.0\.0\.1:\d+)", text)
            if m and t:
                self.url = m.group(1)
                self.tcp = t.group(1)
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"server did not start:\n{text}")
            time.sleep(0.05)
        self.tokens = {}

    def output(self):
        return self.log.read_text()

    def log_events(self):
        """stderr's JSON lines (split_stderr=True), each checked to be one JSON object."""
        events = []
        for line in self.errlog.read_text().splitlines():
            e = json.loads(line)
            assert isinstance(e, dict), line
            assert list(e)[:3] == ["ts", "level", "event"], line
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["ts"]), line
            assert e["level"] in ("info", "warn", "error", "fatal"), line
            events.append(e)
        return events

    def token(self, user):
        if user not in self.tokens:
            r = requests.post(self.url + "/api/auth/login",
                              json={"username": user, "password": PW[user]}, timeout=30,
                              verify=self.verify, cert=self.cert)
            assert r.status_code == 200, r.text
            self.tokens[user] = r.json()["token"]
        return self.tokens[user]

    def get(self, path, user=None, headers=None):
        h = dict(headers or {})
        if user:
            h["Authorization"] = "Bearer " + self.token(user)
        return requests.get(self.url + path, headers=h, timeout=30, verify=self.verify,
                            cert=self.cert)

    def post(self, path, body, user=None, headers=None, raw=None):
        h = dict(headers or {})
        if user:
            h["Authorization"] = "Bearer " + self.token(user)
        if raw is not None:
            return requests.post(self.url + path, data=raw, headers=h, timeout=30,
                                 verify=self.verify, cert=self.cert)
        return requests.post(self.url + path, json=body, headers=h, timeout=30, verify=self.verify,
                             cert=self.cert)

    def status(self):
        r = self.get("/api/admin/status", "auditor")
        assert r.status_code == 200, r.text
        return r.json()

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=60)

    def order(self, user, account, direction, price, volume=1, instrument="IF2501", **kw):
        body = {"account": account, "instrument": instrument, "direction": direction,
                "offset": "OPEN", "price": price, "volume": volume, **kw}
        return self.post("/api/order/submit", body, user)


@pytest.fixture()
def server(tmp_path):
    s = Server(tmp_path / "data")
    yield s
    if s.proc.poll() is None:
        s.stop(signal.SIGKILL)


def test_help_lists_the_options():
    out = subprocess.run([QX, "serve", "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0
    for opt in ("--config", "--data-dir", "--demo", "--http", "--tls-cert", "--tls-key",
                "--tls-client-ca"):
        assert opt in out.stdout


def test_production_start_with_secret_and_bootstrap_admin(tmp_path):
    env = dict(os.environ, QX_JWT_SECRET="s" * 40, QX_ADMIN_PASSWORD="first-admin-pw")
    data = tmp_path / "prod"
    log = tmp_path / "prod.log"
    proc = subprocess.Popen([QX, "serve", "--data-dir", str(data), "--http", "127.0.0.1:0",
                             "--tcp", "127.0.0.1:0"],
                            stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 60
        while not (m := re.search(r"listening on (http://\S+)", log.read_text())):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        url = m.group(1)
        assert "created user admin" in log.read_text()
        assert "alice" not in log.read_text()  # no demo users
        r = requests.post(url + "/api/auth/login",
                          json={"username": "admin", "password": "first-admin-pw"}, timeout=30)
        h = {"Authorization": "Bearer " + r.json()["token"]}
        assert requests.get(url + "/api/instruments", headers=h, timeout=30).json() == []
        r = requests.post(url + "/api/admin/user", headers=h, timeout=30,
                          json={"username": "dave", "password": "dave-pw-123", "role": "trader"})
        assert r.status_code == 200, r.text
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0


def test_refuses_to_start_without_a_secret_outside_demo(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "QX_JWT_SECRET"}
    p = subprocess.run([QX, "serve", "--data-dir", str(tmp_path / "d"), "--http", "127.0.0.1:0",
                        "--tcp", "127.0.0.1:0"],
                       capture_output=True, text=True, timeout=30, env=env)
    assert p.returncode != 0
    assert "JWT secret" in p.stderr


def test_second_server_on_the_same_data_dir_refuses(server):
    p = subprocess.run([QX, "serve", "--demo", "--data-dir", str(server.data_dir), "--http",
                        "127.0.0.1:0"], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "in use" in p.stderr
    assert server.get("/healthz").status_code == 200


def test_demo_prints_credentials_and_health(server):
    assert "alice / alice-demo-pw / trader / alice-01" in server.output()
    assert server.get("/healthz").json() == {"status": "ok"}
    codes = {i["instrument_id"] for i in server.get("/api/instruments", "viewer").json()}
    assert codes == {"IF2501", "cu2501", "au2506"}


def test_full_trade_between_two_traders(server):
    buy = server.order("alice", "alice-01", "BUY", "3800.2", 2)
    assert buy.status_code == 200 and buy.json()["status"] == "ACCEPTED", buy.text
    book = server.get("/api/orderbook/IF2501", "viewer").json()
    assert book["bids"][0]["price"] == "3800.2" and book["bids"][0]["volume"] == 2
    sell = server.order("bob", "bob-01", "SELL", "3800.0", 2)
    assert sell.json()["status"] == "ACCEPTED", sell.text
    assert [e for e in sell.json()["effects"] if e["kind"] == "TRADE"]

    for user, account, direction in (("alice", "alice-01", "BUY"), ("bob", "bob-01", "SELL")):
        trades = list(server.get(f"/api/trades/{account}", user).json().values())
        assert len(trades) == 1
        assert (trades[0]["direction"], trades[0]["price"], trades[0]["volume"]) == \
            (direction, "3800.2", 2)  # at the resting order's price
        acc = server.get(f"/api/account/{account}", user).json()
        assert acc["commission"] != "0.0000" and acc["margin"] != "0.0000"
        pos = server.get(f"/api/positions/{account}", user).json()
        side = "volume_long" if direction == "BUY" else "volume_short"
        assert pos["IF2501"][side] == 2
    assert server.get("/api/orderbook/IF2501", "viewer").json()["bids"] == []

    # Amend and cancel a resting order by the client's id.
    r = server.order("alice", "alice-01", "BUY", "3790.0", 3, client_order_id=42)
    assert r.json()["status"] == "ACCEPTED"
    r = server.post("/api/order/amend", {"account": "alice-01", "client_order_id": 42,
                                         "price": "3791.0", "volume_left": 2}, "alice")
    assert r.json()["status"] == "AMENDED", r.text
    bid = server.get("/api/orderbook/IF2501", "viewer").json()["bids"][0]
    assert (bid["price"], bid["volume"]) == ("3791.0", 2)
    r = server.post("/api/order/amend", {"account": "alice-01", "client_order_id": 999,
                                         "price": "3791.0", "volume_left": 2}, "alice")
    assert r.json()["reason"] == "UNKNOWN_ORDER"
    r = server.post("/api/order/cancel", {"account": "alice-01", "client_order_id": 42}, "alice")
    assert r.json()["status"] == "CANCELLED", r.text
    assert server.get("/api/orderbook/IF2501", "viewer").json()["bids"] == []

    metrics = server.get("/metrics").text
    assert re.search(r"^qx_trades_total 1$", metrics, re.M)
    assert re.search(r'^qx_orders_total\{result="accepted"\} 3$', metrics, re.M)
    if shutil.which("promtool"):
        p = subprocess.run(["promtool", "check", "metrics"], input=metrics, capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 0, p.stdout + p.stderr


def test_auth_and_role_matrix(server):
    assert server.get("/api/account/alice-01").status_code == 401
    assert server.get("/api/account/alice-01",
                      headers={"Authorization": "Bearer not.a.token"}).status_code == 401
    # A well-formed token signed with another key.
    forged = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsInJvbGUiOiJhZG1pbiIsImV4cCI6"
              "NDEwMjQ0NDgwMH0.c2lnbmF0dXJlLW9mLWFub3RoZXIta2V5LXNpZ25hdHVyZQ")
    assert server.get("/api/admin/status",
                      headers={"Authorization": "Bearer " + forged}).status_code == 401
    # An unsigned token (alg "none") claiming the admin role.
    unsigned = ("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhZG1pbiIsInJvbGUiOiJhZG1pbiIsImV4"
                "cCI6NDEwMjQ0NDgwMH0.")
    assert server.get("/api/admin/status",
                      headers={"Authorization": "Bearer " + unsigned}).status_code == 401
    assert server.post("/api/admin/deposit", {"account": "alice-01", "amount": "1"},
                       headers={"Authorization": "Bearer " + unsigned}).status_code == 401
    assert server.post("/api/auth/login",
                       {"username": "alice", "password": "wrong"}).status_code == 401
    assert server.post("/api/auth/login",
                       {"username": "nobody", "password": "x"}).status_code == 401

    before = server.status()["last_seq"]
    # A trader reads and trades only its own accounts.
    assert server.get("/api/account/bob-01", "alice").status_code == 403
    assert server.get("/api/orders/bob-01", "alice").status_code == 403
    assert server.order("alice", "bob-01", "BUY", "3800.0").status_code == 403
    assert server.post("/api/order/cancel", {"account": "bob-01", "order_id": 1},
                       "alice").status_code == 403
    # Viewers and auditors never trade; viewers read only their own accounts.
    assert server.order("viewer", "alice-01", "BUY", "3800.0").status_code == 403
    assert server.get("/api/account/alice-01", "viewer").status_code == 403
    assert server.get("/api/account/alice-01", "auditor").status_code == 200
    assert server.order("auditor", "alice-01", "BUY", "3800.0").status_code == 403
    # Admin routes need the admin role.
    for user in ("alice", "viewer", "auditor"):
        assert server.post("/api/admin/deposit", {"account": "alice-01", "amount": "1"},
                           user).status_code == 403
        assert server.post("/api/admin/instrument/IF2501/halt", {}, user).status_code == 403
    assert server.status()["last_seq"] == before  # nothing was journaled

    # The admin manages money, instruments, users and accounts.
    r = server.post("/api/admin/deposit", {"account": "alice-01", "amount": "1000.50"}, "admin")
    assert r.status_code == 200, r.text
    assert server.get("/api/account/alice-01", "alice").json()["deposit"] == "10001000.5000"
    assert server.post("/api/admin/withdraw", {"account": "alice-01", "amount": "99999999999"},
                       "admin").json()["reason"] == "WITHDRAW_EXCEEDS_AVAILABLE"
    assert server.post("/api/admin/instrument/au2506/halt", None, "admin",
                       raw=b"").status_code == 200  # an empty body is an empty object
    r = server.order("alice", "alice-01", "BUY", "620.00", instrument="au2506")
    assert r.json()["reason"] == "INSTRUMENT_HALTED"
    assert server.post("/api/admin/instrument/au2506/resume", {}, "admin").status_code == 200
    r = server.post("/api/admin/user",
                    {"username": "carol", "password": "carol-pw-123", "role": "trader"}, "admin")
    assert r.status_code == 200, r.text
    assert server.post("/api/admin/user", {"username": "carol", "password": "carol-pw-123",
                                           "role": "trader"}, "admin").status_code == 409
    assert server.post("/api/admin/account", {"user": "carol", "name": "carol-01"},
                       "admin").status_code == 200
    PW["carol"] = "carol-pw-123"
    assert server.get("/api/accounts", "carol").json() == ["carol-01"]
    r = server.order("carol", "carol-01", "BUY", "3800.0")
    assert r.json()["reason"] == "INSUFFICIENT_FUNDS"
    r = server.post("/api/admin/instrument", {
        "code": "ag2512", "exchange": "SHFE", "price_tick": "1", "multiplier": "15",
        "margin_ratio": "0.09", "fee_ratio": "0.00005", "price_band": "0.08",
        "max_order_volume": 500, "position_limit": 10000, "pre_settlement": "7500"}, "admin")
    assert r.status_code == 200, r.text
    assert server.post("/api/admin/settle", {"prices": {"IF2501": "3810.0"}},
                       "admin").status_code == 200
    assert server.status()["trading_day"] == 2


def test_bad_input_is_a_clear_4xx_and_changes_nothing(server):
    server.order("alice", "alice-01", "BUY", "3790.0")
    before = server.status()
    base = {"account": "alice-01", "instrument": "IF2501", "direction": "BUY", "offset": "OPEN",
            "price": "3800.0", "volume": 1}
    bad = [
        {**base, "volume": -1}, {**base, "volume": 0}, {**base, "volume": 2**70},
        {**base, "volume": 1.5}, {**base, "volume": "1"}, {**base, "price": "abc"},
        {**base, "price": "-3800"}, {**base, "price": "3800.123456789"}, {**base, "price": 1e300},
        {**base, "price": "99999999999999999999999"}, {**base, "direction": "UP"},
        {**base, "client_order_id": -5}, {k: v for k, v in base.items() if k != "volume"},
        {**base, "account": "x" * 100},
    ]
    for body in bad:
        r = server.post("/api/order/submit", body, "alice")
        assert r.status_code == 400, (body, r.status_code, r.text)
        assert "error" in r.json() and r.json()["message"]
    r = server.post("/api/order/submit", {**base, "price": "3800.1"}, "alice")
    assert r.status_code == 400 and r.json()["error"] == "bad_price"  # off the 0.2 tick
    for raw in (b"{", b"[1,2]", b"null", b"\xff\xfe", b'{"account": "alice-01",}'):
        r = server.post("/api/order/submit", None, "alice", raw=raw)
        assert r.status_code == 400, (raw, r.text)
    r = server.post("/api/order/submit", None, "alice", raw=b'{"pad": "' + b"x" * 200_000 + b'"}')
    assert r.status_code == 413
    assert server.post("/api/admin/deposit", {"account": "alice-01", "amount": "-5"},
                       "admin").status_code == 400
    assert server.post("/api/admin/deposit", {"account": "alice-01", "amount": "1e9"},
                       "admin").status_code == 400
    assert server.get("/api/orderbook/IF2501?depth=0", "alice").status_code == 400
    assert server.get("/api/orderbook/NOPE", "alice").status_code == 404
    assert server.get("/api/nothing", "alice").status_code == 404
    import socket
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as c:  # raw non-UTF-8 path
        c.sendall(b"GET /api/orderbook/\xff\xfe HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                  + server.token("alice").encode() + b"\r\nConnection: close\r\n\r\n")
        reply = b""
        while chunk := c.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 404") or reply.startswith(b"HTTP/1.1 400"), reply[:200]
    assert server.status() == before
    assert server.get("/healthz").status_code == 200


def test_sigterm_then_restart_keeps_state(tmp_path):
    data = tmp_path / "data"
    s = Server(data)
    ids = [s.order("alice", "alice-01", "BUY", f"{3790 + i}.0", client_order_id=100 + i).json()
           ["order_id"] for i in range(5)]
    s.order("bob", "bob-01", "SELL", "3810.0", 3)
    status = s.status()
    assert s.stop(signal.SIGTERM) == 0
    assert f"stopped last_seq={status['last_seq']} state_hash={status['state_hash']}" in s.output()

    s2 = Server(data)
    try:
        assert f"recovered last_seq={status['last_seq']} state_hash={status['state_hash']}" \
            in s2.output()
        assert "(snapshot " + str(status["last_seq"]) in s2.output()  # from the shutdown snapshot
        assert s2.status() == status
        resting = list(s2.get("/api/orders/alice-01", "alice").json().values())
        assert sorted(o["order_id"] for o in resting) == sorted(ids)
        assert sorted(o["client_order_id"] for o in resting) == list(range(100, 105))
        r = s2.order("bob", "bob-01", "SELL", "3794.0", 1)  # trades against 3794
        assert [e for e in r.json()["effects"] if e["kind"] == "TRADE"]
    finally:
        s2.stop()


def test_sigkill_under_load_loses_no_acknowledged_order(tmp_path):
    data = tmp_path / "data"
    s = Server(data)
    assert s.post("/api/admin/deposit", {"account": "alice-01", "amount": "1000000000"},
                  "admin").status_code == 200
    token = s.token("alice")
    acked, lock, stop = [], threading.Lock(), threading.Event()

    def client(k):
        session = requests.Session()
        session.headers["Authorization"] = "Bearer " + token
        i = 0
        while not stop.is_set():
            i += 1
            cid = k * 1_000_000 + i
            body = {"account": "alice-01", "instrument": "cu2501", "direction": "BUY",
                    "offset": "OPEN", "price": str(70000 + 10 * (i % 400)), "volume": 1,
                    "time_condition": "GTC", "client_order_id": cid}
            try:
                r = session.post(s.url + "/api/order/submit", json=body, timeout=10)
            except requests.RequestException:
                return  # the server died under us: no acknowledgement
            if r.status_code == 200 and r.json()["status"] == "ACCEPTED":
                with lock:
                    acked.append(cid)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(1, 9)]
    for t in threads:
        t.start()
    time.sleep(3)
    s.proc.send_signal(signal.SIGKILL)
    s.proc.wait(timeout=30)
    stop.set()
    for t in threads:
        t.join()
    assert len(acked) > 50, len(acked)

    s2 = Server(data)
    try:
        status = s2.status()
        orders = s2.get("/api/orders/alice-01", "alice").json().values()
        resting = {o["client_order_id"] for o in orders}
        missing = [c for c in acked if c not in resting]
        assert not missing, f"{len(missing)} acknowledged orders lost, e.g. {missing[:5]}"
        out = subprocess.run([QX, "replay", str(data / "journal"), "--json"], capture_output=True,
                             text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        replayed = json.loads(out.stdout)
        assert (replayed["last_seq"], replayed["state_hash"]) == \
            (status["last_seq"], status["state_hash"])
        print(f"acknowledged {len(acked)} orders in 3 s before SIGKILL; journal {status['last_seq']}"
              " events")
    finally:
        s2.stop()


def merge(target, patch):
    """RFC 7386 merge patch."""
    if not isinstance(patch, dict):
        return patch
    target = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        else:
            target[k] = merge(target.get(k), v)
    return target


def test_websocket_diff(server):
    import asyncio
    import websockets

    ws_url = server.url.replace("http://", "ws://") + "/ws/diff"

    async def recv(ws):
        return json.loads(await asyncio.wait_for(ws.recv(), timeout=20))

    async def run():
        view = {}
        headers = {"Authorization": "Bearer " + server.token("alice")}
        async with websockets.connect(ws_url, extra_headers=headers) as ws:
            await ws.send(json.dumps({"aid": "subscribe_quote", "ins_list": "CFFEX.IF2501"}))
            await ws.send(json.dumps({"aid": "peek_message"}))
            m = await recv(ws)
            assert m["aid"] == "rtn_data"
            for p in m["data"]:
                view = merge(view, p)
            assert view["trade"]["alice"]["accounts"]["alice-01"]["balance"] == "10000000.0000"
            assert "IF2501" in view["quotes"]

            await ws.send(json.dumps({"aid": "peek_message"}))  # parked until a change
            await asyncio.sleep(0.3)
            r = await asyncio.to_thread(server.order, "bob", "bob-01", "SELL", "3900.0", 1)
            assert r.json()["status"] == "ACCEPTED"
            m = await recv(ws)
            for p in m["data"]:
                view = merge(view, p)
            assert view["quotes"]["IF2501"]["ask_price1"] == "3900.0"

            await ws.send(json.dumps({
                "aid": "insert_order", "user_id": "alice", "account_id": "alice-01",
                "order_id": 777, "exchange_id": "CFFEX", "instrument_id": "IF2501",
                "direction": "BUY", "offset": "OPEN", "volume": 1, "price_type": "LIMIT",
                "limit_price": 3900.0}))
            await ws.send(json.dumps({"aid": "peek_message"}))
            for _ in range(5):
                m = await recv(ws)
                for p in m.get("data", []):
                    view = merge(view, p)
                if view["trade"]["alice"]["trades"]["alice-01"]:
                    break
                await ws.send(json.dumps({"aid": "peek_message"}))
            trades = list(view["trade"]["alice"]["trades"]["alice-01"].values())
            assert [(t["price"], t["volume"]) for t in trades] == [("3900.0", 1)]
            assert "ask_price1" not in view["quotes"]["IF2501"]  # the ask was taken
            rest = await asyncio.to_thread(server.get, "/api/account/alice-01", "alice")
            assert view["trade"]["alice"]["accounts"]["alice-01"] == rest.json()

            await ws.send(json.dumps({"aid": "insert_order", "account_id": "alice-01",
                                      "instrument_id": "IF2501", "direction": "BUY",
                                      "volume": -3, "limit_price": "3900.0"}))
            m = await recv(ws)
            assert m["data"][0]["notify"]["n"]["code"] == 400

        async with websockets.connect(ws_url) as ws:  # no token: log in over the socket
            await ws.send(json.dumps({"aid": "peek_message"}))
            m = await recv(ws)
            assert m["data"][0]["notify"]["n"]["code"] == 401
            await ws.send(json.dumps({"aid": "req_login", "user_name": "bob",
                                      "password": PW["bob"]}))
            m = await recv(ws)
            assert m["data"][0]["notify"]["n"]["content"] == "login success"
            await ws.send(json.dumps({"aid": "peek_message"}))
            m = await recv(ws)
            assert "bob-01" in m["data"][0]["trade"]["bob"]["accounts"]
            await ws.send(json.dumps({"aid": "ping"}))
            assert (await recv(ws)) == {"aid": "pong"}

    asyncio.run(run())


@pytest.mark.skipif(not shutil.which("openssl"), reason="needs the openssl command")
def test_tls_listener(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    s = Server(tmp_path / "data", extra=("--tls-cert", cert, "--tls-key", key), verify=str(cert))
    try:
        assert s.url.startswith("https://")
        assert s.get("/healthz").json() == {"status": "ok"}
        r = s.order("alice", "alice-01", "BUY", "3800.0")
        assert r.json()["status"] == "ACCEPTED"
        with pytest.raises(requests.exceptions.SSLError):  # an unknown certificate is refused
            requests.get(s.url + "/healthz", timeout=10)
        with pytest.raises(requests.exceptions.ConnectionError):  # no plain HTTP on that port
            requests.get(s.url.replace("https://", "http://") + "/healthz", timeout=10)

        import asyncio
        import ssl
        import websockets

        async def wss():
            ctx = ssl.create_default_context(cafile=str(cert))
            url = s.url.replace("https://", "wss://") + "/ws/diff"
            async with websockets.connect(url, ssl=ctx, extra_headers={
                    "Authorization": "Bearer " + s.token("alice")}) as ws:
                await ws.send(json.dumps({"aid": "peek_message"}))
                m = json.loads(await asyncio.wait_for(ws.recv(), timeout=20))
                return m["data"][0]["trade"]["alice"]["orders"]["alice-01"]

        orders = asyncio.run(wss())
        assert [o["limit_price"] for o in orders.values()] == ["3800.0"]
    finally:
        assert s.stop() == 0


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=cwd, timeout=60)


def make_ca(d: Path, name):
    """A self-signed CA: d/{name}.pem and d/{name}.key."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
            f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.pem", cwd=d)


def make_leaf(d: Path, name, ca, extensions):
    """A key and a certificate for CN=name signed by the CA `ca` (see make_ca)."""
    (d / f"{name}.ext").write_text(extensions + "\nsubjectKeyIdentifier=hash\n"
                                   "authorityKeyIdentifier=keyid\n")
    openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-days", "1", "-extfile", f"{name}.ext", "-out", f"{name}.pem",
            cwd=d)
    return str(d / f"{name}.pem"), str(d / f"{name}.key")


def make_mtls_pki(tmp_path):
    """CA "ca" with a server certificate for 127.0.0.1 and a client certificate, and a client
    certificate from another CA: (ca file, (server cert, key), (client cert, key), (stranger's
    cert, key))."""
    pki = tmp_path / "pki"
    pki.mkdir()
    make_ca(pki, "ca")
    make_ca(pki, "other-ca")
    server = make_leaf(
        pki, "server", "ca", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth")
    client = make_leaf(pki, "client", "ca", "extendedKeyUsage=clientAuth")
    stranger = make_leaf(pki, "stranger", "other-ca", "extendedKeyUsage=clientAuth")
    return str(pki / "ca.pem"), server, client, stranger


@pytest.mark.skipif(not shutil.which("openssl"), reason="needs the openssl command")
def test_mutual_tls(tmp_path):
    import socket
    import ssl

    ca, (server_cert, server_key), client, stranger = make_mtls_pki(tmp_path)

    s = Server(tmp_path / "data", verify=ca, cert=client,
               extra=("--tls-cert", server_cert, "--tls-key", server_key, "--tls-client-ca", ca))
    try:
        assert s.url.startswith("https://")
        assert s.get("/healthz").json() == {"status": "ok"}
        r = s.order("alice", "alice-01", "BUY", "3800.0")
        assert r.json()["status"] == "ACCEPTED", r.text

        # Without a client certificate, and with one from another CA: the handshake fails (with
        # TLS 1.3 the client may learn it only when it reads, as a reset or an alert).
        refused = (requests.exceptions.SSLError, requests.exceptions.ConnectionError)
        with pytest.raises(refused):
            requests.get(s.url + "/healthz", verify=ca, timeout=10)
        with pytest.raises(refused):
            requests.get(s.url + "/healthz", verify=ca, cert=stranger, timeout=10)

        # The same with a raw TLS socket: the server names the CA it accepts and never answers
        # a client that has no certificate.
        host, port = s.url.removeprefix("https://").split(":")
        ctx = ssl.create_default_context(cafile=ca)
        with socket.create_connection((host, int(port)), timeout=10) as raw:
            with pytest.raises((ssl.SSLError, ConnectionError)):
                with ctx.wrap_socket(raw, server_hostname=host) as tls:
                    tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    assert tls.recv(4096) == b""  # not reached unless the server answers
                    raise ConnectionError("closed without an answer")

        # The binary TCP listener has the same context: no certificate, no session.
        tcp_host, tcp_port = s.tcp.split(":")
        with socket.create_connection((tcp_host, int(tcp_port)), timeout=10) as raw:
            with pytest.raises((ssl.SSLError, ConnectionError)):
                with ctx.wrap_socket(raw, server_hostname=tcp_host) as tls:
                    tls.sendall(b"\0\0\0\0")
                    assert tls.recv(4096) == b""  # not reached unless the server answers
                    raise ConnectionError("closed without an answer")

        assert s.get("/healthz").status_code == 200  # the server keeps serving good clients
    finally:
        assert s.stop() == 0
    failures = [json.loads(line) for line in s.output().splitlines()
                if '"event":"tls_handshake_failed"' in line]
    assert failures and all(f["ip"] == "127.0.0.1" for f in failures), s.output()
    assert {f["listener"] for f in failures} == {"http", "binary_tcp"}, s.output()


@pytest.mark.skipif(not shutil.which("openssl"), reason="needs the openssl command")
def test_mutual_tls_bad_config_is_a_clear_error(tmp_path):
    make_ca(tmp_path, "ca")
    cert, key = make_leaf(tmp_path, "server", "ca", "subjectAltName=IP:127.0.0.1")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    for extra, message in ((("--tls-client-ca", str(tmp_path / "ca.pem")), "needs tls_cert"),
                           (("--tls-cert", cert, "--tls-key", key, "--tls-client-ca", str(junk)),
                            "TLS client CA")):
        p = subprocess.run([QX, "serve", "--demo", "--data-dir", str(tmp_path / "d"), "--http",
                            "127.0.0.1:0", *extra], capture_output=True, text=True, timeout=60)
        assert p.returncode != 0 and message in p.stderr, p.stderr


def write_config(tmp_path, **keys):
    path = tmp_path / f"config-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(keys))
    return str(path)


def test_rate_limit_per_user(tmp_path):
    import asyncio
    import websockets

    s = Server(tmp_path / "data",
               extra=("--config", write_config(tmp_path, rate_limit_per_s=1, rate_limit_burst=5)))
    try:
        alice = requests.Session()
        alice.headers["Authorization"] = "Bearer " + s.token("alice")
        codes = []
        for _ in range(30):
            r = alice.get(s.url + "/api/accounts", timeout=30)
            codes.append(r.status_code)
            if r.status_code == 429:
                assert r.json()["error"] == "rate_limited" and "alice" in r.json()["message"]
        assert set(codes) <= {200, 429}, codes
        assert codes[:5] == [200] * 5, codes  # the burst
        limited = codes.count(429)
        assert limited >= 1, codes

        # Other users have their own buckets; unauthenticated routes are not limited.
        assert s.get("/api/accounts", "bob").status_code == 200
        assert s.get("/healthz").status_code == 200
        metrics = s.get("/metrics").text
        assert re.search(rf"^qx_rate_limited_total {limited}$", metrics, re.M), metrics

        # Orders over the WebSocket take tokens from the same bucket: a notify with code 429.
        async def ws_orders():
            url = s.url.replace("http://", "ws://") + "/ws/diff"
            headers = {"Authorization": "Bearer " + s.token("alice")}
            async with websockets.connect(url, extra_headers=headers) as ws:
                for i in range(20):
                    await ws.send(json.dumps({
                        "aid": "insert_order", "account_id": "alice-01",
                        "instrument_id": "IF2501", "direction": "BUY", "offset": "OPEN",
                        "volume": 1, "price_type": "LIMIT", "limit_price": "3700.0",
                        "order_id": 5000 + i}))
                while True:
                    m = json.loads(await asyncio.wait_for(ws.recv(), timeout=20))
                    n = m["data"][0].get("notify", {}).get("n", {})
                    if n.get("code") == 429:
                        return n

        n = asyncio.run(ws_orders())
        assert n["level"] == "ERROR" and "requests a second" in n["content"]

        # The bucket refills and alice is served again.
        deadline = time.monotonic() + 30
        while (r := alice.get(s.url + "/api/accounts", timeout=30)).status_code == 429:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert r.status_code == 200 and r.json() == ["alice-01"]
    finally:
        assert s.stop() == 0


def http_exchange(sock, path="/healthz"):
    """Sends one keep-alive GET on a raw socket; returns the reply's (status, body), or None when
    the server closed the connection instead."""
    try:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            data += chunk
    except ConnectionError:
        return None
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed in the middle of a reply"
        body += chunk
    return int(head.split(b" ")[1]), body.decode()


def test_connections_per_ip_limit(tmp_path):
    import socket

    s = Server(tmp_path / "data",
               extra=("--config", write_config(tmp_path, max_connections_per_ip=4)))
    host, port = s.url.removeprefix("http://").split(":")
    conns = []
    try:
        for _ in range(4):
            c = socket.create_connection((host, int(port)), timeout=20)
            conns.append(c)
            assert http_exchange(c)[0] == 200  # accepted and counted before the next one
        with socket.create_connection((host, int(port)), timeout=20) as fifth:  # kernel accepts
            assert http_exchange(fifth) is None  # the server closes it without a reply
        refusals = 1
        for c in conns:
            assert http_exchange(c)[0] == 200  # the four still work

        conns.pop().close()  # frees a place once the server has seen the close
        deadline = time.monotonic() + 30
        while (reply := http_exchange(c := socket.create_connection((host, int(port)),
                                                                    timeout=20))) is None:
            refusals += 1
            c.close()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        conns.append(c)
        assert reply[0] == 200

        status, metrics = http_exchange(conns[0], "/metrics")
        assert status == 200
        assert re.search(rf"^qx_rejected_connections_total {refusals}$", metrics, re.M), metrics
        assert re.search(r"^qx_http_connections 4$", metrics, re.M), metrics
    finally:
        for c in conns:
            c.close()
        assert s.stop() == 0


def test_bad_limits_in_the_config_are_a_clear_error(tmp_path):
    for keys in ({"rate_limit_per_s": 0}, {"rate_limit_burst": -1},
                 {"max_connections_per_ip": "many"}, {"rate_limit_per_s": 1.5}):
        p = subprocess.run([QX, "serve", "--demo", "--data-dir", str(tmp_path / "d"), "--http",
                            "127.0.0.1:0", "--config", write_config(tmp_path, **keys)],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode != 0, keys
        assert next(iter(keys)) + " must be a whole number" in p.stderr, p.stderr


def test_structured_logs_on_stderr(tmp_path):
    import socket

    secret = "log-test-secret-" + "x" * 32
    s = Server(tmp_path / "data", split_stderr=True, env=dict(os.environ, QX_JWT_SECRET=secret),
               extra=("--config", write_config(tmp_path, max_connections_per_ip=1)))
    host, port = s.url.removeprefix("http://").split(":")
    tcp_host, tcp_port = s.tcp.split(":")
    with socket.create_connection((host, int(port)), timeout=20) as first:
        assert http_exchange(first)[0] == 200
        with socket.create_connection((host, int(port)), timeout=20) as second:
            assert http_exchange(second) is None  # refused: one connection per address
        # The limit is per address across listeners: the binary TCP port refuses too.
        with socket.create_connection((tcp_host, int(tcp_port)), timeout=20) as third:
            try:
                assert third.recv(1) == b""  # closed at once, nothing sent
            except ConnectionError:
                pass
    assert s.stop() == 0

    # stdout keeps its human lines.
    assert "listening on http://127.0.0.1:" in s.output()
    assert re.search(r"recovered last_seq=0 state_hash=[0-9a-f]+", s.output())
    assert re.search(r"stopped last_seq=\d+ state_hash=[0-9a-f]+", s.output())
    assert "alice / alice-demo-pw" in s.output()

    events = s.log_events()  # every stderr line is a JSON object with ts, level, event
    names = [e["event"] for e in events]
    assert names[:3] == ["start", "recovered", "listening"], names
    assert names[-2:] == ["shutdown_requested", "stopped"], names
    start, recovered = events[:2]
    (listening,) = [e for e in events if e["event"] == "listening" and e["listener"] == "http"]
    (tcp,) = [e for e in events if e["event"] == "listening" and e["listener"] == "binary_tcp"]
    assert (tcp["address"], tcp["tls"]) == ("127.0.0.1", False)
    assert start["level"] == "info" and start["demo"] is True
    assert start["max_connections_per_ip"] == 1 and start["rate_limit_per_s"] == 2000
    assert secret not in s.errlog.read_text() and "jwt_secret" not in start
    assert (recovered["last_seq"], recovered["snapshot_seq"]) == (0, None)
    assert (listening["address"], listening["port"], listening["tls"]) == \
        (host, int(port), False)
    refused = [e for e in events if e["event"] == "connection_refused"]
    assert sorted(e["listener"] for e in refused) == ["binary_tcp", "http"], events
    for e in refused:
        assert e["level"] == "warn" and e["ip"] == "127.0.0.1"
        assert (e["reason"], e["limit"]) == ("max_connections_per_ip", 1)
    assert start["tcp"] == "127.0.0.1:0"
    assert events[-2]["signal"] == signal.SIGTERM
    status = re.search(r"stopped last_seq=(\d+) state_hash=([0-9a-f]+)", s.output())
    assert (events[-1]["last_seq"], events[-1]["state_hash"]) == \
        (int(status.group(1)), status.group(2))


def test_start_up_failure_is_logged_as_json(tmp_path):
    p = subprocess.run([QX, "serve", "--demo", "--data-dir", str(tmp_path / "d"), "--http",
                        "127.0.0.1:99999"], capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    *json_lines, human = p.stderr.splitlines()
    events = [json.loads(line) for line in json_lines]
    assert [e["event"] for e in events] == ["start", "serve_failed"], p.stderr
    assert events[-1]["level"] == "fatal" and "bad port" in events[-1]["error"]
    assert human == "qx: " + events[-1]["error"]  # and the one-line reason for a person


CONFIG = Path(__file__).resolve().parents[2] / "config"


def exported_metrics(exposition):
    """{name: type} of every metric family in a Prometheus text exposition, with the sample
    names of histograms (_bucket, _sum, _count) as their own entries."""
    kinds = {}
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            kinds[name] = kind
            if kind == "histogram":
                kinds.update({name + s: "sample" for s in ("_bucket", "_sum", "_count")})
        elif line and not line.startswith("#"):
            kinds.setdefault(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0), "sample")
    return kinds


def test_dashboard_and_alert_rules_name_only_exported_metrics(server):
    r = server.order("alice", "alice-01", "BUY", "1000.0")  # far outside the band: a reject
    assert r.json()["status"] == "REJECTED", r.text
    exported = exported_metrics(server.get("/metrics").text)

    dashboard = json.loads((CONFIG / "grafana" / "qaexchange.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 20 and all(exprs)
    titles = " ".join(p["title"] for p in dashboard["panels"]).lower()
    for word in ("orders/s", "trades/s", "rejects", "latency", "fsync", "queue", "connections",
                 "http replies", "rate-limited", "refused", "cluster leader", "replication lag",
                 "follower lag"):
        assert word in titles, word
    rules = (CONFIG / "prometheus" / "alerts.yml").read_text()

    used_on_dashboard = set(re.findall(r"\bqx_\w+", json.dumps(dashboard)))
    used = used_on_dashboard | set(re.findall(r"\bqx_\w+", rules))
    # Families with a series per follower exist only in cluster mode (test_cluster.py checks them).
    cluster_only = {"qx_cluster_follower_lag_events"} | {
        "qx_cluster_replication_lag_seconds" + s for s in ("", "_bucket", "_sum", "_count")}
    missing = sorted(used - set(exported) - cluster_only)
    assert not missing, f"named in config/ but not exported by the server: {missing}"

    # The other way round: every metric the server exports is on the dashboard.
    families = {n for n, kind in exported.items() if n.startswith("qx_") and kind != "sample"}
    bases = {re.sub(r"_(bucket|sum|count)$", "", n) if re.sub(r"_(bucket|sum|count)$", "", n)
             in families else n for n in used_on_dashboard}
    assert not families - bases, f"exported but not on the dashboard: {families - bases}"

    # The rules select the job that the example scrape config defines.
    scrape = (CONFIG / "prometheus" / "prometheus.yml").read_text()
    job = re.search(r"job_name: (\w+)", scrape).group(1)
    assert set(re.findall(r'job="(\w+)"', rules)) == {job}


def test_periodic_snapshots_then_sigkill_and_restart(tmp_path):
    data = tmp_path / "data"
    s = Server(data, split_stderr=True,
               extra=("--config", write_config(tmp_path, snapshot_every_events=50)))
    alice = requests.Session()
    alice.headers["Authorization"] = "Bearer " + s.token("alice")
    for i in range(200):
        r = alice.post(s.url + "/api/order/submit", timeout=30, json={
            "account": "alice-01", "instrument": "cu2501", "direction": "BUY", "offset": "OPEN",
            "price": str(70000 + 10 * (i % 100)), "volume": 1, "time_condition": "GTC"})
        assert r.json()["status"] == "ACCEPTED", r.text
    # Snapshots are written in the background: wait until at least one is logged, then kill.
    deadline = time.monotonic() + 60
    while not (written := [e for e in s.log_events() if e["event"] == "snapshot_written"]):
        assert time.monotonic() < deadline, s.errlog.read_text()
        time.sleep(0.1)
    assert not [e for e in s.log_events() if e["event"] == "snapshot_failed"]
    assert all(e["seq"] >= 50 for e in written)
    status = s.status()
    s.stop(signal.SIGKILL)

    journal = str(data / "journal")
    p = subprocess.run([QX, "snapshot", journal, "--list", "--json"], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    seqs = json.loads(p.stdout)["snapshot_seqs"]
    assert seqs and all(seq > 0 for seq in seqs), seqs
    assert {e["seq"] for e in written} <= set(seqs)
    # Each at least 50 events after the one before (none taken at shutdown: SIGKILL).
    assert all(b - a >= 50 for a, b in zip(seqs, seqs[1:])), seqs
    listed = subprocess.run([QX, "snapshot", journal, "--list"], capture_output=True, text=True,
                            timeout=60).stdout
    assert listed.splitlines() == [f"snapshot at seq {seq}" for seq in seqs]

    s2 = Server(data)
    try:
        m = re.search(r"recovered last_seq=(\d+) state_hash=(\w+) \(snapshot (\d+),", s2.output())
        assert m, s2.output()
        assert int(m.group(3)) == seqs[-1]  # from the newest periodic snapshot
        assert int(m.group(1)) >= status["last_seq"]  # every acknowledged event survived
        out = subprocess.run([QX, "replay", journal, "--json"], capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0, out.stderr
        replayed = json.loads(out.stdout)  # the whole journal from the first event
        assert "from_snapshot_seq" not in replayed
        assert (replayed["last_seq"], replayed["state_hash"]) == (int(m.group(1)), m.group(2))
        assert s2.status()["state_hash"] == m.group(2)
    finally:
        assert s2.stop() == 0


def test_snapshot_list_on_a_journal_without_snapshots(tmp_path):
    s = Server(tmp_path / "data",
               extra=("--config", write_config(tmp_path, snapshot_every_events=0)))
    for i in range(60):
        assert s.order("alice", "alice-01", "BUY", "3790.0").status_code == 200
    s.stop(signal.SIGKILL)  # 0 disables periodic snapshots, and SIGKILL skips the final one
    journal = tmp_path / "data" / "journal"
    p = subprocess.run([QX, "snapshot", str(journal), "--list"], capture_output=True, text=True,
                       timeout=60)
    assert (p.returncode, p.stdout) == (0, "no snapshots\n"), p.stderr
    p = subprocess.run([QX, "snapshot", str(journal), "--list", "--json"], capture_output=True,
                       text=True, timeout=60)
    assert json.loads(p.stdout) == {"snapshot_seqs": []}


def test_single_node_has_no_cluster_status_and_marks_reads_with_their_seq(server):
    r = server.get("/api/cluster/status")
    assert r.status_code == 404 and r.json()["error"] == "not_clustered", r.text
    placed = server.order("alice", "alice-01", "BUY", "70000.0")
    assert placed.status_code == 200, placed.text
    r = server.get("/api/account/alice-01", user="alice")
    assert r.status_code == 200 and int(r.headers["X-QX-Seq"]) >= placed.json()["seq"], r.headers
