#!/bin/sh
# What the kernel-less microVM costs against the same workload run natively, on this
# host: start-to-exit time of `workload ready` (runs interleaved, so load drift hits
# both alike), the monitor's memory (from --stats: peak RSS and the guest memory it
# holds; wait4/time(1) would fold in the spawning process's RSS), the syscall round
# trip with sync registers and with register ioctls, and `workload cpu` in the guest
# against native. Not a test: numbers depend on the host (see docs/microvm.md, PVM vs
# hardware KVM). Usage: microvm/benches/exec_ready.sh [RUNS]. On a shared host, run
# it as root under `chrt -f 10` so that other jobs do not preempt the measured runs.
set -eu
runs=${1:-50}
cd "$(dirname "$0")/../.."
cargo build --release -q -p microvm -p workload
bin=target/x86_64-unknown-linux-gnu/release
python3 - "$runs" "$bin" <<'PY'
import json, statistics, subprocess, sys, time
runs, bin = int(sys.argv[1]), sys.argv[2]
wl, vm = f"{bin}/workload", [f"{bin}/microvm", "exec"]

def run(cmd):
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return (time.perf_counter() - start) * 1e3, out

def stats(out):
    line = next(l for l in out.stderr.splitlines() if l.startswith("STATS "))
    return json.loads(line[6:])

def result(out, key):
    line = next(l for l in out.stdout.splitlines() if l.startswith("RESULT "))
    return json.loads(line[7:])["values"][key]["value"]

def interleaved(named, n, measure):
    got = {name: [] for name in named}
    for name, cmd in named.items():
        run(cmd)  # warm-up
    for _ in range(n):
        for name, cmd in named.items():
            got[name].append(measure(cmd))
    return got

def show(label, values, unit):
    values = sorted(values)
    p10, p90 = values[len(values) // 10], values[len(values) * 9 // 10]
    print(f"{label:34} median {statistics.median(values):9.2f} {unit}"
          f"  (p10 {p10:.2f}, p90 {p90:.2f}, n={len(values)})")

times = interleaved({"native": [wl, "ready"], "microvm": vm + ["--", wl, "ready"]},
                    runs, lambda cmd: run(cmd)[0])
for name, values in times.items():
    show(f"{name} workload ready", values, "ms")
mem = [stats(run(vm + ["--stats", "--", wl, "ready"])[1])["memory"] for _ in range(5)]
peak = statistics.median(m["peak_rss_kib"] for m in mem)
guest = statistics.median(m["touched_kib"] for m in mem)
print(f"microvm peak RSS {peak:.0f} KiB = guest {guest:.0f} KiB + monitor {peak - guest:.0f} KiB")
calls = ["syscall", "--iterations", "20000"]
ns = interleaved({"sync regs": vm + ["--", wl] + calls,
                  "register ioctls": vm + ["--no-sync-regs", "--", wl] + calls,
                  "native": [wl] + calls},
                 max(3, runs // 10), lambda cmd: result(run(cmd)[1], "ns_per_call") / 1e3)
for name, values in ns.items():
    show(f"getpid round trip, {name}", values, "us")
ops = interleaved({"native": [wl, "cpu"], "microvm": vm + ["--", wl, "cpu"]},
                  max(5, runs // 5), lambda cmd: result(run(cmd)[1], "ops_per_s"))
ratios = [g / n for g, n in zip(ops["microvm"], ops["native"])]
show("workload cpu, guest/native", [r * 100 for r in ratios], "%")
PY
