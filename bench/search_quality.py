"""The estimator scoreboard: every search estimator scored against the ground-truth table of
``bench.search_space_table`` (docs/search_results.md).

    python -m bench.search_quality --table=bench/results/search_space_table.json \\
        --out=bench/results/search_quality.json --plot=docs/search_quality.png [--seeds=3]
    python -m bench.search_quality --smoke --out=/tmp/q/q.json  # CI: a 4-genotype table
        # (written next to --out as smoke_table.json, its picture as smoke_quality.png), one
        # seed per estimator, tiny sizes

For each entry, a named search recipe of ``mmnas_tf.nas.recipes`` (``gumbel``: every candidate in
the theta step; ``gumbel_sampled``: gumbel with ``arch_paths=sampled``; ``proxyless``; ``uniform``:
uniform path sampling, then the selection step of ``mmnas_tf.nas.selection``;
``gumbel_selection``: gumbel, then a selection among draws from softmax(theta); and the default
recipe, what ``python -m mmnas_tf.search`` runs without flags), and search seed: one search
through the library's own search function (``mmnas_tf.search.search``, with hooks that feed it the
table's data and record the result) of the supernet of the table's space with the table's model
sizes, on D_m / D_a of the training split, for the budget :data:`SEARCH` in cycles; the genotype
it finds and the search's CPU time (this process's user + system time while it searched). Seeds
are paired: every recipe of a seed starts from the same initial weights and reads the same data
order. ``gumbel`` shares each seed's search with ``gumbel_selection`` (its pick is the argmax
before the selection step). The JSON records each entry's recipe and each search's provenance. For every seed, every
genotype of the table (of its sample, for a space too big to enumerate) is scored with the
supernet's inherited weights on the table's held-out split (``supernets``, one per seed;
``supernet`` is the first seed's). Every figure is computed from the two JSON files alone: per
estimator (ground truth of the picks, percentile, regret, Kendall tau, CPU-minutes, random search
at equal cost, with intervals over seeds and paired tests) by
:func:`mmnas_tf.benchmark.scoreboard_statistics`, written as ``statistics``; the Table 2a
analogue by :func:`table_2a`, written as ``table_2a``; :func:`check` refuses a malformed one.

Resumable: ``--out`` is rewritten atomically after every search, a rerun skips the (recipe,
seed) pairs already in it and refuses a file made with another budget or recipes, another table
protocol or space, or another code version. Searches run seed-major, so a partial file already
compares every estimator; picks that a partial table does not hold yet are listed as pending.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import tempfile

import numpy as np

from bench import search_space_table as tables
from mmnas_tf.benchmark.scoreboard import render_markdown, scoreboard_statistics
from mmnas_tf.benchmark.table import Table
from mmnas_tf.nas import recipes

#: The scoreboard's entries: named search recipes (``mmnas_tf.nas.recipes``), the default one
#: (what ``python -m mmnas_tf.search`` runs without flags) among them.
DEFAULT_ESTIMATOR = recipes.DEFAULT_RECIPE
ESTIMATORS = tuple(
    dict.fromkeys(
        (
            "gumbel",
            "gumbel_sampled",
            "proxyless",
            "uniform",
            "gumbel_selection",
            "gumbel_prior",
            DEFAULT_ESTIMATOR,
        )
    )
)
#: Op pools of the paper's Table 2a (decoder; the encoder is the table's).
TABLE_2A_POOLS = (("GA", "FFN"), ("SA", "GA", "FFN"), ("SA", "GA", "RSA", "FFN"))
#: The budget of every search in cycles (u weight steps + 1 theta step); ``search.<field>``
#: entries override the recipes' fields (the smoke run's selection). 1,800 warm-up cycles since
#: the warm-up board (docs/search_results.md, "The warm-up board"), decided by its rule: the
#: ten-seed boards before it ran 600 and are resumed with ``--warmup_cycles=600``.
SEARCH = {"warmup_cycles": 1800, "search_cycles": 200}
SMOKE_SEARCH = {
    "warmup_cycles": 2,
    "search_cycles": 2,
    "search.selection_population": 3,
    "search.selection_generations": 1,
}
#: The weight schedule of every benchmark search (the experiment's, not the recipe's).
BENCH_WEIGHTS = {"weight_learning_rate": 1e-3, "warmup": ()}


# ---- what the statistics do not hold: Table 2a ------------------------------------------------
def table_2a(table: dict, quality: dict) -> list[dict]:
    """Per decoder op pool: the best genotype of the table using only those ops, and the mean
    ground truth of the searches over that pool (``quality["pool_searches"]``; the full pool's
    are the default estimator's picks; ``picks`` None: the pool was not searched). Ground truth
    is :meth:`mmnas_tf.benchmark.Table.accuracy`; picks the table does not hold yet are left
    out of the mean."""
    ref = Table(table)
    means = {g: ref.accuracy(g) for g, e in table["genotypes"].items() if e["seeds"]}
    full = tuple(table["space"]["decoder"][0])
    rows = []
    for pool in TABLE_2A_POOLS:
        if not set(pool) <= set(full):
            continue
        inside = {g: m for g, m in means.items() if set(_decoder(g)) <= set(pool)}
        key = " ".join(pool)
        picks = quality.get("pool_searches", {}).get(key)
        if picks is None and set(pool) == set(full):
            picks = quality["estimators"].get(quality["default_estimator"], {}).get("picks")
        found = [means[g] for g in picks or [] if g in means]
        best = max(inside, key=inside.get) if inside else None
        rows.append(
            {
                "pool": list(pool),
                "genotypes_in_table": len(inside),
                "best": {"genotype": best, "accuracy": inside[best]} if best else None,
                "searched": {
                    "picks": picks,
                    "mean_ground_truth": float(np.mean(found)) if found else None,
                },
            }
        )
    return rows


def _decoder(genotype: str) -> list[str]:
    return genotype.split("dec[", 1)[1].rstrip("]").split()


# ---- searches -----------------------------------------------------------------------------------
def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def epochs_of(settings: dict, theta_every: int = 0) -> tuple[int, int, int]:
    """(warm-up epochs, search epochs, cycles per epoch) of the budget in cycles: epochs of the
    largest length dividing both phases (of ``theta_every`` cycles when recording theta). The
    epoch length changes nothing but the per-epoch records: the cycles are one stream."""
    w, s = settings["warmup_cycles"], settings["search_cycles"]
    steps = theta_every or math.gcd(w, s)
    if w % steps or s % steps:
        raise ValueError(
            f"{steps} cycles per epoch must divide the warm-up ({w}) and search ({s}) cycles"
        )
    return w // steps, s // steps, steps


def experiment(
    data_dir: str,
    protocol: dict,
    spec: dict,
    recipe: str,
    seed: int,
    settings: dict,
    theta_every: int = 0,
):
    """The ``vqa`` experiment with the table's supernet and data, the named search recipe, the
    benchmark's budget and ``seed`` (data order, initial weights, architecture sampler)."""
    import dataclasses

    from mmnas_tf.experiments import apply_overrides, get_experiment
    from mmnas_tf.synthbench import questions

    base = get_experiment("vqa")
    model = tables.model_config(data_dir, protocol, None, spec)
    warmup, search, steps = epochs_of(settings, theta_every)
    exp = dataclasses.replace(
        base,
        name=f"search_quality_{recipe}",
        search_model=model.replace(num_answers=len(questions.ANSWERS)),
        data=dataclasses.replace(base.data, data_dir=data_dir, seed=seed, sizes_from_data=()),
        train=dataclasses.replace(
            base.train,
            steps_per_epoch=steps,
            clip_norm=1.0,
            checkpoint_every_steps=0,
            max_to_keep=1,
        ),
    )
    # the benchmark's weight schedule (its own data and model): 1e-3, constant; no recipe sets it
    exp = dataclasses.replace(exp, search=dataclasses.replace(exp.search, **BENCH_WEIGHTS))
    exp = recipes.get_recipe(recipe).apply(exp)
    # the scoreboard's search.* settings, parsed by field type and validated as --override is
    exp = apply_overrides(exp, [f"{k}={v}" for k, v in settings.items() if k.startswith("search.")])
    search = dataclasses.replace(exp.search, warmup_epochs=warmup, search_epochs=search)
    return dataclasses.replace(exp, search=search).validate()


def table_datasets(data_dir: str, protocol: dict, seed: int, steps: int):
    """``SearchHooks.datasets`` of the table's data: D_m / D_a of its training split, repeated and
    shuffled with ``seed`` / ``seed + 7919``, one stream of cycles over every epoch (epoch e
    starts after e x ``steps`` cycles); the evaluation reads D_a once."""
    import dataclasses

    from mmnas_tf.data import pipeline, writer
    from mmnas_tf.nas.search_model import cycle_dataset

    manifest = writer.load_manifest(data_dir)

    def subset(name, s, repeat=True):
        cfg = tables._pipeline_config(protocol, manifest, True, seed=s, subset=name)
        if not repeat:
            cfg = dataclasses.replace(cfg, repeat=False)
        return pipeline.Pipeline(data_dir, "train", cfg).dataset()

    def datasets(exp):
        u = exp.search.weight_steps_per_arch_step

        def cycles_fn(epoch):
            stream = cycle_dataset(subset("dm", seed), subset("da", seed + 7919), u)
            return stream.skip(epoch * steps)

        return cycles_fn, lambda: subset("da", seed, repeat=False)

    return datasets


def run_search(
    data_dir,
    protocol,
    spec,
    recipe: str,
    seed: int,
    settings: dict,
    theta_every: int = 0,
    model_dir: str | None = None,
) -> dict:
    """One search of the named recipe through the library's search function
    (``mmnas_tf.search.search``, the code path of ``python -m mmnas_tf.search``). Returns
    ``{"model", "pick", "cpu_minutes", "details"}``; with a selection step also ``"argmax"``
    and ``"argmax_cpu_minutes"`` (the theta search's own pick and cost, before the selection).
    With ``theta_every``, ``details["theta_history"]`` holds softmax(theta) after the warm-up
    and after every ``theta_every`` search cycles, as ``{"epochK": {"theta": ...}}`` (K = search
    cycles / ``theta_every``); the search is the same (the same stream of cycles)."""
    from mmnas_tf import search as driver

    exp = experiment(data_dir, protocol, spec, recipe, seed, settings, theta_every)
    steps = exp.train.steps_per_epoch
    out: dict = {"details": {}}
    cpu0 = _cpu_seconds()

    def before_selection(sm, status):
        out["argmax"] = str(sm.genotype())
        out["argmax_cpu_minutes"] = (_cpu_seconds() - cpu0) / 60
        if sm.gradient_estimator.learns_theta:
            out["details"]["theta"] = sm.theta_table()

    def searched(sm, status):
        out["model"], out["status"] = sm, status
        out["pick"] = (
            status["selection"]["genotype"] if "selection" in status else str(sm.genotype())
        )
        if "selection" in status:
            out["details"]["selection_candidates"] = [
                {k: c[k] for k in ("genotype", "score", "generation")}
                for c in status["selection"]["candidates"]
            ]
        if sm.gradient_estimator.learns_theta:
            out["details"]["theta"] = sm.theta_table()

    hooks = driver.SearchHooks(
        datasets=table_datasets(data_dir, protocol, seed, steps),
        before_selection=before_selection,
        searched=searched,
    )
    with tempfile.TemporaryDirectory(prefix="mmnas_quality_search_") as tmp:
        driver.search(exp, model_dir or tmp, tensorboard=False, dtype_policy="float32", hooks=hooks)
    out["cpu_minutes"] = (_cpu_seconds() - cpu0) / 60
    if theta_every:
        history, warmup = out["status"]["history"], exp.search.warmup_epochs
        out["details"]["theta_history"] = {
            f"epoch{int(k[5:]) - warmup}": {"theta": v["theta"]}
            for k, v in history.items()
            if int(k[5:]) >= warmup
        }
    return out


def table_genotypes(table: dict) -> list:
    """The genotypes a supernet is scored on: the table's sample (a space too big to enumerate)
    or every genotype of its space."""
    if "sample" in table:
        return tables.sample(table["space"], len(table["sample"]), table["sample_seed"])
    return tables.genotypes(table["space"])


def supernet_scores(sm, batches, families, genotypes) -> dict[str, float]:
    """The headline metric of each of ``genotypes`` with the supernet's inherited weights."""
    return {
        str(g): tables.evaluate(sm.task_model, batches, families, arch=sm.arch_of(g))[tables.METRIC]
        for g in genotypes
    }


#: A scoreboard entry that shares each seed's search with another: (entry, the recipe whose run
#: gives it, the key of that run's result holding its pick). ``gumbel``'s pick is the argmax of
#: ``gumbel_selection``'s theta search (the same search: same recipe but for the selection step).
SHARED = {"gumbel": ("gumbel_selection", "argmax")}


def _add(
    quality: dict,
    name: str,
    seed: int,
    pick: str,
    minutes: float,
    details: dict,
    supernet,
    prov: dict,
) -> None:
    entry = quality["estimators"].setdefault(
        name, {"picks": [], "cpu_minutes": [], "seeds": [], "details": [], "provenance": []}
    )
    entry["picks"].append(pick)
    entry["cpu_minutes"].append(round(minutes, 3))
    entry["seeds"].append(seed)
    entry["details"].append(details)
    entry.setdefault("provenance", []).append(prov)
    entry["recipe"] = recipes.get_recipe(name).to_json()
    scores = supernet()
    entry.setdefault("supernets", []).append(scores)  # one per search seed (tau over seeds)
    if "supernet" not in entry:
        entry["supernet"] = scores


def run_provenance(quality: dict, data_dir: str) -> dict:
    """This process's provenance (``bench.search_space_table.provenance``), its CPU flags kept
    once in ``quality["cpu_flags"]`` under their id."""
    prov = tables.provenance(data_dir)
    key = tables.flags_id(prov["cpu_flags"])
    quality.setdefault("cpu_flags", {})[key] = prov["cpu_flags"]
    return {**prov, "cpu_flags": key}


def run_all(
    table: dict,
    data_dir: str,
    estimators,
    seeds: int,
    settings: dict,
    log=print,
    pool_searches: bool = True,
    out: str | None = None,
    quality: dict | None = None,
) -> dict:
    """Runs every search of the scoreboard not yet in ``quality``; returns the
    ``search_quality.json`` content. Seed-major (seed 0 of every recipe first), so a partial
    file already compares every recipe; every recipe of a seed starts from the same initial
    weights and reads the same data order. With ``out``, the file is rewritten atomically after
    every search and a rerun resumes where it stopped."""
    protocol, spec = table["protocol"], table["space"]
    tables.prepare_data(data_dir, protocol)
    batches, families = tables.eval_batches(data_dir, protocol), table["families"]
    names = table_genotypes(table)
    quality = quality or {"default_estimator": DEFAULT_ESTIMATOR, "estimators": {}}
    save = (lambda: tables.write_json(out, quality)) if out else (lambda: None)
    prov = run_provenance(quality, data_dir)

    def done(name, seed):
        return seed in quality["estimators"].get(name, {}).get("seeds", [])

    for seed in range(seeds):
        for name in estimators:
            if done(name, seed):
                continue
            shared = SHARED.get(name)
            if shared and shared[0] in estimators:
                continue  # recorded with the run it shares
            result = run_search(data_dir, protocol, spec, name, seed, settings)
            sm = result["model"]

            cache: dict = {}

            def supernet(sm=sm, cache=cache):  # computed once, shared by the entries of a search
                if "scores" not in cache:
                    cache["scores"] = supernet_scores(sm, batches, families, names)
                return cache["scores"]

            _add(
                quality,
                name,
                seed,
                result["pick"],
                result["cpu_minutes"],
                result["details"],
                supernet,
                prov,
            )
            log(f"{name} seed {seed}: {result['pick']} ({result['cpu_minutes']:.2f} CPU-min)")
            for other, (source, key) in SHARED.items():
                if source == name and other in estimators and not done(other, seed):
                    details = {"theta": result["details"].get("theta"), "shared_with": name}
                    _add(
                        quality,
                        other,
                        seed,
                        result[key],
                        result["argmax_cpu_minutes"],
                        details,
                        supernet,
                        prov,
                    )
                    log(f"{other} seed {seed}: {result[key]} (the search of {name})")
            save()
    if pool_searches:  # Table 2a: the default recipe over the smaller pools
        encoder, full, n = tables.stage_pools(spec)
        done_pools = quality.setdefault("pool_searches", {})
        for pool in TABLE_2A_POOLS:
            if set(pool) < set(full) and len(pool) > 1:
                sub = {"encoder": spec["encoder"], "decoder": [list(pool)] * n}
                picks = done_pools.setdefault(" ".join(pool), [])
                for s in range(len(picks), seeds):
                    picks.append(
                        run_search(
                            data_dir, protocol, sub, quality["default_estimator"], s, settings
                        )["pick"]
                    )
                    save()
                    log(f"pool {pool} seed {s}: {picks[-1]}")
    return quality


#: What a resumed run must share with the file it continues.
PINNED = ("search", "recipes", "table_protocol", "table_space", "code_version")


def resume(path: str, pinned: dict) -> dict | None:
    """The partial ``search_quality.json`` at ``path`` to continue, or None when there is none;
    ValueError when it was made with other search settings, another table protocol or space, or
    another code version (its figures would not be comparable)."""
    old = tables.load_table(path)
    if old is None:
        return None
    for key in PINNED:
        if old.get(key) != pinned[key]:
            raise ValueError(
                f"{path} was made with another {key} ({old.get(key)!r}, this run: "
                f"{pinned[key]!r}): pass another --out or delete it to start again"
            )
    return old


def check_quality(quality: dict) -> None:
    """Raises ValueError when ``search_quality.json`` lacks a field or holds a malformed one."""
    for key in ("default_estimator", "estimators"):
        if key not in quality:
            raise ValueError(f"search_quality.json lacks {key!r}")
    for name, e in quality["estimators"].items():
        for key in ("picks", "supernet", "cpu_minutes"):
            if key not in e:
                raise ValueError(f"estimator {name}: {key!r} missing")
        if not e["picks"] or len(e["picks"]) != len(e["cpu_minutes"]):
            raise ValueError(
                f"estimator {name}: one pick and one cpu_minutes per search seed expected"
            )
        if not all(np.isfinite(e["cpu_minutes"])) or min(e["cpu_minutes"]) <= 0:
            raise ValueError(
                f"estimator {name}: cpu_minutes must be positive, got {e['cpu_minutes']}"
            )
        if not all(np.isfinite(list(e["supernet"].values()))):
            raise ValueError(f"estimator {name}: non-finite supernet accuracy")


def _check_interval(name: str, key: str, stat: dict, low: float, high: float) -> None:
    values = [*stat["values"], stat["mean"], *stat["interval"]]
    if not all(np.isfinite(values)) or not all(low <= v <= high for v in values):
        raise ValueError(
            f"estimator {name}: {key} must be finite and within [{low}, {high}], got {stat}"
        )


def check(stats: dict, quality: dict) -> None:
    """Raises ValueError when a figure of the scoreboard's statistics
    (:func:`mmnas_tf.benchmark.scoreboard_statistics`) or of its Table 2a rows
    (``quality["table_2a"]``, when present) is missing, not finite or out of range. Picks the
    table does not hold yet are allowed while it can still gain them (a partial table, or a
    sampled one, whose picks are trained after its sample), not in a complete enumerated table."""
    check_quality(quality)
    summary = stats["table"]
    for key in ("reference", "complete", "mean", "percentiles", "best", "robust_seed_std"):
        if key not in summary:
            raise ValueError(f"the statistics' table summary lacks {key!r}")
    pending = not summary["complete"] or summary["sampled"]
    for name in quality["estimators"]:
        e = stats["estimators"].get(name)
        if e is None:
            raise ValueError(f"estimator {name}: no statistics")
        if e["missing_from_table"] and not pending:
            raise ValueError(
                f"estimator {name}: picks {e['missing_from_table']} are not in the complete table"
            )
        if "ground_truth" not in e:
            continue  # every pick waits for the trainings of the table
        regret_low = -100.0 if summary["sampled"] else 0.0  # the sample's best is a lower bound
        for key, low, high in (
            ("ground_truth", 0.0, 100.0),
            ("percentile", 0.0, 100.0),
            ("regret", regret_low, 100.0),
            ("informative_macro", 0.0, 100.0),
        ):
            if key in e:
                _check_interval(name, key, e[key], low, high)
        taus = e["kendall_tau"]["per_seed"]
        if not taus and summary["complete"]:
            raise ValueError(f"estimator {name}: no supernet ranks the table (kendall_tau)")
        if not all(-1 <= t <= 1 for t in taus):
            raise ValueError(f"estimator {name}: kendall_tau out of [-1, 1]: {taus}")
        found = e.get("random_search_equal_cost", {}).get("per_seed", [])
        if not all(np.isfinite(found)):
            raise ValueError(f"estimator {name}: random search at equal cost not finite: {found}")
    for row in quality.get("table_2a", []):
        searched = row["searched"]["mean_ground_truth"]
        if row["best"] is None or (searched is not None and not np.isfinite(searched)):
            raise ValueError(f"Table 2a pool {row['pool']}: malformed row {row}")


# ---- picture ------------------------------------------------------------------------------------
def plot(table: dict, stats: dict, path: str) -> str | None:
    """Histogram of the table's reference (its headline metric) with each estimator's picks
    marked at their ground truth (``stats``: :func:`mmnas_tf.benchmark.scoreboard_statistics`;
    picks the table does not hold yet are not drawn) (PNG)."""
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: no plot")
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ref = Table(table)
    values = [ref.accuracy(g) for g in ref.reference]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.hist(
        values,
        bins=min(24, max(len(values) // 2, 4)),
        color="#c6dbef",
        edgecolor="#4a6fa5",
        label=f"table ({len(values)} genotypes)",
    )
    colours = {
        "gumbel": "#d62728",
        "gumbel_sampled": "#ff7f0e",
        "proxyless": "#2ca02c",
        "uniform": "#9467bd",
        "gumbel_selection": "#8c564b",
        "gumbel_prior": "#17becf",
    }
    top = ax.get_ylim()[1]
    for k, (name, e) in enumerate(stats["estimators"].items()):
        xs = e["ground_truth"]["values"] if "ground_truth" in e else []
        ax.scatter(
            xs,
            [top * (0.92 - 0.07 * k)] * len(xs),
            marker="v",
            s=70,
            color=colours.get(name, "k"),
            label=f"{name} picks",
            zorder=3,
        )
    ax.set_xlabel(
        f"{table['metric']} (held-out {table['protocol']['eval_split']}, mean over seeds, %)"
    )
    ax.set_ylabel("genotypes")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def theta_histories(
    table: dict,
    data_dir: str,
    estimators,
    settings: dict,
    out_dir: str,
    every: int,
    quality: dict | None = None,
    log=print,
) -> dict:
    """Reruns seed 0 of each theta estimator recording theta every ``every`` search cycles;
    writes ``out_dir/theta_<name>.json`` and ``.png`` (``mmnas_tf.viz.plot_theta_history``).
    Returns ``{name: {"pick", "scoreboard_pick"}}``: the rerun is the scoreboard's search, so
    with the same code its pick equals the one in ``quality`` (when given; a difference is
    printed)."""
    from mmnas_tf import viz
    from mmnas_tf.nas.estimators import get_estimator

    tables.prepare_data(data_dir, table["protocol"])
    os.makedirs(out_dir, exist_ok=True)
    result = {}
    for name in estimators:
        if not get_estimator(recipes.get_recipe(name).search["estimator"]).learns_theta:
            continue  # no theta: its architecture is chosen after training
        run = run_search(
            data_dir, table["protocol"], table["space"], name, 0, settings, theta_every=every
        )
        found, minutes, details = run["pick"], run["cpu_minutes"], run["details"]
        path = os.path.join(out_dir, f"theta_{name}")
        tables.write_json(path + ".json", details["theta_history"])
        viz.plot_theta_history(
            details["theta_history"], path + ".png", f"search cycles / {every} (0: end of warm-up)"
        )
        entry = ((quality or {}).get("estimators") or {}).get(name) or {}
        listed = dict(zip(entry.get("seeds", []), entry.get("picks", []))).get(0)
        result[name] = {"pick": found, "scoreboard_pick": listed}
        same = "" if listed in (None, found) else " (DIFFERS: other code or machine?)"
        log(
            f"{name} seed 0: {found} ({minutes:.2f} CPU-min); scoreboard: {listed}{same}; {path}.png"
        )
    return result


def parse_overrides(text: str) -> dict:
    """``"search.a=1;search.b=x"`` -> ``{"search.a": "1", "search.b": "x"}``: the values stay text,
    parsed by field type when :func:`experiment` applies them (``mmnas_tf.experiments.
    apply_overrides``); ValueError naming an item that is not ``search.FIELD=VALUE``."""
    from mmnas_tf.experiments import split_overrides

    out = {}
    for item in split_overrides([text]):
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not key.startswith("search.") or len(key) <= len("search."):
            raise ValueError(f"--override item {item!r}: expected search.FIELD=VALUE")
        out[key] = value
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--table", default="bench/results/search_space_table.json")
    parser.add_argument("--out", default="bench/results/search_quality.json")
    parser.add_argument(
        "--plot", help="default docs/search_quality.png (--smoke: smoke_quality.png beside --out)"
    )
    parser.add_argument("--data_dir", default="/tmp/mmnas_table_data")
    parser.add_argument("--seeds", type=int, default=3, help="search seeds per estimator")
    parser.add_argument(
        "--noise_table",
        default="bench/results/search_space_table.json",
        help="where a sampled table's seed noise comes from (its genotypes have one seed each)",
    )
    parser.add_argument("--estimators", default=",".join(ESTIMATORS))
    parser.add_argument("--no_pool_searches", action="store_true", help="skip Table 2a searches")
    parser.add_argument("--score_only", action="store_true", help="recompute from --out only")
    parser.add_argument("--smoke", action="store_true", help="builds a 4-genotype table first")
    parser.add_argument(
        "--theta_history",
        default="",
        help="DIR: instead of the scoreboard, rerun seed 0 of each theta estimator recording "
        "softmax(theta) every --theta_every search cycles; writes DIR/theta_<estimator>.json/.png",
    )
    parser.add_argument("--theta_every", type=int, default=10)
    parser.add_argument(
        "--override",
        default="",
        help="search.FIELD=VALUE;... added to every recipe of this scoreboard (recorded with the "
        "budget; for example search.selection_generations=2 to keep uniform's selection within "
        "5%% of a 1,024-genotype space)",
    )
    for phase in ("warmup", "search"):
        parser.add_argument(
            f"--{phase}_cycles",
            type=int,
            default=SEARCH[f"{phase}_cycles"],
            help=f"the search's {phase} cycles (u weight steps + 1 theta step each in the search; "
            "recorded with the budget: a file of another budget is not resumed)",
        )
    args = parser.parse_args(argv)
    if args.plot is None:  # a smoke run never overwrites the docs' picture
        out_dir = os.path.dirname(os.path.abspath(args.out))
        smoke = os.path.join(out_dir, "smoke_quality.png")
        args.plot = smoke if args.smoke else "docs/search_quality.png"
    for phase in ("warmup", "search"):
        if getattr(args, f"{phase}_cycles") < 1:
            raise ValueError(
                f"--{phase}_cycles must be >= 1, got {getattr(args, f'{phase}_cycles')}"
            )
    settings = {"warmup_cycles": args.warmup_cycles, "search_cycles": args.search_cycles}
    settings.update(parse_overrides(args.override))
    estimators = args.estimators.split(",")
    for name in estimators:
        recipes.get_recipe(name)  # ValueError naming the accepted recipes
    tmp = None
    if args.smoke:
        tmp = tempfile.TemporaryDirectory(prefix="mmnas_quality_")
        args.data_dir = os.path.join(tmp.name, "data")
        args.table = os.path.join(os.path.dirname(os.path.abspath(args.out)), "smoke_table.json")
        settings.update(SMOKE_SEARCH)
        args.seeds = min(args.seeds, 1)
        protocol = {**tables.PROTOCOL, **tables.SMOKE}
        spec = tables.space(tables.SMOKE_POOL, tables.SMOKE_DECODER)
        tables.build(args.table, args.data_dir, protocol, 1, "smoke", spec=spec)
    table = tables.load_table(args.table)
    if table is None:
        raise FileNotFoundError(f"no table at {args.table}: run python -m bench.search_space_table")
    if args.theta_history:
        if args.theta_every < 1:
            raise ValueError(f"--theta_every must be >= 1, got {args.theta_every}")
        theta_histories(
            table,
            args.data_dir,
            estimators,
            settings,
            args.theta_history,
            args.theta_every,
            tables.load_table(args.out),
        )
        return 0
    if args.score_only:
        quality = tables.load_table(args.out)
    else:
        pinned = {
            "search": settings,
            "recipes": {n: recipes.get_recipe(n).to_json() for n in ESTIMATORS},
            "table_protocol": table["protocol"],
            "table_space": table["space"],
            "code_version": tables.code_version(),
        }
        quality = resume(args.out, pinned) if not args.smoke else None
        if quality is None:
            quality = {
                "default_estimator": DEFAULT_ESTIMATOR,
                "estimators": {},
                **pinned,
                "command": "python -m bench.search_quality " + " ".join(argv),
                "table_file": args.table,
            }
        quality = run_all(
            table,
            args.data_dir,
            estimators,
            args.seeds,
            settings,
            pool_searches=not args.no_pool_searches,
            out=args.out,
            quality=quality,
        )
    noise = None  # a sampled table has one seed per genotype: the seed noise is the first table's
    if "sample" in table and not args.smoke:
        noise = tables.load_table(args.noise_table)
        if noise is None:
            raise FileNotFoundError(f"no table at --noise_table={args.noise_table}")
    # every per-estimator figure: the statistics over seeds (the tables' API); Table 2a beside
    check_quality(quality)  # before its statistics: a malformed file is named as such
    stats = scoreboard_statistics(quality, table, noise)
    quality.pop("scoreboard", None)  # older files: the figures before the statistics owned them
    quality["statistics"], quality["table_2a"] = stats, table_2a(table, quality)
    check(stats, quality)
    tables.write_json(args.out, quality)
    if args.plot:  # --plot= draws nothing
        plot(table, stats, args.plot)
    print(json.dumps(stats["table"], indent=1))
    print(render_markdown(stats))
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    from bench.common import run_program

    run_program(main, machine_settings=False)  # oneDNN as the tables' protocol pins it
