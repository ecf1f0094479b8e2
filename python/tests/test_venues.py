"""ExactBacktest (sim::ExactLobsterVenue) and TickBacktest (sim::ReplayOnlyVenue) on hand-made
data, every number worked by hand in the comments; callbacks per event and batched."""
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import qaexchange
from conftest import qx_json

# LOBSTER, one level: time, type, id, size, price (1e-4 USD), direction; the book after each.
MESSAGES = """34200.0,1,1,100,1000000,-1
34201.0,4,1,100,1000000,-1
34202.0,1,3,20,1000000,-1
34203.0,4,3,15,1000000,-1
"""
BOOK = """1000000,100,999900,50
9999999999,0,999900,50
1000000,20,999900,50
1000000,5,999900,50
"""


@pytest.fixture
def lobster(tmp_path):
    m = tmp_path / "TEST_2012-06-21_34200000_57600000_message_1.csv"
    b = tmp_path / "TEST_2012-06-21_34200000_57600000_orderbook_1.csv"
    m.write_text(MESSAGES)
    b.write_text(BOOK)
    return m, b


def test_exact_mode_keeps_the_queue_place(tmp_path, lobster):
    m, b = lobster
    bt = qaexchange.Backtest(tmp_path / "j", m, b, mode="exact", cash=10_000.0, fee_per_lot=0.1)
    assert isinstance(bt, qaexchange.ExactBacktest) and bt.mode == "exact"
    assert bt.step(1)                          # ask 100.00 x 100 (order 1), bid 99.99 x 50
    assert bt.best() == pytest.approx((99.99, 100.00))
    oid = bt.sell(10, price=100.00)            # joins the queue behind order 1
    assert bt.step(1)                          # order 1 executed in full: not ahead of it
    assert len(bt.fills()) == 0 and bt.working(oid) == 10
    assert bt.step(2)                          # order 3 arrives behind us; 15 of it executes:
    f = bt.fills()                             # we were ahead, so our 10 fill first
    assert list(f["mode"]) == ["exact"]
    assert list(f["direction"]) == ["SELL"] and list(f["volume"]) == [10]
    assert list(f["price"]) == pytest.approx([100.00])
    assert list(f["fee"]) == pytest.approx([1.0])          # 10 lots x 0.1
    assert list(f["maker"]) == [True]
    assert bt.position == -10
    assert bt.orders()["status"].tolist() == ["FILLED"]
    bt.finish()
    r = qaexchange.replay(bt.journal_dir)
    assert (r.last_seq, r.state_hash, r.effects_hash) == (bt.last_seq, bt.state_hash,
                                                         bt.effects_hash)
    q = qx_json("replay", bt.journal_dir, "--json")
    assert (q["state_hash"], q["effects_hash"], q["last_seq"]) == (bt.state_hash,
                                                                   bt.effects_hash, bt.last_seq)


def test_exact_latency_delays_arrival(tmp_path, lobster):
    m, b = lobster
    # 2.5 s order entry: sent at 34200, arrives at 34202.5, after order 3 joined the queue:
    # order 3 is ahead of us now, and the execution of 15 of its 20 fills only order 3.
    bt = qaexchange.ExactBacktest(tmp_path / "j", m, b, cash=10_000.0, order_entry=2_500_000_000)
    bt.step(1)
    oid = bt.sell(10, price=100.00)
    bt.step(3)
    assert len(bt.fills()) == 0 and bt.working(oid) == 10


TRADES = """local_ts_ns,event_time_ms,trade_time_ms,trade_id,price,qty,is_buyer_maker,aggressor_side
2000,1,1,1,100.0,2.200,1,sell
4000,3,3,2,100.1,0.300,0,buy
"""
BBO = """local_ts_ns,event_time_ms,transaction_time_ms,update_id,bid_price,bid_qty,ask_price,ask_qty
1000,0,0,1,100.0,2.000,100.1,1.000
3000,2,2,2,99.9,1.000,100.1,1.000
"""


