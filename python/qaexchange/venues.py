"""Backtests on the sim/ fill modes (docs/backtesting.md):

    ExactBacktest   LOBSTER order-by-order data through sim::ExactLobsterVenue: the strategy's
                    orders rest in the real historical queue (fills labelled "exact"); also
                    qaexchange.Backtest(..., mode="exact").
    TickBacktest    trades + best bid/offer (Binance USD-M files, or arrays / DataFrames of the
                    same columns) through sim::ReplayOnlyVenue, with a queue-position model
                    (fills labelled "replay-only/risk_averse" or "replay-only/proportional").

Two strategy styles, both on the same object:

    while bt.step(100):                        # explicit loop
        bid, ask = bt.best()
        bt.buy(1, price=bid)                   # reaches the venue after the order-entry latency
    bt.run(strategy)                           # callbacks: on_quote/on_trade/on_book/on_fill/on_order/
                                               # on_timer per event, or on_batch(arrays) with batch=N
    bt.finish()                                # journal committed: qaexchange.replay(dir) agrees
    bt.fills(); bt.equity(); bt.stats(); bt.plot("bt.png")

Prices are floats in currency units (multiples of `tick`), volumes in lots, money in currency
units. An order without a price is a limit at the opposite best price when it is sent. Every fill
row carries `mode`. The journal directory must be new or empty. The GIL is released while data is
read and applied (step, advance_to, finish, and between batches of run).
"""
from __future__ import annotations

import os
from typing import Optional

import numpy as np
import pandas as pd

from . import plot as _plot
from . import stats as _stats
from ._qaexchange import ExactBacktest as _Exact
from ._qaexchange import TickBacktest as _Tick

MONEY_SCALE = 10_000  # minor units per US dollar of LOBSTER backtests (sim/lobster.cc: USD, 4 decimals)


def _latency(x) -> tuple[int, int]:
    """A latency in ns: an int (fixed) or (base_ns, jitter_ns), drawn uniformly, seeded."""
    if isinstance(x, (tuple, list)):
        return int(x[0]), int(x[1])
    return int(x), 0


