"""End-to-end test of expiry through a real `qx serve --demo`: an admin lists a contract whose last
trading day is today, alice and bob trade it, bob leaves a bid, and the day's settlement over REST
cancels the bid, delivers both positions in cash at the final settlement price and delists it.

Run by ctest with QX_BIN pointing at the executable (see tests/e2e/CMakeLists.txt).
"""
from test_server import server  # noqa: F401  (the fixture: a demo server on free ports)


def test_the_last_trading_days_settlement_delivers_and_delists(server):
    # One settlement first, so that a past trading day exists (day 1) besides 0 (never expires).
    assert server.post("/api/admin/settle", {}, "admin").status_code == 200
    today = server.get("/api/admin/status", "admin").json()["trading_day"]
    assert today == 2
    contract = {"code": "IF2412", "exchange": "CFFEX", "price_tick": "0.2", "multiplier": "300",
                "margin_ratio": "0.1", "max_order_volume": 10, "position_limit": 10,
                "pre_settlement": "3800.0"}
    r = server.post("/api/admin/instrument", dict(contract, last_trading_day=today - 1), "admin")
    assert r.status_code == 409 and r.json()["reason"] == "INVALID_PARAMETER", r.text
    r = server.post("/api/admin/instrument", dict(contract, last_trading_day=today), "admin")
    assert r.status_code == 200, r.text
    listed = [i for i in server.get("/api/instruments", "viewer").json()
              if i["instrument_id"] == "IF2412"][0]
    assert listed["last_trading_day"] == today

    assert server.order("bob", "bob-01", "SELL", "3800.0", 2, instrument="IF2412") \
        .json()["status"] == "ACCEPTED"
    assert server.order("alice", "alice-01", "BUY", "3800.0", 2, instrument="IF2412") \
        .json()["status"] == "ACCEPTED"
    assert server.order("bob", "bob-01", "BUY", "3790.0", 1, instrument="IF2412",
                        time_condition="GTC").json()["status"] == "ACCEPTED"

    r = server.post("/api/admin/settle", {"prices": {"IF2412": "3810.0"}}, "admin")
    assert r.status_code == 200, r.text
    fx = r.json()["effects"]
    cancels = [e for e in fx if e["kind"] == "ORDER_CANCELLED" and e["reason"] ==
               "INSTRUMENT_EXPIRED"]
    assert [(e["account"], e["volume_left"]) for e in cancels] == [("bob-01", 1)]
    delivered = [e for e in fx if e["kind"] == "POSITION_DELIVERED"]
    # 2 lots at 3810.0 x 300 = 2,286,000.0000 CNY each side.
    assert [(e["account"], e["side"], e["volume"], e["price"], e["value"]) for e in delivered] == \
        [("alice-01", "LONG", 2, "3810.0", "2286000.0000"),
         ("bob-01", "SHORT", 2, "3810.0", "2286000.0000")]
    assert {"kind": "INSTRUMENT_STATUS_CHANGED"}.items() <= \
        [e for e in fx if e["kind"] == "INSTRUMENT_STATUS_CHANGED"][0].items()
    assert "IF2412" not in server.get("/api/positions/alice-01", "alice").json()
    r = server.order("alice", "alice-01", "BUY", "3810.0", 1, instrument="IF2412")
    assert r.json()["status"] == "REJECTED" and r.json()["reason"] == "INSTRUMENT_DELISTED", r.text
