"""A queue-aware market maker on the LOBSTER AMZN level-5 sample (2012-06-21), exact fill mode:
its orders wait in the real historical queue (sim/exact.h), 100 us order entry (+ up to 50 us
jitter), 20 us market data, seed 7.

Rules, per quote (on_quote callback):
  - quote 100 shares on a side at the best price when the queue there is short (at most 2,000
    shares displayed ahead: a place in a long queue is rarely reached before the price moves),
    else one tick behind the best, where the queue forms behind us;
  - skew with inventory: no new bids above +500 shares, no new asks below -500;
  - a quote against the inventory closes it (offset CLOSE), else it opens;
  - when the best price moves away from a resting quote by more than one tick, cancel it.
Fills and rejects come back through on_fill / on_order (after the market-data latency).

    ./scripts/example.sh market_maker_lobster [--out DIR]
"""
import sys

import qaexchange
from _data import lobster_files, out_dir, report

SIZE, MAX_QUEUE, LIMIT, TICK = 100, 2_000, 500, 0.01


class MarketMaker:
    def __init__(self):
        self.quote = {"BUY": None, "SELL": None}   # side -> (order id, price)

    def on_start(self, bt):
        self.bt = bt

    def on_order(self, oid, status, filled):
        for side, q in self.quote.items():
            if q and q[0] == oid and status in ("FILLED", "REJECTED", "CANCELLED"):
                self.quote[side] = None

    def on_quote(self, t, bid, bid_qty, ask, ask_qty):
        if bid <= 0 or ask <= 0:
            return
        pos = self.bt.position
        for side, best, shown, sign in (("BUY", bid, bid_qty, -1), ("SELL", ask, ask_qty, 1)):
            q = self.quote[side]
            if q is not None:
                oid, price = q
                if abs(price - best) > TICK + 1e-9:
                    self.bt.cancel(oid)
                    self.quote[side] = None
                continue
            if (side == "BUY" and pos >= LIMIT) or (side == "SELL" and pos <= -LIMIT):
                continue
            price = best if shown <= MAX_QUEUE else best + sign * TICK
            price = round(price, 2)
            # Close the opposite position first (the engine keeps long and short apart).
            offset = "CLOSE" if (side == "SELL" and pos >= SIZE) or \
                (side == "BUY" and pos <= -SIZE) else "OPEN"
            self.quote[side] = (self.bt.submit(side, SIZE, price=price, offset=offset), price)


def main(argv):
    m, b = lobster_files(5)
    out = out_dir("market_maker_lobster", argv)
    bt = qaexchange.Backtest(out / "journal", m, b, mode="exact", cash=1_000_000.0,
                             fee_per_lot=0.003, order_entry=(100_000, 50_000),
                             market_data=20_000, seed=7)
    bt.run(MarketMaker(), sample_every=500)
    bt.finish()
    report(bt, out, "market maker, AMZN 2012-06-21 level 5, exact mode")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
