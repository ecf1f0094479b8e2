"""End-to-end tests of `qx serve`'s defaults for an operator: the TLS policy (versions, suites,
CRLs, certificate CNs mapped to users), SIGHUP reloading certificates without dropping anyone,
strict config files, owner-only files, the global connection cap and the accept loop under
descriptor exhaustion.

Run by ctest with QX_BIN pointing at the executable (see tests/e2e/CMakeLists.txt).
"""

import asyncio
import functools
import json
import os
import re
import resource
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import time
from pathlib import Path

import pytest
import requests

from test_server import QX, Server, http_exchange, make_ca, make_leaf, openssl, write_config
from test_tcp import TcpClient

needs_openssl = pytest.mark.skipif(not shutil.which("openssl"), reason="needs the openssl command")

SERVER_EXT = "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"
CLIENT_EXT = "extendedKeyUsage=clientAuth"

CA_CONFIG = """[ca]
default_ca = qx_ca
[qx_ca]
database = index.txt
crlnumber = crlnumber
default_md = sha256
default_crl_days = 1
"""


class Pki:
    """CA "ca" with server certificates "server" and "server2" for 127.0.0.1 and client
    certificates "client", "desk-9" and "revoked"; `crl(*names)` writes crl.pem revoking them."""

    def __init__(self, tmp_path):
        self.dir = tmp_path / "pki"
        self.dir.mkdir()
        make_ca(self.dir, "ca")
        self.ca = str(self.dir / "ca.pem")
        self.server = make_leaf(self.dir, "server", "ca", SERVER_EXT)
        self.server2 = make_leaf(self.dir, "server2", "ca", SERVER_EXT)
        self.client = make_leaf(self.dir, "client", "ca", CLIENT_EXT)
        self.desk9 = make_leaf(self.dir, "desk-9", "ca", CLIENT_EXT)
        self.revoked = make_leaf(self.dir, "revoked", "ca", CLIENT_EXT)
        (self.dir / "ca.cnf").write_text(CA_CONFIG)
        (self.dir / "index.txt").write_text("")
        (self.dir / "crlnumber").write_text("01\n")
        self.crl_file = str(self.dir / "crl.pem")

    def crl(self, *names):
        for name in names:
            openssl("ca", "-config", "ca.cnf", "-keyfile", "ca.key", "-cert", "ca.pem",
                    "-revoke", f"{name}.pem", cwd=self.dir)
        openssl("ca", "-config", "ca.cnf", "-keyfile", "ca.key", "-cert", "ca.pem", "-gencrl",
                "-out", "crl.pem", cwd=self.dir)
        return self.crl_file


def der(cert_file):
    return ssl.PEM_cert_to_DER_cert(Path(cert_file).read_text())


def client_context(ca, cert=None, min_version=None, max_version=None, ciphers=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca)
    if ciphers or min_version:
        # Let the client offer what only the server is meant to refuse.
        ctx.set_ciphers((ciphers or "DEFAULT") + ":@SECLEVEL=0")
    if min_version:
        ctx.minimum_version = min_version
    if max_version:
        ctx.maximum_version = max_version
    if cert:
        ctx.load_cert_chain(*cert)
    return ctx


def tls_connect(addr, ctx):
    host, port = addr.split(":")
    raw = socket.create_connection((host, int(port)), timeout=10)
    try:
        return ctx.wrap_socket(raw, server_hostname=host)
    except BaseException:
        raw.close()
        raise


def probe(addr, ctx, wait_s=2.0):
    """Handshakes and then waits for the server without sending anything: "open" when the server
    keeps the connection (it waits for a request), else the reason it ended it ("closed" or the
    TLS error; with TLS 1.3 a refused client certificate shows only at this first read)."""
    try:
        with tls_connect(addr, ctx) as tls:
            tls.settimeout(wait_s)
            try:
                return "closed" if tls.recv(1) == b"" else "data"
            except socket.timeout:
                return "open"
    except ssl.SSLError as e:
        return str(e)
    except ConnectionError as e:
        return type(e).__name__


