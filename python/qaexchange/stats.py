"""Backtest statistics from an equity curve and a table of fills (floats are fine here: these are
reports, not exchange state).

    s = compute(equity, fills, periods_per_year=None)

`equity`: a pandas Series of account equity indexed by time (or anything ordered). `fills`: a
DataFrame with columns direction (BUY/SELL), offset (OPEN/CLOSE/...), price, volume, fee.
Definitions:
  pnl, total_return          last - first equity, and that over the first
  returns                    simple returns between consecutive samples
  sharpe                     mean(returns) / std(returns, ddof=1) * sqrt(periods_per_year or 1)
  sortino                    mean(returns) / sqrt(mean(min(returns, 0)^2)) * sqrt(...)
  max_drawdown               largest fall from a running peak, as a positive fraction of the peak
  max_drawdown_duration      longest time from a peak to the first sample back at or above it (or
                             to the last sample when it never recovers); also counted in samples
  turnover                   traded notional (price * volume * multiplier) / first equity
  trade_count, fees          number of fills, sum of their fees
  win_rate                   share of closing fills whose realised PnL (FIFO against the opening
                             fills of that side, before fees) is positive; NaN with no closes
"""
from __future__ import annotations

import math
from collections import deque

import pandas as pd


def drawdown(equity: pd.Series) -> tuple[float, object, int]:
    """Max drawdown (positive fraction), its longest duration (index units) and that in samples."""
    values = list(equity.astype(float))
    index = list(equity.index)
    peak, peak_i, underwater = values[0], 0, False
    max_dd, longest, longest_samples = 0.0, index[0] - index[0], 0

    def period(end_i):
        nonlocal longest, longest_samples
        if end_i - peak_i > longest_samples:
            longest, longest_samples = index[end_i] - index[peak_i], end_i - peak_i

    for i, v in enumerate(values):
        if v >= peak:
            if underwater:
                period(i)
            peak, peak_i, underwater = v, i, False
        else:
            underwater = True
            max_dd = max(max_dd, (peak - v) / peak)
    if underwater:
        period(len(values) - 1)
    return max_dd, longest, longest_samples


def realised(fills: pd.DataFrame, multiplier: float = 1.0) -> list[float]:
    """Realised PnL (before fees) of each closing fill, FIFO against the side's opening fills."""
    opens = {"BUY": deque(), "SELL": deque()}  # side opened -> [price, volume] lots
    out = []
    for f in fills.itertuples(index=False):
        if f.offset == "OPEN":
            opens[f.direction].append([float(f.price), int(f.volume)])
            continue
        side = "SELL" if f.direction == "BUY" else "BUY"  # closing a short buys
        sign = 1.0 if side == "BUY" else -1.0
        left, pnl = int(f.volume), 0.0
        while left > 0 and opens[side]:
            lot = opens[side][0]
            n = min(left, lot[1])
            pnl += sign * (float(f.price) - lot[0]) * n * multiplier
            lot[1] -= n
            left -= n
            if lot[1] == 0:
                opens[side].popleft()
        out.append(pnl)
    return out


def compute(equity: pd.Series, fills: pd.DataFrame, periods_per_year: float | None = None,
            multiplier: float = 1.0) -> dict:
    equity = equity.astype(float)
    first, last = float(equity.iloc[0]), float(equity.iloc[-1])
    r = equity.pct_change().dropna()
    scale = math.sqrt(periods_per_year) if periods_per_year else 1.0
    std = float(r.std(ddof=1)) if len(r) > 1 else 0.0
    downside = math.sqrt(float((r.clip(upper=0) ** 2).mean())) if len(r) else 0.0
    mean = float(r.mean()) if len(r) else 0.0
    max_dd, dd_duration, dd_samples = drawdown(equity)
    closes = realised(fills, multiplier) if len(fills) else []
    notional = float((fills["price"] * fills["volume"]).sum()) * multiplier if len(fills) else 0.0
    return {
        "pnl": last - first,
        "total_return": (last - first) / first,
        "sharpe": mean / std * scale if std > 0 else math.nan,
        "sortino": mean / downside * scale if downside > 0 else math.nan,
        "max_drawdown": max_dd,
        "max_drawdown_duration": dd_duration,
        "max_drawdown_samples": dd_samples,
        "turnover": notional / first,
        "trade_count": int(len(fills)),
        "fees": float(fills["fee"].sum()) if len(fills) else 0.0,
        "win_rate": sum(p > 0 for p in closes) / len(closes) if closes else math.nan,
        "closing_fills": len(closes),
    }
