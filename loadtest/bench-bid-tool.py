#!/usr/bin/env python3
"""Helpers of loadtest/bench-bid.sh (issue 6).

  bench-bid-tool.py measure --pid PID --out FILE -- COMMAND...
      Runs COMMAND (an adsmith-load run) and writes, as JSON, what the
      machine did meanwhile: the server's CPU time (utime + stime of every
      thread of PID, from /proc/PID/stat), the client's (COMMAND's rusage),
      the busy time of every core (/proc/stat: user + nice + system + irq +
      softirq), and `other_cores`: busy time nobody of ours accounts for,
      divided by the wall time (other processes on the machine; loopback
      softirq work shows up here too, a few hundredths of a core).
      Exits with COMMAND's status.

  bench-bid-tool.py summary OUT_DIR
      Reads OUT_DIR/{empty,bid}-closed-N.{json,cpu.json} and
      OUT_DIR/bid-paced-RATE.{json,cpu.json}, prints the table and writes
      OUT_DIR/summary.json.
"""
import glob
import json
import os
import re
import statistics
import subprocess
import sys
import time

TCK = os.sysconf("SC_CLK_TCK")
# A round during which other processes kept more than this share of a core
# busy on average is marked disturbed and left out of the medians.
DISTURBED_CORES = float(os.environ.get("DISTURBED_CORES", "0.15"))


def proc_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    # fields 14 and 15 of the line (1-based) are the 12th and 13th after ")"
    return (int(rest[11]) + int(rest[12])) / TCK


def thread_cpu(pid):
    """{"comm/tid": cpu_s} of every thread of PID."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                line = f.read()
        except OSError:
            continue
        comm = line[line.index("(") + 1:line.rindex(")")]
        rest = line.rsplit(")", 1)[1].split()
        out[f"{comm}/{tid}"] = (int(rest[11]) + int(rest[12])) / TCK
    return out


def cores():
    """{cpuN: (busy_s, steal_s)} from /proc/stat."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            m = re.match(r"(cpu\d+)\s+(.*)", line)
            if not m:
                continue
            v = [int(x) for x in m.group(2).split()]
            user, nice, system, _idle, _iowait, irq, softirq, steal = v[:8]
            out[m.group(1)] = ((user + nice + system + irq + softirq) / TCK, steal / TCK)
    return out


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def measure(argv):
    pid, out = None, None
    i = 0
    while i < len(argv) and argv[i] != "--":
        if argv[i] == "--pid":
            pid = int(argv[i + 1])
        elif argv[i] == "--out":
            out = argv[i + 1]
        i += 2
    cmd = argv[i + 1:]
    if pid is None or out is None or not cmd:
        sys.exit("usage: bench-bid-tool.py measure --pid PID --out FILE -- COMMAND...")
    load = loadavg()
    th0, s0, c0, t0 = thread_cpu(pid), proc_cpu(pid), cores(), time.monotonic()
    child = subprocess.Popen(cmd)
    _, status, ru = os.wait4(child.pid, 0)
    s1, c1, t1, th1 = proc_cpu(pid), cores(), time.monotonic(), thread_cpu(pid)
    wall = t1 - t0
    server = s1 - s0
    client = ru.ru_utime + ru.ru_stime
    busy = {k: c1[k][0] - c0[k][0] for k in c1 if k in c0}
    steal = sum(c1[k][1] - c0[k][1] for k in c1 if k in c0)
    other = max(0.0, sum(busy.values()) - server - client)
    res = {
        "wall_s": round(wall, 3),
        "server_cpu_s": round(server, 3),
        "client_cpu_s": round(client, 3),
        "server_cores": round(server / wall, 3),
        "client_cores": round(client / wall, 3),
        "server_threads_cpu_s": {k: round(v - th0.get(k, 0.0), 3) for k, v in th1.items() if v - th0.get(k, 0.0) > 0},
        "core_busy_s": {k: round(v, 3) for k, v in busy.items()},
        "steal_s": round(steal, 3),
        "other_cores": round(other / wall, 3),
        "load_before": load,
        "load_after": loadavg(),
        "disturbed": other / wall > DISTURBED_CORES,
    }
    with open(out, "w") as f:
        json.dump(res, f, indent=1)
    code = os.waitstatus_to_exitcode(status)
    sys.exit(code if code >= 0 else 1)


def load_pair(base):
    with open(base + ".json") as f:
        rep = json.load(f)
    with open(base + ".cpu.json") as f:
        cpu = json.load(f)
    return rep, cpu


def served(rep):
    # Answers the server produced during the measured run: the window's
    # requests (warm-up 0 and no probe, so all sent after connecting), plus
    # those still in flight at the end (answered while draining).
    s = rep["summary"]
    return s["requests"] + s.get("unfinished", 0)


def paced_served(rep):
    c = rep["config"]
    return served(rep) + c["rate"] * c.get("warmup_s", 0)


