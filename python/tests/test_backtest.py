"""qaexchange.Backtest on a five-message LOBSTER file written here, every number worked by hand,
and on the shared AMZN sample when it is present."""
import math
import os
from pathlib import Path

import pandas as pd
import pytest

import qaexchange
from conftest import qx_json

# time, type, id, size, price (1e-4 USD), direction; and the 1-level book after each message.
MESSAGES = """34200.0,1,1,100,1000000,-1
34201.0,1,2,30,999900,1
34202.0,3,1,100,1000000,-1
34203.0,1,3,20,1000500,-1
34204.0,4,2,30,999900,1
"""
BOOK = """1000000,100,999900,50
1000000,100,999900,80
9999999999,0,999900,80
1000500,20,999900,80
1000500,20,999900,50
"""


@pytest.fixture
def files(tmp_path):
    m = tmp_path / "TEST_2012-06-21_34200000_57600000_message_1.csv"
    b = tmp_path / "TEST_2012-06-21_34200000_57600000_orderbook_1.csv"
    m.write_text(MESSAGES)
    b.write_text(BOOK)
    return m, b


def make(tmp_path, files, mode="engine", **kw):
    """The engine driver (mode="engine") unless said: these tests were written for it. Exact mode
    (the default of qaexchange.Backtest) has its own tests in test_venues.py."""
    m, b = files
    return qaexchange.Backtest(tmp_path / "journal", m, b, cash=10_000.0, fee_per_lot=0.1,
                               mode=mode, **kw)


# Exact mode, recomputed by hand: buy(10) without a price is a limit at the ask (100.00) that
# arrives (latency 0) just before message 2 and takes 10 of order 1's 100 at 100.00; message 3
# deletes what order 1 has left. sell(10, CLOSE) is a limit at the bid (99.99) that arrives just
# before message 5 and takes 10 of the seeded 50 at 99.99 (ahead of order 2 in time); message 5
# executes 30 of order 2, which the strategy did not touch. Fills, fees, samples (taken after each
# step, marked at the historical mid) and the statement are therefore the same numbers as the
# engine driver's, where the same orders filled at submit.
@pytest.mark.parametrize("mode", ["engine", "exact"])
def test_round_trip_by_hand(tmp_path, files, mode):
    bt = make(tmp_path, files, mode)
    assert bt.step(1)                          # message 1: book 99.99 x 50 / 100.00 x 100
    assert bt.best() == pytest.approx((99.99, 100.00))
    bt.buy(10)                                 # MARKET: 10 @ 100.00, fee 10 x 0.1 = 1.0
    assert bt.step(1)                          # mark 99.995
    assert bt.step(1)                          # the ask is deleted: mark stays 99.995
    assert bt.best()[1] is None
    assert bt.step(1)                          # ask 100.05: mark 100.02
    bt.sell(10, offset="CLOSE")                # 10 @ 99.99: realised -0.1, fee 1.0
    assert bt.step(1)
    assert not bt.step(1)
    bt.finish()

    f = bt.fills()
    assert list(f["direction"]) == ["BUY", "SELL"]
    assert list(f["offset"]) == ["OPEN", "CLOSE"]
    assert list(f["price"]) == pytest.approx([100.00, 99.99])
    assert list(f["volume"]) == [10, 10]
    assert list(f["fee"]) == pytest.approx([1.0, 1.0])
    assert not f["maker"].any()
    assert bt.position == 0

    o = bt.orders()
    assert list(o["status"]) == ["FILLED", "FILLED"]
    assert list(o["volume_filled"]) == [10, 10]

    e = bt.equity()
    assert list(e["equity"]) == pytest.approx([10_000.0, 9_998.95, 9_998.95, 9_999.2, 9_997.9])
    assert list(e["net"]) == [0, 10, 10, 10, 0]
    assert list(e["mark"]) == pytest.approx([99.995, 99.995, 99.995, 100.02, 100.02])

    s = bt.stats()
    assert s["pnl"] == pytest.approx(-2.1)
    assert s["total_return"] == pytest.approx(-2.1 / 10_000)
    assert s["fees"] == pytest.approx(2.0)
    assert s["trade_count"] == 2
    assert s["turnover"] == pytest.approx((1000.0 + 999.9) / 10_000)
    assert s["win_rate"] == 0.0
    assert s["max_drawdown"] == pytest.approx(2.1 / 10_000)
    assert s["max_drawdown_duration"] == pd.Timedelta(seconds=4)
    assert s["max_drawdown_samples"] == 4

    # The journal the backtest wrote replays to its hashes, and the auditor's statement agrees.
    r = qaexchange.replay(bt.journal_dir)
    assert (r.last_seq, r.state_hash, r.effects_hash) == (bt.last_seq, bt.state_hash,
                                                         bt.effects_hash)
    acct = qaexchange.Journal(bt.journal_dir).statement("strategy")["account"]
    assert float(acct["balance"]) == pytest.approx(9_997.9)
    assert float(acct["commission"]) == pytest.approx(2.0)
    assert float(acct["close_profit"]) == pytest.approx(-0.1)