def tick_files(tmp_path):
    t, q = tmp_path / "trades.csv", tmp_path / "bbo.csv"
    t.write_text(TRADES)
    q.write_text(BBO)
    return t, q


def run_ticks(bt):
    assert bt.step(1)                          # BBO 100.0 x 2.000 / 100.1 x 1.000
    oid = bt.buy(500, price=100.0)             # 0.5 BTC at the best bid: 2.000 ahead of it
    assert bt.step(1)                          # sell 2.2 @ 100.0: 2.0 ahead, then 0.2 to us
    assert bt.step(2)
    bt.finish()
    return oid


@pytest.mark.parametrize("model", ["risk_averse", "proportional"])
def test_tick_mode_files_and_frames_agree(tmp_path, model):
    t, q = tick_files(tmp_path)
    a = qaexchange.TickBacktest(tmp_path / "a", trades=t, bbo=q, queue_model=model,
                                fee_rate=0.001, cash=1_000.0)
    oid = run_ticks(a)
    f = a.fills()
    assert list(f["mode"]) == [f"replay-only/{model}"]
    assert list(f["volume"]) == [200] and list(f["price"]) == pytest.approx([100.0])
    assert list(f["order_id"]) == [oid]
    assert list(f["fee"]) == pytest.approx([100.0 * 0.2 * 0.001])   # notional 20 USDT
    assert list(f["notional"]) == pytest.approx([20.0])
    assert a.position == 200
    rj = qx_json("replay", a.journal_dir, "--json")
    assert (rj["state_hash"], rj["effects_hash"], rj["last_seq"]) == (a.state_hash,
                                                                      a.effects_hash, a.last_seq)
    # The same ticks as DataFrames (aggressor as text) and as dicts of arrays.
    tdf, qdf = pd.read_csv(t), pd.read_csv(q)
    b = qaexchange.TickBacktest(tmp_path / "b", trades=tdf, bbo=qdf, queue_model=model,
                                fee_rate=0.001, cash=1_000.0)
    run_ticks(b)
    c = qaexchange.TickBacktest(tmp_path / "c", trades={k: tdf[k].to_numpy() for k in tdf},
                                bbo={k: qdf[k].to_numpy() for k in qdf}, queue_model=model,
                                fee_rate=0.001, cash=1_000.0)
    run_ticks(c)
    assert a.state_hash == b.state_hash == c.state_hash
    assert a.last_seq == b.last_seq == c.last_seq


def test_tick_arrays_refuse_extra_decimals():
    with pytest.raises(ValueError, match="decimals"):
        qaexchange.venues.tick_arrays(
            pd.DataFrame({"local_ts_ns": [1], "price": [100.05], "qty": [1.0],
                          "aggressor_side": ["buy"]}), None)


class Counter:
    def __init__(self):
        self.quotes, self.trades, self.fills, self.orders, self.timers = [], [], [], [], []
        self.sent = False

    def on_start(self, bt):
        self.bt = bt

    def on_quote(self, t, bid, bid_qty, ask, ask_qty):
        self.quotes.append((t, bid, ask))
        if not self.sent and ask > 0:
            self.bt.sell(10, price=ask)        # as in test_exact_mode_keeps_the_queue_place
            self.sent = True

    def on_trade(self, t, price, qty, side):
        self.trades.append((price, qty, side))

    def on_fill(self, oid, direction, price, volume, fee, aggressive):
        self.fills.append((oid, direction, price, volume, aggressive))

    def on_order(self, oid, status, filled):
        self.orders.append((oid, status, filled))

    def on_timer(self, t):
        self.timers.append(t)


