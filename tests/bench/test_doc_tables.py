"""The figures of the README and of docs/'s headline tables are their committed reports' numbers.

``bench.doc_tables`` renders each table between its marker comments from the reports the marker
names; these tests check that every report a document cites exists, that the text between the
markers is exactly that rendering (so a number edited by hand fails), and that what the bench
writers record (machine, load, command) reaches the tables."""

from __future__ import annotations

import json
import os
import re
import shutil

import pytest

from bench import doc_tables
from bench.common import parse_lscpu, report_context
from mmnas_tf import machine

REPO_ROOT = doc_tables.REPO_ROOT


def test_every_cited_report_exists_and_every_table_is_its_reports_rendering():
    assert doc_tables.check() == []
    # every table is present where the registry says (check() would also say so); an optional
    # one at most once
    for name, table in doc_tables.TABLES.items():
        with open(os.path.join(REPO_ROOT, table.document), encoding="utf-8") as f:
            assert f.read().count(doc_tables.marker(name)) in ((0, 1) if table.optional else (1,))


@pytest.fixture
def copy_root(tmp_path):
    """A copy of the documents and the reports, to break."""
    for document in doc_tables.citing_documents():
        os.makedirs(tmp_path / os.path.dirname(document), exist_ok=True)
        shutil.copy(os.path.join(REPO_ROOT, document), tmp_path / document)
    shutil.copytree(os.path.join(REPO_ROOT, doc_tables.RESULTS), tmp_path / doc_tables.RESULTS)
    return tmp_path


def _edit(path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, count), encoding="utf-8")


def test_a_number_edited_by_hand_fails(copy_root):
    # the search-cycle row: 1.22x in its report; the README used to print 1.30x
    _edit(
        copy_root / "README.md",
        "| 1.22x the time | search_cycle |",
        "| 1.30x the time | search_cycle |",
    )
    _edit(
        copy_root / "docs/search_results.md", "| 51.41 [47.28, 54.37] |", "| 51.41 [47.28, 54.38] |"
    )
    assert doc_tables.check(str(copy_root)) == [
        "README.md: table 'figures' is not what its reports give (run python -m bench.doc_tables)",
        "docs/search_results.md: table 'scoreboard_3seeds' is not what its reports give "
        "(run python -m bench.doc_tables)",
    ]


def test_a_missing_report_a_lost_marker_and_a_wrong_source_fail(copy_root):
    os.remove(copy_root / "bench/results/search_cycle_split.json")
    _edit(copy_root / "docs/search_results.md", doc_tables.marker("table_2a_3seeds"), "")
    _edit(
        copy_root / "docs/performance.md",
        doc_tables.marker("bf16_accuracy"),
        "<!-- table:bf16_accuracy from bench/results/bf16_speed.json -->",
    )
    problems = doc_tables.check(str(copy_root))
    assert (
        "docs/performance.md: cites bench/results/search_cycle_split.json, which does not "
        "exist" in problems
    )
    assert any(
        p.startswith("docs/search_results.md: table 'table_2a_3seeds' appears 0 times")
        for p in problems
    )
    assert (
        "docs/performance.md: table 'bf16_accuracy' names reports 'bench/results/bf16_speed.json'; "
        "it is rendered from bench/results/bf16_accuracy.json" in problems
    )


def test_an_optional_table_may_be_absent_once_placed_it_is_checked(copy_root):
    """The current scoreboard's tables are optional: absent is no problem, once placed they
    render and are checked, twice is a problem."""
    doc = copy_root / "docs/search_results.md"
    placed = re.compile(re.escape(doc_tables.marker("scoreboard")) + r".*?<!-- /table -->\n", re.S)
    text, removed = placed.subn("", doc.read_text(encoding="utf-8"))
    assert removed <= 1
    doc.write_text(text, encoding="utf-8")
    assert doc_tables.check(str(copy_root)) == []  # 'scoreboard' absent
    empty = f"{doc_tables.marker('scoreboard')}\n<!-- /table -->\n"
    doc.write_text(doc.read_text(encoding="utf-8") + "\n" + empty, encoding="utf-8")
    assert doc_tables.check(str(copy_root)) == [
        "docs/search_results.md: table 'scoreboard' is not what its reports give "
        "(run python -m bench.doc_tables)"
    ]
    new, problems = doc_tables.regenerate(
        doc.read_text(encoding="utf-8"), doc_tables.RESULTS_DOC, str(copy_root)
    )
    rendered = doc_tables.render("scoreboard", str(copy_root))
    assert problems == [] and "| `gumbel_selection` - `uniform` |" in rendered and rendered in new
    doc.write_text(new + empty, encoding="utf-8")
    assert any(
        p.startswith(
            "docs/search_results.md: table 'scoreboard' appears 2 times between markers "
            "(expected at most once:"
        )
        for p in doc_tables.check(str(copy_root))
    )


