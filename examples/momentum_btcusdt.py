"""A simple momentum strategy on Binance USD-M BTCUSDT trades + best bid/offer (2024-08-08
sample), replay-only fill mode with the risk-averse queue model (sim/fill.h), 2 ms order entry
(+ up to 1 ms jitter), 1 ms market data, seed 7, fees 0.05% of notional.

Rules, every 5 s of data (on_timer), from the mid prices seen (on_quote):
  - signal: the mid now against the mid 60 s before; above by more than 2 bp: long 0.05 BTC,
    below by more than 2 bp: short 0.05 BTC, else keep the position;
  - trade towards the target with a limit at the opposite best price (marketable when sent);
    what has not filled by the next timer is cancelled.

    ./scripts/example.sh momentum_btcusdt [--out DIR] [--queue-model proportional]
"""
import sys
from collections import deque

import qaexchange
from _data import binance_files, out_dir, report

LOTS, LOOKBACK_NS, EVERY_NS, THRESHOLD = 50, 60_000_000_000, 5_000_000_000, 2e-4


class Momentum:
    def __init__(self):
        self.mids = deque()   # (t, mid), the last LOOKBACK_NS
        self.live = []

    def on_start(self, bt):
        self.bt = bt

    def on_quote(self, t, bid, bid_qty, ask, ask_qty):
        self.mids.append((t, (bid + ask) / 2))
        while self.mids and self.mids[0][0] < t - LOOKBACK_NS:
            self.mids.popleft()

    def on_timer(self, t):
        for oid in self.live:
            self.bt.cancel(oid)
        self.live = []
        if len(self.mids) < 2 or self.mids[-1][0] - self.mids[0][0] < LOOKBACK_NS // 2:
            return
        change = self.mids[-1][1] / self.mids[0][1] - 1.0
        pos = self.bt.position
        target = LOTS if change > THRESHOLD else -LOTS if change < -THRESHOLD else pos
        if target > pos:
            if pos < 0:
                self.live.append(self.bt.buy(-pos, offset="CLOSE"))
            if target > max(pos, 0):
                self.live.append(self.bt.buy(target - max(pos, 0)))
        elif target < pos:
            if pos > 0:
                self.live.append(self.bt.sell(pos, offset="CLOSE"))
            if target < min(pos, 0):
                self.live.append(self.bt.sell(min(pos, 0) - target))


def main(argv):
    trades, bbo = binance_files()
    out = out_dir("momentum_btcusdt", argv)
    model = argv[argv.index("--queue-model") + 1] if "--queue-model" in argv else "risk_averse"
    bt = qaexchange.TickBacktest(out / "journal", trades=trades, bbo=bbo, queue_model=model,
                                 cash=100_000.0, fee_rate=0.0005, margin_rate=0.1,
                                 order_entry=(2_000_000, 1_000_000), market_data=1_000_000,
                                 seed=7)
    bt.run(Momentum(), timer=EVERY_NS, sample_every=200)
    bt.finish()
    report(bt, out, f"momentum, BTCUSDT 2024-08-08, replay-only/{model}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
