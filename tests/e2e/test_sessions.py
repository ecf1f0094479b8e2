"""End-to-end test of trading sessions and call auctions through a real `qx serve --demo`: an
admin gives IF2501 a schedule whose call is under way, crossing orders rest, the call ends on time
with no client event (the server journals a MarkToMarket at the boundary) and the book uncrosses
at one price; the schedule and phase survive a restart; bad schedules are refused as data.

Run by ctest with QX_BIN pointing at the executable (see tests/e2e/CMakeLists.txt).
"""
import time
from decimal import Decimal

from test_server import Server, server  # noqa: F401  (server: the fixture)


def hms(seconds):
    seconds %= 86_400
    return "%02d:%02d:%02d" % (seconds // 3600, seconds // 60 % 60, seconds % 60)


def instrument(server, code="IF2501"):
    return next(i for i in server.get("/api/instruments", "viewer").json()
                if i["instrument_id"] == code)


def a_call_ending_in(seconds):
    """A UTC schedule: a call that began a minute ago and continuous trading `seconds` from now
    (entries sorted, so a call that spans midnight wraps as the engine reads it)."""
    now = int(time.time())
    entries = [{"start": hms(now - 60), "phase": "AUCTION"},
               {"start": hms(now + seconds), "phase": "CONTINUOUS"}]
    return now + seconds, {"utc_offset": "+00:00",
                           "entries": sorted(entries, key=lambda e: e["start"])}


def test_a_call_ends_on_time_and_uncrosses_with_no_client_event(server):
    ref = Decimal(instrument(server)["pre_settlement"])
    ends, schedule = a_call_ending_in(4)
    r = server.post("/api/admin/instrument/IF2501/session", schedule, "admin")
    assert r.status_code == 200, r.text
    kinds = [e["kind"] for e in r.json()["effects"]]
    assert kinds == ["SESSION_SET", "PHASE_CHANGED"], r.text
    assert r.json()["effects"][1]["phase"] == "AUCTION"
    shown = instrument(server)
    assert shown["phase"] == "AUCTION"
    assert [e["phase"] for e in shown["session"]["entries"]] == \
        [e["phase"] for e in schedule["entries"]]

    # In the call: a bid 0.4 above the reference and an offer 0.4 below rest, crossed.
    bid, ask = str(ref + Decimal("0.4")), str(ref - Decimal("0.4"))
    r = server.order("alice", "alice-01", "BUY", bid, 2)
    assert r.json()["status"] == "ACCEPTED", r.text
    r = server.order("bob", "bob-01", "SELL", ask, 2)
    assert r.json()["status"] == "ACCEPTED", r.text
    book = server.get("/api/orderbook/IF2501", "viewer").json()
    assert Decimal(book["bids"][0]["price"]) > Decimal(book["asks"][0]["price"]), book
    # Only LIMIT GFD / GTC orders enter a call.
    r = server.order("alice", "alice-01", "BUY", bid, 1, price_type="MARKET",
                     time_condition="IOC")
    assert (r.json()["status"], r.json()["reason"]) == ("REJECTED", "AUCTION_ORDER_TYPE"), r.text
    assert instrument(server)["volume_today"] == 0

    # Nobody sends anything: the call must still end, within the server's 100 ms look-ups.
    deadline = ends + 3
    while instrument(server)["phase"] != "CONTINUOUS":
        assert time.time() < deadline, "the call did not end on time"
        time.sleep(0.1)
    # Two lots matched at every price from the offer to the bid with no surplus: the auction
    # price is the one nearest the reference, the reference itself.
    trades = server.get("/api/market/trades/IF2501", "viewer").json()["trades"]
    assert [(Decimal(t["price"]), t["volume"]) for t in trades] == [(ref, 2)], trades
    book = server.get("/api/orderbook/IF2501", "viewer").json()
    assert book["bids"] == [] and book["asks"] == [], book
    # Continuous trading again: a MARKET order is taken (and finds no liquidity).
    r = server.order("alice", "alice-01", "BUY", bid, 1, price_type="MARKET",
                     time_condition="IOC")
    assert r.json()["reason"] == "NO_LIQUIDITY", r.text


def test_the_schedule_and_phase_survive_a_restart(tmp_path):
    data = tmp_path / "data"
    s = Server(data)
    try:
        schedule = {"utc_offset": "+08:00",
                    "entries": [{"start": "00:00", "phase": "CLOSED"},
                                {"start": "23:59:59", "phase": "BREAK"}]}
        r = s.post("/api/admin/instrument/cu2501/session", schedule, "admin")
        assert r.status_code == 200, r.text
        assert instrument(s, "cu2501")["phase"] in ("CLOSED", "BREAK")
        r = s.order("alice", "alice-01", "BUY", "70000", 1, instrument="cu2501")
        assert (r.json()["status"], r.json()["reason"]) == ("REJECTED", "MARKET_CLOSED"), r.text
        assert s.stop() == 0
        s = Server(data)
        shown = instrument(s, "cu2501")
        assert shown["phase"] in ("CLOSED", "BREAK")
        assert shown["session"] == {"utc_offset": "+08:00", "utc_offset_s": 28_800,
                                    "entries": [{"start": "00:00:00", "phase": "CLOSED"},
                                                {"start": "23:59:59", "phase": "BREAK"}]}
        # An empty schedule: continuous trading again, at once.
        r = s.post("/api/admin/instrument/cu2501/session", {"entries": []}, "admin")
        assert r.status_code == 200 and instrument(s, "cu2501")["phase"] == "CONTINUOUS", r.text
    finally:
        if s.proc.poll() is None:
            assert s.stop() == 0


def test_bad_schedules_are_refused_and_change_nothing(server):
    before = server.get("/api/admin/status", "admin").json()
    entry = {"start": "09:00", "phase": "CONTINUOUS"}
    for body in [{},
                 {"entries": "09:00"},
                 {"entries": [1]},
                 {"entries": [entry] * 17},
                 {"entries": [{"start": "9:00", "phase": "AUCTION"}]},
                 {"entries": [{"start": "24:00", "phase": "AUCTION"}]},
                 {"entries": [{"start": "09:60", "phase": "AUCTION"}]},
                 {"entries": [{"start": 32400, "phase": "AUCTION"}]},
                 {"entries": [{"start": "09:00", "phase": "LUNCH"}]},
                 {"entries": [{"start": "09:00"}]},
                 {"entries": [{"start": "10:00", "phase": "AUCTION"}, entry]},
                 {"entries": [entry, entry]},
                 {"utc_offset": "+19:00", "entries": []},
                 {"utc_offset": "08:00", "entries": []},
                 {"utc_offset": 28800, "entries": []}]:
        r = server.post("/api/admin/instrument/IF2501/session", body, "admin")
        assert r.status_code == 400, (body, r.text)
        assert "error" in r.json() and "message" in r.json(), r.text
    r = server.post("/api/admin/instrument/XX9999/session", {"entries": []}, "admin")
    assert r.status_code == 404, r.text
    r = server.post("/api/admin/instrument/IF2501/session", {"entries": []}, "alice")
    assert r.status_code == 403, r.text
    after = server.get("/api/admin/status", "admin").json()
    assert (after["last_seq"], after["state_hash"]) == (before["last_seq"], before["state_hash"])
    assert instrument(server)["phase"] == "CONTINUOUS"
