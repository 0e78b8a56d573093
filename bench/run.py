#!/usr/bin/env python3
"""nethelper benchmark suite.

    python bench/run.py                  # full run (a few minutes)
    python bench/run.py --quick          # smoke run of every scenario (~30 s)
    python bench/run.py --only flood     # one scenario (or one case: --only classroom-500)
    python bench/run.py --json out.json  # where the figures go (default bench/results.json)
    python bench/run.py --profile DIR    # run each relay under cProfile, DIR/<case>.prof
    python bench/run.py --pin            # generator on CPU 0, relay on CPU 1 (repeatable figures)
    python bench/run.py --only pairs-400,pairs-800,joinstorm   # the relay against reference relays

A load generator drives every node over loopback against relays started
as subprocesses with their real command line, and measures the same traffic
over direct connections with no relay (the floor). The latency cases use two
generator processes (the two sides of each pair), so that a floor frame also
crosses a process boundary. The pairs and joinstorm scenarios compare the
relay with two reference relays (bench/minrelay.py, bench/epollrelay.py)
measured in the same run, each figure the median of repeats with the spread.
See bench/README.md.
"""

import argparse
import json
import os
import platform
import resource
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from loadgen import FLOOD, LATENCY  # noqa: E402
from nodecost import FRAME_BUDGET_US, run_nodecost  # noqa: E402
from references import (make_reference_cases, print_reference_table, reference_notes,  # noqa: E402
                        reference_rows, run_reference_case, spread)
from scenarios import make_cases, measure  # noqa: E402

SCENARIOS = ("pingpong", "flood", "classroom", "fanout", "nodecost", "pairs", "joinstorm")
HOP_SCENARIOS = ("pingpong", "classroom")     # also measured through the bare hop
TIME_LIMIT_S = 600          # start no new case after this, so a run stays under about 11 minutes
GEN_SATURATED_PCT = 90.0
RATE_KEPT_PCT = 95.0
RSS_LIMIT_MIB = 40.0
STALL_MS = 2.0              # p99 lateness of scheduled sends (select() alone rounds up to 1 ms)


# ---------------------------------------------------------------------------
# Targets: (case, metric key) -> how to judge it
# ---------------------------------------------------------------------------

def _ratio_at_most(limit):
    return ("<= {:g}x floor".format(limit), lambda relay, floor, ratio: ratio is not None and ratio <= limit)


def _ratio_at_least(fraction):
    return (">= {:.0f}% of floor".format(100 * fraction),
            lambda relay, floor, ratio: ratio is not None and ratio >= fraction)


def _zero():
    return ("0", lambda relay, floor, ratio: relay == 0)


# Targets judged on the worst repeat rather than the median: things that must
# never happen, and a ceiling that must hold everywhere.
JUDGED_ON_WORST = {"lost": max, "out_of_order": max, "completeness_pct": min,
                   "relay_peak_rss_mib": max}


TARGETS = {
    ("pingpong-1", "p50_us"): _ratio_at_most(2.5),
    ("classroom-100", "p99_us"): _ratio_at_most(2.5),
    ("classroom-100", "lost"): _zero(),
    ("classroom-500", "p99_us"): _ratio_at_most(2.5),
    ("classroom-500", "lost"): _zero(),
    ("fanout-200", "p99_us"): _ratio_at_most(3),
    ("fanout-200", "completeness_pct"): ("100%", lambda relay, floor, ratio: relay == 100.0),
    ("flood-1", "frames_per_s"): _ratio_at_least(0.5),
    ("flood-1", "lost"): _zero(),
    ("flood-1", "out_of_order"): _zero(),
    ("flood-10", "frames_per_s"): _ratio_at_least(0.5),
    ("flood-10", "lost"): _zero(),
    ("flood-10", "out_of_order"): _zero(),
    ("flood-10-quota", "lost"): _zero(),
    ("flood-10-quota", "out_of_order"): _zero(),
}

