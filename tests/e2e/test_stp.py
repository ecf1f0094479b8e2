"""End-to-end test of self-trade prevention modes through a real `qx serve --demo`: an admin sets
an account's mode over REST, orders choose their own over REST and binary TCP, the engine cancels
the resting order, the incoming one or both, and bad settings are refused without harm.

Run by ctest with QX_BIN pointing at the executable (see tests/e2e/CMakeLists.txt).
"""
from test_hostile import send_undefined_enum
from test_server import server  # noqa: F401  (the fixture: a demo server on free ports)
from test_tcp import TcpClient, order

STP = "SELF_TRADE_PREVENTION"


def stp_cancels(reply):
    """(order_id, volume_left) of every STP cancel among a REST order reply's effects."""
    return [(e["order_id"], e["volume_left"]) for e in reply.json()["effects"]
            if e["kind"] == "ORDER_CANCELLED" and e["reason"] == STP]


def accepted_id(reply):
    assert reply.json()["status"] == "ACCEPTED", reply.text
    return [e for e in reply.json()["effects"] if e["kind"] == "ORDER_ACCEPTED"][0]["order_id"]


def test_account_and_order_modes_over_rest(server):
    # The demo default: CANCEL_NEWEST, the incoming bid is cancelled and the ask stays.
    ask = accepted_id(server.order("alice", "alice-01", "SELL", "3850.0", 2, time_condition="GTC"))
    bid = server.order("alice", "alice-01", "BUY", "3850.0", 1)
    assert stp_cancels(bid) == [(accepted_id(bid), 1)]
    assert list(server.get("/api/orders/alice-01", "alice").json()) == [str(ask)]

    # The account set to CANCEL_BOTH (max_open_orders and enabled keep their values).
    r = server.post("/api/admin/account/alice-01/risk", {"stp_mode": "CANCEL_BOTH"}, "admin")
    assert r.status_code == 200, r.text
    bid = server.order("alice", "alice-01", "BUY", "3850.0", 3)
    assert stp_cancels(bid) == [(ask, 2), (accepted_id(bid), 3)]
    assert server.get("/api/orders/alice-01", "alice").json() == {}

    # An order's own CANCEL_OLDEST: the ask goes, the bid rests and shows its setting.
    ask = accepted_id(server.order("alice", "alice-01", "SELL", "3850.0", 1, time_condition="GTC"))
    bid = server.order("alice", "alice-01", "BUY", "3850.0", 1, time_condition="GTC",
                       stp_mode="CANCEL_OLDEST")
    bid_id = accepted_id(bid)
    assert stp_cancels(bid) == [(ask, 1)]
    orders = server.get("/api/orders/alice-01", "alice").json()
    assert list(orders) == [str(bid_id)]
    assert orders[str(bid_id)]["stp"] == {"mode": "CANCEL_OLDEST", "scope": "ACCOUNT"}


def test_an_order_over_tcp_chooses_its_own_mode(server):
    alice = TcpClient(server, "alice")
    try:
        assert (alice.login["currency"], alice.login["moneyDecimals"]) == ("CNY", 4)
        r = alice.request(order("sell", 19250, 1, timeCondition="gtc"))
        assert r["body"]["orderResult"]["accepted"], r
        ask = r["body"]["orderResult"]["orderId"]
        r = alice.request(order("buy", 19250, 1, timeCondition="gtc", stpMode="cancelOldest"))
        assert r["body"]["orderResult"]["accepted"], r
        cancel = alice.wait(lambda m: m["body"].get("execution", {}).get("kind") == "cancelled")
        assert cancel["body"]["execution"]["orderId"] == ask
        book = server.get("/api/orderbook/IF2501", "viewer").json()
        assert [lvl["price"] for lvl in book["bids"]] == ["3850.0"] and book["asks"] == []
    finally:
        alice.close()


def test_bad_settings_are_refused_and_change_nothing(server):
    before = server.get("/api/admin/status", "admin").json()
    for path, body, status in [
            ("/api/admin/account/alice-01/risk", {"stp_mode": "SOMETIMES"}, 400),
            ("/api/admin/account/alice-01/risk", {"stp_scope": 1}, 400),
            ("/api/admin/account/alice-01/risk", {"max_open_orders": "many"}, 400),
            ("/api/admin/account/alice-01/risk", {"enabled": "yes"}, 400),
            ("/api/admin/account/nobody/risk", {"stp_mode": "CANCEL_BOTH"}, 404)]:
        r = server.post(path, body, "admin")
        assert r.status_code == status, (body, r.text)
    r = server.order("alice", "alice-01", "BUY", "3850.0", 1, stp_scope="GALAXY")
    assert r.status_code == 400, r.text
    # Traders cannot change their own settings.
    r = server.post("/api/admin/account/alice-01/risk", {"stp_mode": "CANCEL_BOTH"}, "alice")
    assert r.status_code == 403, r.text
    after = server.get("/api/admin/status", "admin").json()
    assert (after["last_seq"], after["state_hash"]) == (before["last_seq"], before["state_hash"])



def test_an_undefined_mode_over_tcp_is_refused_and_the_exchange_goes_on(server):
    """A binary client can put any number in an enum field; the gateway refuses an undefined
    mode before it is journaled (journaling it would stop the sequencer)."""
    before = server.get("/api/admin/status", "admin").json()
    text = ("(requestId = 2, body = (newOrder = (account = 0, instrument = 0, direction = buy, "
            "price = 19000, volume = 1, stpMode = %s, stpScope = account)))")
    send_undefined_enum(server, "alice", text, "cancelNewest", "cancelBoth", (4, 7, 255))
    assert server.get("/healthz").status_code == 200
    after = server.get("/api/admin/status", "admin").json()
    assert (after["last_seq"], after["state_hash"]) == (before["last_seq"], before["state_hash"])
