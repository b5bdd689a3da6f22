#!/usr/bin/env python3
"""Upload-to-eligible latency with N active campaigns (issue 4's target: <= 100 ms).

Starts build/adsmith on a fresh data directory (server pinned to core 0, this
client to core 1), stores N active campaigns through PUT /v1/campaigns (varied
countries and devices, derived from schemas/examples/campaign-demo.json), then
R times: PUTs one more active campaign that targets a country no other one
does, and polls POST /v1/admin/eligibility for that country until the new id
shows up. Prints, as medians: the PUT's own round trip (the baseline), the time
from sending the PUT to the first eligibility answer naming the campaign, their
ratio, and the index build time the server reports; first for R uploads that
find the index builder idle, then for R that land while it is building.

usage: loadtest/bench-campaign-upload.py [N=10000] [R=20]
"""
import copy, http.client, json, os, statistics, subprocess, sys, tempfile, time

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 20
binary = os.path.join(root, "build", "adsmith")
work = tempfile.mkdtemp(prefix="adsmith-bench-upload.")
data = os.path.join(work, "data")
port = 20000 + os.getpid() % 20000
key = subprocess.run([binary, "keys", "create", "--data-dir", data, "--role", "admin"], check=True,
                     capture_output=True, text=True).stdout.strip()
server = subprocess.Popen(["taskset", "-c", "0", binary, "serve", "--data-dir", data, "--listen",
                           "127.0.0.1:%d" % port, "--threads", "1", "--campaigns-per-advertiser", str(n + rounds + 10)],
                          stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "err.log"), "w"))
os.sched_setaffinity(0, {1})
try:
    for _ in range(100):
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/healthz")
            break
        except OSError:
            time.sleep(0.05)
    conn = http.client.HTTPConnection("127.0.0.1", port)
    hdrs = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}

    def call(method, path, body=None):
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=hdrs)
        r = conn.getresponse()
        return r.status, r.read()

    base = json.load(open(os.path.join(root, "schemas", "examples", "campaign-demo.json")))
    countries = ["US", "DE", "FR", "GB", "JP", "BR", "IN", "CA", "AU", "ES", "IT", "NL", "SE", "MX", "KR"]
    devices = ["phone", "tablet", "desktop", "ctv", "other"]
    for i in range(n):
        c = copy.deepcopy(base)
        c["id"] = "c%05d" % i
        c["advertiser"] = "adv%03d" % (i % 200)
        c["targeting"] = {"countries": [countries[i % 15], countries[(i * 7) % 15]] if i % 15 != (i * 7) % 15
                          else [countries[i % 15]], "devices": [devices[i % 5]], "formats": ["banner", "native"]}
        status, body = call("PUT", "/v1/campaigns/" + c["id"], c)
        if status != 201:
            sys.exit("PUT %s: %d %s" % (c["id"], status, body[:300]))
    # Let the index catch up with the load before measuring.
    while json.loads(call("GET", "/v1/admin/index")[1])["campaigns"] < n:
        time.sleep(0.1)
    def probe(k, idle):
        c = copy.deepcopy(base)
        c["id"] = "probe%03d" % k
        c["targeting"] = {"countries": ["ZZ"]}
        t0 = time.perf_counter()
        status, body = call("PUT", "/v1/campaigns/" + c["id"], c)
        t1 = time.perf_counter()
        if status != 201:
            sys.exit("PUT probe: %d %s" % (status, body[:300]))
        while True:
            got = json.loads(call("POST", "/v1/admin/eligibility", {"country": "ZZ", "formats": ["banner"],
                                                                   "banner_sizes": [{"w": 300, "h": 250}]})[1])
            if c["id"] in got["eligible"]:
                break
            if time.perf_counter() - t0 > 10:
                sys.exit("probe %s not eligible after 10 s" % c["id"])
        t2 = time.perf_counter()
        build = json.loads(call("GET", "/v1/admin/index")[1])["build_us"] / 1000
        # Pause the probe. Idle rounds wait until the index no longer lists it,
        # so the next upload finds the builder idle; busy rounds go on at once,
        # so the next upload lands while the pause's build runs and waits for
        # it and then its own (the worst case: two build times).
        call("PATCH", "/v1/campaigns/" + c["id"], {"status": "paused"})
        while idle and c["id"] in json.loads(call("POST", "/v1/admin/eligibility", {"country": "ZZ", "formats": ["banner"],
                                             "banner_sizes": [{"w": 300, "h": 250}]})[1])["eligible"]:
            time.sleep(0.005)
        return (t1 - t0) * 1000, (t2 - t0) * 1000, build

    print("campaigns active: %d, rounds: %d idle + %d busy" % (n, rounds, rounds))
    for label, idle, first in (("idle", True, 0), ("busy", False, rounds)):
        put_ms, eligible_ms, build_ms = zip(*[probe(first + k, idle) for k in range(rounds)])
        pm, em, bm = statistics.median(put_ms), statistics.median(eligible_ms), statistics.median(build_ms)
        print("%s builder:" % label)
        print("  PUT round trip (baseline):   median %.2f ms" % pm)
        print("  PUT sent -> eligible:        median %.2f ms, max %.2f ms" % (em, max(eligible_ms)))
        print("  index build (server-side):   median %.2f ms" % bm)
        print("  ratio eligible / PUT:        %.1f" % (em / pm))
finally:
    server.terminate()
    server.wait()