# What each scenario shows: (metric key, label, format)
METRICS = {
    "pingpong": [("p50_us", "round trip p50 (us)", "us"), ("p90_us", "round trip p90 (us)", "us"),
                 ("p99_us", "round trip p99 (us)", "us"), ("max_us", "round trip max (us)", "us"),
                 ("trips_per_s", "trips/s (all pairs)", "int")],
    "flood": [("frames_per_s", "frames/s delivered", "int"), ("mib_per_s", "MiB/s delivered", "f2"),
              ("lost", "frames lost", "int"), ("out_of_order", "frames out of order", "int")],
    "classroom": [("delivered_per_s", "frames delivered/s", "int"), ("p50_us", "latency p50 (us)", "us"),
                  ("p99_us", "latency p99 (us)", "us"), ("max_us", "latency max (us)", "us"),
                  ("lost", "frames lost", "int"), ("send_rate_pct", "send rate kept (% of target)", "f1")],
    "fanout": [("p50_us", "latency p50 (us)", "us"), ("p99_us", "latency p99 (us)", "us"),
               ("max_us", "latency max (us)", "us"), ("completeness_pct", "delivered (% of expected)", "f2"),
               ("send_rate_pct", "send rate kept (% of target)", "f1")],
}
LOWER_IS_BETTER_RATIO = {"p50_us", "p90_us", "p99_us", "max_us"}
THROUGHPUT_RATIO = {"trips_per_s", "frames_per_s", "mib_per_s", "delivered_per_s"}


def _fmt(value, kind):
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if kind == "us":
        return "{:,.1f}".format(value) if value < 1000 else "{:,.0f}".format(value)
    if kind == "int":
        return "{:,.0f}".format(value)
    if kind == "f2":
        return "{:,.2f}".format(value)
    return "{:,.1f}".format(value)


def _fmt_ratio(ratio):
    return "-" if ratio is None else "{:.2f}x".format(ratio)


def _cell(value, kind, figure_spread=None):
    """``value`` (the median), then ``[min-max]`` when it is a median of repeats."""
    text = _fmt(value, kind)
    if figure_spread and figure_spread["n"] > 1 and value is not None:
        text += " [{}-{}]".format(_fmt(figure_spread["min"], kind), _fmt(figure_spread["max"], kind))
    return text


def _ratio_cell(ratio, ratio_spread=None):
    text = _fmt_ratio(ratio)
    if ratio_spread and ratio_spread["n"] > 1 and ratio is not None:
        text += " [{:.2f}-{:.2f}]".format(ratio_spread["min"], ratio_spread["max"])
    return text


# ---------------------------------------------------------------------------
# Repeats: one set of figures per mode, medians with their spread
# ---------------------------------------------------------------------------

def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def combine_runs(runs):
    """One mode's repeats as one set of figures: the median of every number
    (and its spread under "spread"), other values from the first good run;
    "error" only if every repeat failed (else "errors" lists the failures)."""
    good = [r for r in runs if "error" not in r]
    errors = [r["error"] for r in runs if "error" in r]
    if not good:
        merged = dict(runs[-1])
        merged["errors"] = errors
        return merged
    merged, spreads = {}, {}
    for key, value in good[0].items():
        values = [r.get(key) for r in good]
        if all(_is_number(v) for v in values):
            spreads[key] = spread(values)
            merged[key] = spreads[key]["median"]
        else:
            merged[key] = value
    for r in good:                      # the first run that saw it tells what went wrong
        for key in ("lost_example", "relay_output"):
            if key in r and key not in merged:
                merged[key] = r[key]
    merged["spread"] = spreads
    merged["repeats"] = len(runs)
    if errors:
        merged["errors"] = errors
    return merged