class _VenueBacktest:
    tick = 1.0
    multiplier = 1.0

    def __init__(self, journal_dir, driver):
        self.journal_dir = str(journal_dir)
        self._bt = driver

    # The loop.
    def step(self, events: int = 1) -> bool:
        """Reads the next `events` historical events into the venue; False when none were left."""
        return self._bt.step(int(events))

    def advance_to(self, time) -> bool:
        """Reads every event up to `time` (pandas Timestamp or Unix ns); False at the end."""
        ns = time.value if isinstance(time, pd.Timestamp) else int(time)
        return self._bt.advance_to(ns)

    def _ticks(self, price: float) -> int:
        t = round(price / self.tick)
        if abs(t * self.tick - price) > self.tick * 1e-6:
            raise ValueError(f"price {price} is not a multiple of the tick {self.tick}")
        return t

    def submit(self, direction: str, volume: int, price: Optional[float] = None,
               offset: str = "OPEN") -> int:
        """A GTC limit order; without a price, at the opposite best price now. Returns its id."""
        direction = direction.upper()
        if price is None:
            bid, ask = self._bt.best()
            ticks = ask if direction == "BUY" else bid
            if ticks is None:
                raise RuntimeError("no opposite best price to trade at yet")
        else:
            ticks = self._ticks(price)
        return self._bt.submit(direction, offset.upper(), int(ticks), int(volume))

    def buy(self, volume: int, price: Optional[float] = None, offset: str = "OPEN") -> int:
        return self.submit("BUY", volume, price, offset)

    def sell(self, volume: int, price: Optional[float] = None, offset: str = "OPEN") -> int:
        return self.submit("SELL", volume, price, offset)

    def cancel(self, order_id: int) -> bool:
        """Sends a cancel (it arrives after the latency); False when the order is already done."""
        return self._bt.cancel(int(order_id))

    def working(self, order_id: int) -> int:
        """Lots still working at the venue for an order (0 before it arrives and when done)."""
        return self._bt.working(int(order_id))

    def finish(self) -> None:
        self._bt.finish()

    def best(self) -> tuple[Optional[float], Optional[float]]:
        bid, ask = self._bt.best()
        return (None if bid is None else bid * self.tick, None if ask is None else ask * self.tick)

    def run(self, strategy, batch: int = 0, timer=None, sample_every: int = 1000,
            max_events: Optional[int] = None) -> int:
        """Drives `strategy` through the rest of the data; returns the events read.

        Per event (batch=0): strategy.on_quote(t_ns, bid, bid_qty, ask, ask_qty) and
        on_trade(t_ns, price, qty, side) (side 1: buyer aggressor, -1: seller), on_book(t_ns, bids,
        asks) after every event (lists of (price, qty), best first: in exact mode the engine's book
        to the data's depth, the strategy's own orders included; in tick mode the BBO), and on_timer(t_ns)
        every `timer` (ns or pandas Timedelta) of data time. Batched (batch=N): on_batch(arrays)
        every N events, arrays a dict of numpy arrays time_ns, kind (0 quote, 1 trade), price,
        qty, side, bid, bid_qty, ask, ask_qty (best prices 0 when a side is empty), read with the
        GIL released. Both: on_fill(order_id, direction, price, volume, fee, aggressive) and
        on_order(order_id, status, filled). Missing methods are skipped; strategy.on_start(bt) is
        called first when present. The account is sampled after the first event and every `sample_every` events.
        """
        if hasattr(strategy, "on_start"):
            strategy.on_start(self)
        t = timer.value if isinstance(timer, pd.Timedelta) else int(timer or 0)
        return self._bt.run(strategy, int(batch), t, int(sample_every), float(self.tick),
                            int(max_events if max_events is not None else 2**63 - 1))

    # State.
    time_ns = property(lambda self: self._bt.time_ns)
    last_seq = property(lambda self: self._bt.last_seq)
    state_hash = property(lambda self: self._bt.state_hash)
    effects_hash = property(lambda self: self._bt.effects_hash)
    events_read = property(lambda self: self._bt.events_read)
    messages_applied = events_read
    mode = property(lambda self: self._bt.mode)
    position = property(lambda self: self._bt.position)

    # Results.
    def orders(self) -> pd.DataFrame:
        df = pd.DataFrame(self._bt.order_columns(self.tick))
        df.insert(0, "time", pd.to_datetime(df["timestamp_ns"], unit="ns", utc=True))
        return df

    def fills(self) -> pd.DataFrame:
        df = pd.DataFrame(self._bt.fill_columns(self.tick))
        df.insert(0, "time", pd.to_datetime(df["timestamp_ns"], unit="ns", utc=True))
        df["notional"] = df["price"] * df["volume"] * self.multiplier
        return df

    def positions(self) -> pd.DataFrame:
        return self.equity()[["long", "short", "net"]]

    def equity(self) -> pd.DataFrame:
        """One row per sample: cash, long/short lots, the mark (mid; last mid when a side is
        empty) and equity marked to it."""
        s = pd.DataFrame(self._bt.sample_columns(self.tick))
        mark = ((s["bid"].astype(float) + s["ask"].astype(float)) / 2).ffill()
        m = self.multiplier
        unreal = ((s["long_lots"] * mark * m - s["long_cost"])
                  + (s["short_cost"] - s["short_lots"] * mark * m))
        held = (s["long_lots"] + s["short_lots"]) > 0
        out = pd.DataFrame({
            "time": pd.to_datetime(s["timestamp_ns"], unit="ns", utc=True),
            "cash": s["cash"], "long": s["long_lots"], "short": s["short_lots"],
            "net": s["long_lots"] - s["short_lots"], "mark": mark,
            "equity": s["cash"] + unreal.where(held, 0.0)})
        return out.set_index("time")

    def stats(self, periods_per_year: Optional[float] = None) -> dict:
        return _stats.compute(self.equity()["equity"], self.fills(), periods_per_year,
                              multiplier=self.multiplier)

    def plot(self, path, title: Optional[str] = None) -> None:
        """Saves a PNG of equity, drawdown and position (matplotlib, Agg backend)."""
        _plot.save(self.equity(), path, title or f"{self.journal_dir} ({self.mode})")


class ExactBacktest(_VenueBacktest):
    """LOBSTER data in exact mode (sim/exact.h); prices in dollars, tick 0.01, one share a lot.

    order_entry / market_data: latency in ns, an int or (base_ns, jitter_ns); seed for jitter.
    """

    tick = 0.01

    def __init__(self, journal_dir, messages, orderbook, date=None, levels=0, instrument=None,
                 cash=1_000_000.0, fee_per_lot=0.0, fee_rate=0.0, margin_rate=0.0,
                 order_entry=0, market_data=0, seed=1):
        from . import _lobster_names
        date, instrument = _lobster_names(messages, date, instrument)
        self.initial_cash = float(cash)
        super().__init__(journal_dir, _Exact(
            str(journal_dir), str(messages), str(orderbook), date, int(levels), instrument,
            round(cash * MONEY_SCALE), round(fee_per_lot * MONEY_SCALE), round(fee_rate * 1e9),
            round(margin_rate * 1e9), _latency(order_entry), _latency(market_data), int(seed)))


TRADE_COLUMNS = ["local_ts_ns", "price", "qty", "aggressor_side"]
BBO_COLUMNS = ["local_ts_ns", "bid_price", "bid_qty", "ask_price", "ask_qty"]


def _scaled(x, decimals: int, what: str) -> np.ndarray:
    v = np.asarray(x, dtype=float) * 10.0 ** decimals
    r = np.rint(v)
    if np.any(np.abs(v - r) > 1e-6 * np.maximum(1.0, np.abs(v))):
        raise ValueError(f"{what} has more than {decimals} decimals")
    return r.astype(np.int64)


