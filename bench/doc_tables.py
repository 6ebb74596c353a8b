"""The headline tables of the README and docs/, rendered from the committed reports.

``python -m bench.doc_tables`` rewrites every table between its marker comments::

    <!-- table:NAME from bench/results/a.json bench/results/b.json -->
    ...rendered from those reports, never edited by hand...
    <!-- /table -->

``python -m bench.doc_tables --check`` changes nothing and exits 1 naming every table whose
text is not what its reports give (tests/bench/test_doc_tables.py runs the same check). Each
table says which report every row comes from, and each report's machine (``lscpu`` model name and
the flags it recorded), load and command, or "not recorded" where an older report lacks them.
Every table appears once in its document, except an optional one (a scoreboard the documents
may not cite yet), which appears at most once.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from bench import search_quality
from bench.summary import TARGETS, summarize
from mmnas_tf.benchmark.scoreboard import (
    PARTS,
    budget_paired,
    decoder_starts_with,
    ranking_split,
    render_budget_pairs,
    render_markdown,
    scoreboard_statistics,
)
from mmnas_tf.benchmark.table import Table as GroundTruth

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = "bench/results"
#: every ``bench/results/...`` path cited in a document (the test checks each one exists)
CITED = re.compile(r"bench/results/[\w./-]*\w")
MARKER = re.compile(
    r"<!-- table:(?P<name>[\w-]+)(?: from (?P<reports>[^>]*?))? -->\n(?P<body>.*?)<!-- /table -->",
    re.DOTALL,
)
#: flags that tell this project's machine kinds apart (AVX2 only, AVX-512, AMX)
KIND_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
#: the evaluation-without-padding target of docs/performance.md ("No work on padding")
EVAL_PADDING_TARGET = 1.5
VARIANT_NAMES = {
    "graph": "graph",
    "xla": "XLA",
    "graph_fused_adam": "graph + FusedAdam",
    "xla_fused_adam": "XLA + FusedAdam",
}


# ---- reading a report's context: machine, load, command ---------------------------------------


def machine_kind(flags: list[str] | None) -> str:
    """``AMX``, ``AVX-512, no AMX``, ``AVX2, no AVX-512`` from CPU flags (None: not recorded)."""
    if flags is None:
        return "kind not recorded"
    if "amx_bf16" in flags:
        return "AMX"
    if "avx512f" in flags:
        return "AVX-512, no AMX"
    return "AVX2, no AVX-512" if "avx2" in flags else "no AVX2"


def _flags(report: dict) -> list[str] | None:
    """The CPU flags a report recorded: ``lscpu_flags`` (every flag, written through
    ``bench.common.report_context``), else bench.run's ``simd`` subset (the peak entry's), else
    None."""
    machines = [report.get("machine") or {}]
    machines += [e.get("machine") or {} for e in (report.get("entries") or {}).values()]
    for key in ("lscpu_flags", "simd"):
        for m in machines:
            if m.get(key):
                return m[key]
    return None


def _short_command(command: str) -> str:
    """The command with absolute paths cut to their file name (they name the machine's folders)."""
    return re.sub(r"(?<![\w.])/(?:[\w.-]+/)+([\w.-]+)", r"\1", command)


def _uptime_load(text: str | None) -> str | None:
    """The 1-minute load of an ``uptime`` line (``... load average: 22.53, 17.95, 10.60``)."""
    found = re.search(r"load average: ([\d.]+)", text or "")
    return _f(float(found.group(1)), 2) if found else None


def _loads(report: dict) -> str:
    """The 1-minute load average a report recorded, in whichever form its writer used."""
    load = report.get("load_average_1min")
    if isinstance(load, dict) and "start" in load:  # bench.run: start and end of the run
        end = f" -> {_f(load['end'], 2)}" if load.get("end") is not None else ""
        return f"{_f(load['start'], 2)}{end}"
    after = _uptime_load(report.get("uptime_after"))
    if isinstance(load, (int, float)):  # bench.common.report_context: at the start
        return _f(load, 2) + (f" -> {after}" if after else "")
    before = _uptime_load((report.get("machine") or {}).get("uptime_before"))
    after = after or _uptime_load((report.get("machine") or {}).get("uptime_after"))
    if before and after:  # older eval_padding reports: `uptime` before and after
        return f"{before} -> {after} (`uptime`)"
    entries = {k: v.get("load_average") for k, v in report.items() if isinstance(v, dict)}
    entries = {k: v for k, v in entries.items() if isinstance(v, dict)}
    if entries:  # bf16_speed: one entry per run
        return ", ".join(
            f"{_f(v['start'], 2)} -> {_f(v['end'], 2)} ({k})" for k, v in entries.items()
        )
    runs = [r.get(k) for r in report.get("runs") or [] for k in ("load_before", "load_after")]
    runs = [v for v in runs if v is not None]
    if runs:  # bf16_accuracy: before and after each training
        return f"{_f(min(runs), 2)}-{_f(max(runs), 2)} over its runs"
    return "not recorded"


def _hardware_path(report: dict) -> str | None:
    """``mmnas_tf.precision``'s hardware path, which the bf16 reports record instead of flags."""
    found = [report.get("hardware_path")]
    found += [v.get("hardware_path") for v in report.values() if isinstance(v, dict)]
    return next((h for h in found if h), None)


def _run_provenances(report: dict) -> list[dict]:
    """The provenance of every run a table (``genotypes`` -> ``runs``) or a scoreboard
    (``estimators`` -> ``provenance``, one per search) recorded."""
    runs = [
        r.get("provenance") for e in (report.get("genotypes") or {}).values() for r in e["runs"]
    ]
    for e in (report.get("estimators") or {}).values():
        runs += e.get("provenance") or []
    return [p for p in runs if p]


def _runs_machines(report: dict, runs: list[dict]) -> str:
    """``machine "MODEL" (N runs, KIND[, 2 cores])`` per kind of machine the runs recorded."""
    seen: dict[tuple, int] = {}
    for p in runs:
        flags = (report.get("cpu_flags") or {}).get(p.get("cpu_flags"))
        kind = machine_kind(flags.split()) if flags else p.get("machine_kind", "kind not recorded")
        cores = (p.get("threads") or {}).get("cpus")
        key = (p.get("cpu_model"), kind, cores, bool(p.get("backfilled")))
        seen[key] = seen.get(key, 0) + 1
    parts = []
    for (model, kind, cores, backfilled), n in seen.items():
        what = [f"{n} runs", kind] + ([f"{cores} cores"] if cores else [])
        what += ["provenance backfilled"] if backfilled else []
        name = f'machine "{model}"' if model else "machine model not recorded"
        parts.append(f"{name} ({', '.join(what)})")
    return "; ".join(parts)


def describe(path: str, report: dict) -> str:
    """One line naming the report's machine, load, time and command (``not recorded`` gaps)."""
    machine = report.get("machine") or {}
    runs = _run_provenances(report)
    if not machine and runs:  # a ground-truth table or a scoreboard: per run
        command = report.get("command")
        return f"`{path}`: {_runs_machines(report, runs)}; load not recorded; " + (
            f"`{_short_command(command)}`" if command else "command not recorded"
        )
    model = machine.get("lscpu_model_name") or machine.get("cpu")
    parts = [f'machine "{model}"' if model else "machine not recorded"]
    parts.append(f"{machine['cores']} cores" if machine.get("cores") else "cores not recorded")
    flags = _flags(report)
    if flags is not None:
        kept = ", ".join(f for f in KIND_FLAGS if f in flags) or "none of " + ", ".join(KIND_FLAGS)
        scope = "" if machine.get("lscpu_flags") else "; only these SIMD flags were recorded"
        parts.append(f"flags {kept} ({machine_kind(flags)}{scope})")
    else:
        hardware = _hardware_path(report)
        parts.append("flags not recorded" + (f" (hardware path: {hardware})" if hardware else ""))
    when = report.get("started_utc") or report.get("started") or report.get("written")
    command = report.get("command")
    return (
        f"`{path}`{f' ({when})' if when else ''}: {', '.join(parts)}; load {_loads(report)}; "
        + (f"`{_short_command(command)}`" if command else "command not recorded")
    )


def _sources(reports: dict[str, dict]) -> list[str]:
    return ["", "Reports:", ""] + [f"- {describe(p, r)}" for p, r in reports.items()]


# ---- formatting ------------------------------------------------------------------------------


def _f(value: float, digits: int = 2) -> str:
    """``value`` to ``digits`` decimals, halves rounded up as a reader of the report rounds them
    (2.065 -> 2.07; ``format`` would give 2.06 from the binary float)."""
    return str(Decimal(repr(value)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


def _n(value: float, digits: int = 1) -> str:
    """:func:`_f` with thousands separators."""
    return f"{Decimal(_f(value, digits)):,}"


def _rng(stats: dict, digits: int = 2) -> str:
    return f"{_f(stats['median'], digits)} ({_f(stats['min'], digits)}-{_f(stats['max'], digits)})"


def _model_row(entries: dict, name: str, variant: str) -> dict:
    r = entries[name]["variants"][variant]
    return {
        "step": r["step_s"],
        "ex": r["examples_per_s"],
        "gflops": r["gflops"],
        "share": r["percent_of_peak"],
        "fp32_share": r.get("percent_of_fp32_peak"),
        "dtype": entries[name].get("peak_dtype", "float32"),
    }


# ---- the tables ------------------------------------------------------------------------------

SUITE = f"{RESULTS}/model_suite.json"
SEARCH = f"{RESULTS}/search_cycle.json"
PADDING = f"{RESULTS}/eval_padding.json"
QUALITY = f"{RESULTS}/search_quality.json"  # the current scoreboard of the first table
QUALITY_3SEEDS = f"{RESULTS}/search_quality_3seeds.json"  # the first one: 3 seeds, 4 estimators
QUALITY_LARGE = f"{RESULTS}/search_quality_large.json"
#: the warm-up board: the default recipe with 1,800 warm-up cycles, seeds paired with QUALITY's
QUALITY_WARMUP = f"{RESULTS}/search_quality_warmup1800.json"
#: the second space's board at that budget (seed 0 the probe), seeds paired with QUALITY_LARGE's
QUALITY_LARGE_WARMUP = f"{RESULTS}/search_quality_large_warmup1800.json"
SIDE_BY_SIDE_ONEDNN = (  # oneDNN on (exported), off (unset: the control), on (the machine's)
    f"{RESULTS}/side_by_side_onednn_amd_avx2.json",
    f"{RESULTS}/side_by_side_onednn_unset_amd_avx2.json",
    f"{RESULTS}/side_by_side_onednn_choice_amd_avx2.json",
)
FIRST_TABLE = f"{RESULTS}/search_space_table.json"
LARGE_TABLE = f"{RESULTS}/search_space_table_large.json"
BF16_SPEED = f"{RESULTS}/bf16_speed.json"
BF16_ACCURACY = f"{RESULTS}/bf16_accuracy.json"
RESULTS_DOC = "docs/search_results.md"
SHORT = {SUITE: "model_suite", SEARCH: "search_cycle", PADDING: "eval_padding"}


def readme_figures(reports: dict[str, dict]) -> str:
    """README "Figures": the default paths' rates and the ratios the targets judge."""
    suite, search, padding = reports[SUITE], reports[SEARCH], reports[PADDING]
    e, s = suite["entries"], summarize(suite["entries"])
    rows = [
        "| MMnasNet-VQA d=512 (the published genotype), TF 2.21 CPU | mmnas-tf | report |",
        "|---|---|---|",
        f"| matmul peak (entry `peak`), fp32 / bf16 | {_n(s['matmul_peak_gflops'], 0)} / "
        f"{_n(s['matmul_peak_gflops_bf16'], 0)} GFLOP/s | {SHORT[SUITE]} |",
    ]
    labels = {
        "train_b8": "training step, batch 8, fp32",
        "eval_b64": "evaluation, batch 64, fp32",
        "train_b8_bf16": "training step, batch 8, mixed_bfloat16",
        "eval_b64_bf16": "evaluation, batch 64, mixed_bfloat16",
    }
    for name, label in labels.items():
        best = e[name]["best"]
        r = _model_row(e, name, best)
        rows.append(
            f"| {label} ({VARIANT_NAMES[best]}) | {_f(r['step']['median'], 2)} s, {_f(r['ex'], 1)} ex/s, "
            f"{_n(r['gflops'], 0)} GFLOP/s, {_f(r['share'], 1)}% of the {r['dtype']} matmul probe "
            f"| {SHORT[SUITE]} |"
        )
    rows.append(
        "| Adam update alone (paper-size variables), FusedAdam / Keras's Adam | "
        f"{_f(s['adam_update_fused_over_keras'], 2)}x the time | {SHORT[SUITE]} |"
    )
    res = padding["results"]
    rows.append(
        "| evaluation, regions uniform in 10-100: grouped by count / padded to 100 | "
        f"{_f(res['float32']['speedup_median'], 2)}x examples/s fp32, "
        f"{_f(res['mixed_bfloat16']['speedup_median'], 2)}x mixed_bfloat16 | {SHORT[PADDING]} |"
    )
    ss = summarize(search["entries"])
    rows.append(
        "| search cycle (gumbel, d=256, b8: 5 weight steps + 1 theta step) / 6 fixed-network "
        f"steps | {_f(ss['search_gumbel_over_fixed'], 2)}x the time | {SHORT[SEARCH]} |"
    )
    traces = sorted({v["traces"] for n in labels for v in e[n]["variants"].values()})
    rows.append(
        f"| traces per step function, every variant above | {', '.join(map(str, traces))} "
        f"| {SHORT[SUITE]} |"
    )
    return "\n".join(rows + _sources(reports))


def share_of_peak(reports: dict[str, dict]) -> str:
    """docs/performance.md: every model entry's variants against its dtype's probe."""
    suite = reports[SUITE]
    e = suite["entries"]
    targets = {
        "train_b8": "train_b8_percent_of_peak",
        "eval_b64": "eval_b64_percent_of_peak",
        "train_b8_bf16": "train_b8_bf16_percent_of_peak",
        "eval_b64_bf16": "eval_b64_bf16_percent_of_peak",
    }
    judged = summarize(e)["targets"]
    rows = [
        "| entry (MMnasNet-VQA d=512, 14 tokens, 100 regions) | s/step median (min-max) "
        "| examples/s | share of its dtype's probe | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for name, key in targets.items():
        entry = e[name]
        policy = "mixed_bfloat16" if entry.get("peak_dtype") == "bfloat16" else "fp32"
        mode, batch = ("train", "b8") if name.startswith("train") else ("eval", "b64")
        for variant in entry["variants"]:
            r = _model_row(e, name, variant)
            best = variant == entry["best"]
            share = f"{_f(r['share'], 1)}%"
            if best:
                share = f"**{share}**"
                if r["dtype"] != "float32" and r["fp32_share"] is not None:
                    share += f" ({_f(r['fp32_share'], 0)}% of the fp32 probe)"
            op, threshold = TARGETS[key]
            met = judged[key]["met"]
            target = f"{op} {threshold:g}%" if best else ""
            verdict = ("yes" if met else "no" if met is not None else "not judged") if best else ""
            rows.append(
                f"| {mode} {batch} {policy}, {VARIANT_NAMES[variant]}"
                f"{' (the best)' if best else ''} | {_rng(r['step'])} | {_f(r['ex'], 1)} "
                f"| {share} | {target} | {verdict} |"
            )
    return "\n".join(rows + _sources(reports))


def targets(reports: dict[str, dict]) -> str:
    """docs/performance.md: every target of bench/summary.py (and the padding one), judged on the
    committed reports; a target no committed report measures says so."""
    suite, search, padding = reports[SUITE], reports[SEARCH], reports[PADDING]
    judged = summarize(suite["entries"])["targets"]  # the search cycle: its own report
    judged["search_gumbel_over_fixed"] = summarize(search["entries"])["targets"][
        "search_gumbel_over_fixed"
    ]
    source = {k: SHORT[SUITE] for k in judged}
    source["search_gumbel_over_fixed"] = SHORT[SEARCH]
    names = {
        "train_b8_percent_of_peak": "training step b8 fp32, share of the fp32 probe",
        "eval_b64_percent_of_peak": "evaluation b64 fp32, share of the fp32 probe",
        "train_b8_bf16_percent_of_peak": "training step b8 mixed_bfloat16, share of the bf16 "
        "probe (CPUs with AMX)",
        "eval_b64_bf16_percent_of_peak": "evaluation b64 mixed_bfloat16, share of the bf16 "
        "probe (CPUs with AMX)",
        "bucketing_speedup": "training b8 bucketed by region count / padded to 100",
        "search_gumbel_over_fixed": "search cycle (gumbel, d=256) / 6 fixed steps",
        "pipeline_over_train": "input pipeline / what training consumes",
        "no_retracing": "no retracing over 50 steps after warm-up",
    }
    rows = ["| target | value | met | report |", "|---|---|---|---|"]
    for key, (op, threshold) in TARGETS.items():
        t = judged[key]
        value, unit = t["value"], "%" if key.endswith("percent_of_peak") else "x"
        target = "" if isinstance(threshold, bool) else f" {op} {threshold:g}{unit}"
        if value is None:
            rows.append(
                f"| {names[key]}{target} | no committed report measures it | not judged | none |"
            )
            continue
        if isinstance(value, bool):
            shown = "none" if value else "retraced"
        else:
            shown = f"{_f(value, 1)}%" if unit == "%" else f"{_f(value, 2)}x"
        met = "yes" if t["met"] else "no" if t["met"] is not None else "not judged"
        rows.append(f"| {names[key]}{target} | {shown} | {met} | {source[key]} |")
    res = padding["results"]
    ratios = {p: res[p]["speedup_median"] for p in ("float32", "mixed_bfloat16")}
    met = "yes" if all(v >= EVAL_PADDING_TARGET for v in ratios.values()) else "no"
    rows.append(
        f"| evaluation, regions uniform in 10-100: grouped / padded to 100 >= "
        f"{EVAL_PADDING_TARGET:g}x | {_f(ratios['float32'], 2)}x fp32, "
        f"{_f(ratios['mixed_bfloat16'], 2)}x mixed_bfloat16 | {met} | {SHORT[PADDING]} |"
    )
    return "\n".join(rows + _sources(reports))


#: issue 22's side-by-side targets on the AVX2 kind: our default path's examples/s over the
#: original's
SIDE_BY_SIDE_TARGETS = {
    "train_b8_padded": 1.2,
    "train_b8_realistic": 1.5,
    "eval_b64_padded": 1.4,
    "eval_b64_realistic": 2.0,
}
COMPARISON_NAMES = {
    "train_b8_padded": "train b8, padded to 100 regions",
    "train_b8_realistic": "train b8, realistic (10-100 regions; the original pads to 100)",
    "eval_b64_padded": "eval b64, padded",
    "eval_b64_realistic": "eval b64, realistic",
}


def _ratio(stats: dict, bold: bool = False) -> str:
    x = f"{_f(stats['median'], 2)}x"
    return f"{f'**{x}**' if bold else x} ({_f(stats['min'], 2)}-{_f(stats['max'], 2)})"


def _verdict(met: list[bool]) -> str:
    """``met in runs 1, 3; missed in run 2`` (``met in every run`` / ``missed in every run``)."""
    if all(met) or not any(met):
        return f"{'met' if all(met) else 'missed'} in every run"
    parts = []
    for word, flag in (("met", True), ("missed", False)):
        runs = [str(i) for i, m in enumerate(met, 1) if m is flag]
        parts.append(f"{word} in run{'s' if len(runs) > 1 else ''} {', '.join(runs)}")
    return "; ".join(parts)


def side_by_side_of(paths: tuple[str, ...]) -> Callable[[dict[str, dict]], str]:
    """docs/performance.md, the AVX2 kind: each run's default path and its other variants over
    the original, per comparison, against the kind's targets; the matmul probes beside them."""

    def render(reports: dict[str, dict]) -> str:
        runs = [reports[p]["entries"]["original"] for p in paths]
        head = ["ours over the original, median of per-round ratios (min-max)"]
        for i in range(1, len(runs) + 1):
            head += [f"run {i}: default path", f"run {i}: other variant"]
        rows = ["| " + " | ".join(head + ["target"]) + " |", "|---" * (len(head) + 1) + "|"]
        for key, target in SIDE_BY_SIDE_TARGETS.items():
            cells, met = [COMPARISON_NAMES[key]], []
            for run in runs:
                c = run["comparisons"][key]
                default = c["ours_variant"]
                cells.append(f"{_ratio(c['ours_over_original'], True)} {VARIANT_NAMES[default]}")
                others = [
                    f"{_ratio(v['ours_over_original'])} {VARIANT_NAMES[name]}"
                    for name, v in c.get("variants", {}).items()
                    if name != default
                ]
                cells.append("; ".join(others) or "not run")
                met.append(c["ours_over_original"]["median"] >= target)
            rows.append("| " + " | ".join(cells + [f">= {target}x: {_verdict(met)}"]) + " |")
        probe = ["matmul 2048 float32, GFLOP/s: TensorFlow / torch (median)"]
        shaped = ["model-shaped matmul, GFLOP/s: TensorFlow graph / XLA / torch (median)"]
        onednn = ["oneDNN in our process (`TF_ENABLE_ONEDNN_OPTS`)"]
        for path, run in zip(paths, runs):
            g = run["matmul_probe_gflops"]
            probe += [f"{_f(g['tensorflow']['median'], 0)} / {_f(g['torch']['median'], 0)}", ""]
            m = run["model_shape_probe"]["gflops"]
            shaped += [
                " / ".join(
                    _f(m[k]["median"], 0) for k in ("tensorflow", "tensorflow_xla", "torch")
                ),
                "",
            ]
            machine = reports[path]["machine"]
            state = {True: "on", False: "off", None: "state not recorded"}[machine.get("onednn_on")]
            onednn += [f"{machine.get('onednn_env', 'not recorded')} (oneDNN {state})", ""]
        rows += ["| " + " | ".join(r + [""]) + " |" for r in (probe, shaped, onednn)]
        return "\n".join(rows + _sources(reports))

    return render


def eval_padding(reports: dict[str, dict]) -> str:
    """docs/performance.md "No work on padding": examples/s both ways and their ratio."""
    rows = [
        "| policy | padded to 100, ex/s median (min-max) | grouped, padded per batch "
        "| ratio, median of per-pass ratios (per pass) |",
        "|---|---|---|---|",
    ]
    for policy, r in reports[PADDING]["results"].items():
        ex = r["examples_per_s"]
        passes = ", ".join(f"{_f(v, 2)}" for v in r["speedup_per_pass"])
        rows.append(
            f"| {policy} | {_rng(ex['padded'])} | {_rng(ex['grouped'])} "
            f"| **{_f(r['speedup_median'], 2)}x** ({passes}) |"
        )
    return "\n".join(rows + _sources(reports))


def bf16_speed(reports: dict[str, dict]) -> str:
    """docs/performance.md "bfloat16": bf16 / fp32 time ratios (three matmuls per projection)."""
    report = reports[BF16_SPEED]
    rows = [
        "| MMnasNet-VQA d=512 (paper genotype) | time bf16 / fp32, median of rounds (min-max) "
        "| medians, s/step |",
        "|---|---|---|",
    ]
    labels = {"train_b8": "training step, batch 8", "eval_b64": "evaluation, batch 64"}
    for key, label in labels.items():
        entry = report[key]
        ratio = entry["time_ratios"]["bf16_separate/fp32_separate"]
        load = entry["load_average"]
        fp32, bf16 = (entry["step_s"][v]["median"] for v in ("fp32_separate", "bf16_separate"))
        digits = 2 if fp32 < 10 else 1
        rows.append(
            f"| {label} ({entry['rounds']} rounds, load {_f(load['start'], 0)}-{_f(load['max'], 0)}) "
            f"| **{_f(ratio['median_of_round_ratios'], 2)}** ({_f(ratio['min'], 2)}-{_f(ratio['max'], 2)})"
            f": {_f(1 / ratio['median_of_round_ratios'], 1)}x faster "
            f"| fp32 {fp32:.{digits}f}, bf16 {bf16:.{digits}f} |"
        )
    mm = {k: report[k]["matmul_2048_gflops"] for k in labels}
    rows.append(
        f"| 2048 matmul in the same rounds, bf16 vs fp32 | {_f(mm['train_b8']['bf16'], 0)} vs "
        f"{_f(mm['train_b8']['fp32'], 0)} GFLOP/s (b8 entry); {_f(mm['eval_b64']['bf16'], 0)} vs "
        f"{_f(mm['eval_b64']['fp32'], 0)} (eval entry) | |"
    )
    return "\n".join(rows + _sources(reports))


def bf16_accuracy(reports: dict[str, dict]) -> str:
    """docs/performance.md "bfloat16": the final accuracy of each seed per policy."""
    summary = reports[BF16_ACCURACY]["summary"]
    rows = [
        "| policy | macro accuracy, seeds "
        + " / ".join(map(str, summary["float32"]["seeds"]))
        + " | mean | spread (max - min) |",
        "|---|---|---|---|",
    ]
    for policy in ("float32", "mixed_bfloat16"):
        p = summary[policy]
        accs = " / ".join(f"{_f(a, 2)}" for a in p["macro_accuracy"])
        rows.append(f"| {policy} | {accs} | {_f(p['mean'], 2)} | {_f(p['spread'], 2)} |")
    rows += [
        "",
        f"bf16 - fp32 = {_f(summary['bf16_minus_fp32'], 2)} points: "
        + ("inside" if summary["within_fp32_spread"] else "outside")
        + f" the float32 seed-to-seed spread ({_f(summary['float32']['spread'], 2)}).",
    ]
    return "\n".join(rows + _sources(reports))


def scoreboard_of(
    quality: str, table: str, noise: str | None = None, parts: tuple[str, ...] = PARTS
) -> Callable[[dict[str, dict]], str]:
    """docs/search_results.md: the renderer of a scoreboard's statistics
    (``mmnas_tf.benchmark.scoreboard_statistics`` of the reports ``quality`` against ``table``,
    the seed noise of the informative rule from ``noise``; ``parts`` of ``render_markdown``)."""

    def render(reports: dict[str, dict]) -> str:
        stats = scoreboard_statistics(
            reports[quality], reports[table], reports[noise] if noise else None
        )
        return "\n".join([render_markdown(stats, parts).rstrip("\n"), *_sources(reports)])

    return render


def table_2a_of(quality: str, table: str) -> Callable[[dict[str, dict]], str]:
    """docs/search_results.md: the renderer of the best achievable and searched genotype per
    decoder op pool (``bench.search_quality.table_2a`` of the reports)."""

    def render(reports: dict[str, dict]) -> str:
        rows = [
            "| decoder op pool | genotypes in table | best achievable "
            "| searched (default estimator): picks, mean ground truth |",
            "|---|---|---|---|",
        ]
        for r in search_quality.table_2a(reports[table], reports[quality]):
            picks = r["searched"]["picks"]
            mean = r["searched"]["mean_ground_truth"]
            searched = "not searched" if picks is None else ", ".join(f"`{p}`" for p in picks)
            if picks is not None:
                searched += f", {_f(mean, 2)}" if mean is not None else ", not in the table yet"
            rows.append(
                f"| {{{', '.join(r['pool'])}}} | {r['genotypes_in_table']} "
                f"| `{r['best']['genotype']}` {_f(r['best']['accuracy'], 1)} | {searched} |"
            )
        return "\n".join(rows + _sources(reports))

    return render


def ranking_split_of(
    boards: tuple[str, ...], table: str, op: str = "GA", estimator: str = "gumbel_selection"
) -> Callable[[dict[str, dict]], str]:
    """docs/search_results.md: the renderer of where ``estimator``'s supernets on each of
    ``boards`` rank ``table`` as its means do (``mmnas_tf.benchmark.scoreboard.ranking_split``:
    tau within the genotypes whose decoder starts with ``op``, within the rest, and across),
    beside the table's seed 1 ranked against its seed 0."""

    def cells(values: dict) -> str:
        return " | ".join(values[k] for k in ("all", "within_group", "within_rest", "across"))

    def render(reports: dict[str, dict]) -> str:
        truth = GroundTruth(reports[table])
        group = decoder_starts_with(op)
        splits = [ranking_split(reports[b]["estimators"][estimator], truth, group) for b in boards]
        n, rest = splits[0]["group"], splits[0]["rest"]
        rows = [
            f"| ranking | all pairs | within {op} first ({n}) | within the rest ({rest}) "
            f"| across ({n} x {rest}: ordered as the truth minus against it) |",
            "|---|---|---|---|---|",
        ]
        seeds = splits[0]["seeds"]
        if seeds is not None:
            text = {k: _f(v, 2) for k, v in seeds.items()}
            rows.append(f"| the table's seed 1 against its seed 0 | {cells(text)} |")
        for board, split in zip(boards, splits):
            budget = reports[board].get("search") or {}
            parts = split["supernets"]
            text = {
                k: f"{_f(float(sum(v) / len(v)), 2)} [{_f(min(v), 2)}, {_f(max(v), 2)}]"
                for k, v in parts.items()
            }
            rows.append(
                f"| `{estimator}`'s supernets, {budget.get('warmup_cycles', '?')} + "
                f"{budget.get('search_cycles', '?')} cycles, against the means: mean [min, max] "
                f"over {len(parts['all'])} | {cells(text)} |"
            )
        return "\n".join(rows + _sources(reports))

    return render


def budget_pairs_of(
    board: str, baseline: str, table: str, estimators: tuple[str, ...]
) -> Callable[[dict[str, dict]], str]:
    """docs/search_results.md: the renderer of each of ``estimators`` on the scoreboard ``board``
    against the same estimator on ``baseline`` (paired seeds, another budget; one-sided tests,
    ``mmnas_tf.benchmark.scoreboard.budget_paired``)."""

    def render(reports: dict[str, dict]) -> str:
        truth = GroundTruth(reports[table])
        pairs = [budget_paired(e, reports[board], reports[baseline], truth) for e in estimators]
        return "\n".join([render_budget_pairs(pairs).rstrip("\n"), *_sources(reports)])

    return render


@dataclass(frozen=True)
class Table:
    document: str  # where its markers are, from the repository root
    reports: tuple[str, ...]  # what it is rendered from, as its marker names them
    render: Callable[[dict[str, dict]], str]
    optional: bool = False  # may be absent from its document (at most once there)


def board_table(
    quality: str,
    table: str,
    noise: str | None = None,
    parts: tuple[str, ...] = PARTS,
    optional: bool = False,
) -> Table:
    """docs/search_results.md's table of a scoreboard (:func:`scoreboard_of`), rendered from the
    reports it names, in its marker's order: ``quality``, ``table``, ``noise``."""
    reports = (quality, table) + ((noise,) if noise else ())
    return Table(RESULTS_DOC, reports, scoreboard_of(quality, table, noise, parts), optional)


def budget_pairs_table(
    board: str, baseline: str, table: str, estimators=("gumbel_selection", "gumbel")
) -> Table:
    """docs/search_results.md's table of ``board`` against ``baseline`` at another budget
    (:func:`budget_pairs_of`), optional like the boards it compares."""
    render = budget_pairs_of(board, baseline, table, estimators)
    return Table(RESULTS_DOC, (board, baseline, table), render, optional=True)


TABLES = {
    "figures": Table("README.md", (SUITE, PADDING, SEARCH), readme_figures),
    "share_of_peak": Table("docs/performance.md", (SUITE,), share_of_peak),
    "targets": Table("docs/performance.md", (SUITE, SEARCH, PADDING), targets),
    "bf16_speed": Table("docs/performance.md", (BF16_SPEED,), bf16_speed),
    "bf16_accuracy": Table("docs/performance.md", (BF16_ACCURACY,), bf16_accuracy),
    "eval_padding": Table("docs/performance.md", (PADDING,), eval_padding),
    "side_by_side_onednn": Table(
        "docs/performance.md", SIDE_BY_SIDE_ONEDNN, side_by_side_of(SIDE_BY_SIDE_ONEDNN)
    ),
    # the 3-seed board: its estimators under "Result", its paired tests and goals under
    # "Statistics of the scoreboard"
    "scoreboard_3seeds": board_table(QUALITY_3SEEDS, FIRST_TABLE, parts=("estimators",)),
    "statistics_3seeds": board_table(QUALITY_3SEEDS, FIRST_TABLE, parts=("pairs", "default")),
    "table_2a_3seeds": Table(
        RESULTS_DOC, (QUALITY_3SEEDS, FIRST_TABLE), table_2a_of(QUALITY_3SEEDS, FIRST_TABLE)
    ),
    # the current boards, whole (estimators, paired tests, goals): placed where the docs cite them
    "scoreboard": board_table(QUALITY, FIRST_TABLE, optional=True),
    "table_2a": Table(
        RESULTS_DOC, (QUALITY, FIRST_TABLE), table_2a_of(QUALITY, FIRST_TABLE), optional=True
    ),
    "scoreboard_large": board_table(QUALITY_LARGE, LARGE_TABLE, FIRST_TABLE, optional=True),
    # the warm-up boards (docs/search_results.md, "The warm-up board", "The second space at the
    # new budget"), whole and against the ten-seed boards' same seeds
    "scoreboard_warmup": board_table(QUALITY_WARMUP, FIRST_TABLE, optional=True),
    "warmup_pairs": budget_pairs_table(QUALITY_WARMUP, QUALITY, FIRST_TABLE),
    "scoreboard_large_warmup": board_table(
        QUALITY_LARGE_WARMUP, LARGE_TABLE, FIRST_TABLE, optional=True
    ),
    "large_warmup_pairs": budget_pairs_table(QUALITY_LARGE_WARMUP, QUALITY_LARGE, LARGE_TABLE),
    # why the warm-up board misses the tau goal: where its supernets rank the first table
    "ranking_split": Table(
        RESULTS_DOC,
        (QUALITY, QUALITY_WARMUP, FIRST_TABLE),
        ranking_split_of((QUALITY, QUALITY_WARMUP), FIRST_TABLE),
    ),
}
DOCUMENTS = tuple(dict.fromkeys(t.document for t in TABLES.values()))


def load_reports(paths: tuple[str, ...], root: str = REPO_ROOT) -> dict[str, dict]:
    out = {}
    for path in paths:
        with open(os.path.join(root, path), encoding="utf-8") as f:
            out[path] = json.load(f)
    return out


def render(name: str, root: str = REPO_ROOT) -> str:
    """The text of table ``name`` between its markers, from the reports under ``root``."""
    table = TABLES[name]
    return table.render(load_reports(table.reports, root)) + "\n"


def marker(name: str) -> str:
    return f"<!-- table:{name} from {' '.join(TABLES[name].reports)} -->"


def regenerate(text: str, document: str, root: str = REPO_ROOT) -> tuple[str, list[str]]:
    """``text`` with every table of ``document`` re-rendered, and the problems found: a marker
    of an unknown table, of a table that lives elsewhere or naming other reports, or a table of
    this document whose markers are missing or repeated."""
    problems, seen = [], []

    def replace(m: re.Match) -> str:
        name = m["name"]
        table = TABLES.get(name)
        if table is None:
            problems.append(f"{document}: unknown table {name!r}; known: {sorted(TABLES)}")
            return m[0]
        if table.document != document:
            problems.append(f"{document}: table {name!r} belongs in {table.document}")
        if tuple((m["reports"] or "").split()) != table.reports:
            problems.append(
                f"{document}: table {name!r} names reports {m['reports'] or ''!r}; it is rendered "
                f"from {' '.join(table.reports)}"
            )
        seen.append(name)
        return f"{marker(name)}\n{render(name, root)}<!-- /table -->"

    new = MARKER.sub(replace, text)
    for name, table in TABLES.items():
        allowed = (0, 1) if table.optional else (1,)
        if table.document == document and seen.count(name) not in allowed:
            problems.append(
                f"{document}: table {name!r} appears {seen.count(name)} times between markers "
                f"(expected {'at most ' * table.optional}once: {marker(name)} ... <!-- /table -->)"
            )
    return new, problems


def cited_reports(text: str) -> list[str]:
    """Every ``bench/results/...`` path a document cites, in order, once each."""
    return list(dict.fromkeys(CITED.findall(text)))


def citing_documents(root: str = REPO_ROOT) -> list[str]:
    """The README and every document of docs/ (the files whose citations are checked)."""
    docs = sorted(f"docs/{n}" for n in os.listdir(os.path.join(root, "docs")) if n.endswith(".md"))
    return ["README.md", *docs]


def check(root: str = REPO_ROOT) -> list[str]:
    """Every problem of the documents under ``root``: a cited report that does not exist, a table
    whose text differs from its rendering (a hand-edited number), a marker problem."""
    problems = []
    for document in citing_documents(root):
        with open(os.path.join(root, document), encoding="utf-8") as f:
            text = f.read()
        missing = [p for p in cited_reports(text) if not os.path.exists(os.path.join(root, p))]
        problems += [f"{document}: cites {p}, which does not exist" for p in missing]
    for document in DOCUMENTS:
        with open(os.path.join(root, document), encoding="utf-8") as f:
            text = f.read()
        new, found = regenerate(text, document, root)
        problems += found
        for old, fresh in zip(MARKER.finditer(text), MARKER.finditer(new), strict=True):
            if old["body"] != fresh["body"]:
                problems.append(
                    f"{document}: table {old['name']!r} is not what its reports give "
                    f"(run python -m bench.doc_tables)"
                )
    return problems


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.doc_tables", description=__doc__.split("\n")[0]
    )
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 on any problem")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    if args.check:
        problems = check()
        print("\n".join(problems) or "every table matches its reports")
        return 1 if problems else 0
    problems = []
    for document in DOCUMENTS:
        path = os.path.join(REPO_ROOT, document)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        new, found = regenerate(text, document)
        problems += found
        if new != text:
            with open(path, "w", encoding="utf-8") as f:
                f.write(new)
            print(f"rewrote {document}")
    print("\n".join(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
