"""Run every benchmark in turn (`make bench`); each prints its own figures.

The figures go into docs/PERFORMANCE.md by hand, with the date and the machine: this machine is
shared and noisy, so read medians and ratios, and re-run on a quiet machine before quoting.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = [
    ["ingest_http.py"],
    ["trigger_latency.py"],
    ["flow_steps.py"],
    ["timer_lag.py"],
    ["waiting_runs.py"],
    # The issue-4 figure: one worker process per core. smtp-sink when bench/get_smtp_sink.sh has
    # unpacked it, else the aiosmtpd receiver (which takes a third of the CPU; see PERFORMANCE.md).
    ["email_delivery.py", "--processes", "2", "--server", "auto"],
    ["unsubscribe_latency.py"],
    ["worker_idle.py"],
]


def main() -> int:
    failed = 0
    for script, *args in SCRIPTS:
        path = HERE / script
        if not path.exists():
            print(f"== {script}: missing", flush=True)
            failed += 1
            continue
        print(f"== {script} {' '.join(args)}", flush=True)
        module = "bench." + path.stem
        failed += subprocess.call([sys.executable, "-m", module, *args], cwd=HERE.parent) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
