"""The relay against reference relays: pairs at 60 Hz and the join storm,
each run repeated, interleaved and summed up as median and spread.

Every repeat runs the relay, the asyncio reference (minrelay.py) and the
epoll reference (epollrelay.py), each fresh, one after the other (the order
turns round from one repeat to the next: relay first, then asyncio first...),
so that the noise of this shared machine falls on all three alike. A figure is the median of the
repeats with their min and max; a ratio is the median of the per-repeat
ratios (relay of repeat i / reference of repeat i, measured seconds apart)
with their min and max.
"""

import time

from joinstorm import run_storm_once
from pairs import KINDS, run_pairs_once

REFERENCES = ("asyncio", "epoll")
GEN_LATE_MS = 2.0           # generator lateness p99 over this: latency tails are suspect
RATE_KEPT_PCT = 95.0
GEN_SATURATED_PCT = 90.0
RELAY_WAIT_PCT = 10.0       # the relay waited for its CPU this long: other programs held it up


class ReferenceCase:
    def __init__(self, name, scenario, run, repeats, **params):
        self.name, self.scenario, self.run = name, scenario, run
        self.repeats, self.params = repeats, params


def make_reference_cases(quick, repeats=None):
    if quick:
        return [ReferenceCase("pairs-50", "pairs", run_pairs_once, repeats or 3, pairs=50,
                              warmup_s=0.3, window_s=0.7),
                ReferenceCase("joinstorm", "joinstorm", run_storm_once, repeats or 3, clients=1000)]
    return [ReferenceCase("pairs-{}".format(n), "pairs", run_pairs_once, repeats or 3, pairs=n,
                          warmup_s=1.0, window_s=3.0) for n in (400, 800)] + [
        ReferenceCase("joinstorm", "joinstorm", run_storm_once, repeats or 5, clients=1000)]


# What each scenario shows: (key, label, format, ratio against the references?)
METRICS = {
    "pairs": [("cpu_us_per_frame", "relay CPU per forwarded frame (us)", "f2", True),
              ("relay_cpu_pct", "relay CPU (% of its core)", "f1", True),
              ("relay_cpu_wait_pct", "relay waiting for its core (%)", "f1", False),
              ("frames_per_wakeup", "frames forwarded per relay sleep", "f1", False),
              ("p50_ms", "one-way latency p50 (ms)", "f2", True),
              ("p99_ms", "one-way latency p99 (ms)", "f2", True),
              ("max_ms", "one-way latency max (ms)", "f1", True),
              ("lost", "frames lost", "int", False),
              ("frames_per_s", "frames forwarded per s", "int", False),
              ("send_rate_pct", "send rate kept (% of 60 Hz)", "f1", False),
              ("send_late_p99_ms", "generator lateness p99 (ms)", "f2", False),
              ("generator_cpu_pct", "generator CPU (% of a core, busier)", "f1", False),
              ("peak_rss_mib", "relay peak RSS (MiB)", "f1", True),
              ("turn_p99_ms", "relay's own time per loop turn, p99 (ms)", "f2", False),
              ("turn_max_ms", "relay's own time per loop turn, max (ms)", "f2", False),
              ("turns_per_s", "relay loop turns per s", "int", False)],
    "joinstorm": [("last_ms", "last of 1,000 in (ms)", "f1", True),
                  ("median_ms", "median client in (ms)", "f1", True),
                  ("joined_by_0_2_s", "clients in within 0.2 s", "int", False),
                  ("listen_backlog", "listen backlog (ss Send-Q)", "int", False),
                  ("listen_overflows", "attempts dropped, accept queue full", "int", False)],
}


def _cpu_ratio_at_most(limit, reference="asyncio"):
    return ("<= {:g}x {} ref".format(limit, reference),
            lambda relay, ratio: ratio is not None and ratio <= limit, reference)


def _at_most(limit, unit):
    return ("<= {:g} {}".format(limit, unit), lambda relay, ratio: relay is not None and relay <= limit)


ABSOLUTE_TARGETS = {("pairs-800", "p99_ms"), ("joinstorm", "last_ms")}     # also judged for the references


TARGETS = {     # judged on the medians
    ("pairs-400", "cpu_us_per_frame"): _cpu_ratio_at_most(1.05, "epoll"),
    ("pairs-800", "cpu_us_per_frame"): _cpu_ratio_at_most(0.8),
    ("pairs-800", "p99_ms"): _at_most(5, "ms"),
    ("joinstorm", "last_ms"): _at_most(200, "ms"),
}


