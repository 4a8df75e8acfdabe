"""Turns `perf script -F comm,ip,dso` of a whole-machine recording into CPU time per call.

    perf script -F comm,ip,dso | python3 bench/cpu.py TITLE REQUESTS SECONDS FREQUENCY CPUS

Every sample is one CPU found busy (or idle, as `swapper`, which also counts interrupt work
done while the CPU was idle) at one tick of FREQUENCY per second. A sample counts for the
thread group its command names and, by the address it was taken at, as kernel or user space.
Divided by the calls answered, a group's samples give its CPU time per call; the total comes
close to CPUS / throughput.
"""

import collections
import sys

KERNEL_START = 0xFFFF_8000_0000_0000

# Thread names: actix-web's workers, the SQLite audit writer, the load generator, the upstream.
GROUPS = [
    ("actix-rt", "HTTP workers"),
    ("audit-writer", "audit writer"),
    ("wrk", "wrk"),
    ("nginx", "nginx"),
    ("swapper", "idle"),
]


def group_of(comm: str) -> str:
    for prefix, name in GROUPS:
        if comm.startswith(prefix):
            return name
    return "other"


def main() -> None:
    title, requests, seconds, frequency, cpus = sys.argv[1:6]
    requests, seconds, frequency, cpus = int(requests), float(seconds), int(frequency), int(cpus)
    if requests <= 0:
        sys.exit("bench/cpu.py: no requests were answered")
    samples = collections.Counter()
    for line in sys.stdin:
        fields = line.split()
        if len(fields) < 3:
            continue
        # "COMMAND ADDRESS (OBJECT)"; a command name may contain spaces. Kernel code (modules
        # included) runs at addresses in the upper half of the address space.
        try:
            address = int(fields[-2], 16)
        except ValueError:
            continue
        comm = " ".join(fields[:-2])
        side = "kernel" if address >= KERNEL_START else "user"
        samples[(group_of(comm), side)] += 1
    if not samples:
        sys.exit("bench/cpu.py: perf recorded no samples")

    def per_call(count: int) -> float:
        return count / frequency / requests * 1e6

    print(f"\n{title}: {requests / seconds:,.0f} calls/s; CPU time per call in microseconds")
    print(f"{'':<14} {'user':>7} {'kernel':>7} {'total':>7}")
    names = [name for _, name in GROUPS if name != "idle"] + ["other", "idle"]
    total = 0.0
    for name in names:
        user, kernel = per_call(samples[(name, "user")]), per_call(samples[(name, "kernel")])
        if user + kernel == 0:
            continue
        total += user + kernel
        print(f"{name:<14} {user:>7.1f} {kernel:>7.1f} {user + kernel:>7.1f}")
    print(f"{'all':<14} {'':>7} {'':>7} {total:>7.1f}"
          f"   ({cpus} CPUs / {requests / seconds:,.0f} calls/s = "
          f"{cpus / (requests / seconds) * 1e6:.1f})")


if __name__ == "__main__":
    main()
