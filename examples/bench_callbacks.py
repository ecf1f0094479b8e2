"""Events per second through Python callbacks on the LOBSTER AMZN level-5 sample, exact mode:
no strategy (the loop in C++), a per-event callback (on_quote + on_trade, doing nothing), and
batched callbacks (on_batch every N events, a numpy reduction per batch); then the same on the
BTCUSDT ticks in replay-only mode (ticks read into memory first, a cheaper venue), where the cost
of the Python calls shows more.

    ./scripts/example.sh bench_callbacks
"""
import sys
import tempfile
import time
from pathlib import Path

import qaexchange
from _data import binance_files, lobster_files


class PerEvent:
    def __init__(self):
        self.n = 0

    def on_quote(self, t, bid, bid_qty, ask, ask_qty):
        self.n += 1

    def on_trade(self, t, price, qty, side):
        self.n += 1


class Batched:
    def __init__(self):
        self.n = 0
        self.volume = 0

    def on_batch(self, a):
        self.n += len(a["time_ns"])
        self.volume += int(a["qty"][a["kind"] == 1].sum())


def main():
    m, b = lobster_files(5)
    trades, bbo = binance_files()
    rows = []
    for data in ("AMZN L5 exact", "BTCUSDT replay-only"):
        for name, strategy, batch in [("none (step loop)", None, 0),
                                      ("per-event callback", PerEvent(), 0),
                                      ("batched, 4096", Batched(), 4096),
                                      ("batched, 65536", Batched(), 65536)]:
            with tempfile.TemporaryDirectory() as d:
                if data.startswith("AMZN"):
                    bt = qaexchange.ExactBacktest(Path(d) / "j", m, b)
                else:
                    bt = qaexchange.TickBacktest(Path(d) / "j", trades=trades, bbo=bbo)
                t0 = time.perf_counter()
                if strategy is None:
                    while bt.step(65536):
                        pass
                    n = bt.events_read
                else:
                    n = bt.run(strategy, batch=batch, sample_every=65536)
                    assert strategy.n == n, (strategy.n, n)   # every event reached Python
                dt = time.perf_counter() - t0
                rows.append((data, name, n, dt))
    print(f"{'data':<22}{'callbacks':<22}{'events':>10}{'seconds':>10}{'events/s':>14}")
    for data, name, n, dt in rows:
        print(f"{data:<22}{name:<22}{n:>10}{dt:>10.3f}{n / dt:>14,.0f}")


if __name__ == "__main__":
    sys.exit(main())