def test_per_event_callbacks(tmp_path, lobster):
    m, b = lobster
    bt = qaexchange.ExactBacktest(tmp_path / "j", m, b, cash=10_000.0)
    s = Counter()
    assert bt.run(s, timer=pd.Timedelta(seconds=2)) == 4
    assert len(s.quotes) == 2
    assert [x[1:] for x in s.quotes] == [pytest.approx((99.99, 100.0))] * 2
    assert s.trades == [(100.0, 100, 1), (100.0, 15, 1)]   # executions of sells: buyer aggressor
    assert s.fills == [(1, "SELL", 100.0, 10, False)]
    assert s.orders == [(1, "FILLED", 10)]
    assert len(s.timers) == 2                  # at 34200 s and at the first event >= 34202 s
    bt.finish()
    assert qaexchange.replay(bt.journal_dir).state_hash == bt.state_hash


def test_book_callback_shows_the_engine_book_with_our_order(tmp_path, lobster):
    m, b = lobster
    bt = qaexchange.ExactBacktest(tmp_path / "j", m, b, cash=10_000.0)
    books = []

    class S:
        def on_start(self, bt):
            self.bt = bt

        def on_quote(self, t, bid, bid_qty, ask, ask_qty):
            if not books:
                self.bt.buy(7, price=99.99)    # joins the best bid; arrives with event 2

        def on_book(self, t, bids, asks):
            books.append((bids, asks))

    assert bt.run(S()) == 4
    assert len(books) == 4
    # After message 1: bid 99.99 x 50 (seeded), ask 100.00 x 100 (order 1).
    assert books[0] == ([pytest.approx((99.99, 50))], [pytest.approx((100.0, 100))])
    # After message 2 (order 1 executed): our 7 rest behind the historical 50 at 99.99.
    assert books[1] == ([pytest.approx((99.99, 57))], [])
    # After message 4: order 3 has 5 left at 100.00.
    assert books[3][1] == [pytest.approx((100.0, 5))]


def test_batched_callbacks(tmp_path, lobster):
    m, b = lobster
    bt = qaexchange.ExactBacktest(tmp_path / "j", m, b)
    seen = []

    class S:
        def on_batch(self, a):
            seen.append({k: v.copy() for k, v in a.items()})

    assert bt.run(S(), batch=3) == 4
    assert [len(x["time_ns"]) for x in seen] == [3, 1]
    kind = np.concatenate([x["kind"] for x in seen])
    assert kind.tolist() == [0, 1, 0, 1]
    assert np.concatenate([x["ask"] for x in seen]).tolist() == pytest.approx(
        [100.0, 0.0, 100.0, 100.0])
    assert seen[0]["qty"].dtype == np.int64


