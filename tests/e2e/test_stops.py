"""End-to-end test of stop and take-profit orders through a real `qx serve --demo`: placed over
REST and binary TCP, waiting without holding funds, fired by a trade, reported on both, and bad
requests refused without harm.

Run by ctest with QX_BIN pointing at the executable (see tests/e2e/CMakeLists.txt).
"""
from test_hostile import send_undefined_enum
from test_server import server  # noqa: F401  (the fixture: a demo server on free ports)
from test_tcp import TcpClient, order


def kinds(reply):
    return [e["kind"] for e in reply.json()["effects"]]


def only(reply, kind):
    found = [e for e in reply.json()["effects"] if e["kind"] == kind]
    assert len(found) == 1, reply.text
    return found[0]


def status(server):
    s = server.get("/api/admin/status", "admin").json()
    return s["last_seq"], s["state_hash"]


def test_a_stop_waits_without_funds_and_fires_when_the_last_price_reaches_it(server):
    before = server.get("/api/account/alice-01", "alice").json()
    r = server.order("alice", "alice-01", "BUY", "3851.0", 1, time_condition="GTC",
                     trigger="STOP", trigger_price="3850.0", client_order_id=7)
    assert r.status_code == 200 and r.json()["status"] == "ACCEPTED", r.text
    placed = only(r, "STOP_ACCEPTED")
    assert (placed["trigger_price"], placed["trigger_kind"], placed["trigger_source"]) == \
        ("3850.0", "STOP", "LAST")
    assert r.json()["order_id"] == placed["order_id"] and r.json()["client_order_id"] == 7
    stop_id = placed["order_id"]
    pending = server.get("/api/orders/alice-01", "alice").json()[str(stop_id)]
    assert pending["status"] == "PENDING_TRIGGER"
    assert pending["trigger"] == {"kind": "STOP", "source": "LAST", "price": "3850.0"}
    after = server.get("/api/account/alice-01", "alice").json()
    assert after["available"] == before["available"]  # a waiting stop holds nothing
    assert server.get("/api/orderbook/IF2501", "viewer").json()["bids"] == []

    # bob offers 2 at 3850.0; alice takes 1, the trade fires her stop, which takes the other.
    assert server.order("bob", "bob-01", "SELL", "3850.0", 2, time_condition="GTC").json()[
        "status"] == "ACCEPTED"
    r = server.order("alice", "alice-01", "BUY", "3850.0", 1)
    assert r.json()["status"] == "ACCEPTED", r.text
    assert kinds(r) == ["ORDER_ACCEPTED", "TRADE", "STOP_TRIGGERED", "ORDER_ACCEPTED", "TRADE"]
    effects = r.json()["effects"]
    assert r.json()["order_id"] == effects[0]["order_id"]  # the reply is about alice's order
    assert effects[2]["order_id"] == stop_id and effects[2]["price"] == "3850.0"
    assert effects[3]["client_order_id"] == 7 and effects[3]["order_id"] > stop_id
    assert effects[4]["price"] == "3850.0"
    assert server.get("/api/orders/alice-01", "alice").json() == {}


def test_a_triggered_order_that_fails_is_rejected_without_failing_the_order_that_fired_it(server):
    # bob's buy stop on the mark enters as a limit at 4500.0, outside IF's band: refused when it
    # fires.
    r = server.order("bob", "bob-01", "BUY", "4500.0", 1, trigger="STOP",
                     trigger_price="3850.0", trigger_by="MARK")
    assert r.json()["status"] == "ACCEPTED", r.text
    assert only(r, "STOP_ACCEPTED")["trigger_source"] == "MARK"
    server.order("alice", "alice-01", "SELL", "3850.0", 1, time_condition="GTC")
    r = server.order("bob", "bob-01", "BUY", "3850.0", 1)
    assert r.json()["status"] == "ACCEPTED", r.text
    assert kinds(r) == ["ORDER_ACCEPTED", "TRADE", "STOP_TRIGGERED", "ORDER_REJECTED"]
    assert r.json()["effects"][3]["reason"] == "PRICE_OUTSIDE_BAND"
    # A sell take-profit at or below the last price (3850.0) would fire at once.
    r = server.order("bob", "bob-01", "SELL", "3850.0", 1, trigger="TAKE_PROFIT",
                     trigger_price="3849.0")
    assert (r.json()["status"], r.json()["reason"]) == ("REJECTED", "STOP_WOULD_TRIGGER"), r.text