def tick_arrays(trades: Optional[pd.DataFrame], bbo: Optional[pd.DataFrame],
                price_decimals: int = 1, qty_decimals: int = 3) -> dict:
    """Trades and BBO frames (the files' columns) merged by local_ts_ns (a BBO before a trade at
    the same time, each frame in its own order) into the int64 arrays TickBacktest reads."""
    parts = []
    if trades is not None and len(trades):
        side = trades["aggressor_side"]
        if side.dtype == object:
            side = side.astype(str).str.upper().map({"BUY": 1, "SELL": -1})
        parts.append(pd.DataFrame({
            "time_ns": trades["local_ts_ns"].astype(np.int64), "order": 1, "is_trade": 1,
            "price": _scaled(trades["price"], price_decimals, "price"),
            "qty": _scaled(trades["qty"], qty_decimals, "qty"),
            "aggressor": np.asarray(side, dtype=np.int64), "bid": 0, "bid_qty": 0, "ask": 0,
            "ask_qty": 0}))
    if bbo is not None and len(bbo):
        parts.append(pd.DataFrame({
            "time_ns": bbo["local_ts_ns"].astype(np.int64), "order": 0, "is_trade": 0,
            "price": 0, "qty": 0, "aggressor": 0,
            "bid": _scaled(bbo["bid_price"], price_decimals, "bid_price"),
            "bid_qty": _scaled(bbo["bid_qty"], qty_decimals, "bid_qty"),
            "ask": _scaled(bbo["ask_price"], price_decimals, "ask_price"),
            "ask_qty": _scaled(bbo["ask_qty"], qty_decimals, "ask_qty")}))
    if not parts:
        raise ValueError("no ticks: give trades and/or bbo")
    df = pd.concat(parts, ignore_index=True).sort_values(["time_ns", "order"], kind="stable")
    return {c: np.ascontiguousarray(df[c].to_numpy(dtype=np.int64))
            for c in ["time_ns", "is_trade", "price", "qty", "aggressor", "bid", "bid_qty",
                      "ask", "ask_qty"]}


class TickBacktest(_VenueBacktest):
    """Trades + best bid/offer in replay-only mode (sim/fill.h).

        TickBacktest(dir, trades="trades.csv", bbo="bbo.csv.gz", queue_model="risk_averse")
        TickBacktest(dir, trades=trades_df, bbo=bbo_df)          # DataFrames of the same columns

    trades/bbo: file paths (Binance USD-M CSV, optionally gzip; read by sim/binance.h) or pandas
    DataFrames / dicts of numpy arrays with the files' columns (trades: local_ts_ns, price, qty,
    aggressor_side as BUY/SELL or 1/-1; bbo: local_ts_ns, bid_price, bid_qty, ask_price,
    ask_qty). Time is local_ts_ns (arrival order). Prices have `price_decimals` (tick
    10^-price_decimals), quantities `qty_decimals` (a lot is 10^-qty_decimals of the base asset).
    Fees: fee_rate of notional on every fill; margin_rate of notional. Money (cash, fees, equity)
    is in `currency` units, counted by the engine in 10^-money_decimals of it: USDT with 8
    decimals by default, so every Binance USD-M contract lists (ETHUSDT: 0.01 tick x 0.001 lot =
    0.00001 USDT a tick). The engine refuses a contract whose tick value is not a whole number of
    those units (ValueError).
    """

    def __init__(self, journal_dir, trades=None, bbo=None, queue_model="risk_averse",
                 price_decimals=1, qty_decimals=3, instrument="BTCUSDT", cash=100_000.0,
                 fee_rate=0.0, margin_rate=0.1, max_order_lots=1_000_000, order_entry=0,
                 market_data=0, seed=1, currency="USDT", money_decimals=8):
        self.tick = 10.0 ** -price_decimals
        self.multiplier = 10.0 ** -qty_decimals
        self.initial_cash = float(cash)
        is_path = lambda x: x is None or isinstance(x, (str, os.PathLike))  # noqa: E731
        arrays = None
        if not (is_path(trades) and is_path(bbo)):
            to_df = lambda x: x if x is None or isinstance(x, pd.DataFrame) else pd.DataFrame(x)  # noqa: E731
            arrays = tick_arrays(to_df(trades), to_df(bbo), price_decimals, qty_decimals)
            trades = bbo = None
        super().__init__(journal_dir, _Tick(
            str(journal_dir), "" if trades is None else str(trades), "" if bbo is None else str(bbo),
            arrays, queue_model, int(price_decimals), int(qty_decimals), instrument,
            str(currency), int(money_decimals), round(cash * 10 ** int(money_decimals)),
            round(fee_rate * 1e9), round(margin_rate * 1e9),
            int(max_order_lots), _latency(order_entry), _latency(market_data), int(seed)))
