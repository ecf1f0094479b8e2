"""End-to-end tests of the binary TCP protocol (journals/schema/wire.capnp) of `qx serve`.

The C++ client is `qx client` (app/client_cmd.cc): ClientMessages in, ServerMessages out, one
Cap'n Proto JSON object per line. Malformed frames are written with raw sockets. Every test runs
a real server process on free loopback ports (the Server class of test_server.py).
"""
import asyncio
import json
import os
import queue
import re
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest
import requests

from test_server import PW, QX, Server, make_mtls_pki, write_config
from test_server import server  # noqa: F401  (the fixture: a demo server on free ports)

IF = 0  # instrument ids in the demo: IF2501, cu2501, au2506 in creation order
ALICE, BOB = 0, 1  # account ids: alice-01, bob-01


class TcpClient:
    """`qx client` as a subprocess; server messages are collected by a reader thread."""

    def __init__(self, server, user=None, password=None, token=None, extra=()):
        self.proc = subprocess.Popen([QX, "client", "--tcp", server.tcp, "--linger-ms", "100",
                                      *extra],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        self.messages = queue.Queue()
        self.seen = []
        self.next_id = 1
        threading.Thread(target=self._read, daemon=True).start()
        if user or token:
            login = {"token": token} if token else \
                {"password": {"username": user, "password": password or PW[user]}}
            ok = self.request({"login": login})
            assert "loginOk" in ok["body"], ok
            self.login = ok["body"]["loginOk"]

    def _read(self):
        for line in self.proc.stdout:
            self.messages.put(json.loads(line))
        self.messages.put(None)  # the connection is closed

    def send(self, body, request_id=None):
        rid = self.next_id if request_id is None else request_id
        self.next_id += 1
        msg = {"requestId": rid} if body is None else {"requestId": rid, "body": body}
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        return rid

    def wait(self, pred, timeout=30, since=0):
        """The first message (seen before, from index `since`, or arriving within timeout) that
        satisfies pred."""
        for m in self.seen[since:]:
            if pred(m):
                return m
        deadline = time.monotonic() + timeout
        while True:
            try:
                m = self.messages.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no matching message; seen {self.seen[-5:]}")
            if m is None:
                raise AssertionError(f"connection closed; seen {self.seen[-5:]}")
            self.seen.append(m)
            if pred(m):
                return m

    def request(self, body, timeout=30):
        rid = self.send(body)
        return self.wait(lambda m: m["requestId"] == str(rid), timeout)

    def closed(self, timeout=30):
        """True once the server has closed the connection."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                m = self.messages.get(timeout=0.1)
            except queue.Empty:
                continue
            if m is None:
                return True
            self.seen.append(m)
        return False

    def close(self):
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        self.proc.wait(timeout=30)


def order(side, price, volume=1, account=ALICE, **kw):
    return {"newOrder": {"account": account, "instrument": IF, "direction": side,
                         "price": price, "volume": volume, **kw}}


def error_code(m):
    return m["body"]["error"]["code"] if "error" in m["body"] else None


def test_full_trade_seen_alike_on_tcp_rest_and_websocket(server):
    alice = TcpClient(server, "alice")
    assert alice.login["accounts"] == [{"id": ALICE, "name": "alice-01"}]
    sub = alice.request({"subscribe": {"instrument": IF, "depth": 5, "trades": True}})
    assert sub["body"] == {"subscribed": IF}
    # Alice rests a sell over TCP (3800.0 is 19000 ticks of 0.2) ...
    r = alice.request(order("sell", 19000, 2, clientOrderId=77, timeCondition="gtc"))
    res = r["body"]["orderResult"]
    assert res["accepted"] and res["clientOrderId"] == "77", r
    alice.wait(lambda m: "book" in m["body"] and m["body"]["book"]["asks"] ==
               [{"price": "19000", "volume": "2", "orders": 1}])
    # ... Bob buys one lot over REST ...
    b = server.order("bob", "bob-01", "BUY", "3800.0", 1)
    assert b.json()["status"] == "ACCEPTED", b.text
    rest_trade = [e for e in b.json()["effects"] if e["kind"] == "TRADE"][0]

    # ... and all three views agree: TCP execution (maker side) and public trade,
    maker = alice.wait(lambda m: m["body"].get("execution", {}).get("kind") == "trade")
    x = maker["body"]["execution"]
    assert (x["maker"], x["direction"], x["price"], x["volume"], x["volumeLeft"],
            x["clientOrderId"]) == (True, "sell", "19000", "1", "1", "77")
    assert x["tradeId"] == str(rest_trade["trade_id"])
    pub = alice.wait(lambda m: "trade" in m["body"])["body"]["trade"]
    assert (pub["tradeId"], pub["price"], pub["aggressor"]) == (x["tradeId"], "19000", "buy")
    alice.wait(lambda m: "book" in m["body"] and m["body"]["book"]["asks"] ==
               [{"price": "19000", "volume": "1", "orders": 1}] and m["body"]["book"]["lastPrice"] == "19000")
    # REST for Alice,
    trades = server.get("/api/trades/alice-01", "alice").json()
    assert [(t["trade_id"], t["price"], t["volume"], t["direction"]) for t in trades.values()] == \
        [(int(x["tradeId"]), "3800.0", 1, "SELL")]
    acc = alice.request({"account": ALICE})["body"]["account"]
    rest_acc = server.get("/api/account/alice-01", "alice").json()
    assert acc["commission"] == str(int(round(float(rest_acc["commission"]) * 10000)))
    # and the WebSocket DIFF view.
    import websockets

    async def ws_trades():
        async with websockets.connect(server.url.replace("http://", "ws://") + "/ws/diff",
                                      extra_headers={"Authorization": "Bearer " +
                                                     server.token("alice")}) as ws:
            await ws.send(json.dumps({"aid": "peek_message"}))
            m = json.loads(await asyncio.wait_for(ws.recv(), timeout=20))
            return m["data"][0]["trade"]["alice"]["trades"]["alice-01"]

    ws = asyncio.run(ws_trades())
    assert [(t["trade_id"], t["price"]) for t in ws.values()] == [(int(x["tradeId"]), "3800.0")]

    # Amend and cancel over TCP by the client's id; orders query reflects each step.
    r = alice.request({"amend": {"account": ALICE, "clientOrderId": 77, "price": 19010,
                                 "volumeLeft": 1}})
    assert r["body"]["orderResult"]["accepted"], r
    o = alice.request({"orders": ALICE})["body"]["orders"]
    assert [(q["clientOrderId"], q["price"], q["volumeLeft"]) for q in o] == [("77", "19010", "1")]
    r = alice.request({"cancel": {"account": ALICE, "clientOrderId": 77}})
    assert r["body"]["orderResult"]["accepted"], r
    alice.wait(lambda m: m["body"].get("execution", {}).get("kind") == "cancelled")
    assert alice.request({"orders": ALICE})["body"]["orders"] == []
    # A business reject is an answer, not an error: volume over the instrument's maximum.
    r = alice.request(order("buy", 19000, 21))
    assert (r["body"]["orderResult"]["accepted"], r["body"]["orderResult"]["reason"]) == \
        (False, "ORDER_VOLUME_LIMIT_EXCEEDED"), r
    alice.close()


def test_login_and_roles(server):
    anon = TcpClient(server)
    for body in (order("buy", 19000), {"instruments": None}, {"account": ALICE},
                 {"orders": ALICE}, {"subscribe": {"instrument": IF, "depth": 1}},
                 {"cancel": {"account": ALICE, "orderId": 1}},
                 {"amend": {"account": ALICE, "orderId": 1, "price": 1, "volumeLeft": 1}}):
        assert error_code(anon.request(body)) == "unauthorized", body
    assert anon.request({"ping": None})["body"] == {"pong": None}
    wrong = anon.request({"login": {"password": {"username": "alice", "password": "nope"}}})
    assert error_code(wrong) == "unauthorized"
    bad = anon.request({"login": {"token": "not.a.token"}})
    assert error_code(bad) == "unauthorized"
    anon.close()

    viewer = TcpClient(server, "viewer")
    assert error_code(viewer.request(order("buy", 19000))) == "forbidden"
    assert error_code(viewer.request({"account": ALICE})) == "forbidden"
    assert "subscribed" in viewer.request({"subscribe": {"instrument": IF, "depth": 10}})["body"]
    assert len(viewer.request({"instruments": None})["body"]["instruments"]) == 3
    viewer.close()

    auditor = TcpClient(server, token=server.token("auditor"))  # a REST token works too
    assert auditor.login["role"] == "auditor"
    assert auditor.request({"account": BOB})["body"]["account"]["name"] == "bob-01"
    assert error_code(auditor.request(order("buy", 19000))) == "forbidden"
    auditor.close()

    admin = TcpClient(server, "admin")
    assert admin.request({"orders": ALICE})["body"]["orders"] == []
    assert error_code(admin.request(order("buy", 19000))) == "forbidden"  # admins do not trade
    admin.close()

    alice = TcpClient(server, "alice")
    assert error_code(alice.request({"account": BOB})) == "forbidden"
    assert error_code(alice.request(order("buy", 19000, account=BOB))) == "forbidden"
    assert error_code(alice.request({"cancel": {"account": BOB, "orderId": 1}})) == "forbidden"
    assert error_code(alice.request(order("buy", 19000, account=99))) == "unknown_account"
    assert error_code(alice.request({"newOrder": {"account": ALICE, "instrument": 99,
                                                  "direction": "buy", "price": 1,
                                                  "volume": 1}})) == "unknown_instrument"
    assert error_code(alice.request({"login": {"token": server.token("bob")}})) == "bad_request"
    alice.close()


def test_out_of_range_fields_are_refused_and_change_nothing(server):
    before = server.status()
    alice = TcpClient(server, "alice")
    bad = [order("buy", 19000, 0), order("buy", 19000, -5), order("buy", 19000, 10**12),
           order("buy", 0), order("buy", -19000), order("buy", str(2**63 - 1)),  # 64-bit values as JSON strings
           order("buy", 19000, clientOrderId=str(2**63)),
           {"newOrder": {"account": ALICE, "instrument": IF, "price": 19000, "volume": 1}},
           {"cancel": {"account": ALICE}},
           {"cancel": {"account": ALICE, "orderId": 1, "clientOrderId": 2}},
           {"amend": {"account": ALICE, "orderId": 1, "price": 0, "volumeLeft": 1}},
           {"subscribe": {"instrument": IF, "depth": 3}}]
    for body in bad:
        assert error_code(alice.request(body)) == "bad_request", body
    assert alice.request({"ping": None})["body"] == {"pong": None}  # the session goes on
    alice.close()
    after = server.status()
    assert (after["last_seq"], after["state_hash"]) == (before["last_seq"], before["state_hash"])


def raw_exchange(server, payload, read_timeout=10):
    """Sends raw bytes on a fresh connection; returns what the server sent until it closed."""
    host, port = server.tcp.split(":")
    with socket.create_connection((host, int(port)), timeout=read_timeout) as s:
        s.sendall(payload)
        got = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            got += chunk
        return got


def test_garbage_frames_get_a_protocol_error_and_a_close(server):
    before = server.status()
    cases = [
        struct.pack("<I", 16) + os.urandom(16),          # random words
        struct.pack("<I", 1 << 30),                      # a 1 GiB frame announced
        struct.pack("<I", 7) + b"1234567",               # not whole words
        struct.pack("<I", 0),                            # empty
        struct.pack("<II", 0, 1000) + b"\0" * 8,         # segment longer than the frame
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",            # the wrong protocol
    ]
    for payload in cases:
        got = raw_exchange(server, payload)
        # One framed ServerMessage came back (an error), then the server closed.
        assert len(got) >= 12, (payload, got)
        n = struct.unpack("<I", got[:4])[0]
        assert len(got) == 4 + n, (payload, got)
        assert b"protocol" in got, (payload, got)
    # A well-formed message without a body is a protocol error too (through the C++ client).
    c = TcpClient(server, "alice")
    c.send(None)
    assert c.closed()
    assert any(error_code(m) == "protocol" for m in c.seen)
    c.close()
    after = server.status()
    assert (after["last_seq"], after["state_hash"]) == (before["last_seq"], before["state_hash"])
    assert server.get("/healthz").status_code == 200
    assert 'qx_tcp_disconnects_total{cause="protocol"} 7' in server.get("/metrics").text


def test_sigkill_while_tcp_clients_submit_loses_no_acknowledged_order(tmp_path):
    s = Server(tmp_path / "data")
    alice = TcpClient(s, "alice")
    # Pipeline many resting orders (far from each other, so none trades), then kill the server
    # while answers are still arriving.
    n = 400
    for i in range(n):
        alice.send(order("buy", 18000 + i % 50, 1, clientOrderId=1000 + i, timeCondition="gtc",
                         account=ALICE))
    alice.wait(lambda m: "orderResult" in m["body"], timeout=60)
    time.sleep(0.05)
    s.proc.send_signal(signal.SIGKILL)
    s.proc.wait(timeout=30)
    alice.closed(timeout=10)
    acked = {m["body"]["orderResult"]["clientOrderId"] for m in alice.seen
             if "orderResult" in m["body"] and m["body"]["orderResult"]["accepted"]}
    assert acked, "no order was acknowledged before the kill"
    alice.close()

    again = Server(tmp_path / "data")
    try:
        resting = {str(o["client_order_id"])
                   for o in again.get("/api/orders/alice-01", "alice").json().values()}
        assert acked <= resting, sorted(acked - resting)[:10]
        st = again.status()
        rep = subprocess.run([QX, "replay", str(tmp_path / "data" / "journal"), "--json"],
                             capture_output=True, text=True, timeout=120)
        assert rep.returncode == 0, rep.stderr
        assert json.loads(rep.stdout)["state_hash"] == st["state_hash"]
    finally:
        assert again.stop() == 0


def test_load_tool_runs_against_a_real_server(server):
    """bench/qx_load end to end at a low rate: every order answered, none lost or refused."""
    load = os.environ.get("QX_LOAD")
    if not load:
        pytest.skip("QX_LOAD (bench/qx_load) not given")
    out = subprocess.run([load, "--tcp", server.tcp, "--rate", "500", "--seconds", "2",
                          "--warmup", "0.5", "--connections", "2"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    m = re.search(r"sent (\d+), answers: accepted (\d+), rejected (\d+), errors (\d+)", out.stdout)
    sent, accepted, rejected, errors = map(int, m.groups())
    assert sent >= 900 and accepted == sent and rejected == 0 and errors == 0, out.stdout
    assert re.search(r"order->ack latency us: p50 [\d.]+ +p90", out.stdout)
    # The server journaled every one of them.
    assert server.status()["last_seq"] >= sent


def test_tcp_over_mutual_tls(tmp_path):
    ca, (server_cert, server_key), (client_cert, client_key), (other_cert, other_key) = \
        make_mtls_pki(tmp_path)
    s = Server(tmp_path / "data", verify=ca, cert=(client_cert, client_key),
               extra=("--tls-cert", server_cert, "--tls-key", server_key, "--tls-client-ca", ca))
    try:
        assert "binary TCP on tls://" in s.output()
        good = TcpClient(s, "alice", extra=("--tls-ca", ca, "--tls-cert", client_cert,
                                            "--tls-key", client_key))
        r = good.request(order("buy", 19000))
        assert r["body"]["orderResult"]["accepted"], r
        good.close()
        # No client certificate, or one from another CA: no session (the handshake fails, or
        # with TLS 1.3 the server's alert ends the connection at the client's first read).
        for extra in (("--tls-ca", ca), ("--tls-ca", ca, "--tls-cert", other_cert,
                                         "--tls-key", other_key)):
            c = subprocess.run([QX, "client", "--tcp", s.tcp, "--linger-ms", "2000", *extra],
                               input=json.dumps({"requestId": 1, "body": {"login": {
                                   "password": {"username": "alice",
                                                "password": PW["alice"]}}}}) + "\n",
                               capture_output=True, text=True, timeout=60)
            assert "loginOk" not in c.stdout, (extra, c.stdout)
        # Plain TCP to the TLS listener gets no protocol answer.
        got = raw_exchange(s, struct.pack("<I", 16) + bytes(16))
        assert b"loginOk" not in got and b"protocol" not in got
        assert s.get("/healthz").status_code == 200
    finally:
        assert s.stop() == 0


def test_tcp_rate_and_connection_limits(tmp_path):
    cfg = write_config(tmp_path, rate_limit_per_s=5, rate_limit_burst=5, max_connections_per_ip=3)
    s = Server(tmp_path / "data", extra=("--config", cfg))
    try:
        alice = TcpClient(s, "alice")
        for _ in range(20):
            alice.send({"instruments": None})
        answers = [alice.wait(lambda m, i=i: m["requestId"] == str(i)) for i in range(2, 22)]
        limited = [m for m in answers if error_code(m) == "rate_limited"]
        served = [m for m in answers if "instruments" in m["body"]]
        assert limited and served and len(limited) + len(served) == 20, answers
        time.sleep(1.2)  # the bucket refills: the session is still usable
        assert "instruments" in alice.request({"instruments": None})["body"]
        # alice's session is one connection; two more fill the address's quota ...
        host, port = s.tcp.split(":")
        extra = [socket.create_connection((host, int(port)), timeout=10) for _ in range(2)]
        # ... and a fourth is closed at once, with nothing sent.
        with socket.create_connection((host, int(port)), timeout=10) as fourth:
            fourth.sendall(struct.pack("<I", 8) + bytes(8))
            try:
                assert fourth.recv(100) == b""
            except ConnectionResetError:
                pass
        for x in extra:
            x.close()
        alice.close()
        time.sleep(0.5)
        assert "qx_rejected_connections_total 1" in s.get("/metrics").text
        assert "qx_rate_limited_total" in s.get("/metrics").text
    finally:
        assert s.stop() == 0