#: the ten-seed boards as they stood on 2026-12-06 at 18:06 (3 / 3 / 2 and 2 / 2 / 1 seeds)
PARTIAL = "bench/results/search_quality_pinned_partial.json"
LARGE_PARTIAL = "bench/results/search_quality_large_pinned_partial.json"
BOARDS = os.path.join(REPO_ROOT, "tests", "fixtures", "boards")


def _render(renderer, root, *paths) -> str:
    return renderer(doc_tables.load_reports(paths, str(root)))


def test_the_scoreboard_renders_partial_boards_of_the_new_format(copy_root):
    """The 10-seed format (supernets per seed, no pool searches), estimators with different
    seed counts, a sampled table whose picks are not trained yet, no informative family."""
    for path in (PARTIAL, LARGE_PARTIAL):
        shutil.copy(os.path.join(BOARDS, os.path.basename(path)), copy_root / path)
    large_path = copy_root / doc_tables.LARGE_TABLE  # as it was before its picks were trained
    large_table = json.loads(large_path.read_text(encoding="utf-8"))
    for g in large_table.pop("picks", []):  # listed ones may be untrained (a refused build)
        large_table["genotypes"].pop(g, None)
    large_path.write_text(json.dumps(large_table), encoding="utf-8")
    first = doc_tables.FIRST_TABLE
    text = _render(doc_tables.scoreboard_of(PARTIAL, first), copy_root, PARTIAL, first)
    assert "| `uniform` | 2 | `enc[SA] dec[GA RSA FFN]` x2 | 54.22 [54.22, 54.22] |" in text
    assert "| 0.37 [-0.02, 0.60] (3) | 6.2 + 2.4 |" in text  # gumbel_selection: 3 supernets
    assert "| `gumbel_selection` - `uniform` | 2 | -0.02 | 1 | 1 |" in text
    assert "Kendall tau 0.37 (3 supernets) (goal >= 0.5): missed." in text
    assert f"- `{PARTIAL}`: " in text and f"- `{first}`: " in text
    pools = _render(doc_tables.table_2a_of(PARTIAL, first), copy_root, PARTIAL, first)
    assert "| {GA, FFN} | 8 | `enc[SA] dec[FFN GA GA]` 51.5 | not searched |" in pools
    large, paths = doc_tables.LARGE_TABLE, (LARGE_PARTIAL, doc_tables.LARGE_TABLE, first)
    text = _render(doc_tables.scoreboard_of(LARGE_PARTIAL, large, first), copy_root, *paths)
    assert (
        "| `gumbel` | 2 (2 not in the table yet) | `enc[SA SA] dec[RSA RSA RSA GA]` x1 (not in "
        "the table yet)<br>`enc[SA SA] dec[FFN RSA RSA RSA]` x1 (not in the table yet) "
        "| no pick in the table yet | - |" in text
    )
    assert "| `gumbel_selection` | 2 (1 not in the table yet) |" in text
    assert "| `gumbel` - `uniform` | 0 | - | - | - |" in text
    assert all(f"- `{p}`: " in text for p in paths)
    # without the first table's seed noise no family is informative (one seed per genotype)
    alone = _render(doc_tables.scoreboard_of(LARGE_PARTIAL, large), copy_root, LARGE_PARTIAL, large)
    assert "| 47.72 [47.72, 47.72] | - | 69.3 [69.3, 69.3] |" in alone


def test_tables_follow_their_reports(copy_root):
    """A changed report changes the rendering (the numbers are read, not written in), the check
    flags the stale document, and regenerating writes the new number in."""
    path = copy_root / "bench/results/search_cycle.json"
    report = json.loads(path.read_text(encoding="utf-8"))
    report["entries"]["search_cycle"]["ratios"]["gumbel"] = 1.4449
    path.write_text(json.dumps(report), encoding="utf-8")
    assert "| 1.44x the time | search_cycle |" in doc_tables.render("figures", str(copy_root))
    assert "| 1.44x | no | search_cycle |" in doc_tables.render("targets", str(copy_root))
    assert any("'figures' is not what" in p for p in doc_tables.check(str(copy_root)))
    readme = (copy_root / "README.md").read_text(encoding="utf-8")
    new, problems = doc_tables.regenerate(readme, "README.md", str(copy_root))
    assert problems == [] and "1.44x the time" in new and "1.22x the time" not in new