def _worst(figures, key, pick=max):
    """The worst repeat's value of ``key`` (``pick`` max or min), else the value."""
    figure_spread = figures.get("spread", {}).get(key)
    if figure_spread:
        return pick(figure_spread["min"], figure_spread["max"])
    return figures.get(key)


def _paired_ratios(entry, key, mode):
    """Spread of ``mode`` ÷ floor, repeat by repeat (the two ran one after the other)."""
    runs, floors = entry.get("runs", {}).get(mode, []), entry.get("runs", {}).get("floor", [])
    return spread([_ratio(key, a.get(key), b.get(key)) for a, b in zip(runs, floors)
                   if "error" not in a and "error" not in b])


# ---------------------------------------------------------------------------
# Rows of the table
# ---------------------------------------------------------------------------

def _ratio(key, value, floor):
    if key not in LOWER_IS_BETTER_RATIO and key not in THROUGHPUT_RATIO:
        return None
    if isinstance(value, (int, float)) and isinstance(floor, (int, float)) and floor:
        return value / floor
    return None


def case_rows(entry):
    """Rows (dicts) for one relay-vs-floor case (with the bare hop, if it ran).
    Figures are medians of the repeats; a ratio is the median of the
    per-repeat ratios. Targets are judged on those medians, except the ones
    in JUDGED_ON_WORST, judged on the worst repeat."""
    name, scenario = entry["name"], entry["scenario"]
    relay, floor, hop = entry["relay"], entry["floor"], entry.get("hop", {})
    notes = case_notes(entry)
    rows = []
    for key, label, kind in METRICS[scenario]:
        r, f, h = relay.get(key), floor.get(key), hop.get(key)
        ratio_spread, hop_ratio_spread = _paired_ratios(entry, key, "relay"), _paired_ratios(entry, key, "hop")
        ratio = ratio_spread["median"] if ratio_spread else _ratio(key, r, f)
        hop_ratio = hop_ratio_spread["median"] if hop_ratio_spread else _ratio(key, h, f)
        target, verdict, hop_verdict = None, None, None
        if (name, key) in TARGETS:
            target, judge = TARGETS[(name, key)]
            pick = JUDGED_ON_WORST.get(key)
            judged, judged_hop = (_worst(relay, key, pick), _worst(hop, key, pick)) if pick else (r, h)
            verdict = "FAIL" if "error" in relay or judged is None else (
                "PASS" if judge(judged, f, ratio) else "FAIL")
            if judged_hop is not None and "error" not in hop:
                hop_verdict = "PASS" if judge(judged_hop, f, hop_ratio) else "FAIL"
        rows.append({"case": name, "metric": label, "key": key, "relay": r, "floor": f,
                     "ratio": ratio, "hop": h, "hop_ratio": hop_ratio, "target": target,
                     "result": verdict, "hop_result": hop_verdict, "kind": kind,
                     "note": "; ".join(notes),
                     "relay_spread": relay.get("spread", {}).get(key),
                     "floor_spread": floor.get("spread", {}).get(key),
                     "hop_spread": hop.get("spread", {}).get(key),
                     "ratio_spread": ratio_spread, "hop_ratio_spread": hop_ratio_spread})
    rows += process_rows(name, relay, hop)
    return rows


def process_rows(name, relay, hop=None):
    rss = relay.get("relay_peak_rss_mib")
    worst_rss = _worst(relay, "relay_peak_rss_mib")
    hop = hop or {}
    return [
        {"case": name, "metric": "relay CPU (% of one core)", "key": "relay_cpu_pct",
         "relay": relay.get("relay_cpu_pct"), "floor": None, "ratio": None,
         "hop": hop.get("relay_cpu_pct"), "target": None,
         "result": None, "kind": "f1", "note": "",
         "relay_spread": relay.get("spread", {}).get("relay_cpu_pct"),
         "hop_spread": hop.get("spread", {}).get("relay_cpu_pct")},
        {"case": name, "metric": "relay peak RSS (MiB)", "key": "relay_peak_rss_mib",
         "relay": rss, "floor": None, "ratio": None, "target": "< {:g} MiB".format(RSS_LIMIT_MIB),
         "result": None if worst_rss is None else ("PASS" if worst_rss < RSS_LIMIT_MIB else "FAIL"),
         "kind": "f1", "note": "", "relay_spread": relay.get("spread", {}).get("relay_peak_rss_mib")},
    ]


