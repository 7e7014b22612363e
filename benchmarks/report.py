"""Turn a saved pytest-benchmark run into the README's performance table.

    EMCORE_BENCH_FULL=1 pytest benchmarks --benchmark-enable --benchmark-autosave
    python benchmarks/report.py .benchmarks/*/0001_*.json            # the README table
    python benchmarks/report.py --groups .benchmarks/*/0001_*.json   # every group

The README table compares emcore (2 threads) with each peer on the 2.2 MP photo
(a full run); --groups lists every group with each entry's best time and how
many times emcore's fastest entry in that group it takes.
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
    if info.get("input") == "float64":
        name += " float64 input"
    return name


def fmt_time(seconds):
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} us"


def fmt_short(seconds):
    return f"{seconds:.2f} s" if seconds >= 1 else f"{seconds * 1e3:.0f} ms"


def readme_table(run, size="coffee-2.2MP"):
    """The README's table and notes, from a full run."""
    entries = {}
    for bench in run["benchmarks"]:
        info = bench.get("extra_info", {})
        who = info.get("peer") or f"emcore{info.get('n_threads', '')}"
        if "unique_colors" in info:
            who = "unique" if info["unique_colors"] else "every"
        if info.get("input") == "float64":  # compute_densities scoring every pixel
            who += " every pixel"
        if bench["group"].startswith("memory"):
            who = bench["name"]
        entries[(bench["group"], who)] = bench

    def best(group, who):
        return entries[(group, who)]["stats"]["min"]

    def psnr(group, who):
        return entries[(group, who)]["extra_info"]["psnr"]

    rows = []
    g = f"densities {size} K=32"
    rows.append(("`compute_densities`, K = 32 diagonal kernels (float64)", best(g, "emcore2"),
                 [("emcore on the same pixels as float64 (every pixel scored)",
                   best(g, "emcore2 every pixel")),
                  ("numpy formulation", best(g, "numpy")),
                  ("scikit-learn `score_samples`", best(g, "scikit-learn"))]))
    for cov in ("diag", "full"):
        g = f"em-iteration {size} {cov} K=32"
        rows.append((f"one EM iteration, {cov} covariances, K = 32 (float32)",
                     best(g, "emcore2"), [("scikit-learn `GaussianMixture`",
                                           best(g, "scikit-learn"))]))
    g = f"kmeans-iteration {size} K=32"
    rows.append(("one Lloyd iteration, K = 32 (float32)", best(g, "emcore2"),
                 [("scikit-learn `KMeans` (lloyd)", best(g, "scikit-learn"))]))
    g = f"quantize {size} 32 colours"
    peers = [(f"{name} ({psnr(g, key):.2f} dB)", best(g, key)) for name, key in
             (("Pillow median cut", "Pillow mediancut"),
              ("Pillow fast octree", "Pillow fastoctree"),
              ("OpenCV `kmeans`", "OpenCV kmeans")) if (g, key) in entries]
    rows.append((f"`quantize(photo, 32)` (PSNR {psnr(g, 'emcore2'):.2f} dB)", best(g, "emcore2"),
                 peers))
    g = f"em-fit {size} full K=32 30 epochs"
    rows.append(("`EM(photo, 32).fit(30)` on unique colours", best(g, "unique"),
                 [("the same fit on every pixel", best(g, "every"))]))
    machine = run.get("machine_info", {})
    cpu = machine.get("cpu", {})
    flags = set(cpu.get("flags", []))
    simd = (", AVX-512" if "avx512f" in flags else
            ", AVX2 and FMA" if {"avx2", "fma"} <= flags else "")
    print(f"The coffee photo upscaled to 2.2 MP (1800 x 1200; 253,504 unique colours), "
          f"2 threads, on a {cpu.get('count', '?')}-core {cpu.get('brand_raw', 'machine')}{simd}, "
          f"Python {machine.get('python_version', '?')}; the best of several rounds, from one "
          "run:\n")
    print("| job | emcore | peer | peer's time | emcore is |\n|---|---|---|---|---|")
    for job, ours, peers in rows:
        for i, (name, theirs) in enumerate(peers):
            ratio = theirs / ours
            speed = (f"{ratio:.0f}x faster" if ratio >= 10 else f"{ratio:.1f}x faster"
                     if ratio >= 1 else f"{1 / ratio:.0f}x slower")
            print(f"| {job if i == 0 else ''} | {fmt_short(ours) if i == 0 else ''} | {name} "
                  f"| {fmt_short(theirs)} | {speed} |")
    print(f"\n- The seed workload (load a PNG, `EM(path, 32).fit(30)`, `save_new` to PNG): "
          f"{fmt_short(best(f'seed-workload {size}', 'emcore'))} on the 2.2 MP photo, "
          f"{fmt_short(best('seed-workload coffee-0.24MP', 'emcore'))} on the 0.24 MP one.")
    mem = {key[1]: b["extra_info"] for key, b in entries.items() if key[0].startswith("memory")}
    print("- Peak memory of the whole process (Python, numpy, Pillow included) for a K = 32 "
          "full-covariance fit and then densities: "
          f"{mem['test_peak_rss_of_a_k32_fit[unique-colours-coffee-x3]']['peak_mib']:.0f} MiB "
          "at 2.2 MP with unique colours, "
          f"{mem['test_peak_rss_of_a_k32_fit[every-pixel-coffee-x3]']['peak_mib']:.0f} MiB "
          "fitting every pixel; "
          f"{mem['test_peak_rss_50_megapixels']['peak_mib']:.0f} MiB for a 50 MP image, labels "
          "and densities included (one pixels x components float64 array would be 12 GiB).")
    for cov in ("diag", "full"):
        it = {b["extra_info"]["n_threads"]: b for b in run["benchmarks"]
              if b["group"] == f"em-iteration {size} {cov} K=32" and "n_threads" in b["extra_info"]}
        if {1, 2} <= set(it):
            ns = {t: it[t]["stats"]["min"] * t / (it[t]["extra_info"]["pixels"] * 32) * 1e9
                  for t in (1, 2)}
            print(f"- One {cov} EM iteration on the 2.2 MP photo, K = 32: "
                  f"{fmt_short(it[1]['stats']['min'])} on 1 thread ({ns[1]:.2f} ns per "
                  f"pixel-component), {fmt_short(it[2]['stats']['min'])} on 2 "
                  f"({it[1]['stats']['min'] / it[2]['stats']['min']:.2f}x; {ns[2]:.2f} ns per "
                  "pixel-component per core).")
    scaling = {(b["extra_info"]["n"], b["extra_info"]["k"], b["extra_info"]["n_threads"]): b
               for b in run["benchmarks"] if b["group"].startswith("scaling")}
    n_max = max(n for n, _, _ in scaling)
    one, two = scaling[(n_max, 32, 1)], scaling[(n_max, 32, 2)]
    per = [b["extra_info"]["ns_per_pixel_component_per_core"] for (n, k, th), b in scaling.items()
           if k == 32 and th == 1]
    print(f"- One diagonal EM iteration on {n_max / 1e6:.0f} MP with K = 32: "
          f"{fmt_short(one['stats']['min'])} on 1 thread "
          f"({one['extra_info']['ns_per_pixel_component_per_core']} ns per pixel-component), "
          f"{fmt_short(two['stats']['min'])} on 2 "
          f"({one['stats']['min'] / two['stats']['min']:.2f}x)."
          f" From 0.1 to {n_max / 1e6:.0f} MP the cost per pixel-component stays within "
          f"{min(per)}-{max(per)} ns (K = 32, 1 thread): linear in N.")


def group_tables(run):
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


def main(argv):
    if len(argv) not in (1, 2) or (len(argv) == 2 and argv[0] != "--groups"):
        sys.exit("usage: python benchmarks/report.py [--groups] RUN.json")
    with open(argv[-1]) as f:
        run = json.load(f)
    if len(argv) == 2:
        group_tables(run)
    else:
        try:
            readme_table(run)
        except KeyError as missing:
            sys.exit(f"report: the run lacks {missing}: the README table needs a full run "
                     "(EMCORE_BENCH_FULL=1); --groups shows what it has")


if __name__ == "__main__":
    main(sys.argv[1:])