def events_named(server, name):
    return [e for e in server.log_events() if e["event"] == name]


def wait_for_event(server, name, count=1, timeout=30):
    deadline = time.monotonic() + timeout
    while len(found := events_named(server, name)) < count:
        assert time.monotonic() < deadline, f"no {name} event:\n{server.errlog.read_text()}"
        time.sleep(0.05)
    return found


def http_url(server):
    return server.url.removeprefix("https://").removeprefix("http://")


@needs_openssl
def test_tls_refuses_old_versions_and_suites_without_forward_secrecy(tmp_path):
    pki = Pki(tmp_path)
    s = Server(tmp_path / "data", verify=pki.ca, split_stderr=True,
               extra=("--tls-cert", pki.server[0], "--tls-key", pki.server[1]))
    try:
        for addr in (http_url(s), s.tcp):
            # TLS 1.1: the server answers the ClientHello with a protocol_version alert.
            old = client_context(pki.ca, min_version=ssl.TLSVersion.TLSv1,
                                 max_version=ssl.TLSVersion.TLSv1_1)
            with pytest.raises(ssl.SSLError, match="ALERT_PROTOCOL_VERSION"):
                tls_connect(addr, old).close()
            # TLS 1.2 with RSA key exchange (no forward secrecy) or CBC: handshake_failure.
            for suite in ("AES128-GCM-SHA256", "AES256-SHA", "ECDHE-RSA-AES128-SHA"):
                weak = client_context(pki.ca, ciphers=suite, max_version=ssl.TLSVersion.TLSv1_2)
                with pytest.raises(ssl.SSLError, match="ALERT_HANDSHAKE_FAILURE"):
                    tls_connect(addr, weak).close()
            # The same client with an ECDHE AEAD suite is served.
            for suite in ("ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-CHACHA20-POLY1305"):
                good = client_context(pki.ca, ciphers=suite, max_version=ssl.TLSVersion.TLSv1_2)
                with tls_connect(addr, good) as tls:
                    assert (tls.version(), tls.cipher()[0]) == ("TLSv1.2", suite)
            with tls_connect(addr, client_context(pki.ca)) as tls:
                assert tls.version() == "TLSv1.3"
        assert s.get("/healthz").status_code == 200
    finally:
        assert s.stop() == 0
    failed = events_named(s, "tls_handshake_failed")
    assert {e["listener"] for e in failed} == {"http", "binary_tcp"}, failed


@needs_openssl
def test_tls_min_version_13_refuses_a_tls_12_client(tmp_path):
    pki = Pki(tmp_path)
    s = Server(tmp_path / "data", verify=pki.ca,
               extra=("--config", write_config(tmp_path, tls_min_version="1.3"),
                      "--tls-cert", pki.server[0], "--tls-key", pki.server[1]))
    try:
        for addr in (http_url(s), s.tcp):
            with pytest.raises(ssl.SSLError, match="ALERT_PROTOCOL_VERSION"):
                tls_connect(addr, client_context(pki.ca,
                                                 max_version=ssl.TLSVersion.TLSv1_2)).close()
            with tls_connect(addr, client_context(pki.ca)) as tls:
                assert tls.version() == "TLSv1.3"
        assert s.order("alice", "alice-01", "BUY", "3800.0").json()["status"] == "ACCEPTED"
    finally:
        assert s.stop() == 0


def tcp_login(s, pki, cert):
    """Logs alice in over the binary TCP listener through `qx client` with `cert`; the output."""
    c = subprocess.run([QX, "client", "--tcp", s.tcp, "--linger-ms", "500", "--tls-ca", pki.ca,
                        "--tls-cert", cert[0], "--tls-key", cert[1]],
                       input=json.dumps({"requestId": 1, "body": {"login": {"password": {
                           "username": "alice", "password": "alice-demo-pw"}}}}) + "\n",
                       capture_output=True, text=True, timeout=60)
    return c.stdout + c.stderr


