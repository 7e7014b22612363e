"""Turn a saved pytest-benchmark run into the README's markdown tables.

    pytest benchmarks --benchmark-enable --benchmark-autosave   # writes .benchmarks/...
    python benchmarks/report.py .benchmarks/*/0001_*.json

Each group gets one row per entry: the best (minimum) time and how many times
slower than emcore's fastest entry in the group it is.
"""
import json
import sys
from collections import defaultdict


def label(bench):
    info = bench.get("extra_info", {})
    if "peer" in info:
        return info["peer"]
    name = "emcore"
    if "n_threads" in info:
        name += f" ({info['n_threads']} thread{'s' if info['n_threads'] > 1 else ''})"
    if "unique_colors" in info:
        name += " unique colours" if info["unique_colors"] else " every pixel"
    return name


def fmt_time(seconds):
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} us"


def main(path):
    with open(path) as f:
        run = json.load(f)
    groups = defaultdict(list)
    for bench in run["benchmarks"]:
        groups[bench["group"]].append(bench)
    machine = run.get("machine_info", {})
    print(f"Measured on {machine.get('cpu', {}).get('brand_raw', 'this machine')}, "
          f"{machine.get('cpu', {}).get('count', '?')} cores, Python "
          f"{machine.get('python_version', '?')}.\n")
    for group in sorted(groups):
        entries = groups[group]
        ours = [b["stats"]["min"] for b in entries if "peer" not in b.get("extra_info", {})]
        best = min(ours) if ours else None
        print(f"**{group}**\n\n| | time | x emcore's best |\n|---|---|---|")
        for bench in sorted(entries, key=lambda b: b["stats"]["min"]):
            t = bench["stats"]["min"]
            ratio = f"{t / best:.1f}" if best else "-"
            extra = bench.get("extra_info", {})
            note = f" (PSNR {extra['psnr']:.2f} dB)" if "psnr" in extra else ""
            note += (f" (peak {extra['peak_mib']:.0f} MiB)" if "peak_mib" in extra else "")
            print(f"| {label(bench)}{note} | {fmt_time(t)} | {ratio} |")
        print()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python benchmarks/report.py RUN.json")
    main(sys.argv[1])