def test_limit_cancel_and_reject(tmp_path, files):
    bt = make(tmp_path, files)
    with pytest.raises(RuntimeError):
        bt.buy(1)                              # nothing applied yet
    assert bt.step(3)                          # the ask side is empty now
    cid = bt.sell(5, price=100.04)             # rests: the only ask
    assert bt.best() == pytest.approx((99.99, 100.04))
    bad = bt.sell(1, offset="CLOSE")           # no long position to close
    assert bt.cancel(cid)
    assert not bt.cancel(cid)                  # already gone
    assert bt.best()[1] is None
    with pytest.raises(ValueError):
        bt.buy(1, price=100.005)               # off the tick
    o = bt.orders().set_index("client_order_id")
    assert o.loc[cid, "status"] == "CANCELLED" and o.loc[cid, "reason"] == "USER_REQUEST"
    assert o.loc[bad, "status"] == "REJECTED" and o.loc[bad, "reason"] == "INSUFFICIENT_POSITION"
    assert len(bt.fills()) == 0
    bt.finish()
    assert qaexchange.replay(bt.journal_dir).state_hash == bt.state_hash


def test_journal_directory_must_be_empty(tmp_path, files):
    bt = make(tmp_path, files)
    bt.step(1)
    bt.finish()
    del bt
    with pytest.raises(RuntimeError, match="already holds events"):
        make(tmp_path, files)


def test_advance_to(tmp_path, files):
    bt = make(tmp_path, files)
    midnight = pd.Timestamp("2012-06-21 04:00", tz="UTC")  # New York, EDT
    assert bt.advance_to(midnight + pd.Timedelta(seconds=34202.5))
    assert bt.messages_applied == 3
    assert bt.time_ns == (midnight + pd.Timedelta(seconds=34202)).value
    assert not bt.advance_to(midnight + pd.Timedelta(hours=23))
    assert bt.messages_applied == 5
    assert len(bt.equity()) == 2


def test_resting_order_filled_by_a_crossing_historical_order(tmp_path):
    m = tmp_path / "X_2012-06-21_34200000_57600000_message_1.csv"
    b = tmp_path / "X_2012-06-21_34200000_57600000_orderbook_1.csv"
    # Spread 99.98 / 100.00; then a historical sell of 30 at 99.99 (a new best ask in history).
    m.write_text("34200.0,1,1,100,1000000,-1\n34201.0,1,2,30,999900,-1\n")
    b.write_text("1000000,100,999800,50\n999900,30,999800,50\n")
    bt = qaexchange.Backtest(tmp_path / "j", m, b, cash=10_000.0, fee_per_lot=0.1, mode="engine")
    assert bt.step(1)
    cid = bt.buy(10, price=99.99)              # inside the spread: rests, the new best bid
    assert bt.best() == pytest.approx((99.99, 100.00))
    assert len(bt.fills()) == 0
    assert bt.step(1)                          # the historical sell crosses it: 10 @ 99.99
    f = bt.fills()
    assert list(f["maker"]) == [True]
    assert list(f["price"]) == pytest.approx([99.99])
    assert list(f["volume"]) == [10] and list(f["client_order_id"]) == [cid]
    assert list(f["fee"]) == pytest.approx([1.0])
    assert bt.orders()["status"].tolist() == ["FILLED"]
    assert bt.best() == pytest.approx((99.98, 99.99))   # 20 of the historical 30 rest
    assert bt.position == 10 and bt.data_rejects == 0
    bt.finish()
    assert qaexchange.replay(bt.journal_dir).state_hash == bt.state_hash


LOBSTER = Path(os.environ.get("QX_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" /
                              "data")) / "lobster" / "AMZN_2012-06-21_1"


@pytest.mark.skipif(not LOBSTER.is_dir(), reason="shared LOBSTER sample not present")
def test_amzn_sample_strategy_replays_to_its_hash(tmp_path):
    stem = LOBSTER / "AMZN_2012-06-21_34200000_57600000"
    bt = qaexchange.Backtest(tmp_path / "bt", f"{stem}_message_1.csv", f"{stem}_orderbook_1.csv",
                             cash=1_000_000.0, fee_per_lot=0.005, mode="engine")
    # Every 2,000 messages flip between +100 and -100 shares with market orders.
    n, seen = 0, []
    while bt.step(2000):
        n += 1
        pos = bt.position
        seen.append(pos)
        if n % 2 == 1 and pos <= 0:
            if pos < 0:
                bt.buy(-pos, offset="CLOSE")
            bt.buy(100)
        elif n % 2 == 0 and pos >= 0:
            if pos > 0:
                bt.sell(pos, offset="CLOSE")
            bt.sell(100)
    bt.finish()
    assert bt.messages_applied == 57515
    f = bt.fills()
    s = bt.stats()
    assert s["trade_count"] == len(f) > 20
    assert s["fees"] == pytest.approx(0.005 * f["volume"].sum())
    e = bt.equity()
    assert len(e) == math.ceil(57515 / 2000)
    assert list(e["net"]) == seen          # sampled after each step, before that step's orders
    assert set(seen[1:]) == {100, -100}
    r = qaexchange.replay(bt.journal_dir)
    assert (r.state_hash, r.effects_hash) == (bt.state_hash, bt.effects_hash)
    q = qx_json("replay", bt.journal_dir, "--json")
    assert q["state_hash"] == bt.state_hash