@needs_openssl
def test_a_revoked_client_certificate_fails_the_handshake_and_sighup_reloads_the_crl(tmp_path):
    pki = Pki(tmp_path)
    crl = pki.crl("revoked")
    s = Server(tmp_path / "data", verify=pki.ca, cert=pki.client, split_stderr=True,
               extra=("--tls-cert", pki.server[0], "--tls-key", pki.server[1],
                      "--tls-client-ca", pki.ca, "--tls-crl", crl))
    try:
        assert s.get("/healthz").status_code == 200
        assert s.order("alice", "alice-01", "BUY", "3800.0").json()["status"] == "ACCEPTED"
        for addr in (http_url(s), s.tcp):
            assert probe(addr, client_context(pki.ca, cert=pki.client)) == "open"
            assert "CERTIFICATE_REVOKED" in probe(addr, client_context(pki.ca, cert=pki.revoked))
        with pytest.raises((requests.exceptions.SSLError, requests.exceptions.ConnectionError)):
            requests.get(s.url + "/healthz", verify=pki.ca, cert=pki.revoked, timeout=10)
        assert "loginOk" in tcp_login(s, pki, pki.client)
        assert "loginOk" not in tcp_login(s, pki, pki.revoked)

        # Revoke desk-9 as well: after SIGHUP the new CRL is in force for new connections.
        assert probe(s.tcp, client_context(pki.ca, cert=pki.desk9)) == "open"
        pki.crl("desk-9")
        s.proc.send_signal(signal.SIGHUP)
        (reloaded,) = wait_for_event(s, "tls_reloaded")
        assert reloaded["crl"] == crl
        assert "CERTIFICATE_REVOKED" in probe(s.tcp, client_context(pki.ca, cert=pki.desk9))
        assert probe(s.tcp, client_context(pki.ca, cert=pki.client)) == "open"
        assert s.get("/healthz").status_code == 200
    finally:
        assert s.stop() == 0
    failed = events_named(s, "tls_handshake_failed")
    assert {e["listener"] for e in failed} == {"http", "binary_tcp"}, failed


@needs_openssl
def test_a_certificate_whose_cn_is_not_in_tls_client_users_is_refused(tmp_path):
    pki = Pki(tmp_path)
    config = write_config(tmp_path, tls_client_ca=pki.ca, tls_client_users={"client": "alice"})
    s = Server(tmp_path / "data", verify=pki.ca, cert=pki.client, split_stderr=True,
               extra=("--config", config, "--tls-cert", pki.server[0], "--tls-key",
                      pki.server[1]))
    try:
        assert s.order("alice", "alice-01", "BUY", "3800.0").json()["status"] == "ACCEPTED"
        for addr in (http_url(s), s.tcp):
            assert probe(addr, client_context(pki.ca, cert=pki.client)) == "open"
            refused = probe(addr, client_context(pki.ca, cert=pki.desk9))
            assert refused != "open" and "ALERT" in refused, refused
        assert "loginOk" in tcp_login(s, pki, pki.client)
        assert "loginOk" not in tcp_login(s, pki, pki.desk9)
    finally:
        assert s.stop() == 0
    (listening,) = [e for e in s.log_events()
                    if e["event"] == "listening" and e["listener"] == "http"]
    assert listening["client_certificates"] is True and listening["client_users"] == 1
    (start,) = events_named(s, "start")
    assert start["tls_client_users"] == {"client": "alice"}


