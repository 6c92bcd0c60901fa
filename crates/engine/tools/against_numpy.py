"""Times `projector simulate` (the whole process) against the numpy reference
in one run, alternating the two, and checks that they compute the same model.

    cargo build --release
    python3 -m venv venv && venv/bin/pip install numpy
    venv/bin/python crates/engine/tools/against_numpy.py --runs 10 [--threads 2] [--isa avx2]

The numpy figure is the projection alone, without interpreter start-up or
`import numpy`; the projector figure is the whole process, start to exit.
"""

import argparse
import json
import pathlib
import statistics
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
CONFIG = ["--paths", "10000", "--horizon", "30", "--seed", "12345"]


def projector(binary, extra):
    command = [binary, "simulate", *CONFIG, "--risk", "balanced", "--format", "json", *extra]
    started = time.perf_counter()
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return time.perf_counter() - started, json.loads(output)


def reference(extra):
    command = [sys.executable, str(HERE / "numpy_reference.py"), *CONFIG, *extra]
    result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    return result.pop("seconds"), result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--projector", default="target/release/projector")
    parser.add_argument("--threads", help="passed to projector simulate")
    parser.add_argument("--isa", help="passed to projector simulate")
    args = parser.parse_args()
    extra = [flag for name in ("threads", "isa") if getattr(args, name)
             for flag in (f"--{name}", getattr(args, name))]

    # The same model: exact on the deterministic path, within Monte Carlo error
    # (about 0.4% for the median of 10,000 paths) on random shocks.
    _, ours = projector(args.projector, [*extra, "--zero-shocks"])
    _, theirs = reference(["--zero-shocks"])
    for key in ("median_final", "mean_final", "cvar_95_level"):
        assert abs(ours[key] - theirs[key]) <= 1e-12 * abs(theirs[key]), (key, ours[key], theirs[key])
    ours_times, theirs_times = [], []
    for _ in range(args.runs):
        seconds, ours = projector(args.projector, extra)
        ours_times.append(seconds)
        seconds, theirs = reference([])
        theirs_times.append(seconds)
    difference = abs(ours["median_final"] / theirs["median_final"] - 1)
    assert difference < 0.02, f"median_final differs by {difference:.2%}"

    ours_median = statistics.median(ours_times)
    theirs_median = statistics.median(theirs_times)
    print(f"projector simulate, whole process: median {ours_median * 1e3:.1f} ms "
          f"(min {min(ours_times) * 1e3:.1f}) over {args.runs} runs")
    print(f"numpy reference, projection only: median {theirs_median * 1e3:.1f} ms "
          f"(min {min(theirs_times) * 1e3:.1f})")
    print(f"ratio: {theirs_median / ours_median:.1f}x; median_final {ours['median_final']:.0f} "
          f"against {theirs['median_final']:.0f} ({difference:.2%} apart)")


if __name__ == "__main__":
    main()
