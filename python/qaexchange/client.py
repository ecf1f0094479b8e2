"""A REST client of a live `qx serve`, single node or cluster (docs/cluster.md).

    from qaexchange import Client
    c = Client(["http://10.0.0.1:8101", "http://10.0.0.2:8102"], "alice", "alice-pw")
    r = c.submit_order("alice-01", "IF2501", "BUY", "3500.0", 1)   # {"seq", "status", ...}
    c.account("alice-01")                                             # any node answers reads

Writes go to the leader: a follower answers 421 naming it and the client moves there (logging in
again, since each node keeps its own sessions). A node that does not answer, or answers 503
overloaded, is left for the next address of the list until `retry_s` runs out. A follower never
journals a write, so a request sent again after a 421 or a refused connection runs once.

Two outcomes are never retried: `OutcomeUnknown` (503 outcome_unknown: a leader lost its term
before a majority held the request; it may have been journaled, so look before sending it again,
e.g. by its client_order_id), and a connection that broke after the request was sent (a
`requests`-free `ConnectionError` naming the node; the same doubt applies).

Only the standard library is used, so the module also works without the compiled extension.
Every read answer's state is as of `last_seq` (the X-QX-Seq header): a follower's reads lag the
leader by its replication delay.
"""
from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.parse
from typing import Any, Dict, List, Optional, Sequence, Union

__all__ = ["Client", "ClientError", "NotLeader", "OutcomeUnknown"]


class ClientError(Exception):
    """The server refused a request: `status` (HTTP), `code` (its stable error name) and the
    decoded `body`."""

    def __init__(self, status: int, code: str, message: str, body: Any = None):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.body = status, code, message, body


class NotLeader(ClientError):
    """No node took a write before `retry_s` ran out (no leader was elected in time)."""


class OutcomeUnknown(ClientError):
    """The request may or may not have been journaled (see the module's documentation)."""