@needs_openssl
def test_sighup_reloads_the_certificate_and_keeps_connections_and_trading(tmp_path):
    import websockets

    pki = Pki(tmp_path)
    live_cert, live_key = tmp_path / "live.pem", tmp_path / "live.key"
    shutil.copy(pki.server[0], live_cert)
    shutil.copy(pki.server[1], live_key)
    s = Server(tmp_path / "data", verify=pki.ca, split_stderr=True,
               extra=("--tls-cert", str(live_cert), "--tls-key", str(live_key)))
    addr = http_url(s)
    ctx = client_context(pki.ca)

    def peer_cert(a):
        with tls_connect(a, ctx) as tls:
            return tls.getpeercert(binary_form=True)

    async def run():
        ws_url = s.url.replace("https://", "wss://") + "/ws/diff"
        headers = {"Authorization": "Bearer " + s.token("alice")}
        async with websockets.connect(ws_url, ssl=ctx, extra_headers=headers) as ws:
            await ws.send(json.dumps({"aid": "peek_message"}))
            first = json.loads(await asyncio.wait_for(ws.recv(), timeout=20))
            assert first["aid"] == "rtn_data"
            keep_alive = tls_connect(addr, ctx)
            assert http_exchange(keep_alive)[0] == 200
            assert keep_alive.getpeercert(binary_form=True) == der(pki.server[0])
            assert peer_cert(addr) == der(pki.server[0]) and peer_cert(s.tcp) == der(
                pki.server[0])

            # New certificate and key on disk, then SIGHUP.
            shutil.copy(pki.server2[0], live_cert)
            shutil.copy(pki.server2[1], live_key)
            s.proc.send_signal(signal.SIGHUP)
            await asyncio.to_thread(wait_for_event, s, "tls_reloaded")
            assert peer_cert(addr) == der(pki.server2[0])
            assert peer_cert(s.tcp) == der(pki.server2[0])

            # The connections made before go on with the old certificate.
            assert http_exchange(keep_alive)[0] == 200
            assert keep_alive.getpeercert(binary_form=True) == der(pki.server[0])
            keep_alive.close()
            await ws.send(json.dumps({"aid": "ping"}))
            assert json.loads(await asyncio.wait_for(ws.recv(), timeout=20)) == {"aid": "pong"}
            # And the market trades on: alice's new order reaches her open WebSocket.
            await ws.send(json.dumps({"aid": "peek_message"}))
            await asyncio.sleep(0.2)
            r = await asyncio.to_thread(s.order, "alice", "alice-01", "BUY", "3700.0", 1)
            assert r.json()["status"] == "ACCEPTED", r.text
            m = json.loads(await asyncio.wait_for(ws.recv(), timeout=20))
            assert m["aid"] == "rtn_data"
            orders = m["data"][0]["trade"]["alice"]["orders"]["alice-01"]
            assert [o["limit_price"] for o in orders.values()] == ["3700.0"], m

    try:
        asyncio.run(run())
        # A broken key: the reload fails, is logged, and the last good certificate stays.
        live_key.write_text("not a key\n")
        s.proc.send_signal(signal.SIGHUP)
        (failed,) = wait_for_event(s, "tls_reload_failed")
        assert failed["level"] == "error" and str(live_key) in failed["error"]
        assert peer_cert(addr) == der(pki.server2[0])
        assert s.order("alice", "alice-01", "BUY", "3800.0").json()["status"] == "ACCEPTED"
    finally:
        assert s.stop() == 0


def test_sighup_without_tls_leaves_the_server_up(tmp_path):
    s = Server(tmp_path / "data", split_stderr=True)
    try:
        for n in (1, 2):
            s.proc.send_signal(signal.SIGHUP)
            wait_for_event(s, "tls_reload_skipped", count=n)
        assert s.proc.poll() is None
        assert s.order("alice", "alice-01", "BUY", "3800.0").json()["status"] == "ACCEPTED"
    finally:
        assert s.stop() == 0