def test_plot(tmp_path, lobster):
    pytest.importorskip("matplotlib")
    m, b = lobster
    bt = qaexchange.ExactBacktest(tmp_path / "j", m, b)
    bt.run(Counter(), sample_every=1)
    bt.plot(tmp_path / "bt.png")
    assert (tmp_path / "bt.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_advance_to_in_both_modes(tmp_path, lobster):
    m, b = lobster
    bt = qaexchange.ExactBacktest(tmp_path / "e", m, b)
    midnight = pd.Timestamp("2012-06-21 04:00", tz="UTC")  # New York, EDT
    assert bt.advance_to(midnight + pd.Timedelta(seconds=34201.5))
    assert bt.messages_applied == 2
    assert bt.time_ns == (midnight + pd.Timedelta(seconds=34201)).value
    assert not bt.advance_to(midnight + pd.Timedelta(hours=23))
    assert bt.messages_applied == 4 and len(bt.positions()) == 2
    t, q = tick_files(tmp_path)
    tb = qaexchange.TickBacktest(tmp_path / "t", trades=t, bbo=q)
    assert tb.advance_to(2500)                 # the BBO at 1000 and the trade at 2000
    assert tb.events_read == 2
    assert not tb.advance_to(10_000)
    assert tb.events_read == 4


BINANCE = (Path(os.environ.get("QX_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" /
                               "data")) / "ticks" / "binance_usdm_btcusdt_2024-08-08")


@pytest.mark.skipif(not BINANCE.is_dir(), reason="shared Binance sample not present")
def test_btcusdt_files_and_frames_give_the_same_backtest(tmp_path):
    def go(bt):
        k = 0
        while bt.step(300):                    # alternate a bid and an ask of 0.005 BTC
            k += 1
            bid, ask = bt.best()
            bt.buy(5, price=bid) if k % 2 else bt.sell(5, price=ask)
        bt.finish()
        assert qaexchange.replay(bt.journal_dir).state_hash == bt.state_hash
        return bt.state_hash, bt.fills()

    t, q = BINANCE / "trades.csv", BINANCE / "bbo.csv.gz"
    a, fa = go(qaexchange.TickBacktest(tmp_path / "a", trades=t, bbo=q))
    b, fb = go(qaexchange.TickBacktest(tmp_path / "b", trades=pd.read_csv(t), bbo=pd.read_csv(q)))
    assert a == b and len(fa) == len(fb) > 100
    assert set(fa["mode"]) == {"replay-only/risk_averse"}


@pytest.mark.parametrize("kw,refused", [
    ({"fee_rate": 2.0}, "CreateInstrument: INVALID_PARAMETER"),   # a fee of 200% of notional
    ({"cash": 2e10}, "Deposit: NUMERIC_OVERFLOW"),                # 2e18 minor units > the bound
    ({"money_decimals": 4}, "CreateInstrument: INVALID_PARAMETER"),  # 0.00001 USDT a tick at 4
])
def test_a_setup_the_engine_refuses_stops_the_backtest(tmp_path, kw, refused):
    t, q = tick_files(tmp_path)
    eth = {"price_decimals": 2} if "money_decimals" in kw else {}
    with pytest.raises(ValueError, match="backtest setup refused by the engine: " + refused):
        qaexchange.TickBacktest(tmp_path / "j", trades=t, bbo=q, **eth, **kw)


@pytest.mark.skipif(not BINANCE.is_dir(), reason="shared Binance sample not present")
def test_a_contract_with_a_0_01_tick_and_a_0_001_lot_lists_and_backtests(tmp_path):
    """ETHUSDT's contract: tick 0.01 USDT, lot 0.001 ETH, so one tick of one lot is 0.00001 USDT,
    finer than 4 decimals of money. The shared data holds no ETHUSDT day, so the BTCUSDT day
    (its 0.1-tick prices are multiples of 0.01 too) carries the contract."""
    t, q = BINANCE / "trades.csv", BINANCE / "bbo.csv.gz"
    bt = qaexchange.TickBacktest(tmp_path / "eth", trades=t, bbo=q, instrument="ETHUSDT",
                                 price_decimals=2, qty_decimals=3, fee_rate=0.0004,
                                 cash=100_000.0)
    k = 0
    while bt.step(300):
        k += 1
        bid, ask = bt.best()
        bt.buy(5, price=bid) if k % 2 else bt.sell(5, price=ask)
    bt.finish()
    assert qaexchange.replay(bt.journal_dir).state_hash == bt.state_hash
    f = bt.fills()
    assert len(f) > 100
    # Fees are exact to the 1e-8 USDT unit: 0.04% of price x 0.001 x lots, rounded to the unit.
    expected = (f["price"] * 0.001 * f["volume"] * 0.0004).round(8)
    assert (f["fee"] - expected).abs().max() <= 1e-8
    assert f["fee"].min() > 0 and (f["fee"] * 1e4 % 1 != 0).any()   # finer than 4 decimals
    # The auditor's statement is in USDT with 8 places.
    st = qx_json("audit", bt.journal_dir, "statement", "strategy", "--json")
    assert st["accounts"]["currency"] == "USDT"
    assert len(st["accounts"]["commission"].split(".")[1]) == 8
