#!/usr/bin/env python3
"""Cluster benchmark: three release `dgate` nodes on loopback.

Measures sequential route writes/s through the leader, the time from an admin write until all three
proxies serve the new route (p50/p99), failover time after SIGKILL of the leader, and the time a
node holding N routes takes from start to serving. Run: python3 bench/cluster.py [routes]
(bench/cluster.sh builds the release binary first).
"""
import http.client, json, os, signal, subprocess, sys, tempfile, time, socket

BIN = sys.argv[2] if len(sys.argv) > 2 else "/var/tmp/dgate-target/release/dgate"
ROUTES = int(sys.argv[1]) if len(sys.argv) > 1 else 1000


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


class Conn:
    def __init__(self, port):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def req(self, method, path, body=None):
        self.c.request(method, path, body=json.dumps(body) if body is not None else None)
        r = self.c.getresponse(); data = r.read()
        return r.status, data


def start(work, name, admin, proxy, boot, join):
    cfg = os.path.join(work, f"{name}.yaml")
    with open(cfg, "w") as f:
        f.write(f"node_id: {name}\nlog_level: warn\nadmin:\n  port: {admin}\n  replication:\n"
                f"    bootstrap_cluster: {'true' if boot else 'false'}\n    cluster_address: [{join}]\n"
                f"    shared_key: bench\nproxy:\n  port: {proxy}\n")
    p = subprocess.Popen([BIN, "server", "--config", cfg, "--data-dir", os.path.join(work, name)],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    p.stdout.readline()  # the ready line
    return p


def wait(pred, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        try:
            if pred():
                return True
        except Exception:
            pass
        time.sleep(0.005)
    raise SystemExit("timed out")


def status(port):
    return json.loads(Conn(port).req("GET", "/api/v1/cluster")[1])["data"]


def pct(xs, p):
    xs = sorted(xs); return xs[min(len(xs) - 1, int(len(xs) * p / 100))]


def main():
    work = tempfile.mkdtemp()
    ports = [(free_port(), free_port()) for _ in range(3)]
    n1 = f'"http://127.0.0.1:{ports[0][0]}"'
    procs = [start(work, "n1", *ports[0], True, "")]
    procs += [start(work, f"n{i+1}", *ports[i], False, n1) for i in (1, 2)]
    wait(lambda: len(status(ports[0][0])["members"]) == 3 and all(status(a)["leader"] for a, _ in ports))
    leader = Conn(ports[0][0])
    leader.req("PUT", "/api/v1/service", {"name": "up", "urls": ["http://127.0.0.1:9"]})

    t = time.time()
    for i in range(ROUTES):
        s, d = leader.req("PUT", "/api/v1/route", {"name": f"r{i}", "paths": [f"/r{i}"], "methods": ["GET"], "service": "up"})
        assert s == 201, d
    rate = ROUTES / (time.time() - t)

    lat = []
    proxies = [Conn(p) for _, p in ports]
    for i in range(100):
        t = time.time()
        leader.req("PUT", "/api/v1/route", {"name": f"live{i}", "paths": [f"/live{i}"], "methods": ["GET"], "service": "up"})
        for c in proxies:  # live = the proxy no longer answers 404 for it (the upstream is down: 502)
            wait(lambda: c.req("GET", f"/live{i}")[0] != 404)
        lat.append((time.time() - t) * 1000)

    procs[0].send_signal(signal.SIGKILL); procs[0].wait()
    t = time.time()
    def accepted():
        return Conn(ports[1][0]).req("PUT", "/api/v1/namespace", {"name": f"after{time.time_ns()}"})[0] == 201
    wait(accepted)
    failover = time.time() - t

    # Restart a follower holding all the routes: start to serving.
    procs[2].send_signal(signal.SIGKILL); procs[2].wait()
    t = time.time()
    procs[2] = start(work, "n3", *ports[2], False, n1)
    wait(lambda: Conn(ports[2][1]).req("GET", f"/r{ROUTES - 1}")[0] != 404)
    restart = time.time() - t

    for p in procs:
        p.kill()
    print(f"3 nodes on loopback, {ROUTES} routes")
    print(f"sequential route writes through the leader: {rate:.0f}/s")
    print(f"admin write -> live on all 3 proxies: p50 {pct(lat, 50):.1f} ms, p99 {pct(lat, 99):.1f} ms")
    print(f"failover (leader SIGKILL -> write accepted): {failover:.2f} s")
    print(f"restart of a node with {ROUTES + 100} routes -> serving: {restart:.2f} s")


main()
