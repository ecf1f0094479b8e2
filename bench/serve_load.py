"""Load on a running `qx serve --demo`: N client processes submit resting cu2501 orders for alice
over keep-alive HTTP and report acknowledged orders/s, client-side latency percentiles and, from
/metrics, events per group commit and the mean fsync time.

    python3 bench/serve_load.py http://127.0.0.1:8080 --clients 8 --seconds 10

Every order is acknowledged only after its event is durable (fdatasync), so this measures the
server's durable order path. Python clients are slow: on a small machine they, not the server,
may be the limit.
"""

import argparse
import multiprocessing as mp
import re
import time

import requests


def login(url, user, password):
    r = requests.post(url + "/api/auth/login", json={"username": user, "password": password})
    r.raise_for_status()
    return r.json()["token"]


def client(url, token, k, seconds, out):
    s = requests.Session()
    s.headers["Authorization"] = "Bearer " + token
    lat, i, end = [], 0, time.monotonic() + seconds
    while time.monotonic() < end:
        i += 1
        body = {"account": "alice-01", "instrument": "cu2501", "direction": "BUY", "offset": "OPEN",
                "price": str(70000 + 10 * (i % 400)), "volume": 1, "time_condition": "GTC"}
        t0 = time.perf_counter()
        r = s.post(url + "/api/order/submit", json=body)
        lat.append(time.perf_counter() - t0)
        assert r.status_code == 200, r.text
    out.put(lat)


def metric(text, name):
    m = re.search(rf"^{name} ([0-9.e+-]+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10)
    a = ap.parse_args()
    admin = login(a.url, "admin", "admin-demo-pw")
    requests.post(a.url + "/api/admin/deposit",
                  json={"account": "alice-01", "amount": "1000000000"},
                  headers={"Authorization": "Bearer " + admin}).raise_for_status()
    token = login(a.url, "alice", "alice-demo-pw")
    before = requests.get(a.url + "/metrics").text
    q = mp.Queue()
    ps = [mp.Process(target=client, args=(a.url, token, k, a.seconds, q))
          for k in range(a.clients)]
    t0 = time.monotonic()
    for p in ps:
        p.start()
    lat = sorted(x for _ in ps for x in q.get())
    for p in ps:
        p.join()
    wall = time.monotonic() - t0
    after = requests.get(a.url + "/metrics").text
    events = metric(after, "qx_events_total") - metric(before, "qx_events_total")
    fsyncs = (metric(after, "qx_journal_fsync_seconds_count")
              - metric(before, "qx_journal_fsync_seconds_count"))
    fsync_s = (metric(after, "qx_journal_fsync_seconds_sum")
               - metric(before, "qx_journal_fsync_seconds_sum"))
    pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1e3
    print(f"orders acknowledged: {len(lat)} in {wall:.1f} s = {len(lat) / wall:.0f}/s "
          f"({a.clients} clients)")
    print(f"client latency ms: p50 {pct(0.5):.2f}  p99 {pct(0.99):.2f}  max {lat[-1] * 1e3:.2f}")
    if fsyncs:
        print(f"group commits: {fsyncs:.0f}, events per commit {events / fsyncs:.1f}, "
              f"mean fsync {fsync_s / fsyncs * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