def test_targets_that_a_report_measures_are_judged(copy_root):
    """The targets no committed report measures today are judged once a report has them."""
    path = copy_root / "bench/results/model_suite.json"
    report = json.loads(path.read_text(encoding="utf-8"))
    assert "| no committed report measures it |" in doc_tables.render("targets", str(copy_root))
    report["entries"]["bucketing"] = {"status": "ok", "speedup": 1.655}
    report["entries"]["retrace"] = {"status": "ok", "functions": {"train": {"constant": False}}}
    path.write_text(json.dumps(report), encoding="utf-8")
    rows = doc_tables.render("targets", str(copy_root)).splitlines()
    assert (
        "| training b8 bucketed by region count / padded to 100 >= 1.6x | 1.66x | yes | model_suite |"
        in rows
    )
    assert "| no retracing over 50 steps after warm-up | retraced | no | model_suite |" in rows
    assert (
        "| input pipeline / what training consumes >= 3x | no committed report measures it | not judged | none |"
        in rows
    )


def test_the_side_by_side_table_judges_each_run_and_says_which_missed(copy_root):
    """Each run's default path against the kind's target, run by run; the oneDNN row says what
    TensorFlow ran in each."""
    path = copy_root / doc_tables.SIDE_BY_SIDE_ONEDNN[0]
    report = json.loads(path.read_text(encoding="utf-8"))
    comparison = report["entries"]["original"]["comparisons"]["eval_b64_padded"]
    comparison["ours_over_original"].update(median=1.39, min=1.3, max=1.5)
    report["machine"]["onednn_on"] = True
    path.write_text(json.dumps(report), encoding="utf-8")
    rows = doc_tables.render("side_by_side_onednn", str(copy_root)).splitlines()
    row = next(r for r in rows if r.startswith("| eval b64, padded |"))
    assert row.startswith("| eval b64, padded | **1.39x** (1.30-1.50) graph |")
    assert row.endswith(">= 1.4x: met in run 3; missed in runs 1, 2 |")  # runs 2, 3: 1.03x, 1.62x
    onednn = next(r for r in rows if r.startswith("| oneDNN"))
    assert onednn.count("(oneDNN on)") == 2 and onednn.count("unset (oneDNN off)") == 1
    assert doc_tables._verdict([True, False, True]) == "met in runs 1, 3; missed in run 2"
    assert doc_tables._verdict([True, True]) == "met in every run"


UP = "08:00:00 up 9 min,  0 user,  load average: {}, 3.78, 1.69"


@pytest.mark.parametrize(
    "report, load",
    [
        ({"load_average_1min": {"start": 10.775, "end": 1.7548}}, "10.78 -> 1.75"),  # bench.run
        ({"load_average_1min": 6.657, "uptime_after": UP.format("7.13")}, "6.66 -> 7.13"),
        ({"machine": {"uptime_before": UP.format("22.53"), "uptime_after": UP.format("29.85")}},
         "22.53 -> 29.85 (`uptime`)"),
        ({"train_b8": {"load_average": {"start": 28.1, "end": 36.4}}}, "28.10 -> 36.40 (train_b8)"),
        ({"runs": [{"load_before": 17.71, "load_after": 19.78}, {"load_before": 33.69}]},
         "17.71-33.69 over its runs"),
        ({"train_b8": {"mode": "train"}}, "not recorded"),
    ],
)  # fmt: skip
def test_load_in_each_writers_form(report, load):
    assert f"; load {load}; command not recorded" in doc_tables.describe("r.json", report)


def test_numbers_are_rounded_as_the_report_reads():
    assert doc_tables._f(2.065, 2) == "2.07"  # binary float formatting gives 2.06
    assert doc_tables._f(52.745, 2) == "52.75"
    assert doc_tables._f(1.219759147241751, 2) == "1.22"
    assert doc_tables._n(1183.6645655262607, 0) == "1,184"


def test_machine_kind_and_commands_without_machine_paths():
    assert doc_tables.machine_kind(["avx2", "avx512f", "amx_bf16"]) == "AMX"
    assert doc_tables.machine_kind(["avx2", "avx512f", "avx512_bf16"]) == "AVX-512, no AMX"
    assert doc_tables.machine_kind(["avx2", "fma"]) == "AVX2, no AVX-512"
    assert doc_tables.machine_kind(None) == "kind not recorded"
    cmd = "python -m bench.run --out=/home/u/out/model.json --data_dir=/tmp/x --n=3"
    assert (
        doc_tables._short_command(cmd) == "python -m bench.run --out=model.json --data_dir=x --n=3"
    )


