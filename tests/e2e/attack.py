#!/usr/bin/env python3
"""The attack suite: every attack of the hardening work at once against a live `qx serve --demo`,
while two honest traders keep trading. It checks that the server stays up, that the honest
traders' order-to-ack latency stays within bounds, and returns every acknowledged order (its
journal sequence number) so that the caller can check that none was lost.

    tests/e2e/attack.py --url http://127.0.0.1:8080 --tcp 127.0.0.1:9090 [--seconds 10]

The attacks (each bounded in count and time, loopback only):
  slowloris        sockets that send a request header one byte at a time
  silent           sockets that connect and say nothing (HTTP and binary TCP)
  stopped readers  a WebSocket and a TCP session that send requests and never read the answers
  bad logins       10,000 wrong passwords over keep-alive HTTP, across many user names
  deep JSON        bodies and DIFF messages nested 100,000 levels deep
  oversized        a 2 MiB HTTP body, a 1 MiB WebSocket message, a TCP frame announcing 2 GiB
  wrong types      every order field with the wrong JSON type, over REST and DIFF
  NUL users        "alice\\u0000" and look-alikes created and logged in
  viewer           the viewer tries every trader and admin action over REST, DIFF and TCP
"""
import argparse
import asyncio
import json
import socket
import statistics
import struct
import sys
import threading
import time

import requests
import websockets

PW = {"admin": "admin-demo-pw", "alice": "alice-demo-pw", "bob": "bob-demo-pw",
      "viewer": "viewer-demo-pw", "auditor": "auditor-demo-pw"}
WRONG = [1, 1.5, True, None, [], {}, "", "x" * 2000]


