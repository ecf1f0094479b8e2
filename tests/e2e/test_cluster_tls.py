"""Mutual TLS on the replication port (docs/cluster.md, the cluster file's "tls"): a real etcd and
three `qx serve --cluster` nodes on loopback (cluster_harness.py), each with a certificate from one
CA made here with the openssl command.

The nodes elect a leader, take orders and converge. A plain TCP client sending hostile bytes, a
client that says nothing, and TLS clients with no certificate or with one from another CA are cut
off before any of their bytes reach the frame reader (no `replication_frame_refused`, while a
client with a good certificate does reach it), and the cluster keeps working. A node restarted
with no "tls" in its cluster file cannot join (it never catches up while the others take
orders); restarted with it again, it catches up. A missing or bad TLS file stops a node at
start-up with one line naming it. Run by ctest with QX_BIN pointing at the
executable (see tests/e2e/CMakeLists.txt).
"""

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest

from cluster_harness import QX, SECRET, Cluster, make_pki, order

pytestmark = pytest.mark.skipif(not shutil.which("openssl"), reason="needs the openssl command")

HOSTILE = (b"\x00" * 64, b"\xff\xff\xff\x7f" + b"x" * 100, os.urandom(4096),
           b"GET / HTTP/1.1\r\n\r\n")
# A frame header announcing 2 GiB: the frame reader refuses it at once (replication_frame_refused)
# if it ever gets there.
OVERSIZED = b"\xff\xff\xff\x7f" + b"x" * 100


@pytest.fixture()
def tls_cluster(tmp_path):
    pki = make_pki(tmp_path / "pki", ["ca", "other-ca"],
                   {"node1": ("ca", "IP:127.0.0.1"), "node2": ("ca", "IP:127.0.0.1"),
                    "node3": ("ca", "IP:127.0.0.1"), "stranger": ("other-ca", "IP:127.0.0.1")})
    c = Cluster(tmp_path, tls={i: pki[f"node{i}"] for i in (1, 2, 3)})
    c.pki = pki
    yield c
    c.close()


def address(c, i):
    host, port = c.nodes[i]["replication"].split(":")
    return host, int(port)


def drain(s, timeout_s=10):
    """Reads until the peer closes; True if it did within the timeout (EOF or reset)."""
    s.settimeout(timeout_s)
    try:
        while s.recv(4096):
            pass
    except (ConnectionResetError, ssl.SSLError):
        pass
    except socket.timeout:
        return False
    return True


def tls_attempt(c, i, identity):
    """A TLS client (verifying the node against the CA) with `identity` ({"cert", "key"} or
    None) sends OVERSIZED: "refused" if the handshake or the first read fails, "closed" if the
    node closes the connection, "open" if it neither answers nor closes in 10 s. The version
    negotiated, when the client's side of the handshake finished."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(c.pki["node1"]["ca"])
    if identity:
        ctx.load_cert_chain(identity["cert"], identity["key"])
    with socket.create_connection(address(c, i), timeout=10) as raw:
        try:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                version = s.version()
                s.sendall(OVERSIZED)
                s.settimeout(10)
                try:
                    return ("closed" if s.recv(4096) == b"" else "answered"), version
                except socket.timeout:
                    return "open", version
        except (ssl.SSLError, ConnectionError):
            return "refused", None


def events(c, i, name):
    return [json.loads(line) for line in c.log_text(i).splitlines()
            if f'"event":"{name}"' in line]


def wait_events(c, i, name, timeout_s=10):
    """The events `name` of node i's log once there is at least one."""
    deadline = time.monotonic() + timeout_s
    while not (found := events(c, i, name)):
        assert time.monotonic() < deadline, f"no {name} from node {i}:\n{c.log_text(i)[-3000:]}"
        time.sleep(0.05)
    return found


