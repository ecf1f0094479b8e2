"""The authorization matrix, exhaustively: every REST route and every binary TCP request, with no
token, a bad token, and each role (admin, trader on its own account, trader on another's, viewer,
auditor). The expected outcome of each cell is written out below, so a route that loses or gains
a permission breaks this test."""
import itertools
import signal

import pytest

from test_server import Server
from test_tcp import ALICE, BOB, IF, TcpClient, error_code

WHO = ["none", "bad", "admin", "alice", "bob", "viewer", "auditor"]
counter = itertools.count(1)


def unique(prefix):
    return f"{prefix}{next(counter)}"


# (method, path, body factory, {who: expected status}); "any" = the 200-for-every-role row.
ANY = {"none": 401, "bad": 401, "admin": 200, "alice": 200, "bob": 200, "viewer": 200,
       "auditor": 200}
OWN_READ = {"none": 401, "bad": 401, "admin": 200, "alice": 200, "bob": 403, "viewer": 403,
            "auditor": 200}
TRADE = {"none": 401, "bad": 401, "admin": 403, "alice": 200, "bob": 403, "viewer": 403,
         "auditor": 403}
ADMIN = {"none": 401, "bad": 401, "admin": 200, "alice": 403, "bob": 403, "viewer": 403,
         "auditor": 403}
READERS = {"none": 401, "bad": 401, "admin": 200, "alice": 403, "bob": 403, "viewer": 403,
           "auditor": 200}
OPEN = {w: 200 for w in WHO}
# An admin request the demo exchange refuses as data (409): the currency is fixed once accounts
# exist. Everyone else is stopped at the door as for any admin route.
ADMIN_REFUSED = dict(ADMIN, admin=409)

ROUTES = [
    ("GET", "/healthz", None, OPEN),
    ("GET", "/metrics", None, OPEN),
    ("GET", "/api/admin/status", None, READERS),
    ("GET", "/api/instruments", None, ANY),
    ("GET", "/api/orderbook/IF2501", None, ANY),
    ("GET", "/api/klines/IF2501?period=5m", None, ANY),
    ("GET", "/api/market/trades/IF2501", None, ANY),
    ("GET", "/api/accounts", None, ANY),
    ("GET", "/api/account/alice-01", None, OWN_READ),
    ("GET", "/api/positions/alice-01", None, OWN_READ),
    ("GET", "/api/orders/alice-01", None, OWN_READ),
    ("GET", "/api/trades/alice-01", None, OWN_READ),
    ("POST", "/api/order/submit",
     lambda: {"account": "alice-01", "instrument": "IF2501", "direction": "BUY",
              "price": "3700.0", "volume": 1, "time_condition": "IOC"}, TRADE),
    ("POST", "/api/order/amend",
     lambda: {"account": "alice-01", "order_id": 424242, "price": "3700.0", "volume_left": 1},
     TRADE),
    ("POST", "/api/order/cancel", lambda: {"account": "alice-01", "order_id": 424242}, TRADE),
    ("POST", "/api/admin/instrument",
     lambda: {"code": unique("zz"), "exchange": "TEST", "price_tick": "1", "multiplier": "1",
              "margin_ratio": "0.1", "max_order_volume": 10, "position_limit": 10,
              "pre_settlement": "100"}, ADMIN),
    ("POST", "/api/admin/instrument/au2506/halt", lambda: {}, ADMIN),
    ("POST", "/api/admin/instrument/au2506/resume", lambda: {}, ADMIN),
    ("POST", "/api/admin/user",
     lambda: {"username": unique("user"), "password": "long-enough-pw", "role": "viewer"}, ADMIN),
    ("POST", "/api/admin/account", lambda: {"user": "bob", "name": unique("bob-x")}, ADMIN),
    ("POST", "/api/admin/account/bob-01/risk", lambda: {"stp_scope": "USER"}, ADMIN),
    ("POST", "/api/admin/deposit", lambda: {"account": "bob-01", "amount": "1.5"}, ADMIN),
    ("POST", "/api/admin/withdraw", lambda: {"account": "bob-01", "amount": "1.5"}, ADMIN),
    ("POST", "/api/admin/settle", lambda: {}, ADMIN),
    ("POST", "/api/admin/currency", lambda: {"code": "USDT", "decimals": 8}, ADMIN_REFUSED),
    # "victim" is made by the fixture; disabling and enabling it touch nobody else's tokens.
    ("POST", "/api/admin/user/victim/disable", lambda: {}, ADMIN),
    ("POST", "/api/admin/user/victim/enable", lambda: {}, ADMIN),
    ("POST", "/api/admin/user/victim/password", lambda: {"password": "another-long-pw"}, ADMIN),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("matrix") / "data")
    r = s.post("/api/admin/user", {"username": "victim", "password": "victim-long-pw",
                                   "role": "viewer"}, "admin")
    assert r.status_code == 200, r.text
    yield s
    if s.proc.poll() is None:
        s.stop(signal.SIGKILL)


def headers(server, who):
    if who == "none":
        return {}
    if who == "bad":
        return {"Authorization": "Bearer " + server.token("alice")[:-4] + "AAAA"}
    return {"Authorization": "Bearer " + server.token(who)}


@pytest.mark.parametrize("method,path,body,expect", ROUTES, ids=[f"{m} {p}" for m, p, _, _ in ROUTES])
def test_rest_route(server, method, path, body, expect):
    for who in WHO:
        h = headers(server, who)
        if method == "GET":
            r = server.get(path, headers=h)
        else:
            r = server.post(path, body(), headers=h)
        assert r.status_code == expect[who], (who, r.status_code, r.text)
        if r.status_code in (401, 403):
            assert r.json()["error"] in ("unauthorized", "forbidden"), r.text


# Binary TCP: (request body, {who: None for an answer, or the error code}).
T_ANY = {"none": "unauthorized", "bad": "unauthorized", "admin": None, "alice": None,
         "bob": None, "viewer": None, "auditor": None}
T_OWN_READ = dict(T_ANY, bob="forbidden", viewer="forbidden")
T_TRADE = dict(T_ANY, admin="forbidden", bob="forbidden", viewer="forbidden",
               auditor="forbidden")

MESSAGES = [
    ({"ping": None}, {w: None for w in WHO}),
    ({"instruments": None}, T_ANY),
    ({"subscribe": {"instrument": IF, "depth": 5, "trades": True}}, T_ANY),
    ({"unsubscribe": IF}, T_ANY),
    ({"account": ALICE}, T_OWN_READ),
    ({"orders": ALICE}, T_OWN_READ),
    ({"newOrder": {"account": ALICE, "instrument": IF, "direction": "buy", "price": 18500,
                   "volume": 1, "timeCondition": "ioc"}}, T_TRADE),
    ({"amend": {"account": ALICE, "orderId": 424242, "price": 18500, "volumeLeft": 1}}, T_TRADE),
    ({"cancel": {"account": ALICE, "orderId": 424242}}, T_TRADE),
]


def test_tcp_messages(server):
    clients = {"none": TcpClient(server)}
    bad = TcpClient(server)
    assert error_code(bad.request({"login": {"token": server.token("alice")[:-4] + "AAAA"}})) == \
        "unauthorized"
    clients["bad"] = bad
    for who in ("admin", "alice", "bob", "viewer", "auditor"):
        clients[who] = TcpClient(server, token=server.token(who))
    assert clients["bob"].login["accounts"][0]["id"] == BOB
    for body, expect in MESSAGES:
        for who in WHO:
            m = clients[who].request(body)
            assert error_code(m) == expect[who], (who, body, m)
    for c in clients.values():
        c.close()
