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
from typing import Optional

import pandas as pd

from ._qaexchange import ReplayInfo
from ._qaexchange import Journal as _Journal
from ._qaexchange import replay as _replay

__all__ = ["replay", "Journal", "ReplayInfo"]

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
            return df.set_index(index) if len(df) else df

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