# ---------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------

def run_reference_case(case, workdir, relay_cpus=None, generator_cpus=None, progress=None):
    """Every repeat of every kind; returns the case's entry for the report."""
    runs = {kind: [] for kind in KINDS}
    for repeat in range(case.repeats):
        turn = repeat % len(KINDS)
        for kind in KINDS[turn:] + KINDS[:turn]:
            t0 = time.monotonic()
            params = dict(case.params)
            if case.scenario == "pairs":
                params["generator_cpus"] = generator_cpus
            figures = case.run(kind, workdir=workdir, relay_cpus=relay_cpus, **params)
            figures["run_s"] = time.monotonic() - t0
            if "frames_forwarded" in figures and figures.get("window_s"):
                figures["frames_per_s"] = figures["frames_forwarded"] / figures["window_s"]
            runs[kind].append(figures)
            if progress:
                progress(case, repeat, kind, figures)
    entry = {"name": case.name, "scenario": case.scenario, "repeats": case.repeats,
             "params": case.params, "runs": runs}
    entry["summary"], entry["ratios"] = summarise(case.scenario, runs)
    return entry


def summarise(scenario, runs):
    """{key: {kind: spread}} and {key: {reference: spread of per-repeat ratios}}."""
    summary, ratios = {}, {}
    for key, _label, _kind, with_ratio in METRICS[scenario]:
        summary[key] = {kind: spread([r.get(key) for r in runs[kind] if "error" not in r])
                        for kind in KINDS}
        if with_ratio:
            ratios[key] = {}
            for ref in REFERENCES:
                pairs = zip(runs["relay"], runs[ref])
                ratios[key][ref] = spread([a.get(key) / b.get(key) for a, b in pairs
                                           if "error" not in a and "error" not in b
                                           and _number(a.get(key)) and _number(b.get(key))
                                           and b.get(key) > 0])
    return summary, ratios


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def spread(values):
    """{"median", "min", "max", "n", "values"} of the numbers in ``values`` (None if none)."""
    values = [v for v in values if _number(v)]
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return {"median": median, "min": ordered[0], "max": ordered[-1], "n": len(ordered),
            "values": values}


# ---------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------

def contention(entry):
    """The highest median share of the window that the relay under test or
    the asyncio reference spent waiting for its core (None if not measured)."""
    waits = [entry["summary"].get("relay_cpu_wait_pct", {}).get(kind) for kind in ("relay", "asyncio")]
    waits = [w["median"] for w in waits if w]
    return max(waits) if waits else None


def reference_rows(entry):
    """Rows of the table. Targets are judged on the medians; in a case where
    the relay or the asyncio reference waited for its core more than
    RELAY_WAIT_PCT of the window (median), the verdict says "(noisy)": the
    machine was too busy for the figure to mean much (see README)."""
    name, scenario = entry["name"], entry["scenario"]
    waited = contention(entry)
    noisy = waited is not None and waited > RELAY_WAIT_PCT
    rows = []
    for key, label, kind, _with_ratio in METRICS[scenario]:
        figures = entry["summary"][key]
        ratios = entry["ratios"].get(key, {})
        relay = figures["relay"]
        target = verdict = None
        reference_verdicts = {}
        if (name, key) in TARGETS:
            target, judge, *against = TARGETS[(name, key)]
            ratio = ratios.get(against[0] if against else "asyncio")
            verdict = "PASS" if judge(relay and relay["median"], ratio and ratio["median"]) else "FAIL"
            if (name, key) in ABSOLUTE_TARGETS:
                for ref in REFERENCES:
                    mine = figures[ref]
                    reference_verdicts[ref] = "PASS" if judge(mine and mine["median"], None) else "FAIL"
        rows.append({"case": name, "metric": label, "key": key, "kind": kind,
                     "relay": relay, "asyncio": figures["asyncio"], "epoll": figures["epoll"],
                     "ratio_asyncio": ratios.get("asyncio"), "ratio_epoll": ratios.get("epoll"),
                     "target": target, "result": verdict, "reference_results": reference_verdicts,
                     "noisy": bool(verdict and noisy)})
    return rows