def test_replication_over_mutual_tls(tls_cluster):
    c = tls_cluster
    placed = c.submit("alice", order(1, "BUY", "3500.0"), deadline_s=30)
    assert placed is not None, c.diagnostics()
    c.wait_converged()
    for i in c.nodes:
        assert [e["tls"] for e in wait_events(c, i, "cluster_started")] == [True]

    # A client that says nothing is cut off by the handshake deadline (5 s): opened first, so
    # that the rest runs while it waits.
    silent = socket.create_connection(address(c, 2), timeout=10)
    silent_at = time.monotonic()

    # Hostile plain bytes: the handshake fails and the node closes the connection.
    for i in c.nodes:
        for payload in HOSTILE:
            with socket.create_connection(address(c, i), timeout=10) as s:
                s.sendall(payload)
                assert drain(s), f"node {i} kept a connection open after {payload[:8]!r}"

    # TLS without a certificate, and with one from another CA: refused, never read.
    stranger = c.pki["stranger"]
    for i in c.nodes:
        for identity in (None, stranger):
            outcome, _ = tls_attempt(c, i, identity)
            assert outcome in ("refused", "closed"), (i, identity, outcome)

    assert drain(silent, timeout_s=15), "a silent client kept its connection"
    silent_s = time.monotonic() - silent_at
    silent.close()
    assert 3 < silent_s < 12, silent_s

    # Nothing of the above reached a frame reader.
    for i in c.nodes:
        assert events(c, i, "replication_frame_refused") == [], c.log_text(i)[-3000:]
        failures = events(c, i, "replication_tls_failed")
        assert failures, c.log_text(i)[-3000:]
        assert all(f["direction"] == "accepted" and f["address"].startswith("127.0.0.1:")
                   and f["reason"] for f in failures), failures
    assert any(f["reason"] == "no TLS handshake within 5 s"
               for f in events(c, 2, "replication_tls_failed")), c.log_text(2)[-3000:]

    # The control: a client with a certificate from the CA gets through the handshake, and its
    # bytes reach the frame reader, which refuses them (so the checks above can fail).
    outcome, version = tls_attempt(c, 3, c.pki["node1"])
    assert outcome == "closed" and version in ("TLSv1.2", "TLSv1.3"), (outcome, version)
    wait_events(c, 3, "replication_frame_refused")

    assert c.submit("bob", order(2, "SELL", "3500.0"), deadline_s=30) is not None
    c.wait_converged()
    for i, p in c.procs.items():
        assert p.poll() is None, f"node {i} died"

    # A follower restarted without "tls" cannot join: the others go on without it.
    leader = c.leader
    f = next(i for i in c.nodes if i != leader)
    failures_before = len(events(c, leader, "replication_tls_failed"))
    tls_f = c.tls.pop(f)
    c.kill(f)
    c.write_file(f)
    c.start(f)
    assert [e["tls"] for e in wait_events(c, f, "cluster_started")] == [False]
    plain_since = time.monotonic()
    for k in range(3, 8):
        assert c.submit("alice" if k % 2 else "bob",
                        order(k, "BUY" if k % 2 else "SELL", "3400.0"), deadline_s=30) is not None
    others = [i for i in c.nodes if i != f]
    c.wait_converged(nodes=others)
    time.sleep(max(0.0, plain_since + 3 - time.monotonic()))  # many dials and heartbeats
    s = c.statuses()
    assert s[f][0] < s[leader][0], (s, c.diagnostics())
    # The leader refused its dials, and said so a bounded number of times (5 lines a second).
    refused = events(c, leader, "replication_tls_failed")[failures_before:]
    assert refused, c.log_text(leader)[-3000:]
    assert len(refused) <= 5 * (time.monotonic() - plain_since + 2), refused

    # With its "tls" back it catches up.
    c.tls[f] = tls_f
    c.kill(f)
    c.write_file(f)
    c.start(f)
    c.wait_converged()
    assert c.procs[leader].poll() is None

    # A peer with a good certificate that finishes its handshake and never says Hello does not
    # hold the leader's stop up; every node exits 0.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(c.pki["node1"]["ca"])
    ctx.load_cert_chain(c.pki["node1"]["cert"], c.pki["node1"]["key"])
    held = ctx.wrap_socket(socket.create_connection(address(c, leader), timeout=10),
                           server_hostname="127.0.0.1")
    for p in c.procs.values():
        p.send_signal(signal.SIGTERM)
    for i, p in c.procs.items():
        assert p.wait(timeout=20) == 0, f"node {i} did not stop"
    held.close()