def start_failure(tmp_path, config):
    p = subprocess.run([QX, "serve", "--demo", "--data-dir", str(tmp_path / "d"), "--http",
                        "127.0.0.1:0", "--tcp", "127.0.0.1:0",
                        "--config", write_config(tmp_path, **config)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0, config
    return p.stderr.splitlines()[-1]  # the one-line reason for a person


def test_unknown_config_keys_and_wrong_types_are_errors_naming_the_key(tmp_path):
    line = start_failure(tmp_path, {"http": "127.0.0.1:0", "max_conections": 5})
    assert re.fullmatch(r"qx: config file \S+\.json: unknown key 'max_conections'", line), line
    for config, message in (({"http": 8080}, "http must be a string"),
                            ({"token_ttl_s": "1h"}, "token_ttl_s must be a whole number"),
                            ({"queue_capacity": -1}, "queue_capacity must be a whole number"),
                            ({"max_connections": 0}, "max_connections must be a whole number"),
                            ({"max_connections": 2_000_000}, "from 1 to 1000000"),
                            ({"tls_client_users": ["alice"]}, "tls_client_users must be an object"),
                            ({"tls_client_users": {"cn": 7}}, "tls_client_users 'cn'"),
                            ({"tls_crl": "x.pem"}, "need tls_cert and tls_key"),
                            ({"tls_min_version": 1.3}, "tls_min_version must be a string")):
        line = start_failure(tmp_path, config)
        assert "config file" in line or "tls_" in line, line
        assert message in line, (config, line)


@needs_openssl
def test_bad_tls_settings_are_errors_naming_them(tmp_path):
    pki = Pki(tmp_path)
    tls = {"tls_cert": pki.server[0], "tls_key": pki.server[1]}
    for config, message in (({**tls, "tls_min_version": "1.1"}, "tls_min_version"),
                            ({**tls, "tls_crl": pki.ca}, "tls_crl needs tls_client_ca"),
                            ({**tls, "tls_client_ca": pki.ca, "tls_crl": pki.ca},
                             f"TLS CRL {pki.ca}: no CRL in the file")):
        assert message in start_failure(tmp_path, config), config
    p = subprocess.run([QX, "serve", "--demo", "--tls-min-version", "1.0"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "--tls-min-version" in p.stderr, p.stderr


def test_files_are_created_for_the_owner_only(tmp_path):
    old = os.umask(0)  # the most permissive caller: the server must not depend on its umask
    try:
        s = Server(tmp_path / "data")
    finally:
        os.umask(old)
    try:
        assert s.order("alice", "alice-01", "BUY", "3800.0").json()["status"] == "ACCEPTED"
    finally:
        assert s.stop() == 0  # stores a snapshot: the LMDB files exist now
    data = tmp_path / "data"
    files, dirs = [], [data]
    for root, dirnames, filenames in os.walk(data):
        dirs += [Path(root) / d for d in dirnames]
        files += [Path(root) / f for f in filenames]
    names = {str(f.relative_to(data)) for f in files}
    assert {"users.json", "LOCK"} <= names, names
    assert any(n.startswith("journal/lmdb/") for n in names), names
    assert any(n.startswith("journal/") and "lmdb" not in n for n in names), names
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, (f, oct(f.stat().st_mode))
    for d in dirs:
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, (d, oct(d.stat().st_mode))


def test_max_connections_caps_both_listeners_together(tmp_path):
    s = Server(tmp_path / "data", split_stderr=True,
               extra=("--config", write_config(tmp_path, max_connections=3)))
    host, port = http_url(s).split(":")
    tcp_host, tcp_port = s.tcp.split(":")
    conns = []
    try:
        for _ in range(2):
            c = socket.create_connection((host, int(port)), timeout=20)
            conns.append(c)
            assert http_exchange(c)[0] == 200
        tcp_conn = TcpClient(s, "alice")  # the third connection, on the binary listener
        with socket.create_connection((host, int(port)), timeout=20) as fourth:
            assert http_exchange(fourth) is None  # accepted and closed at once
        with socket.create_connection((tcp_host, int(tcp_port)), timeout=20) as fifth:
            try:
                assert fifth.recv(1) == b""
            except ConnectionError:
                pass
        # The three keep working.
        for c in conns:
            assert http_exchange(c)[0] == 200
        assert tcp_conn.request({"ping": None})["body"] == {"pong": None}

        tcp_conn.close()  # a place frees up once the server has seen the close
        deadline = time.monotonic() + 30
        refusals = 2
        while (reply := http_exchange(c := socket.create_connection((host, int(port)),
                                                                    timeout=20))) is None:
            refusals += 1
            c.close()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        conns.append(c)
        assert reply[0] == 200
        status, metrics = http_exchange(conns[0], "/metrics")
        assert re.search(rf"^qx_rejected_connections_total {refusals}$", metrics, re.M), metrics
    finally:
        for c in conns:
            c.close()
        assert s.stop() == 0
    refused = events_named(s, "connection_refused")
    assert {e["listener"] for e in refused} == {"http", "binary_tcp"}, refused
    for e in refused:
        assert (e["reason"], e["limit"]) == ("max_connections", 3), e
    (start,) = events_named(s, "start")
    assert start["max_connections"] == 3


def cpu_ticks(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def http_post(sock, path, body, token):
    """One keep-alive POST on a raw socket; (status, body) or None when the server closed it."""
    data = json.dumps(body).encode()
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                 f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
                 .encode() + data)
    reply = b""
    while b"\r\n\r\n" not in reply:
        if not (chunk := sock.recv(65536)):
            return None
        reply += chunk
    head, _, rest = reply.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
    while len(rest) < length:
        rest += sock.recv(65536)
    return int(head.split(b" ")[1]), rest.decode()


def test_accept_backs_off_when_out_of_descriptors_and_recovers(tmp_path, monkeypatch):
    files_max = 96

    def limit_files():
        resource.setrlimit(resource.RLIMIT_NOFILE, (files_max, files_max))

    monkeypatch.setattr(subprocess, "Popen",
                        functools.partial(subprocess.Popen, preexec_fn=limit_files))
    s = Server(tmp_path / "data", split_stderr=True)
    monkeypatch.undo()
    host, port = http_url(s).split(":")
    admin_token = s.token("admin")
    conns = []
    try:
        admin = socket.create_connection((host, int(port)), timeout=20)
        conns.append(admin)
        assert http_exchange(admin)[0] == 200
        # More connections than the server has descriptors: the kernel completes them all (the
        # backlog), the server accepts until it runs out.
        for _ in range(files_max + 16):
            conns.append(socket.create_connection((host, int(port)), timeout=20))
        (failed, *_) = wait_for_event(s, "accept_failed")
        assert failed["listener"] == "http" and failed["level"] == "error", failed
        assert "Too many open files" in failed["error"] and failed["retry_ms"] >= 50, failed
        # The accept loop gave its reserve of descriptors back: the server can still write files
        # (a new user rewrites users.json through a temporary file) for a connection it has.
        reply = http_post(admin, "/api/admin/user", {"username": "carol", "password":
                                                     "carol-pw-123456", "role": "viewer"},
                          admin_token)
        assert reply is not None and reply[0] == 200, reply
        # Out of descriptors, the I/O thread waits instead of spinning on accept.
        before = cpu_ticks(s.proc.pid)
        time.sleep(2)
        spent_s = (cpu_ticks(s.proc.pid) - before) / os.sysconf("SC_CLK_TCK")
        assert spent_s < 0.5, f"{spent_s} s of CPU in 2 s while out of descriptors"
        assert s.proc.poll() is None

        for c in conns:
            c.close()
        conns.clear()
        # Descriptors come back as the server sees the closes; it accepts again.
        deadline = time.monotonic() + 30
        while True:
            with socket.create_connection((host, int(port)), timeout=20) as c:
                c.settimeout(5)
                try:
                    if (reply := http_exchange(c)) is not None and reply[0] == 200:
                        break
                except socket.timeout:
                    pass
            assert time.monotonic() < deadline, "the server did not accept again"
            time.sleep(0.2)
        assert s.order("alice", "alice-01", "BUY", "3800.0").json()["status"] == "ACCEPTED"
    finally:
        for c in conns:
            c.close()
        assert s.stop() == 0
