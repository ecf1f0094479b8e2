"""The replicated exchange on loopback, for the end-to-end tests (test_cluster.py,
test_cluster_faults.py, test_cluster_tls.py): a real etcd and three `qx serve --cluster`
processes, each restartable, the leader found through 421 answers; optionally a switchable TCP
proxy on every replication link between two nodes, mutual TLS on the replication port (certificates
made with the openssl command, make_pki), and helpers that read the journals back (`qx replay`,
`qx audit events`).

QX_BIN names the qx executable (set by ctest, see tests/e2e/CMakeLists.txt).
"""

import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import requests

QX = os.environ.get("QX_BIN", "qx")
ETCD = shutil.which("etcd") or "/usr/bin/etcd"
SECRET = "0123456789abcdef0123456789abcdef-cluster-test"
PW = {"admin": "admin-demo-pw", "alice": "alice-demo-pw", "bob": "bob-demo-pw"}


def free_ports(n):
    """n distinct ports free now, below the kernel's ephemeral range: a node restarted on its port
    must find it free, and a port the kernel hands out as a connection's source port (any port
    bind(0) returns) may be taken while the node is down ("Address already in use")."""
    low = 32768  # the first ephemeral port
    try:
        low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    rng = random.Random()
    ports = []
    while len(ports) < n:
        p = rng.randrange(max(1024, low - 10000), max(1025, low))
        if p in ports:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            continue
        finally:
            s.close()
        ports.append(p)
    return ports


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki(d: Path, cas, leaves):
    """Self-signed CAs (d/{ca}.pem, .key) and P-256 leaf certificates: leaves maps a name to
    (its CA, its subjectAltName or None). Every leaf may serve and dial (serverAuth and
    clientAuth). Returns {name: {"cert", "key", "ca"}} (file paths as strings), the shape of a
    cluster file's "tls" object."""
    d.mkdir(parents=True, exist_ok=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    for ca in cas:
        openssl("req", "-x509", *ec, "-days", "1", "-subj", f"/CN={ca}",
                "-keyout", f"{ca}.key", "-out", f"{ca}.pem", cwd=d)
    out = {}
    for name, (ca, san) in leaves.items():
        ext = "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n"
        (d / f"{name}.ext").write_text(ext + (f"subjectAltName={san}\n" if san else ""))
        openssl("req", "-new", *ec, "-subj", f"/CN={name}", "-keyout", f"{name}.key",
                "-out", f"{name}.csr", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
                "-CAcreateserial", "-days", "1", "-extfile", f"{name}.ext",
                "-out", f"{name}.pem", cwd=d)
        out[name] = {"cert": str(d / f"{name}.pem"), "key": str(d / f"{name}.key"),
                     "ca": str(d / f"{ca}.pem")}
    return out


class Proxy:
    """A TCP proxy from a loopback port of its own to `target` (HOST:PORT, set before use), one
    thread per direction of each connection. cut() closes every connection at once and closes
    each new one as it is accepted (a partition both ways); mute("up") drops, silently, every byte
    from the connecting side to the target (mute("down") the other way), connections staying open;
    heal() undoes both."""

    def __init__(self):
        self.target = None
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.passing = True
        self.muted = set()  # "up": towards the target, "down": back from it
        self.pairs = []  # [client socket, upstream socket, threads still using them]
        self.accepted = 0
        self.refused = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.listener.accept()
            except OSError:
                return  # closed
            with self.lock:
                passing = self.passing
            if not passing:
                self.refused += 1
                c.close()
                continue
            host, port = self.target.rsplit(":", 1)
            try:
                u = socket.create_connection((host, int(port)), timeout=2)
            except OSError:
                c.close()
                continue
            u.settimeout(None)
            for s in (c, u):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair = [c, u, 2]
            with self.lock:
                if not self.passing:  # cut while connecting
                    c.close()
                    u.close()
                    continue
                self.accepted += 1
                self.pairs.append(pair)
            threading.Thread(target=self._pump, args=(pair, c, u, "up"), daemon=True).start()
            threading.Thread(target=self._pump, args=(pair, u, c, "down"), daemon=True).start()

    def _pump(self, pair, src, dst, direction):
        try:
            while True:
                data = src.recv(1 << 16)
                if not data:
                    break
                if direction not in self.muted:
                    dst.sendall(data)
        except OSError:
            pass
        with self.lock:
            self._shut(pair)
            pair[2] -= 1
            if pair[2] == 0:  # the last thread using the pair closes it
                pair[0].close()
                pair[1].close()
                if pair in self.pairs:
                    self.pairs.remove(pair)

    @staticmethod
    def _shut(pair):
        for s in pair[:2]:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        with self.lock:
            self.passing = False
            for pair in self.pairs:
                self._shut(pair)  # wakes both threads of the pair, which close it

    def mute(self, direction):
        assert direction in ("up", "down")
        self.muted.add(direction)

    def heal(self):
        with self.lock:
            self.passing = True
            self.muted.clear()

    def close(self):
        self.cut()
        self.listener.close()


class Cluster:
    """etcd and three nodes, each node restartable; the leader found through 421 answers.

    settings: extra keys of the cluster file (state_hash_every, heartbeat_ms, ...).
    proxies: each node reaches each other node's replication port through its own Proxy,
    self.proxies[(from, to)]; partition(i) cuts node i off from every other node (not from etcd
    nor from clients), heal() reconnects everything. A node's own entry in its cluster file is its
    real listener; ids, name and the other addresses are the same in every file.
    start: False leaves etcd and the nodes stopped (start_etcd(), start(i)).
    tls: {node id: the "tls" object of that node's cluster file} (see make_pki); a node without
    an entry has none (plain TCP). write_file(i) rewrites node i's file after a change.
    """

    def __init__(self, root: Path, voters=3, settings=None, proxies=False, start=True, tls=None):
        self.root = root
        self.settings = settings or {}
        self.tls = dict(tls or {})
        self.proxies = {}
        if proxies:  # bound before the nodes' ports are picked, so that none can collide
            self.proxies = {(i, j): Proxy() for i in range(1, voters + 1)
                            for j in range(1, voters + 1) if i != j}
        self.etcd_client, self.etcd_peer = free_ports(2)
        self.etcd_dir = root / "etcd"
        self.etcd = None
        ports = free_ports(3 * voters)
        self.nodes = {}
        for i in range(1, voters + 1):
            rep, http, tcp = ports[3 * (i - 1):3 * i]
            self.nodes[i] = {"replication": f"127.0.0.1:{rep}", "http": f"127.0.0.1:{http}",
                             "tcp": f"127.0.0.1:{tcp}"}
        for (i, j), p in self.proxies.items():
            p.target = self.nodes[j]["replication"]
        for i in self.nodes:
            self.write_file(i)
        self.procs = {}
        self.logs = {}
        self.leader = None
        self.tokens = {}
        if start:
            self.start_etcd()
            for i in self.nodes:
                self.start(i)

    def write_file(self, i):
        """Writes node i's cluster file (read by the node when it starts)."""
        nodes = []
        for k, v in self.nodes.items():
            v = dict(v)
            if (i, k) in self.proxies:
                v["replication"] = f"127.0.0.1:{self.proxies[(i, k)].port}"
            nodes.append({"id": k, **v})
        cfg = {"name": "test", "node": i, "etcd": [f"127.0.0.1:{self.etcd_client}"],
               "nodes": nodes, **self.settings}
        if i in self.tls:
            cfg["tls"] = self.tls[i]
        (self.root / f"node{i}.json").write_text(json.dumps(cfg))

    def url(self, i):
        return "http://" + self.nodes[i]["http"]

    def start_etcd(self):
        """Starts etcd, or starts it again on the same data directory and ports."""
        c, p = self.etcd_client, self.etcd_peer
        self.etcd = subprocess.Popen(
            [ETCD, "--name", "e", "--data-dir", str(self.etcd_dir),
             "--listen-client-urls", f"http://127.0.0.1:{c}",
             "--advertise-client-urls", f"http://127.0.0.1:{c}",
             "--listen-peer-urls", f"http://127.0.0.1:{p}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{p}",
             "--initial-cluster", f"e=http://127.0.0.1:{p}",
             "--heartbeat-interval", "10", "--election-timeout", "50"],
            stdout=open(self.root / "etcd.log", "a"), stderr=subprocess.STDOUT)

    def etcd_healthy(self):
        try:
            r = requests.get(f"http://127.0.0.1:{self.etcd_client}/health", timeout=2)
            return r.status_code == 200 and r.json().get("health") == "true"
        except (requests.ConnectionError, requests.Timeout, ValueError):
            return False

    def start(self, i, env=None, fsize=None, args=("--demo",)):
        """Starts node i (env: extra environment variables; fsize: RLIMIT_FSIZE in bytes, with
        the node's output copied to its log through a pipe, which the limit does not cover;
        args: serve's options besides --cluster and --data-dir)."""
        log = self.root / f"node{i}-{time.monotonic_ns()}.log"
        self.logs.setdefault(i, []).append(log)
        full_env = dict(os.environ, QX_JWT_SECRET=SECRET, **(env or {}))
        cmd = [QX, "serve", *args, "--cluster", str(self.root / f"node{i}.json"),
               "--data-dir", str(self.root / f"data{i}")]
        if fsize is None:
            self.procs[i] = subprocess.Popen(cmd, stdout=open(log, "w"),
                                             stderr=subprocess.STDOUT, env=full_env)
        else:
            def limit():
                resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

            p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 env=full_env, preexec_fn=limit)
            self.procs[i] = p

            def copy(out=p.stdout, to=open(log, "wb")):
                for line in out:
                    to.write(line)
                    to.flush()
                to.close()

            threading.Thread(target=copy, daemon=True).start()
        deadline = time.monotonic() + 60
        while "listening on" not in log.read_text():
            if self.procs[i].poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"node {i} did not start:\n{log.read_text()}")
            time.sleep(0.02)

    def log_text(self, i):
        """Node i's log since its last start."""
        return self.logs[i][-1].read_text(errors="replace")

    def kill(self, i, sig=signal.SIGKILL):
        self.procs[i].send_signal(sig)
        self.procs[i].wait(timeout=60)
        self.tokens = {k: v for k, v in self.tokens.items() if k[0] != i}

    def partition(self, i):
        """Cuts node i off from every other node, both ways (etcd and clients still reach it)."""
        for (a, b), p in self.proxies.items():
            if i in (a, b):
                p.cut()

    def heal(self):
        for p in self.proxies.values():
            p.heal()

    def stop_all(self):
        for i, p in self.procs.items():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for i, p in self.procs.items():
            assert p.wait(timeout=60) == 0, self.logs[i][-1].read_text()[-3000:]
        self.etcd.terminate()
        self.etcd.wait(timeout=30)

    def close(self):
        """Kills whatever still runs (teardown)."""
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait(timeout=60)
        if self.etcd is not None and self.etcd.poll() is None:
            self.etcd.kill()
            self.etcd.wait(timeout=30)
        for p in self.proxies.values():
            p.close()

    def diagnostics(self, chars=3000):
        """The tail of every node's latest log and of etcd's, for a failing test's report."""
        out = []
        for i in self.nodes:
            if i not in self.logs:
                continue
            p = self.procs[i]
            state = "running" if p.poll() is None else f"exit {p.returncode}"
            out.append(f"---- node {i} ({state}) {self.logs[i][-1].name}\n"
                       + self.log_text(i)[-chars:])
        etcd_log = self.root / "etcd.log"
        if etcd_log.exists():
            out.append("---- etcd\n" + etcd_log.read_text(errors="replace")[-chars // 2:])
        return "\n".join(out)

    def token(self, i, user):
        if (i, user) not in self.tokens:
            r = requests.post(self.url(i) + "/api/auth/login",
                              json={"username": user, "password": PW[user]}, timeout=10)
            assert r.status_code == 200, r.text
            self.tokens[(i, user)] = r.json()["token"]
        return self.tokens[(i, user)]

    def submit(self, user, body, deadline_s=10.0):
        """Posts an order to the leader, following 421 answers; (node, response) once a node
        answers 200, or None at the deadline. Connection errors and 503 try the next node. The
        response's `sent_at` is the time.monotonic() at which its request was sent."""
        deadline = time.monotonic() + deadline_s
        order = [self.leader] if self.leader else []
        order += [i for i in self.nodes if i != self.leader]
        k = 0
        while time.monotonic() < deadline:
            i = order[k % len(order)]
            k += 1
            # Not started (yet), or stopped. No sleep: 421 answers naming a dead leader put it
            # in `order` once per answer, and a sleep per entry would add up to seconds.
            if i not in self.procs or self.procs[i].poll() is not None:
                continue
            try:
                headers = {"Authorization": "Bearer " + self.token(i, user)}
                sent_at = time.monotonic()
                r = requests.post(self.url(i) + "/api/order/submit", json=body, timeout=5,
                                  headers=headers)
            except (requests.ConnectionError, requests.Timeout, AssertionError):
                time.sleep(0.01)
                continue
            if r.status_code == 200:
                self.leader = i
                r.sent_at = sent_at
                return i, r
            if r.status_code == 421:
                m = re.search(r"http (127\.0\.0\.1:\d+)", r.json().get("message", ""))
                if m:
                    for j, a in self.nodes.items():
                        if a["http"] == m.group(1):
                            order.insert(k, j)
                else:
                    time.sleep(0.02)
                continue
            time.sleep(0.02)
        return None

    def statuses(self, nodes=None):
        out = {}
        for i in nodes or self.nodes:
            if i not in self.procs or self.procs[i].poll() is not None:
                continue
            try:  # a node restarting itself (to cut its journal) refuses connections a while
                r = requests.get(self.url(i) + "/api/admin/status", timeout=10,
                                 headers={"Authorization": "Bearer " + self.token(i, "admin")})
            except (requests.ConnectionError, requests.Timeout, AssertionError):
                self.tokens.pop((i, "admin"), None)
                continue
            if r.status_code != 200:
                continue
            out[i] = (r.json()["last_seq"], r.json()["state_hash"])
        return out

    def wait_converged(self, timeout_s=30, nodes=None):
        """Waits until every node of `nodes` (default: all) answers the same (last_seq,
        state_hash)."""
        nodes = list(nodes or self.nodes)
        deadline = time.monotonic() + timeout_s
        while True:
            s = self.statuses(nodes)
            if len(set(s.values())) == 1 and len(s) == len(nodes):
                return s
            assert time.monotonic() < deadline, f"nodes did not converge: {s}"
            time.sleep(0.05)


def order(cid, direction, price):
    account = "alice-01" if direction == "BUY" else "bob-01"
    return {"account": account, "instrument": "IF2501", "direction": direction, "offset": "OPEN",
            "price": price, "volume": 1, "client_order_id": cid}


def audit_events(qx, journal, *args):
    """`qx audit JOURNAL events ARGS...` on a copy of the journal (auditing writes indexes)."""
    copy = journal.parent / (journal.name + f"-audit-{time.monotonic_ns()}")
    shutil.copytree(journal, copy)
    r = subprocess.run([qx, "audit", str(copy), "events", *args],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    events = json.loads(r.stdout)
    return events["events"] if isinstance(events, dict) else events


def journal_orders(qx, journal, account):
    """(seq, client_order_id) of every NewOrder of `account` in a journal (a copy is indexed)."""
    return {(e["seq"], e["client_order_id"])
            for e in audit_events(qx, journal, "--account", account) if e["type"] == "NewOrder"}


def replay_result(qx, journal):
    """"last_seq=N\\nstate_hash=H" of `qx replay JOURNAL`."""
    r = subprocess.run([qx, "replay", str(journal)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return re.search(r"last_seq=\d+\nstate_hash=\w+", r.stdout).group(0)