def wrong_for(key, value):
    """Whether `value` is of a type the order field does not take."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if key in ("price", "limit_price"):
        return not (number or isinstance(value, str))
    if key == "volume":
        return not (isinstance(value, int) and not isinstance(value, bool))
    return not isinstance(value, str)
ORDER = {"account": "alice-01", "instrument": "IF2501", "direction": "BUY", "offset": "OPEN",
         "price": "3700.0", "volume": 1, "time_condition": "IOC"}


def login(url, user):
    r = requests.post(url + "/api/auth/login", json={"username": user, "password": PW[user]},
                      timeout=30)
    r.raise_for_status()
    return r.json()["token"]


class Trader:
    """alice rests buys, bob sells into them: each acknowledged order and its latency is kept."""

    def __init__(self, url, tokens):
        self.url = url
        self.sessions = {}
        for user in ("alice", "bob"):
            s = requests.Session()
            s.headers["Authorization"] = "Bearer " + tokens[user]
            self.sessions[user] = s
        self.acked = []      # (user, seq, status)
        self.failures = []   # (user, status code, text)
        self.latency = []    # seconds per order

    def order(self, user, body):
        t = time.perf_counter()
        r = self.sessions[user].post(self.url + "/api/order/submit", json=body, timeout=60)
        self.latency.append(time.perf_counter() - t)
        if r.status_code != 200:
            self.failures.append((user, r.status_code, r.text))
            return
        j = r.json()
        self.acked.append((user, j["seq"], j["status"]))

    def round(self, i):
        self.order("alice", {**ORDER, "price": "3790.0", "time_condition": "GFD",
                             "client_order_id": 10_000_000 + i})
        self.order("bob", {**ORDER, "account": "bob-01", "direction": "SELL", "price": "3790.0"})

    def run(self, seconds):
        deadline = time.monotonic() + seconds
        i = 0
        while time.monotonic() < deadline:
            self.round(i)
            i += 1


def slowloris(host, port, stop, n=40):
    socks = []
    for _ in range(n):
        try:
            s = socket.create_connection((host, port), timeout=5)
            s.sendall(b"POST /api/order/submit HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
        except OSError:
            pass
    while not stop.is_set():
        for s in socks:
            try:
                s.sendall(b"X")
            except OSError:
                pass
        stop.wait(0.5)
    for s in socks:
        s.close()
    return len(socks)


def silent(host, port, stop, n=20):
    socks = []
    for _ in range(n):
        try:
            socks.append(socket.create_connection((host, port), timeout=5))
        except OSError:
            pass
    stop.wait()
    for s in socks:
        s.close()


def bad_logins(url, count, threads=4):
    codes = {}
    lock = threading.Lock()

    def worker(k):
        s = requests.Session()
        for i in range(k, count, threads):
            r = s.post(url + "/api/auth/login",
                       json={"username": f"guess{i % 50}", "password": f"wrong-{i}"}, timeout=60)
            with lock:
                codes[r.status_code] = codes.get(r.status_code, 0) + 1
    ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return codes


def tcp_frame(body):
    return struct.pack("<I", len(body)) + body


def read_frames(sock, count, timeout=30):
    """The next `count` server messages (raw Cap'n Proto bodies) from a socket."""
    sock.settimeout(timeout)
    buf, out = b"", []
    while len(out) < count:
        chunk = sock.recv(65536)
        assert chunk, "closed by the server"
        buf += chunk
        while len(buf) >= 4 and len(buf) >= 4 + struct.unpack("<I", buf[:4])[0]:
            n = struct.unpack("<I", buf[:4])[0]
            out.append(buf[4:4 + n])
            buf = buf[4 + n:]
    return out


def viewer_tcp(host, port, frames):
    """The viewer logs in over TCP and tries to trade: every order request is `forbidden`."""
    login, *orders = frames
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(tcp_frame(login))
        read_frames(s, 1)  # loginOk
        s.sendall(b"".join(tcp_frame(f) for f in orders))
        answers = read_frames(s, len(orders))
        assert all(b"forbidden" in a for a in answers), answers
    return len(orders)


def tcp_attacks(host, port, login_frame, flood_frame):
    """A TCP session that floods requests and never reads; a 2 GiB frame; garbage."""
    results = {}
    s = socket.create_connection((host, port), timeout=10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(tcp_frame(login_frame))
    sent = 0
    try:
        for _ in range(3000):
            s.sendall(tcp_frame(flood_frame) * 50)
            sent += 50
    except OSError:
        pass
    s.close()
    results["stopped_reader_requests"] = sent
    for payload in (struct.pack("<I", 0x7FFFFFFF), struct.pack("<I", 16) + b"\xff" * 16):
        with socket.create_connection((host, port), timeout=10) as g:
            g.sendall(payload)
            g.settimeout(5)
            try:
                while g.recv(65536):
                    pass
            except OSError:
                pass
    return results


async def ws_attacks(ws_url, tokens):
    out = {}
    hdr = {"Authorization": "Bearer " + tokens["viewer"]}
    # Wrong types in order messages, deep JSON, the viewer trading: notify answers, session lives.
    async with websockets.connect(ws_url, extra_headers=hdr, max_size=None) as ws:
        answers = 0
        msgs = [{"aid": "insert_order", "account_id": "alice-01", "instrument_id": "IF2501",
                 "direction": "BUY", "volume": 1, "limit_price": "3700.0", k: w}
                for k in ("account_id", "instrument_id", "direction", "volume", "limit_price")
                for w in WRONG if wrong_for(k, w)]
        msgs += [{"aid": "cancel_order", "account_id": "alice-01", "order_id": 1},
                 {"aid": "subscribe_quote", "ins_list": 1},
                 "{\"aid\":" + "[" * 30000 + "]" * 30000 + "}"]
        for m in msgs:
            await ws.send(m if isinstance(m, str) else json.dumps(m))
            reply = json.loads(await asyncio.wait_for(ws.recv(), 30))
            code = reply["data"][0]["notify"]["n"]["code"]
            assert code in (400, 403), reply
            answers += 1
        out["ws_refused"] = answers
    # A message over the 64 KiB limit closes that session only.
    async with websockets.connect(ws_url, extra_headers=hdr, max_size=None) as ws:
        try:
            await ws.send("x" * (1 << 20))
            await asyncio.wait_for(ws.recv(), 10)
            out["ws_oversized"] = "answered"
        except (websockets.ConnectionClosed, asyncio.TimeoutError):
            out["ws_oversized"] = "closed"
    # A reader that stops reading: echoes pile up until the server cuts it.
    async with websockets.connect(ws_url, extra_headers=hdr, max_size=None) as ws:
        big = json.dumps({"aid": "y" * 60000})
        try:
            for _ in range(1000):
                await asyncio.wait_for(ws.send(big), 5)
            out["ws_stopped_reader"] = "not cut"
        except (websockets.ConnectionClosed, asyncio.TimeoutError, OSError):
            out["ws_stopped_reader"] = "cut"
    return out


def viewer_rest(url, token):
    h = {"Authorization": "Bearer " + token}
    calls = [("/api/order/submit", ORDER),
             ("/api/order/amend", {"account": "alice-01", "order_id": 1, "price": "3700.0",
                                   "volume_left": 1}),
             ("/api/order/cancel", {"account": "alice-01", "order_id": 1}),
             ("/api/admin/user", {"username": "mallory", "password": "long-enough",
                                  "role": "admin"}),
             ("/api/admin/user/alice/disable", {}),
             ("/api/admin/user/alice/password", {"password": "long-enough"}),
             ("/api/admin/account", {"user": "viewer", "name": "viewer-01"}),
             ("/api/admin/deposit", {"account": "alice-01", "amount": "1"}),
             ("/api/admin/withdraw", {"account": "alice-01", "amount": "1"}),
             ("/api/admin/instrument/IF2501/halt", {}),
             ("/api/admin/settle", {})]
    for path, body in calls:
        r = requests.post(url + path, json=body, headers=h, timeout=30)
        assert r.status_code == 403, (path, r.status_code, r.text)
    for path in ("/api/admin/status", "/api/account/alice-01", "/api/orders/alice-01"):
        r = requests.get(url + path, headers=h, timeout=30)
        assert r.status_code == 403, (path, r.status_code, r.text)
    return len(calls) + 3


def wrong_types_rest(url, tokens):
    h = {"Authorization": "Bearer " + tokens["alice"]}
    n = 0
    for key in ORDER:
        for w in [w for w in WRONG if wrong_for(key, w)]:
            r = requests.post(url + "/api/order/submit", json={**ORDER, key: w}, headers=h,
                              timeout=30)
            assert r.status_code in (400, 404, 429), (key, w, r.status_code, r.text)
            n += 1
    for raw in ("[" * 30000, "{" * 10, "\x00"):
        r = requests.post(url + "/api/order/submit", data=raw, headers=h, timeout=30)
        assert r.status_code == 400, r.text
    r = requests.post(url + "/api/order/submit", data=b"{" + b" " * (2 << 20) + b"}", headers=h,
                      timeout=30)
    assert r.status_code == 413, r.text
    return n


def nul_users(url, tokens):
    h = {"Authorization": "Bearer " + tokens["admin"]}
    for name in ("alice\u0000", "alice ", "\u0430lice", "alice\u200b"):
        r = requests.post(url + "/api/admin/user", headers=h, timeout=30,
                          json={"username": name, "password": "long-enough", "role": "trader"})
        assert r.status_code == 400, (name, r.text)


def percentile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def run(url, tcp, seconds=10.0, login_frame=None, flood_frame=None, viewer_frames=None,
        bad_login_count=10_000):
    """Runs every attack for about `seconds` while alice and bob trade; returns a report with the
    acknowledged orders. Raises AssertionError when a check fails. The binary TCP attacks need
    Cap'n Proto frames from the caller: `login_frame` (a token login of a user who is not
    trading) and `flood_frame` (any request) for the reader that stops reading; `viewer_frames`,
    the viewer's token login followed by newOrder, amend and cancel requests on a trader's
    account."""
    host, port = url.split("//")[1].rsplit(":", 1)
    port = int(port)
    thost, tport = tcp.rsplit(":", 1)
    tokens = {u: login(url, u) for u in ("alice", "bob", "admin", "viewer")}
    honest = Trader(url, tokens)
    for i in range(20):  # the usual latency, before any attack
        honest.round(1000 + i)
    baseline = list(honest.latency)
    honest.latency.clear()

    stop = threading.Event()
    report = {}
    ws_url = url.replace("http", "ws", 1) + "/ws/diff"
    attacks = {
        "slowloris": lambda: report.__setitem__("slowloris_sockets",
                                                slowloris(host, port, stop)),
        "silent_http": lambda: silent(host, port, stop),
        "silent_tcp": lambda: silent(thost, int(tport), stop),
        "bad_logins": lambda: report.__setitem__("bad_logins",
                                                 bad_logins(url, bad_login_count)),
        "websocket": lambda: report.update(asyncio.run(ws_attacks(ws_url, tokens))),
        "viewer": lambda: report.__setitem__("viewer_refused",
                                             viewer_rest(url, tokens["viewer"])),
        "wrong_types": lambda: report.__setitem__("wrong_types_refused",
                                                  wrong_types_rest(url, tokens)),
        "nul_users": lambda: nul_users(url, tokens),
    }
    if login_frame and flood_frame:
        attacks["tcp"] = lambda: report.update(
            tcp_attacks(thost, int(tport), login_frame, flood_frame))
    if viewer_frames:
        attacks["viewer_tcp"] = lambda: report.__setitem__(
            "viewer_tcp_refused", viewer_tcp(thost, int(tport), viewer_frames))
    errors = []

    def guarded(name, fn):
        try:
            fn()
        except Exception as e:  # noqa: BLE001 (every failure is reported below)
            errors.append(f"{name}: {e!r}")
    threads = [threading.Thread(target=guarded, args=item) for item in attacks.items()]
    for t in threads:
        t.start()
    honest.run(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert requests.get(url + "/healthz", timeout=10).status_code == 200
    under = honest.latency
    report.update({
        "acked_orders": len(honest.acked),
        "failed_orders": honest.failures[:5],
        "baseline_p50_ms": round(statistics.median(baseline) * 1e3, 2),
        "attack_p50_ms": round(statistics.median(under) * 1e3, 2),
        "attack_p99_ms": round(percentile(under, 0.99) * 1e3, 2),
    })
    assert not honest.failures, honest.failures[:5]
    assert len(honest.acked) >= 20, report
    report["acked"] = honest.acked
    return report


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--tcp", default="127.0.0.1:9090")
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    report = run(args.url, args.tcp, args.seconds)
    report.pop("acked")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