class Client:
    def __init__(self, urls: Union[str, Sequence[str]], username: str, password: str,
                 timeout: float = 10.0, retry_s: float = 10.0):
        self.urls: List[str] = [urls] if isinstance(urls, str) else list(urls)
        if not self.urls:
            raise ValueError("at least one server URL is needed")
        for u in self.urls:
            p = urllib.parse.urlsplit(u)
            if p.scheme != "http" or not p.hostname or not p.port:
                raise ValueError(f"not an http://HOST:PORT URL: {u!r}")
        self.username, self._password = username, password
        self.timeout, self.retry_s = timeout, retry_s
        self.url = self.urls[0]  # the node this client talks to now
        self.last_seq: Optional[int] = None  # the X-QX-Seq of the last answer
        self._tokens: Dict[str, str] = {}

    # ---- the API

    def submit_order(self, account: str, instrument: str, direction: str, price: str,
                     volume: int, offset: str = "OPEN", time_condition: str = "GTC",
                     **fields: Any) -> dict:
        body = {"account": account, "instrument": instrument, "direction": direction,
                "offset": offset, "price": str(price), "volume": volume,
                "time_condition": time_condition, **fields}
        return self.post("/api/order/submit", body)

    def cancel_order(self, account: str, order_id: int) -> dict:
        return self.post("/api/order/cancel", {"account": account, "order_id": order_id})

    def account(self, name: str) -> dict:
        return self.get(f"/api/account/{urllib.parse.quote(name, safe='')}")

    def orders(self, account: str) -> dict:
        return self.get(f"/api/orders/{urllib.parse.quote(account, safe='')}")

    def orderbook(self, instrument: str) -> dict:
        return self.get(f"/api/orderbook/{urllib.parse.quote(instrument, safe='')}")

    def cluster_status(self) -> dict:
        return self._call("GET", "/api/cluster/status", None, write=False, auth=False)

    def get(self, path: str) -> dict:
        return self._call("GET", path, None, write=False)

    def post(self, path: str, body: dict) -> dict:
        return self._call("POST", path, body, write=True)

    # ---- the mechanics

    def _call(self, method: str, path: str, body: Optional[dict], write: bool,
              auth: bool = True) -> dict:
        deadline = time.monotonic() + self.retry_s
        tried = 0
        last_error = "no node answered"
        while True:
            url = self.url
            try:
                status, headers, answer = self._request(url, method, path, body, auth)
                if status == 401 and auth and url in self._tokens:
                    del self._tokens[url]  # expired or revoked: log in again once
                    status, headers, answer = self._request(url, method, path, body, auth)
            except _Unreachable as e:  # nothing was sent: any node may be asked
                last_error = str(e)
                self._next_url(url)
                tried += 1
            else:
                seq = headers.get("x-qx-seq")
                self.last_seq = int(seq) if seq and seq.isdigit() else self.last_seq
                code = answer.get("error", "") if isinstance(answer, dict) else ""
                message = answer.get("message", "") if isinstance(answer, dict) else ""
                if status == 200:
                    return answer
                if status == 421 and write:
                    leader = answer.get("leader") if isinstance(answer, dict) else None
                    if isinstance(leader, dict) and isinstance(leader.get("http"), str):
                        self.url = "http://" + leader["http"]
                    else:
                        time.sleep(0.05)  # no leader yet
                    last_error = message or "not the leader"
                elif status == 503 and code == "outcome_unknown":
                    raise OutcomeUnknown(status, code, message, answer)
                elif status == 503 and code in ("overloaded", "busy", "not_leader"):
                    last_error = message
                    self._next_url(url)
                    time.sleep(0.02)
                else:
                    raise ClientError(status, code or "error", message or str(answer), answer)
            if time.monotonic() >= deadline:
                raise NotLeader(421, "not_leader", f"no node took the request within "
                                f"{self.retry_s} s: {last_error}")
            if tried and tried % len(self.urls) == 0:
                time.sleep(0.05)

    def _next_url(self, failed: str) -> None:
        i = self.urls.index(failed) if failed in self.urls else -1
        self.url = self.urls[(i + 1) % len(self.urls)]

    def _token(self, url: str) -> str:
        if url not in self._tokens:
            status, _, answer = self._request(
                url, "POST", "/api/auth/login",
                {"username": self.username, "password": self._password}, auth=False)
            if status != 200:
                raise ClientError(status, answer.get("error", "login_failed"),
                                  answer.get("message", ""), answer)
            self._tokens[url] = answer["token"]
        return self._tokens[url]

    def _request(self, url: str, method: str, path: str, body: Optional[dict], auth: bool):
        """(status, lower-cased headers, decoded JSON) of one request. Raises _Unreachable when
        the request cannot have reached the server, ConnectionError when it may have."""
        p = urllib.parse.urlsplit(url)
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = "Bearer " + self._token(url)
        conn = http.client.HTTPConnection(p.hostname, p.port, timeout=self.timeout)
        try:
            try:
                conn.connect()
            except OSError as e:
                raise _Unreachable(f"{url}: {e}") from e
            data = None if body is None else json.dumps(body).encode()
            try:
                conn.request(method, path, body=data, headers=headers)
                r = conn.getresponse()
                raw = r.read()
            except (OSError, http.client.HTTPException, socket.timeout) as e:
                if method == "GET":
                    raise _Unreachable(f"{url}: {e}") from e  # a read may be asked again
                raise ConnectionError(f"{url}: the connection broke after the request was "
                                      f"sent; its outcome is unknown: {e}") from e
            try:
                answer = json.loads(raw) if raw else {}
            except ValueError:
                answer = {"error": "bad_answer", "message": raw[:200].decode("utf-8", "replace")}
            return r.status, {k.lower(): v for k, v in r.getheaders()}, answer
        finally:
            conn.close()


class _Unreachable(Exception):
    pass
