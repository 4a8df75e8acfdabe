"""Turns bench/run's wrk results into tables.

    python3 bench/report.py table RESULTS SUMMARY TITLE NAME...
        RESULTS holds one line per wrk run, "target_index req_per_s p99_us failed"; prints the
        median throughput and median p99 of each target named NAME (in index order), each
        one's ratio to the target named "nginx hop", the broker's ratio to the "stack floor"
        when that was measured, and appends
        "TITLE<tab>hop req/s<tab>hop p99 ms<tab>broker req/s<tab>broker p99 ms" to SUMMARY.
    python3 bench/report.py summary SUMMARY
        prints every backend and scale on one line each, with the broker's throughput relative
        to the first scale of the same backend (the cost per request must not grow with the
        number of vaults).
"""

import statistics
import sys


def table(results: str, summary: str, title: str, names: list[str]) -> None:
    runs = {i: [] for i in range(len(names))}
    with open(results) as lines:
        for line in lines:
            i, rps, p99, failed = line.split()
            runs[int(i)].append((float(rps), int(p99) / 1000, int(failed)))
    median = {
        i: (statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs),
            sum(r[2] for r in rs))
        for i, rs in runs.items()
    }
    print(f"\n{title}")
    print(f"{'target':<12} {'req/s (median)':>15} {'p99 ms (median)':>16} {'failed':>7}"
          f" {'vs nginx hop':>13}")
    hop = median[names.index("nginx hop")]
    for i, name in enumerate(names):
        rps, p99, failed = median[i]
        print(f"{name:<12} {rps:>15,.0f} {p99:>16.2f} {failed:>7} {rps / hop[0]:>12.2f}x")
    broker = median[names.index("broker")]
    print(f"broker / nginx hop: throughput {broker[0] / hop[0]:.2f}x, p99 latency "
          f"{broker[1] / hop[1]:.2f}x")
    if "stack floor" in names:
        floor = median[names.index("stack floor")]
        print(f"broker / stack floor: throughput {broker[0] / floor[0]:.2f}x, p99 latency "
              f"{broker[1] / floor[1]:.2f}x")
    with open(summary, "a") as out:
        out.write(f"{title}\t{hop[0]}\t{hop[1]}\t{broker[0]}\t{broker[1]}\n")


def summary(path: str) -> None:
    rows = [line.rstrip("\n").split("\t") for line in open(path) if line.strip()]
    if not rows:
        return
    width = max(len(r[0]) for r in rows)
    print(f"\n{'run':<{width}} {'broker req/s':>13} {'p99 ms':>7} {'/ nginx hop':>12}"
          f" {'/ first scale':>14}")
    first = {}
    for title, hop_rps, _hop_p99, rps, p99 in rows:
        backend = title.split(",")[0]
        first.setdefault(backend, float(rps))
        print(f"{title:<{width}} {float(rps):>13,.0f} {float(p99):>7.2f}"
              f" {float(rps) / float(hop_rps):>11.2f}x {float(rps) / first[backend]:>13.2f}x")


def main() -> None:
    if len(sys.argv) >= 6 and sys.argv[1] == "table":
        table(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
    elif len(sys.argv) == 3 and sys.argv[1] == "summary":
        summary(sys.argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
