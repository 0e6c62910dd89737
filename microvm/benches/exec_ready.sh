#!/bin/sh
# Start-to-exit time and peak RSS of `microvm exec workload ready` against the same
# workload run natively. Not a test: numbers depend on the host (see docs/microvm.md,
# PVM vs hardware KVM). Usage: microvm/benches/exec_ready.sh [RUNS]
set -eu
runs=${1:-50}
cd "$(dirname "$0")/../.."
cargo build --release -q -p microvm -p workload
bin=target/x86_64-unknown-linux-gnu/release
python3 - "$runs" "$bin" <<'PY'
import statistics, subprocess, sys, time
runs, bin = int(sys.argv[1]), sys.argv[2]
def measure(name, cmd):
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
        times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    p90 = times[max(0, int(len(times) * 0.9) - 1)]
    print(f"{name:8} median {statistics.median(times):6.2f} ms  p90 {p90:6.2f} ms")
measure("native", [f"{bin}/workload", "ready"])
measure("microvm", [f"{bin}/microvm", "exec", "--", f"{bin}/workload", "ready"])
PY
for cmd in "$bin/workload ready" "$bin/microvm exec -- $bin/workload ready"; do
    /usr/bin/time -f "peak RSS %M KiB: $cmd" $cmd > /dev/null
done