def test_bad_tls_files_stop_the_node_at_start_up_naming_them(tmp_path):
    pki = make_pki(tmp_path / "pki", ["ca"], {"node1": ("ca", "IP:127.0.0.1")})
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    cases = ((dict(pki["node1"], cert=str(tmp_path / "absent.pem")),
              "tls.cert: cannot read \"" + str(tmp_path / "absent.pem") + "\""),
             (dict(pki["node1"], ca=str(junk)), "TLS client CA " + str(junk)),
             (dict(pki["node1"], key=pki["node1"]["ca"].replace(".pem", ".key")),
              "key values mismatch"))
    for tls, message in cases:
        c = Cluster(tmp_path, voters=1, start=False, tls={1: tls})
        p = subprocess.run([QX, "serve", "--demo", "--cluster", str(tmp_path / "node1.json"),
                            "--data-dir", str(tmp_path / "data")], capture_output=True, text=True,
                           timeout=60, env=dict(os.environ, QX_JWT_SECRET=SECRET))
        c.close()
        assert p.returncode == 1 and message in p.stderr, (p.returncode, p.stderr)


def test_a_certificate_must_name_the_node_its_hello_claims(tmp_path):
    """Every node on one IP, so each is named by its tls_name. Node 3 is given node 1's
    certificate: the leader refuses its Hello (the certificate is the CA's, but not node 3's)
    and it never catches up; given its own, it does."""
    names = {i: f"node{i}.qx.test" for i in (1, 2, 3)}
    pki = make_pki(tmp_path / "pki", ["ca"],
                   {f"node{i}": ("ca", f"DNS:{names[i]},IP:127.0.0.1") for i in (1, 2, 3)})
    c = Cluster(tmp_path, start=False, tls={1: pki["node1"], 2: pki["node2"], 3: pki["node1"]})
    try:
        for i in c.nodes:
            c.nodes[i]["tls_name"] = names[i]
        for i in c.nodes:
            c.write_file(i)
        c.start_etcd()
        for i in (1, 2):
            c.start(i)
        assert c.submit("alice", order(1, "BUY", "3500.0"), deadline_s=30) is not None
        c.start(3)
        impostor_since = time.monotonic()
        for k in range(2, 7):
            assert c.submit("alice" if k % 2 else "bob",
                            order(k, "BUY" if k % 2 else "SELL", "3400.0"),
                            deadline_s=30) is not None
        c.wait_converged(nodes=[1, 2])
        leader = c.leader
        refusals = wait_events(c, leader, "replication_tls_failed")
        assert any("does not name node 3 (tls_name node3.qx.test)" in f["reason"]
                   for f in refusals), refusals
        time.sleep(max(0.0, impostor_since + 2 - time.monotonic()))
        s = c.statuses()
        assert s[3][0] < s[leader][0], (s, c.diagnostics())

        # Its own certificate: it joins and catches up.
        c.tls[3] = pki["node3"]
        c.kill(3)
        c.write_file(3)
        c.start(3)
        c.wait_converged()
    finally:
        print(c.diagnostics())
        c.close()


def presented_certificate(c, i):
    """The DER certificate node i's replication port presents (to a client with node 2's)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(c.pki["node1"]["ca"])
    ctx.load_cert_chain(c.pki["node2"]["cert"], c.pki["node2"]["key"])
    with socket.create_connection(address(c, i), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            return s.getpeercert(binary_form=True)


def test_sighup_reloads_the_replication_certificate(tls_cluster):
    c = tls_cluster
    assert c.submit("alice", order(1, "BUY", "3500.0"), deadline_s=30) is not None
    c.wait_converged()
    old = presented_certificate(c, 1)
    # A new key and certificate for node 1 in the same files (same CA), then SIGHUP.
    make_pki(c.root / "pki", [], {"node1": ("ca", "IP:127.0.0.1")})
    new = ssl.PEM_cert_to_DER_cert(open(c.pki["node1"]["cert"]).read())
    assert new != old
    assert presented_certificate(c, 1) == old  # read once until told
    c.procs[1].send_signal(signal.SIGHUP)
    wait_events(c, 1, "replication_tls_reloaded")
    assert presented_certificate(c, 1) == new
    # A bad file: the reload fails, is logged, and the node keeps serving with the last good one.
    good = open(c.pki["node1"]["cert"]).read()
    open(c.pki["node1"]["cert"], "w").write("not a certificate\n")
    c.procs[1].send_signal(signal.SIGHUP)
    wait_events(c, 1, "replication_tls_reload_failed")
    open(c.pki["node1"]["cert"], "w").write(good)
    assert presented_certificate(c, 1) == new
    # The cluster still replicates through node 1 (followers reconnect with the new certificate).
    assert c.submit("bob", order(2, "SELL", "3500.0"), deadline_s=30) is not None
    c.wait_converged()
    assert c.procs[1].poll() is None
