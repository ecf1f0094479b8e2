"""qaexchange: the QAExchange engine from Python.

    import qaexchange
    r = qaexchange.replay("/tmp/j")          # same last_seq/state_hash/effects_hash as `qx replay`
    j = qaexchange.Journal("/tmp/j")
    df = j.events(account="acct100001")      # one row per event touching the account
    st = j.statement("acct100001", at_seq=5000)

Everything an auditor compares is produced by the same C++ code as the `qx` tool.
"""
from __future__ import annotations

import json
import os
from typing import Optional

import pandas as pd

from ._qaexchange import ReplayInfo
from ._qaexchange import Journal as _Journal
from ._qaexchange import replay as _replay

from .client import Client, ClientError, NotLeader, OutcomeUnknown

__all__ = ["replay", "Journal", "ReplayInfo", "Backtest", "ExactBacktest", "TickBacktest", "stats",
           "Client", "ClientError", "NotLeader", "OutcomeUnknown"]

# Columns every events() frame has, in this order; other fields of an event follow.
EVENT_COLUMNS = ["seq", "time", "timestamp_ns", "source", "type", "account", "instrument",
                 "order_id", "client_order_id", "direction", "offset", "price_type", "price",
                 "volume", "time_condition", "volume_condition", "amount", "effects"]


def replay(path, until_seq: Optional[int] = None) -> ReplayInfo:
    """Replays the journal directory `path` (up to and including `until_seq`) through the engine.

    Returns last_seq, state_hash and effects_hash (16 hex digits, as `qx replay --json` prints),
    events_applied and last_timestamp_ns. The GIL is released while the journal is replayed.
    """
    return _replay(str(path), until_seq)


class Journal:
    """A journal directory opened for reading (it is replayed once, to learn names)."""

    def __init__(self, path):
        self.path = str(path)
        self._j = _Journal(self.path)

    @property
    def last_seq(self) -> int:
        return self._j.last_seq

    @property
    def accounts(self) -> list[str]:
        return self._j.accounts

    @property
    def instruments(self) -> list[str]:
        return self._j.instruments

    def events(self, account: Optional[str] = None,
               instrument: Optional[str] = None) -> pd.DataFrame:
        """Every event touching `account` and/or `instrument` (all events when neither is given).

        The rows are the objects `qx audit DIR events --format json` prints, plus `order_id` (the
        order the event created or referred to), `effects` (a list of dicts: what the engine did)
        and `time` (a UTC timestamp). Prices and money are decimal strings, as qx prints them.
        """
        rows = json.loads(self._j.events_json(account, instrument))
        df = pd.DataFrame(rows)
        for c in EVENT_COLUMNS:
            if c not in df.columns and c != "time":
                df[c] = pd.Series([None] * len(df), dtype=object)
        df["time"] = pd.to_datetime(df["timestamp_ns"].astype("int64"), unit="ns", utc=True)
        if "name" in df.columns:  # CreateAccount names the account it creates
            created = df["type"] == "CreateAccount"
            df.loc[created, "account"] = df.loc[created, "name"]
        if "order_id" in df.columns:
            df["order_id"] = df["order_id"].astype("Int64")
        if "client_order_id" in df.columns:
            df["client_order_id"] = df["client_order_id"].astype("Int64")
        if "volume" in df.columns:
            df["volume"] = df["volume"].astype("Int64")
        rest = [c for c in df.columns if c not in EVENT_COLUMNS]
        return df[EVENT_COLUMNS + rest].reset_index(drop=True)

    def statement_json(self, account: str, at_seq: Optional[int] = None) -> dict:
        """The statement exactly as `qx audit DIR statement ACCOUNT --at-seq N --json` prints it."""
        return json.loads(self._j.statement_json(account, at_seq))

    def statement(self, account: str, at_seq: Optional[int] = None) -> dict:
        """The account's QIFI statement at `at_seq` (default: the journal's end).

        Returns a dict: at_seq, trading_day, account (dict of QIFI fields, money as decimal
        strings), and positions, orders, trades as pandas DataFrames (one row each).
        """
        s = self.statement_json(account, at_seq)

        def frame(d: dict, index: str) -> pd.DataFrame:
            df = pd.DataFrame(list(d.values()))
            return df.set_index(index).sort_index() if len(df) else df

        positions = frame({k: _flatten(v) for k, v in s["positions"].items()}, "instrument_id")
        return {"at_seq": s["at_seq"], "trading_day": s["trading_day"], "account": s["accounts"],
                "positions": positions, "orders": frame(s["orders"], "order_id"),
                "trades": frame(s["trades"], "trade_id")}


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}_"))
        else:
            out[f"{prefix}{k}"] = v
    return out