def test_a_stop_can_be_cancelled_but_not_amended(server):
    r = server.order("alice", "alice-01", "SELL", "3700.0", 1, time_condition="GTC",
                     trigger="STOP", trigger_price="3750.0", client_order_id=11)
    stop_id = only(r, "STOP_ACCEPTED")["order_id"]
    r = server.post("/api/order/amend", {"account": "alice-01", "order_id": stop_id,
                                         "price": "3710.0", "volume_left": 1}, "alice")
    assert (r.json()["status"], r.json()["reason"]) == ("REJECTED", "STOP_NOT_AMENDABLE"), r.text
    r = server.post("/api/order/cancel", {"account": "bob-01", "order_id": stop_id}, "bob")
    assert (r.json()["status"], r.json()["reason"]) == ("REJECTED", "ORDER_NOT_OWNED"), r.text
    r = server.post("/api/order/cancel", {"account": "alice-01", "client_order_id": 11}, "alice")
    cancelled = only(r, "ORDER_CANCELLED")
    assert (cancelled["order_id"], cancelled["reason"]) == (stop_id, "USER_REQUEST")
    assert server.get("/api/orders/alice-01", "alice").json() == {}


def test_bad_stop_requests_are_refused_and_change_nothing(server):
    before = status(server)
    for extra in [{"trigger": "SOMETIMES", "trigger_price": "3850.0"},
                  {"trigger_by": "MOON", "trigger_price": "3850.0"},
                  {"trigger": "STOP"},                            # no trigger price
                  {"trigger_price": "abc"},
                  {"trigger_price": 0},
                  {"trigger_price": -5},
                  {"trigger_price": "3850.1"},                    # not on the 0.2 tick
                  {"trigger_price": "3850.0", "price_type": "BEST"},
                  {"trigger_price": ["3850.0"]},
                  {"trigger": 1, "trigger_price": "3850.0"}]:
        r = server.order("alice", "alice-01", "BUY", "3851.0", 1, **extra)
        assert r.status_code == 400, (extra, r.text)
        assert "error" in r.json(), r.text
    assert status(server) == before


def test_a_stop_over_tcp_is_reported_waiting_and_fired(server):
    alice = TcpClient(server, "alice")
    try:
        r = alice.request(order("buy", 19255, 1, timeCondition="gtc", triggerPrice=19250,
                                triggerKind="stop", triggerSource="last", clientOrderId=21))
        assert r["body"]["orderResult"]["accepted"], r
        stop_id = r["body"]["orderResult"]["orderId"]
        placed = alice.wait(
            lambda m: m["body"].get("execution", {}).get("kind") == "stopAccepted")
        assert int(placed["body"]["execution"]["orderId"]) == int(stop_id)
        assert int(placed["body"]["execution"]["triggerPrice"]) == 19250
        server.order("bob", "bob-01", "SELL", "3850.0", 2, time_condition="GTC")
        r = alice.request(order("buy", 19250, 1))
        assert r["body"]["orderResult"]["accepted"], r
        fired = alice.wait(
            lambda m: m["body"].get("execution", {}).get("kind") == "stopTriggered")
        assert int(fired["body"]["execution"]["orderId"]) == int(stop_id)
        entered = alice.wait(lambda m: m["body"].get("execution", {}).get("kind") == "accepted"
                             and int(m["body"]["execution"].get("clientOrderId", 0)) == 21)
        assert int(entered["body"]["execution"]["orderId"]) > int(stop_id)
    finally:
        alice.close()


def test_an_undefined_trigger_kind_over_tcp_is_refused_and_the_exchange_goes_on(server):
    before = status(server)
    text = ("(requestId = 2, body = (newOrder = (account = 0, instrument = 0, direction = buy, "
            "price = 19000, volume = 1, triggerPrice = 19100, triggerKind = %s)))")
    send_undefined_enum(server, "alice", text, "stop", "takeProfit", (3, 9, 255))
    assert server.get("/healthz").status_code == 200
    assert status(server) == before