def case_notes(entry):
    notes = []
    for mode in ("relay", "floor", "hop"):
        figures = entry.get(mode)
        if figures is None:
            continue
        if "error" in figures:
            notes.append("{} ERROR: {}".format(mode, figures["error"]))
        elif figures.get("errors"):
            notes.append("{}: {} of {} repeats failed, e.g. {}".format(
                mode, len(figures["errors"]), figures.get("repeats"), figures["errors"][0]))
        # Warnings look at the worst repeat.
        cpu = _worst(figures, "generator_cpu_pct")
        if cpu is not None and cpu > GEN_SATURATED_PCT:
            notes.append("{}: generator used {:.0f}% of a core, figure may be the generator's "
                         "limit".format(mode, cpu))
        rate = _worst(figures, "send_rate_pct", min)
        if rate is not None and rate < RATE_KEPT_PCT:
            notes.append("{}: sent only {:.1f}% of the scheduled frames".format(mode, rate))
        late = _worst(figures, "send_late_p99_ms")
        if late is not None and late > STALL_MS:
            notes.append("{}: 1% of the sends went out over {:.1f} ms late: the generator was busy "
                         "or held up (other load?), latency tails are suspect".format(mode, late))
        if _worst(figures, "connections_lost"):
            notes.append("{}: {} connection(s) lost ({})".format(
                mode, _worst(figures, "connections_lost"), figures.get("lost_example")))
        if _worst(figures, "malformed"):
            notes.append("{}: {} malformed frame(s)".format(mode, _worst(figures, "malformed")))
        if figures.get("relay_output"):
            notes.append("relay said: {}".format(figures["relay_output"][0][:100]))
    return notes


def nodecost_rows(result):
    rows = []
    notes = ["ERROR: " + result["error"]] if "error" in result else []

    def row(metric, key, value, kind, target=None, verdict=None, note=""):
        rows.append({"case": "nodecost", "metric": metric, "key": key, "relay": value,
                     "floor": None, "ratio": None, "target": target, "result": verdict,
                     "kind": kind, "note": note})

    limit_us = FRAME_BUDGET_US / 100
    for who in ("host", "guest"):
        figures = result.get(who, {})
        row("{} recv+send p50 (us)".format(who), who + "_p50_us", figures.get("p50_us"), "us",
            note="; ".join(notes))
        p99 = figures.get("p99_us")
        row("{} recv+send p99 (us)".format(who), who + "_p99_us", p99, "us",
            "< {:.0f} us (1% of frame)".format(limit_us),
            "FAIL" if p99 is None else ("PASS" if p99 < limit_us else "FAIL"))
        row("{} recv+send max (us)".format(who), who + "_max_us", figures.get("max_us"), "us")
        row("{} p99 as % of 16.7 ms".format(who), who + "_p99_pct",
            figures.get("p99_pct_of_frame"), "f2")
        busy = result.get(who + "_busy", {})
        row("{} busy CPU: p50 (us)".format(who), who + "_busy_p50_us", busy.get("p50_us"), "us")
        row("{} busy CPU: p99 (us)".format(who), who + "_busy_p99_us", busy.get("p99_us"), "us")
        bare = result.get(who + "_bare", {})
        row("{} bare syscalls: p50 (us)".format(who), who + "_bare_p50_us", bare.get("p50_us"), "us")
        row("{} bare syscalls: p99 (us)".format(who), who + "_bare_p99_us", bare.get("p99_us"), "us")
    row("1,000-frame backlog, median (us)", "backlog_median_us",
        result.get("backlog_median_us"), "us")
    row("backlog as % of 16.7 ms", "backlog_pct", result.get("backlog_median_pct_of_frame"), "f1")
    rows += process_rows("nodecost", result)
    return rows