# ---------------------------------------------------------------------------------------------
# Backtests on LOBSTER data.

from . import stats as _stats  # noqa: E402
from ._qaexchange import Backtest as _Backtest  # noqa: E402

MONEY_SCALE = 10_000  # minor units per US dollar of LOBSTER journals (sim/lobster.cc: USD, 4 decimals)
LOBSTER_TICK = 0.01   # USD per engine tick for LOBSTER data (sim/lobster.h tick_units = 100)


class Backtest:
    """A strategy account trading against historical LOBSTER order flow on the real engine.

    mode="exact" (the default) returns an ExactBacktest (qaexchange/venues.py): the sim/ exact
    fill mode, strategy orders in the real historical queue, with latency models. mode="engine"
    is the earlier, primitive driver described here (kept for comparison): historical orders
    replayed as they are, the strategy's orders matched by the engine with no queue or impact
    model, market orders allowed.

        bt = qaexchange.Backtest("/tmp/bt", messages=msg_csv, orderbook=book_csv, cash=1e6,
                                 fee_per_lot=0.005, mode="engine")
        while bt.step(100):                  # the next 100 LOBSTER messages
            bid, ask = bt.best()
            if want_long: bt.buy(10)         # MARKET; bt.buy(10, price=585.3) rests (GTC)
        bt.finish()
        bt.fills(); bt.equity(); bt.stats()
        qaexchange.replay("/tmp/bt").state_hash == bt.state_hash

    Prices are in dollars (multiples of LOBSTER_TICK), volumes in shares (lots), money in dollars.
    Fees (per lot, and a rate of notional) and margin (a rate of notional) apply to every account.
    The journal directory must be new or empty. The GIL is released while messages are applied.
    """

    def __new__(cls, *args, mode: str = "exact", **kw):
        if cls is Backtest and mode == "exact":
            return ExactBacktest(*args, **kw)
        if mode not in ("engine", "exact"):
            raise ValueError(f"mode must be 'engine' or 'exact' for LOBSTER data, not {mode!r} "
                             "(tick data: qaexchange.TickBacktest)")
        return super().__new__(cls)

    def __init__(self, journal_dir, messages, orderbook, date=None, levels=0, instrument=None,
                 cash=1_000_000.0, fee_per_lot=0.0, fee_rate=0.0, margin_rate=0.0,
                 mode="exact"):
        date, instrument = _lobster_names(messages, date, instrument)
        self.journal_dir = str(journal_dir)
        self.initial_cash = float(cash)
        self._bt = _Backtest(self.journal_dir, str(messages), str(orderbook), date, int(levels),
                             instrument, round(cash * MONEY_SCALE),
                             round(fee_per_lot * MONEY_SCALE), round(fee_rate * 1e9),
                             round(margin_rate * 1e9))

    # The loop.
    def step(self, messages: int = 1) -> bool:
        """Applies the next `messages` LOBSTER messages; False when there were none left."""
        return self._bt.step(int(messages))

    def advance_to(self, time) -> bool:
        """Applies every message up to `time` (a pandas Timestamp or Unix ns); False at the end."""
        ns = time.value if isinstance(time, pd.Timestamp) else int(time)
        return self._bt.advance_to(ns)

    def submit(self, direction: str, volume: int, price: Optional[float] = None,
               offset: str = "OPEN") -> int:
        """A new order: MARKET (IOC) without a price, else a GTC limit. Returns its client id."""
        ticks = None
        if price is not None:
            ticks = round(price / LOBSTER_TICK)
            if abs(ticks * LOBSTER_TICK - price) > 1e-9:
                raise ValueError(f"price {price} is not a multiple of the tick {LOBSTER_TICK}")
        return self._bt.submit(direction.upper(), offset.upper(), ticks, int(volume))

    def buy(self, volume: int, price: Optional[float] = None, offset: str = "OPEN") -> int:
        return self.submit("BUY", volume, price, offset)

    def sell(self, volume: int, price: Optional[float] = None, offset: str = "OPEN") -> int:
        return self.submit("SELL", volume, price, offset)

    def cancel(self, client_order_id: int) -> bool:
        return self._bt.cancel(int(client_order_id))

    def finish(self) -> None:
        """Commits the journal (the backtest can go on afterwards)."""
        self._bt.finish()

    def best(self) -> tuple[Optional[float], Optional[float]]:
        bid, ask = self._bt.best()
        return (None if bid is None else bid * LOBSTER_TICK,
                None if ask is None else ask * LOBSTER_TICK)

    # State.
    time_ns = property(lambda self: self._bt.time_ns)
    last_seq = property(lambda self: self._bt.last_seq)
    state_hash = property(lambda self: self._bt.state_hash)
    effects_hash = property(lambda self: self._bt.effects_hash)
    messages_applied = property(lambda self: self._bt.messages_applied)
    data_rejects = property(lambda self: self._bt.data_rejects)

    @property
    def position(self) -> int:
        """Net lots (long - short) from the fills."""
        f = self.fills()
        return int((f["volume"] * f["direction"].map({"BUY": 1, "SELL": -1})).sum())

    # Results.
    def orders(self) -> pd.DataFrame:
        df = pd.DataFrame(self._bt.order_columns())
        df.insert(0, "time", pd.to_datetime(df["timestamp_ns"], unit="ns", utc=True))
        df["price"] = df["price_ticks"] * LOBSTER_TICK
        return df

    def fills(self) -> pd.DataFrame:
        df = pd.DataFrame(self._bt.fill_columns())
        df.insert(0, "time", pd.to_datetime(df["timestamp_ns"], unit="ns", utc=True))
        df["price"] = df["price_ticks"] * LOBSTER_TICK
        df["fee"] = df["fee_minor"] / MONEY_SCALE
        df["notional"] = df["price"] * df["volume"]
        return df

    def positions(self) -> pd.DataFrame:
        e = self.equity()
        return e[["long", "short", "net"]]

    def equity(self) -> pd.DataFrame:
        """One row per step: cash (balance without open positions' PnL), long/short lots, the
        mark (mid price; the last mid when a side is empty) and equity marked to it."""
        s = pd.DataFrame(self._bt.sample_columns())
        bid = s["bid_ticks"].astype(float) * LOBSTER_TICK
        ask = s["ask_ticks"].astype(float) * LOBSTER_TICK
        mark = ((bid + ask) / 2).ffill()
        cash = s["cash_minor"] / MONEY_SCALE
        long_cost = s["long_open_cost_minor"] / MONEY_SCALE
        short_cost = s["short_open_cost_minor"] / MONEY_SCALE
        unreal = (s["long_lots"] * mark - long_cost) + (short_cost - s["short_lots"] * mark)
        held = (s["long_lots"] + s["short_lots"]) > 0
        out = pd.DataFrame({
            "time": pd.to_datetime(s["timestamp_ns"], unit="ns", utc=True),
            "seq": s["seq"], "cash": cash, "long": s["long_lots"], "short": s["short_lots"],
            "net": s["long_lots"] - s["short_lots"], "mark": mark,
            "equity": cash + unreal.where(held, 0.0)})
        return out.set_index("time")

    def stats(self, periods_per_year: Optional[float] = None) -> dict:
        e = self.equity()
        return _stats.compute(e["equity"], self.fills(), periods_per_year)

    def plot(self, path, title: Optional[str] = None) -> None:
        """Saves a PNG of equity, drawdown and position (matplotlib, Agg backend)."""
        _plot.save(self.equity(), path, title or f"{self.journal_dir} (engine)")


def _lobster_names(messages, date, instrument):
    parts = os.path.basename(str(messages)).split("_")
    if date is None:
        if len(parts) < 2:
            raise ValueError("no date in the file name: give date='YYYY-MM-DD'")
        date = parts[1]
    if instrument is None:
        instrument = parts[0] if parts and parts[0] else "LOBSTER"
    return date, instrument


from . import plot as _plot  # noqa: E402
from .venues import ExactBacktest, TickBacktest  # noqa: E402,F401
