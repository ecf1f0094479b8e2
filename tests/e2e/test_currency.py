"""End-to-end test of an exchange in another currency: a fresh `qx serve` (no demo) set to USDT
with 8 decimals over REST lists Binance's ETHUSDT contract (tick 0.01, lot 0.001: 0.00001 USDT a
tick), takes money with 8 places, shows it with 8 places, keeps the currency over a restart, and
refuses a second currency, a finer amount and wrongly typed bodies without harm.

Run by ctest with QX_BIN pointing at the executable (see tests/e2e/CMakeLists.txt).
"""
import os

import pytest

from test_server import PW, Server

ADMIN_PW = "an-admin-password-for-usdt"


def start(data):
    env = dict(os.environ, QX_ADMIN_PASSWORD=ADMIN_PW, QX_JWT_SECRET="j" * 40)
    PW["admin"] = ADMIN_PW
    return Server(data, env=env, demo=False)


def ok(r):
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture()
def restore_admin_password():
    before = PW["admin"]
    yield
    PW["admin"] = before


def test_a_usdt_exchange_lists_ethusdt_and_counts_money_in_1e_8(tmp_path, restore_admin_password):
    data = tmp_path / "data"
    s = start(data)
    try:
        # Wrong types and values first: each is a clear 400 or 409 and changes nothing.
        for body, status in [({"code": 5, "decimals": 8}, 400), ({"code": "USDT"}, 400),
                             ({"code": "USDT", "decimals": "8"}, 400),
                             ({"code": "USDT", "decimals": 9}, 400),
                             ({"code": "USDT", "decimals": -1}, 400),
                             ({"code": "USDTUSDT", "decimals": 8}, 400),
                             ({"code": "usdt", "decimals": 8}, 409)]:
            r = s.post("/api/admin/currency", body, "admin")
            assert r.status_code == status, (body, r.text)
        st = ok(s.get("/api/admin/status", "admin"))
        assert (st["currency"], st["money_decimals"]) == ("CNY", 4)

        ok(s.post("/api/admin/currency", {"code": "USDT", "decimals": 8}, "admin"))
        st = ok(s.get("/api/admin/status", "admin"))
        assert (st["currency"], st["money_decimals"]) == ("USDT", 8)

        eth = {"code": "ETHUSDT", "exchange": "BINANCE", "price_tick": "0.01",
               "multiplier": "0.001", "margin_ratio": "0.1", "fee_ratio": "0.0004",
               "fee_per_lot": "0.00000001", "max_order_volume": 1000, "position_limit": 1000,
               "pre_settlement": "2500.00"}
        ok(s.post("/api/admin/instrument", eth, "admin"))
        [ins] = ok(s.get("/api/instruments", "admin"))
        assert ins["instrument_id"] == "ETHUSDT" and ins["currency"] == "USDT"
        # A fee per lot finer than the currency's 8 places is refused and lists nothing.
        r = s.post("/api/admin/instrument", dict(eth, code="ETH2", fee_per_lot="0.000000001"),
                   "admin")
        assert r.status_code == 400 and "at most 8 places (USDT)" in r.json()["message"], r.text

        ok(s.post("/api/admin/user", {"username": "trader", "password": "trader-pw-12345",
                                      "role": "trader"}, "admin"))
        PW["trader"] = "trader-pw-12345"
        ok(s.post("/api/admin/account", {"user": "trader", "name": "trader-01"}, "admin"))
        r = s.post("/api/admin/deposit", {"account": "trader-01", "amount": "1.123456789"},
                   "admin")
        assert r.status_code == 400 and "8 places (USDT)" in r.json()["message"], r.text
        ok(s.post("/api/admin/deposit", {"account": "trader-01", "amount": "1000.12345677"},
                  "admin"))
        # A JSON number prints as 1e-08 in shortest form: its exponent is expanded, not refused.
        ok(s.post("/api/admin/deposit", {"account": "trader-01", "amount": 0.00000001}, "admin"))
        for tiny in (1e-09, 1e-300, 1e300):
            r = s.post("/api/admin/deposit", {"account": "trader-01", "amount": tiny}, "admin")
            assert r.status_code == 400, (tiny, r.text)
        # Accounts exist now: the currency is fixed.
        r = s.post("/api/admin/currency", {"code": "CNY", "decimals": 4}, "admin")
        assert r.status_code == 409 and r.json()["reason"] == "CURRENCY_FIXED", r.text

        # One lot bid at 2500.00: notional 2.5 USDT, margin 10% = 0.25, fee 0.04% = 0.001 plus
        # 0.00000001 a lot.
        r = s.order("trader", "trader-01", "BUY", "2500.00", 1, instrument="ETHUSDT",
                    time_condition="GTC")
        assert r.json()["status"] == "ACCEPTED", r.text
        acct = ok(s.get("/api/account/trader-01", "trader"))
        assert acct["currency"] == "USDT"
        assert acct["balance"] == "1000.12345678"
        assert acct["frozen_margin"] == "0.25000000"
        assert acct["frozen_commission"] == "0.00100001"
        assert acct["available"] == "999.87245677"
        assert s.stop() == 0

        # The currency is part of the journal and the snapshot: a restart keeps it.
        s = start(data)
        st = ok(s.get("/api/admin/status", "admin"))
        assert (st["currency"], st["money_decimals"]) == ("USDT", 8)
        assert ok(s.get("/api/account/trader-01", "trader"))["available"] == "999.87245677"
    finally:
        PW.pop("trader", None)
        if s.proc.poll() is None:
            assert s.stop() == 0


def test_the_demo_exchange_refuses_another_currency(tmp_path):
    s = Server(tmp_path / "data")
    try:
        r = s.post("/api/admin/currency", {"code": "USDT", "decimals": 8}, "admin")
        assert r.status_code == 409 and r.json()["reason"] == "CURRENCY_FIXED", r.text
        assert ok(s.get("/api/account/alice-01", "alice"))["balance"] == "10000000.0000"
    finally:
        assert s.stop() == 0
