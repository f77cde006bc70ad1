"""``benchmarks/intake.py`` several times in a row, and the median of its ratios.

On a shared 2-CPU box one run's Conveyor/bare ratio moves by ±0.05 from run to run
(other tenants of the host, autovacuum, CPU frequency). Each round here is a whole
``intake.py`` run, with its own fresh databases and its own baseline measured right
after Conveyor; the rounds are reported one by one, then the median, the lowest and
the highest ratio. The target is judged on the median.

    .venv/bin/python benchmarks/intake_rounds.py [--rounds 5] [intake.py options...]

Exit status: the worst of the rounds' (0 clean; 1 something lost, duplicated or 5xx;
2 a round could not run).
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--target-ratio", type=float, default=0.60)
    args, passed_on = parser.parse_known_args()
    if not 1 <= args.rounds <= 20:
        parser.error("--rounds must be 1..20")
    rows, worst = [], 0
    with tempfile.TemporaryDirectory(prefix="intake-rounds-") as folder:
        for number in range(1, args.rounds + 1):
            figures = Path(folder) / f"round-{number}.json"
            command = [sys.executable, str(BENCH_DIR / "intake.py"), *passed_on]
            command += ["--json", str(figures), "--target-ratio", str(args.target_ratio)]
            print(f"== round {number}/{args.rounds}: {' '.join(command[1:])}", flush=True)
            code = subprocess.run(command, check=False).returncode
            worst = max(worst, code)
            if not figures.exists():
                continue
            report = json.loads(figures.read_text())
            if "ratio" in report:
                rows.append((number, report))
    if not rows:
        print("no round produced a ratio")
        return max(worst, 2)
    print("\n| round | Conveyor req/s | bare req/s | ratio | CPU per post C/bare (ms) | lost/dup |")
    print("|---:|---:|---:|---:|---:|---:|")
    for number, report in rows:
        conveyor, bare, ratio = report["conveyor"], report["bare"], report["ratio"]
        cost = ratio["cpu_cost_ms"]
        stored = conveyor["stored"]
        print(
            f"| {number} | {conveyor['req_per_s']:,.1f} | {bare['req_per_s']:,.1f} | "
            f"{ratio['value']:.2f} | {cost['conveyor']:.2f} / {cost['bare']:.2f} | "
            f"{stored['lost']}/{stored['duplicated']} |"
        )
    ratios = [report["ratio"]["value"] for _, report in rows]
    median = statistics.median(ratios)
    met = median >= args.target_ratio
    print(
        f"\n== median Conveyor/bare over {len(ratios)} rounds: {median:.2f} "
        f"(lowest {min(ratios):.2f}, highest {max(ratios):.2f}); "
        f"target >= {args.target_ratio:.2f}: {'MET' if met else 'NOT MET'}"
    )
    return worst


if __name__ == "__main__":
    sys.exit(main())