def reference_notes(entry):
    """Warnings for the case: errors, a generator that fell behind, frames lost..."""
    notes = []
    waited = contention(entry)
    judged = any(name == entry["name"] for name, _key in TARGETS)
    if judged and waited is not None and waited > RELAY_WAIT_PCT:
        notes.append("verdicts marked (noisy): the relay or the asyncio reference waited for its "
                     "core {:.0f}% of the window (median of the repeats; other programs had it), "
                     "so its CPU per frame and latencies are skewed; rerun when the machine is "
                     "quieter".format(waited))
    for kind, runs in entry["runs"].items():
        errors = [r["error"] for r in runs if "error" in r]
        if errors:
            notes.append("{}: {} of {} runs failed, e.g. {}".format(kind, len(errors), len(runs),
                                                                     errors[0][:120]))
        ok = [r for r in runs if "error" not in r]
        late = max((r.get("send_late_p99_ms", 0) for r in ok), default=0)
        if late > GEN_LATE_MS:
            notes.append("{}: the generator ran late (send lateness p99 up to {:.1f} ms): "
                         "latency figures are partly the generator's".format(kind, late))
        rate = min((r.get("send_rate_pct", 100) for r in ok), default=100)
        if rate < RATE_KEPT_PCT:
            notes.append("{}: the generator sent only {:.1f}% of the scheduled frames in a run".format(
                kind, rate))
        waited = max((r.get("relay_cpu_wait_pct", 0) for r in ok), default=0)
        if waited > RELAY_WAIT_PCT:
            notes.append("{}: other programs kept the relay from its core {:.0f}% of a window "
                         "(its CPU per frame falls when it is held up: it then reads many frames "
                         "per wake-up)".format(kind, waited))
        busy = max((r.get("generator_cpu_pct", 0) for r in ok), default=0)
        if busy > GEN_SATURATED_PCT:
            notes.append("{}: a generator process used {:.0f}% of a core".format(kind, busy))
        out = [r for r in ok if r.get("not_joined")]
        if out:
            notes.append("{}: in {} of {} storms, up to {} client(s) were still not in after the "
                         "{:g} s limit (counted as in at the limit)".format(
                             kind, len(out), len(ok), max(r["not_joined"] for r in out),
                             out[0]["limit_s"]))
        lost = sum(r.get("lost", 0) for r in ok)
        if lost:
            notes.append("{}: {} frame(s) lost over {} runs".format(kind, lost, len(ok)))
        said = [line for r in runs for line in r.get("relay_output", [])]
        if said:
            notes.append("{} said: {}".format(kind, said[0][:120]))
    return notes


def _cell(figure, kind):
    if figure is None:
        return "-"
    fmt = {"f1": "{:,.1f}", "f2": "{:,.2f}", "int": "{:,.0f}"}[kind]
    median = fmt.format(figure["median"])
    if figure["n"] < 2:
        return median
    return "{} [{}-{}]".format(median, fmt.format(figure["min"]), fmt.format(figure["max"]))


def _ratio_cell(figure):
    if figure is None:
        return "-"
    if figure["n"] < 2:
        return "{:.2f}x".format(figure["median"])
    return "{:.2f}x [{:.2f}-{:.2f}]".format(figure["median"], figure["min"], figure["max"])


def print_reference_table(entries):
    header = ("case", "metric", "relay", "asyncio ref", "relay/asyncio", "target", "result",
              "epoll ref", "relay/epoll")
    cells = [header]
    case_of_line = [None]
    for entry in entries:
        for row in entry["rows"]:
            cells.append((row["case"], row["metric"], _cell(row["relay"], row["kind"]),
                          _cell(row["asyncio"], row["kind"]), _ratio_cell(row["ratio_asyncio"]),
                          row["target"] or "",
                          (row["result"] or "") + (" (noisy)" if row.get("noisy") else ""),
                          _cell(row["epoll"], row["kind"]), _ratio_cell(row["ratio_epoll"])))
            case_of_line.append(entry)
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    right = {2, 3, 4, 7, 8}

    def line(c):
        return "  ".join(c[i].rjust(widths[i]) if i in right else c[i].ljust(widths[i])
                         for i in range(len(c))).rstrip()

    print(line(header))
    print("  ".join("-" * w for w in widths))
    for i, (c, entry) in enumerate(zip(cells[1:], case_of_line[1:])):
        last_of_case = i + 2 >= len(cells) or case_of_line[i + 2] is not entry
        print(line(c))
        if last_of_case:
            for note in entry["notes"]:
                print("    ! " + note)
            if i + 2 < len(cells):
                print()
