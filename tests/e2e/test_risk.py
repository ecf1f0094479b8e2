"""End-to-end test of risk between an account's own trades: `qx serve` journals MarkToMarket on a
timer (`mark_interval_ms`), so a holder who does not trade is liquidated when others move the
price against them, and is not when the timer is off.

Run by ctest with QX_BIN pointing at the executable (see tests/e2e/CMakeLists.txt).
"""

import time

import pytest

from test_server import Server, write_config


def login(server, user, password):
    r = server.post("/api/auth/login", {"username": user, "password": password})
    assert r.status_code == 200, r.text
    return r.json()["token"]


def carl_holds_one_lot_then_the_price_falls(server):
    """carl (150,000 CNY) buys 1 IF at 3800.0: margin 12% = 136,800, ratio 91% < 95%. alice and
    bob then trade at 3700.0: carl's balance falls by 100 x 300 = 30,000 to about 120,000 and his
    ratio to 114%. There is no bid yet for the forced sale to meet."""
    admin = [("/api/admin/user", {"username": "carl", "password": "carl-pw-12345", "role": "trader"}),
             ("/api/admin/account", {"user": "carl", "name": "carl-01"}),
             ("/api/admin/deposit", {"account": "carl-01", "amount": "150000"}),
             ("/api/admin/risk", {"liquidation_ratio": "0.95"})]
    for path, body in admin:
        r = server.post(path, body, "admin")
        assert r.status_code == 200, (path, r.text)
    token = login(server, "carl", "carl-pw-12345")
    assert server.order("bob", "bob-01", "SELL", "3800.0", 1).json()["status"] == "ACCEPTED"
    r = server.post("/api/order/submit", {"account": "carl-01", "instrument": "IF2501",
                                          "direction": "BUY", "offset": "OPEN", "price": "3800.0",
                                          "volume": 1},
                    headers={"Authorization": "Bearer " + token})
    assert r.json()["status"] == "ACCEPTED", r.text
    assert [e for e in r.json()["effects"] if e["kind"] == "TRADE"], r.text
    assert server.order("alice", "alice-01", "BUY", "3700.0", 1).json()["status"] == "ACCEPTED"
    assert server.order("bob", "bob-01", "SELL", "3700.0", 1).json()["status"] == "ACCEPTED"
    return token


def carl_long(server, token):
    r = server.get("/api/positions/carl-01", headers={"Authorization": "Bearer " + token})
    assert r.status_code == 200, r.text
    return r.json().get("IF2501", {}).get("volume_long", 0)


@pytest.mark.parametrize("interval_ms", [100, 0])
def test_a_holder_who_does_not_trade_is_liquidated_by_mark_to_market(tmp_path, interval_ms):
    s = Server(tmp_path / "data", extra=("--config",
                                         write_config(tmp_path, mark_interval_ms=interval_ms)))
    try:
        token = carl_holds_one_lot_then_the_price_falls(s)
        # Several MarkToMarket rounds find carl at risk but no bid: the liquidation cannot finish,
        # and the server keeps trying (an idle market would otherwise journal nothing more).
        time.sleep(0.6)
        assert carl_long(s, token) == 1
        assert s.order("alice", "alice-01", "BUY", "3690.0", 1,
                       time_condition="GTC").json()["status"] == "ACCEPTED"
        deadline = time.monotonic() + (20 if interval_ms else 1.5)
        while carl_long(s, token) == 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        if interval_ms:
            assert carl_long(s, token) == 0  # sold at alice's 3690.0 bid by the forced order
            trades = s.get("/api/trades/alice-01", "alice").json()
            assert any(t["price"] == "3690.0" for t in trades.values()), trades
        else:
            assert carl_long(s, token) == 1  # nobody checks him: he did not trade
    finally:
        s.stop()


def test_the_reported_overflow_is_refused_as_data_and_the_server_serves_on(tmp_path):
    """The report: tick 1, multiplier 1,000,000,000, margin 100%, fee 5%, no band. One lot's tick
    value is 1e13 minor units, so with a position limit of 10 the price ceiling is
    1e15 / (10 x 1e13) = 10 ticks: listing it at 900000 is NUMERIC_OVERFLOW (it used to list, take
    alice's order and abort the server on the next one). At 9 it lists; 11 is not a price, and
    alice's 10,000,000 CNY cannot pay 9 x 1e9 CNY of margin."""
    s = Server(tmp_path / "data")
    try:
        spec = {"code": "BIG", "exchange": "X", "price_tick": "1", "multiplier": "1000000000",
                "margin_ratio": "1", "fee_ratio": "0.05", "max_order_volume": 10,
                "position_limit": 10, "pre_settlement": "900000"}
        r = s.post("/api/admin/instrument", spec, "admin")
        assert r.status_code == 409 and r.json()["reason"] == "NUMERIC_OVERFLOW", r.text
        r = s.post("/api/admin/instrument", {**spec, "pre_settlement": "9"}, "admin")
        assert r.status_code == 200, r.text
        before = s.get("/api/account/alice-01", "alice").json()
        for price, reason in (("900000", "INVALID_PRICE"), ("910000", "INVALID_PRICE"),
                              ("11", "INVALID_PRICE"), ("9", "INSUFFICIENT_FUNDS")):
            r = s.order("alice", "alice-01", "BUY", price, 1, instrument="BIG")
            assert r.json()["status"] == "REJECTED" and r.json()["reason"] == reason, r.text
        assert s.get("/healthz").status_code == 200
        assert s.get("/api/account/alice-01", "alice").json() == before  # nothing frozen
        book = s.get("/api/orderbook/BIG", "viewer").json()
        assert book["bids"] == [] and book["asks"] == [], book
        listed = s.get("/api/instruments", "viewer")
        assert listed.status_code == 200, listed.text
        big = [i for i in listed.json() if i["instrument_id"] == "BIG"]
        assert len(big) == 1 and big[0]["price_max"] == "10.0", big
    finally:
        s.stop()