LSCPU = """Architecture:                            x86_64
Model name:                              AMD EPYC 7B13
Thread(s) per core:                      2
Flags:                                   fpu sse2 avx2 fma avx512f avx512_bf16
"""


def test_parse_lscpu():
    assert parse_lscpu(LSCPU) == {
        "lscpu_model_name": "AMD EPYC 7B13",
        "lscpu_flags": ["avx2", "avx512_bf16", "avx512f", "fma", "fpu", "sse2"],
    }
    assert parse_lscpu("") == {"lscpu_model_name": "not recorded", "lscpu_flags": []}


def test_report_context():
    context = report_context("bench.run", ["--entries=peak", "--out=a b.json"])
    assert context["command"] == "python -m bench.run --entries=peak '--out=a b.json'"
    assert context["load_average_1min"] == pytest.approx(os.getloadavg()[0], abs=5)
    machine = context["machine"]
    assert set(machine) == {"lscpu_model_name", "lscpu_flags", "cores"}
    assert machine["cores"] == os.cpu_count()
    if shutil.which("lscpu"):
        assert machine["lscpu_model_name"] != "not recorded" and machine["lscpu_flags"]


def test_bench_run_records_machine_load_and_command(tmp_path, monkeypatch):
    """``python -m bench.run`` writes the context into its report, and the tables print it."""
    from bench import run

    def spawn(names, args):  # no subprocess, no TensorFlow: the entries are not measured here
        return {n: {"status": "skipped", "reason": "not measured by this test"} for n in names}

    monkeypatch.setattr(run, "spawn", spawn)
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    monkeypatch.setattr(
        run,
        "report_context",
        lambda module, args: {
            "machine": {**parse_lscpu(LSCPU), "cores": 2},
            "load_average_1min": 0.5,
            "command": f"python -m {module} " + " ".join(args),
        },
    )
    out = tmp_path / "r.json"
    run.main(["--entries=peak", f"--out={out}"])
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["machine"]["lscpu_model_name"] == "AMD EPYC 7B13"
    assert "avx512f" in report["machine"]["lscpu_flags"]
    assert report["load_average_1min"]["start"] == 0.5
    assert report["command"] == f"python -m bench.run --entries=peak --out={out}"
    # what the entries' processes get: the machine's oneDNN choice unless one was exported
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    assert run.entry_env()["TF_ENABLE_ONEDNN_OPTS"] == "0"
    assert run.machine_light()["onednn_env"] == "0"
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS")
    chosen = machine.choose().onednn_opts
    assert run.entry_env(["peak"]).get("TF_ENABLE_ONEDNN_OPTS") == chosen
    assert report["machine"]["onednn_env"] == (chosen or "unset")
    # the serving entry runs as the local server does: TensorFlow's default on every kind
    assert "TF_ENABLE_ONEDNN_OPTS" not in run.entry_env(["serving_latency"])
    assert run.machine_light(["serving_latency"])["onednn_env"] == "unset"
    line = doc_tables.describe("r.json", report)
    assert (
        'machine "AMD EPYC 7B13", 2 cores, flags avx2, avx512f, avx512_bf16 (AVX-512, no AMX)'
        in line
    )
    assert "load 0.50 -> " in line and "`python -m bench.run --entries=peak --out=r.json`" in line


def test_tables_and_scoreboards_are_described_by_their_runs_provenance():
    amd = {"cpu_model": "AMD EPYC (family 25 model 17)", "cpu_flags": "f1", "threads": {"cpus": 2}}
    board = {
        "command": "python -m bench.search_quality --out=/work/x/search_quality.json",
        "cpu_flags": {"f1": "avx avx2 fma avx512f avx512_bf16"},
        "estimators": {"a": {"provenance": [amd, amd]}, "b": {"provenance": [amd]}},
    }
    line = doc_tables.describe("q.json", board)
    assert line == (
        '`q.json`: machine "AMD EPYC (family 25 model 17)" (3 runs, AVX-512, no AMX, 2 cores); '
        "load not recorded; `python -m bench.search_quality --out=search_quality.json`"
    )
    amx = {"machine_kind": "intel-amx", "backfilled": True}
    table = {"genotypes": {"g": {"runs": [{"provenance": amx}] * 2 + [{"provenance": amd}]}}}
    table["cpu_flags"] = {"f1": "avx2 avx512f amx_bf16"}
    assert doc_tables.describe("t.json", table) == (
        "`t.json`: machine model not recorded (2 runs, intel-amx, provenance backfilled); "
        'machine "AMD EPYC (family 25 model 17)" (1 runs, AMX, 2 cores); load not recorded; '
        "command not recorded"
    )
