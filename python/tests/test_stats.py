"""qaexchange.stats on small series worked out by hand."""
import math

import pandas as pd
import pytest

from qaexchange import stats

T = pd.to_datetime([0, 1, 2, 3, 4], unit="s")
EQUITY = pd.Series([100.0, 110.0, 99.0, 121.0, 110.0], index=T)
# Long 10 @ 100 (closed 4 @ 105: +20, 6 @ 98: -12), short 5 @ 99 closed @ 97: +10.
FILLS = pd.DataFrame({
    "direction": ["BUY", "SELL", "SELL", "SELL", "BUY"],
    "offset": ["OPEN", "CLOSE", "CLOSE", "OPEN", "CLOSE"],
    "price": [100.0, 105.0, 98.0, 99.0, 97.0],
    "volume": [10, 4, 6, 5, 5],
    "fee": [1.0, 0.5, 0.5, 0.25, 0.25],
})


def test_returns_and_ratios():
    s = stats.compute(EQUITY, FILLS)
    r = [110 / 100 - 1, 99 / 110 - 1, 121 / 99 - 1, 110 / 121 - 1]  # .1, -.1, .2222, -.0909
    mean = sum(r) / 4
    std = math.sqrt(sum((x - mean) ** 2 for x in r) / 3)
    downside = math.sqrt(((-0.1) ** 2 + (110 / 121 - 1) ** 2) / 4)
    assert s["pnl"] == 10.0
    assert s["total_return"] == pytest.approx(0.1)
    assert mean == pytest.approx(0.032828283, abs=1e-9)
    assert s["sharpe"] == pytest.approx(mean / std)
    assert s["sharpe"] == pytest.approx(0.2100, abs=1e-4)
    assert s["sortino"] == pytest.approx(mean / downside)
    assert s["sortino"] == pytest.approx(0.4858, abs=1e-4)
    annual = stats.compute(EQUITY, FILLS, periods_per_year=252)
    assert annual["sharpe"] == pytest.approx(s["sharpe"] * math.sqrt(252))


def test_drawdown():
    s = stats.compute(EQUITY, FILLS)
    # Peaks 100, 110, 110, 121, 121: the deepest fall is 110 -> 99 (10%), and the longest time
    # under water is from 110 at t=1 until 121 at t=3 (the last dip, t=3..4, never recovers: 1 s).
    assert s["max_drawdown"] == pytest.approx(0.1)
    assert s["max_drawdown_duration"] == pd.Timedelta(seconds=2)
    assert s["max_drawdown_samples"] == 2
    never = stats.drawdown(pd.Series([5.0, 4.0, 3.0, 4.5], index=T[:4]))
    assert never[0] == pytest.approx(0.4) and never[1] == pd.Timedelta(seconds=3)
    rising = stats.drawdown(pd.Series([1.0, 2.0, 3.0], index=T[:3]))
    assert rising == (0.0, pd.Timedelta(0), 0)


def test_trades():
    s = stats.compute(EQUITY, FILLS)
    assert stats.realised(FILLS) == pytest.approx([20.0, -12.0, 10.0])
    assert s["win_rate"] == pytest.approx(2 / 3)
    assert s["closing_fills"] == 3
    assert s["trade_count"] == 5
    assert s["fees"] == pytest.approx(2.5)
    assert s["turnover"] == pytest.approx((1000 + 420 + 588 + 495 + 485) / 100)


def test_no_trades():
    flat = pd.Series([100.0, 100.0, 100.0], index=T[:3])
    s = stats.compute(flat, FILLS.iloc[0:0])
    assert s["pnl"] == 0 and s["trade_count"] == 0 and s["fees"] == 0 and s["turnover"] == 0
    assert math.isnan(s["win_rate"]) and math.isnan(s["sharpe"]) and math.isnan(s["sortino"])
    assert s["max_drawdown"] == 0