def closed_rounds(out, prefix):
    """The rounds OUT/PREFIX-N.json (closed loop, or paced: then the warm-up's requests count too)."""
    rounds = []
    for base in sorted(glob.glob(f"{out}/{prefix}-*.json")):
        if base.endswith(".cpu.json"):
            continue
        base = base[: -len(".json")]
        rep, cpu = load_pair(base)
        n = paced_served(rep) if rep["config"]["mode"] == "open" else served(rep)
        lat = rep["all"]["latency_us"]
        rounds.append({
            "round": int(base.rsplit("-", 1)[1]),
            "requests": n,
            "ok": rep["summary"]["ok"],
            "errors": rep["summary"]["errors"],
            "throughput_rps": rep["summary"]["throughput_rps"],
            "server_cpu_s": cpu["server_cpu_s"],
            "server_cores": cpu["server_cores"],
            "client_cores": cpu["client_cores"],
            "cpu_us_per_request": round(cpu["server_cpu_s"] * 1e6 / n, 3) if n else None,
            "other_cores": cpu["other_cores"],
            "steal_s": cpu["steal_s"],
            "load_before": cpu["load_before"],
            "disturbed": cpu["disturbed"],
            "p50_us": lat["p50"],
            "p99_us": lat["p99"],
        })
    return rounds


def clean(rounds):
    n = sum(not r["disturbed"] for r in rounds)
    return f"{n} of {len(rounds)} rounds undisturbed" if n else f"all {len(rounds)} rounds disturbed: median of all"


def med(rounds, key):
    good = [r[key] for r in rounds if not r["disturbed"] and r[key] is not None]
    if not good:  # every round disturbed: the median of all, flagged in the output
        good = [r[key] for r in rounds if r[key] is not None]
    return statistics.median(good) if good else None


