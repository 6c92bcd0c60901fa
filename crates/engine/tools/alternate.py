"""Times `projector simulate` binaries against each other, alternating them
run by run so that a noisy machine weighs on each alike (the benchmark
configuration of MODEL.md section 6, whole process, start to exit).

    python3 crates/engine/tools/alternate.py --runs 21 --threads 2 OLD NEW [-- --zero-shocks]
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

CONFIG = ["--paths", "10000", "--horizon", "30", "--risk", "balanced",
          "--seed", "12345", "--format", "json"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--threads", default="2")
    parser.add_argument("binaries", nargs="+")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    args.extra = argv[split + 1:]
    wall = {binary: [] for binary in args.binaries}
    cpu = {binary: [] for binary in args.binaries}
    for _ in range(args.runs):
        for binary in args.binaries:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            command = [binary, "simulate", *CONFIG, "--threads", args.threads, *args.extra]
            subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
            wall[binary].append(time.perf_counter() - started)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[binary].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    for binary in args.binaries:
        print(f"{os.path.basename(binary):24} wall median {statistics.median(wall[binary]) * 1e3:7.1f} ms"
              f"  min {min(wall[binary]) * 1e3:7.1f} | cpu median {statistics.median(cpu[binary]) * 1e3:7.1f} ms")


if __name__ == "__main__":
    main()