def print_table(rows):
    header = ("case", "metric", "relay", "floor", "ratio", "target", "result",
              "bare hop", "hop ratio")
    cells = [header]
    for row in rows:
        kind = row["kind"]
        cells.append((row["case"], row["metric"], _cell(row["relay"], kind, row.get("relay_spread")),
                      _cell(row["floor"], kind, row.get("floor_spread")),
                      _ratio_cell(row["ratio"], row.get("ratio_spread")),
                      row["target"] or "", row["result"] or "",
                      _cell(row.get("hop"), kind, row.get("hop_spread")),
                      _ratio_cell(row.get("hop_ratio"), row.get("hop_ratio_spread"))))
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    right = {2, 3, 4, 7, 8}

    def line(c):
        return "  ".join(c[i].rjust(widths[i]) if i in right else c[i].ljust(widths[i])
                         for i in range(len(c))).rstrip()

    print(line(header))
    print("  ".join("-" * w for w in widths))
    previous, printed_notes = None, set()
    for row, c in zip(rows, cells[1:]):
        if previous is not None and row["case"] != previous:
            print()
        previous = row["case"]
        print(line(c))
        if row["note"] and row["case"] not in printed_notes:
            printed_notes.add(row["case"])
            for note in row["note"].split("; "):
                print("    ! " + note)


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