def summary(argv):
    out = argv[0]
    empty = closed_rounds(out, "empty-closed")
    bid = closed_rounds(out, "bid-closed")
    empty_p = closed_rounds(out, "empty-cpu")
    bid_p = closed_rounds(out, "bid-cpu")
    paced = []
    for base in glob.glob(f"{out}/bid-paced-[0-9]*.json"):
        if base.endswith(".cpu.json"):
            continue
        base = base[: -len(".json")]
        rep, cpu = load_pair(base)
        s, a = rep["summary"], rep["all"]
        lat = a["latency_us"]
        paced.append({
            "rate": rep["config"]["rate"],
            "throughput_rps": s["throughput_rps"],
            "requests": s["requests"],
            "errors": s["errors"],
            "backlog": s.get("backlog", 0),
            "p50_us": lat["p50"],
            "p99_us": lat["p99"],
            "p99.9_us": lat["p99.9"],
            "max_us": lat["max"],
            "uncorrected_p99_us": a["latency_uncorrected_us"]["p99"],
            "send_lag_p99_us": a["send_lag_us"]["p99"],
            "server_cores": cpu["server_cores"],
            # the CPU covers the warm-up too: count its requests (at the rate) as well
            "cpu_us_per_request": round(cpu["server_cpu_s"] * 1e6 / paced_served(rep), 3)
            if paced_served(rep) else None,
            "other_cores": cpu["other_cores"],
            "load_before": cpu["load_before"],
            "disturbed": cpu["disturbed"],
        })
    paced.sort(key=lambda r: r["rate"])
    for r in paced:
        base = f"{out}/empty-paced-{r['rate']:.0f}"
        if os.path.exists(base + ".json"):
            rep, cpu = load_pair(base)
            lat = rep["all"]["latency_us"]
            r["empty"] = {"throughput_rps": rep["summary"]["throughput_rps"], "p50_us": lat["p50"],
                          "p99_us": lat["p99"], "p99.9_us": lat["p99.9"], "max_us": lat["max"],
                          "other_cores": cpu["other_cores"], "disturbed": cpu["disturbed"]}

    e_cpu, b_cpu = med(empty, "cpu_us_per_request"), med(bid, "cpu_us_per_request")
    ratio = b_cpu / e_cpu if e_cpu and b_cpu else None
    pe_cpu, pb_cpu = med(empty_p, "cpu_us_per_request"), med(bid_p, "cpu_us_per_request")
    p_ratio = pb_cpu / pe_cpu if pe_cpu and pb_cpu else None
    ok_rates = [r["rate"] for r in paced
                if r["p99_us"] <= 1000 and r["errors"] == 0 and r["backlog"] == 0
                and r["throughput_rps"] >= 0.97 * r["rate"]]
    res = {
        "empty_closed": empty,
        "bid_closed": bid,
        "empty_cpu_us_per_request": e_cpu,
        "bid_cpu_us_per_request": b_cpu,
        "ratio": round(ratio, 3) if ratio else None,
        "target_ratio": 4.0,
        "cpu_rate": bid_p[0]["throughput_rps"] if bid_p else None,
        "empty_paced": empty_p,
        "bid_paced": bid_p,
        "empty_paced_cpu_us_per_request": pe_cpu,
        "bid_paced_cpu_us_per_request": pb_cpu,
        "paced_ratio": round(p_ratio, 3) if p_ratio else None,
        "empty_throughput_rps": med(empty, "throughput_rps"),
        "bid_throughput_rps": med(bid, "throughput_rps"),
        "rounds_disturbed": sum(r["disturbed"] for r in empty + bid + empty_p + bid_p),
        "disturbed_threshold_cores": DISTURBED_CORES,
        "paced": paced,
        "highest_rate_p99_le_1ms": max(ok_rates) if ok_rates else None,
    }
    with open(f"{out}/summary.json", "w") as f:
        json.dump(res, f, indent=1)

    def row(kind, r):
        mark = "  DISTURBED" if r["disturbed"] else ""
        print(f"  {kind:<6} {r['round']:>2} {r['throughput_rps']:>10.0f} {r['server_cores']:>6.2f} "
              f"{r['client_cores']:>6.2f} {r['cpu_us_per_request']:>9.2f} {r['other_cores']:>6.2f} "
              f"{r['load_before'][0]:>5.2f} {r['p50_us']:>7.0f} {r['p99_us']:>8.0f}{mark}")

    print("\nclosed loop: server CPU per request (server on core 0, client on core 1)")
    print(f"  {'server':<6} {'#':>2} {'req/s':>10} {'srv':>6} {'cli':>6} {'us/req':>9} {'other':>6} {'load':>5} {'p50 us':>7} {'p99 us':>8}")
    for a, b in zip(empty, bid):
        row("empty", a)
        row("bid", b)
    for r in (empty + bid)[2 * min(len(empty), len(bid)):]:
        row("?", r)
    print(f"  median: empty {e_cpu:.2f} us/request ({clean(empty)}), bid {b_cpu:.2f} us/request "
          f"({clean(bid)}): bid/empty = {ratio:.2f} (target <= 4)" if ratio else "  (no ratio: a side has no rounds)")
    print(f"  closed-loop throughput: empty {res['empty_throughput_rps']:.0f}/s, bid {res['bid_throughput_rps']:.0f}/s")
    if empty_p and bid_p:
        print(f"\nopen loop at the same paced rate: server CPU per request (warm-up second included)")
        print(f"  {'server':<6} {'#':>2} {'req/s':>10} {'srv':>6} {'cli':>6} {'us/req':>9} {'other':>6} {'load':>5} {'p50 us':>7} {'p99 us':>8}")
        for a, b in zip(empty_p, bid_p):
            row("empty", a)
            row("bid", b)
        if p_ratio:
            print(f"  median: empty {pe_cpu:.2f} us/request ({clean(empty_p)}), bid {pb_cpu:.2f} us/request "
                  f"({clean(bid_p)}): bid/empty = {p_ratio:.2f} (target <= 4)")
    print("\nopen loop, POST /openrtb2/bid paced (latency from the intended send time, us)")
    print(f"  {'rate/s':>7} {'got/s':>8} {'p50':>7} {'p99':>8} {'p99.9':>8} {'max':>8} {'srv':>5} {'us/req':>7} "
          f"{'other':>6} {'errors':>6} {'backlog':>7}   empty server: {'p50':>5} {'p99':>6} {'p99.9':>6} {'other':>5}")
    for r in paced:
        mark = "  DISTURBED" if r["disturbed"] else ""
        if r["throughput_rps"] < 0.97 * r["rate"] or r["backlog"]:
            mark += "  SATURATED (latencies of what was measured; the rest never left: backlog)"
        print(f"  {r['rate']:>7.0f} {r['throughput_rps']:>8.0f} {r['p50_us']:>7.0f} {r['p99_us']:>8.0f} "
              f"{r['p99.9_us']:>8.0f} {r['max_us']:>8.0f} {r['server_cores']:>5.2f} "
              f"{r['cpu_us_per_request'] or 0:>7.2f} {r['other_cores']:>6.2f} {r['errors']:>6} "
              f"{r['backlog']:>7}   {'':>13} " +
              (f"{r['empty']['p50_us']:>5.0f} {r['empty']['p99_us']:>6.0f} {r['empty']['p99.9_us']:>6.0f} "
               f"{r['empty']['other_cores']:>5.2f}" if "empty" in r else "") + mark)
    hr = res["highest_rate_p99_le_1ms"]
    print(f"  highest paced rate with p99 <= 1 ms (no errors, no backlog): {hr:.0f}/s" if hr
          else "  no paced rate kept p99 <= 1 ms")
    print(f"\nwritten: {out}/summary.json")


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "measure":
        measure(sys.argv[2:])
    elif len(sys.argv) == 3 and sys.argv[1] == "summary":
        summary(sys.argv[2:])
    else:
        sys.exit(__doc__)
