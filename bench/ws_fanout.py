"""WebSocket fan-out: N DIFF subscribers of one instrument's quote on a running `qx serve --demo`;
a driver moves the book K times and measures how long each change takes to reach every subscriber.

    python3 bench/ws_fanout.py http://127.0.0.1:8080 --subscribers 1000 --updates 50

Each subscriber logs in (a viewer token on the upgrade), subscribes to IF2501 and keeps one
peek_message outstanding, as DIFF clients do. The driver (alice over REST) rests one sell order
and amends its price back and forth; for each amend it records the time from sending the amend to
each subscriber's receipt of a patch showing the new ask price. Prints, over all updates, the
per-subscriber delivery latency percentiles and the time until the last subscriber had it, and the
patches delivered per second. The subscribers are Python asyncio tasks in one process on the
same machine, so on a small machine the client side is part of what is measured.

The server's per-address connection limit must allow the subscribers (e.g. a config with
{"max_connections_per_ip": 2000}).
"""

import argparse
import asyncio
import json
import statistics
import time

import requests
import websockets


def token(url, user, password):
    r = requests.post(url + "/api/auth/login", json={"username": user, "password": password},
                      timeout=30)
    r.raise_for_status()
    return r.json()["token"]


class Subscriber:
    def __init__(self):
        self.seen = {}  # ask price -> first monotonic time seen
        self.waiters = []

    async def run(self, url, tok, ready):
        async with websockets.connect(url, extra_headers={"Authorization": "Bearer " + tok},
                                      max_queue=None, open_timeout=60) as ws:
            await ws.send(json.dumps({"aid": "subscribe_quote", "ins_list": "CFFEX.IF2501"}))
            await ws.send(json.dumps({"aid": "peek_message"}))
            first = True
            async for text in ws:
                now = time.monotonic()
                m = json.loads(text)
                if m.get("aid") != "rtn_data":
                    continue
                for patch in m["data"]:
                    q = patch.get("quotes", {}).get("IF2501", {})
                    if "ask_price1" in q:
                        self.seen.setdefault(q["ask_price1"], now)
                if first:
                    first = False
                    ready.release()
                await ws.send(json.dumps({"aid": "peek_message"}))


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("url", nargs="?", default="http://127.0.0.1:8080")
    ap.add_argument("--subscribers", type=int, default=1000)
    ap.add_argument("--updates", type=int, default=50)
    ap.add_argument("--interval", type=float, default=0.2, help="seconds between book changes")
    a = ap.parse_args()
    ws_url = a.url.replace("http://", "ws://").replace("https://", "wss://") + "/ws/diff"
    viewer = token(a.url, "viewer", "viewer-demo-pw")
    alice = token(a.url, "alice", "alice-demo-pw")
    h = {"Authorization": "Bearer " + alice}
    r = requests.post(a.url + "/api/order/submit", headers=h, timeout=30, json={
        "account": "alice-01", "instrument": "IF2501", "direction": "SELL", "offset": "OPEN",
        "price": "3900.0", "volume": 1, "time_condition": "GTC"})
    r.raise_for_status()
    oid = r.json()["order_id"]

    subs = [Subscriber() for _ in range(a.subscribers)]
    ready = asyncio.Semaphore(0)
    t_connect = time.monotonic()
    tasks = []
    for i, s in enumerate(subs):
        tasks.append(asyncio.create_task(s.run(ws_url, viewer, ready)))
        if i % 100 == 99:
            await asyncio.sleep(0.05)
    for _ in subs:
        await asyncio.wait_for(ready.acquire(), timeout=120)
    print(f"{a.subscribers} subscribers connected and served a first view in "
          f"{time.monotonic() - t_connect:.1f} s")

    loop = asyncio.get_running_loop()
    delivery, last = [], []
    t_start = time.monotonic()
    for k in range(a.updates):
        price = f"{3901 + k % 2}.0"
        sent = time.monotonic()
        body = {"account": "alice-01", "order_id": oid, "price": price, "volume_left": 1}
        rep = await loop.run_in_executor(None, lambda: requests.post(
            a.url + "/api/order/amend", headers=h, json=body, timeout=30))
        assert rep.json()["status"] == "AMENDED", rep.text
        deadline = sent + 30
        while any(s.seen.get(price, 0) < sent for s in subs):
            if time.monotonic() > deadline:
                raise SystemExit(f"update {k}: not every subscriber saw {price} within 30 s")
            await asyncio.sleep(0.001)
        times = [s.seen[price] - sent for s in subs]
        delivery.extend(times)
        last.append(max(times))
        for s in subs:
            s.seen.pop(price, None)
        await asyncio.sleep(a.interval)
    elapsed = time.monotonic() - t_start
    delivery.sort()
    last.sort()

    def pct(v, q):
        return v[min(len(v) - 1, int(q * (len(v) - 1)))] * 1000

    print(f"updates {a.updates}, patches delivered {len(delivery)} "
          f"({len(delivery) / elapsed:.0f}/s including {a.interval}s pauses)")
    print(f"per-subscriber delivery ms: p50 {pct(delivery, .5):.1f}  p99 {pct(delivery, .99):.1f}"
          f"  max {pct(delivery, 1):.1f}")
    print(f"until the last subscriber ms: p50 {pct(last, .5):.1f}  p99 {pct(last, .99):.1f}"
          f"  mean {statistics.mean(last) * 1000:.1f}")
    for t in tasks:
        t.cancel()


if __name__ == "__main__":
    asyncio.run(main())