def machine_facts():
    model = ""
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = ""
    try:
        with open("/proc/meminfo") as file:
            memory = "{:.1f} GiB".format(int(file.readline().split()[1]) / 2 ** 20)
    except (OSError, ValueError, IndexError):
        pass
    return {"cores": os.cpu_count(), "cpu": model, "memory": memory,
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(), "implementation": platform.python_implementation(),
            "platform": platform.platform(), "open_files_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0]}


def nethelper_version():
    """The commit and state of the nethelper.py being measured (None outside git)."""
    import subprocess
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        commit = subprocess.run(["git", "log", "-1", "--format=%h", "--", "nethelper.py"], cwd=root,
                                timeout=5, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "nethelper.py"], cwd=root,
                               timeout=5, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return "{}{}".format(commit, " + uncommitted changes" if dirty else "") if commit else None


def raise_open_file_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 65536
    if soft != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


def selected(name, scenario, only):
    return not only or scenario in only or name in only


def main(argv=None):
    parser = argparse.ArgumentParser(description="Benchmark the nethelper relay against a no-relay floor.")
    parser.add_argument("--quick", action="store_true", help="short smoke run of every scenario (~50 s)")
    parser.add_argument("--json", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                       "results.json"),
                        metavar="PATH", help="where to write every figure (default bench/results.json)")
    parser.add_argument("--only", metavar="SCENARIO",
                        help="run only these scenarios or cases, comma-separated: {} "
                             "(or a case such as classroom-500)".format(", ".join(SCENARIOS)))
    parser.add_argument("--profile", metavar="DIR",
                        help="run every relay under cProfile and write DIR/<case>.prof "
                             "(the figures are then slowed down by the profiler)")
    parser.add_argument("--pin", action="store_true",
                        help="pin the generator to one CPU and every relay to another, so that "
                             "the scheduler's placement does not change the figures")
    parser.add_argument("--repeats", type=int, metavar="N",
                        help="repeats of every case (default 3, 5 for joinstorm; with --quick: "
                             "1 for the relay/floor cases, 3 for pairs and joinstorm)")
    args = parser.parse_args(argv)
    if args.repeats is not None and not 1 <= args.repeats <= 20:
        parser.error("--repeats must be 1 to 20")
    only = set(filter(None, (args.only or "").split(",")))
    repeats = args.repeats or (1 if args.quick else 3)
    relay_cpus = None
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            parser.error("--pin needs two CPUs; this process may use {}".format(cpus))
        os.sched_setaffinity(0, {cpus[0]})
        relay_cpus = {cpus[1]}

    def stop(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop)
    raise_open_file_limit()

    began = time.monotonic()
    facts = machine_facts()
    print("nethelper benchmark: {} cores ({}), {}, Python {} ({}), open files {}".format(
        facts["cores"], facts["cpu"] or "?", facts["memory"], facts["python"],
        facts["implementation"], facts["open_files_limit"]))
    facts["nethelper"] = nethelper_version()
    print("nethelper.py at {}".format(facts["nethelper"] or "?"))
    print("load average at start: {} (other work on this machine skews the figures)".format(
        " ".join("{:.2f}".format(x) for x in facts["load_average_at_start"])))
    print("frames: latency {} bytes, flood {} bytes; mode: {}{}{}".format(
        LATENCY.length, FLOOD.length, "quick" if args.quick else "full",
        ", relays under cProfile" if args.profile else "",
        ", generator pinned to CPU {} and relays to CPU {}".format(
            min(os.sched_getaffinity(0)), min(relay_cpus)) if relay_cpus else ""), flush=True)
    if args.profile:
        os.makedirs(args.profile, exist_ok=True)

    cases = [c for c in make_cases(args.quick) if selected(c.name, c.scenario, only)]
    want_nodecost = selected("nodecost", "nodecost", only)
    reference_cases = [c for c in make_reference_cases(args.quick, args.repeats)
                       if selected(c.name, c.scenario, only)]
    if not cases and not want_nodecost and not reference_cases:
        parser.error("--only {}: no such scenario or case".format(args.only))
    entries, nodecost, skipped, reference_entries = [], None, [], []
    interrupted = False
    try:
        with tempfile.TemporaryDirectory(prefix="nethelper-bench-") as workdir:
            for case in cases:
                if time.monotonic() - began > TIME_LIMIT_S:
                    skipped.append(case.name)
                    continue
                profile = os.path.join(args.profile, case.name + ".prof") if args.profile else None
                t0 = time.monotonic()
                entry = {"name": case.name, "scenario": case.scenario, "nodes": case.node_count,
                         "params": case.params, "repeats": repeats}
                modes = ("relay", "floor", "hop") if case.scenario in HOP_SCENARIOS else ("relay", "floor")
                runs = entry["runs"] = {mode: [] for mode in modes}
                for _ in range(repeats):        # interleaved, so the noise falls on every mode
                    runs["relay"].append(measure(case, "relay", workdir, profile, relay_cpus))
                    runs["floor"].append(measure(case, "floor", workdir))
                    if "hop" in runs:
                        runs["hop"].append(measure(case, "hop", workdir, relay_cpus=relay_cpus))
                for mode in modes:
                    entry[mode] = combine_runs(runs[mode])
                entries.append(entry)
                print("  {:<14} {:>5} nodes  {} x {}  done in {:5.1f} s{}".format(
                    case.name, case.node_count, repeats, ", ".join(modes), time.monotonic() - t0,
                    "  (errors)" if any("error" in run for r in runs.values() for run in r) else ""),
                    flush=True)
            if want_nodecost:
                if time.monotonic() - began > TIME_LIMIT_S:
                    skipped.append("nodecost")
                else:
                    t0 = time.monotonic()
                    profile = os.path.join(args.profile, "nodecost.prof") if args.profile else None
                    nodecost = run_nodecost(workdir, frames=120 if args.quick else 600,
                                            repeats=2 if args.quick else 5, profile=profile,
                                            relay_cpus=relay_cpus)
                    print("  {:<14} {:>5} nodes  done in {:5.1f} s".format(
                        "nodecost", 2, time.monotonic() - t0), flush=True)
            for case in reference_cases:
                if time.monotonic() - began > TIME_LIMIT_S:
                    skipped.append(case.name)
                    continue
                t0 = time.monotonic()
                entry = run_reference_case(case, workdir, relay_cpus=relay_cpus)
                entry["notes"] = reference_notes(entry)
                entry["rows"] = reference_rows(entry)
                reference_entries.append(entry)
                print("  {:<14} {} x relay, asyncio ref, epoll ref  done in {:5.1f} s".format(
                    case.name, case.repeats, time.monotonic() - t0), flush=True)
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: reporting what was measured so far", flush=True)

    rows = []
    for entry in entries:
        rows += case_rows(entry)
    if nodecost is not None:
        rows += nodecost_rows(nodecost)
    if rows:
        print()
        print_table(rows)
    reference_rows_all = [r for e in reference_entries for r in e["rows"]]
    if reference_entries:
        print()
        print("The relay against reference relays (same framing, no rules) measured in the same run:")
        print("median [min-max] of the repeats; ratios: median [min-max] of the per-repeat ratios")
        print()
        print_reference_table(reference_entries)
    failed = ["{} {}{}".format(r["case"], r["metric"], " (noisy)" if r.get("noisy") else "")
              for r in rows + reference_rows_all if r["result"] == "FAIL"]
    total = time.monotonic() - began
    print()
    if skipped:
        print("skipped (time limit): " + ", ".join(skipped))
    noisy = sum(1 for r in reference_rows_all if r.get("noisy"))
    print("targets: {} passed, {} failed{}{}".format(
        sum(r["result"] == "PASS" for r in rows + reference_rows_all), len(failed),
        " ({} verdict(s) on noisy runs, marked (noisy))".format(noisy) if noisy else "",
        ": " + "; ".join(failed) if failed else ""))
    out_of_reach = ["{} {} ({:.2f}x)".format(r["case"], r["metric"], r["hop_ratio"])
                    for r in rows if r.get("hop_result") == "FAIL" and r.get("hop_ratio")]
    if out_of_reach:
        print("the bare hop alone misses these targets (no relay could meet them here): "
              + "; ".join(out_of_reach))
    refs_miss = ["{} {} (asyncio ref {}, epoll ref {})".format(
        r["case"], r["metric"], r["reference_results"]["asyncio"], r["reference_results"]["epoll"])
        for r in reference_rows_all if "FAIL" in r.get("reference_results", {}).values()]
    if refs_miss:
        print("reference relays that miss the same absolute target (hard or out of reach on this "
              "machine in this run): " + "; ".join(refs_miss))
    print("total run time: {:.1f} s".format(total))

    facts["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report = {"machine": facts, "mode": "quick" if args.quick else "full",
              "only": sorted(only), "profiled": bool(args.profile),
              "pinned": {"generator": sorted(os.sched_getaffinity(0)),
                         "relay": sorted(relay_cpus)} if relay_cpus else None,
              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(time.time() - total)),
              "total_s": total, "interrupted": interrupted, "skipped": skipped,
              "frame_bytes": {"latency": LATENCY.length, "flood": FLOOD.length},
              "cases": entries, "nodecost": nodecost,
              "rows": [{k: v for k, v in r.items() if k != "kind"} for r in rows],
              "reference_cases": reference_entries,
              "failed_targets": failed, "targets_the_bare_hop_misses": out_of_reach}
    with open(args.json, "w", encoding="utf-8") as file:
        json.dump(report, file, indent=1)
    print("figures written to {}".format(args.json))
    errors = any("error" in run for e in entries for runs in e["runs"].values() for run in runs) or (
        nodecost is not None and "error" in nodecost) or any(
        "error" in run for e in reference_entries for runs in e["runs"].values() for run in runs)
    return 130 if interrupted else (1 if errors else 0)


if __name__ == "__main__":
    sys.exit(main())
