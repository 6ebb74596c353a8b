"""The ground-truth table of a search space (a NAS-Bench-style tabular benchmark) on the
``structured`` synthetic VQA benchmark: every genotype trained stand-alone with a fixed protocol,
scored on the held-out ``val`` split (searches use D_m / D_a of ``train`` only).

    python -m bench.search_space_table --out=bench/results/search_space_table.json \\
        --data_dir=/tmp/mmnas_table_data [--seeds=3 --bimodal_seeds=5] [--limit=N] [--smoke]
    python -m bench.search_space_table --space=large --sample=96 \\
        --out=bench/results/search_space_table_large.json
    python -m bench.search_space_table --report [--out=...]

Resumable: the JSON is rewritten atomically after every training, and a (genotype, seed) already
in it is skipped; the protocol and the command are pinned in the JSON, and a run whose protocol
differs from the file's refuses to continue it. fp32, no bucketing. Every run records its
provenance (commit, library versions, CPU model and flags, threads, a hash of the generated
data), and a commit or machine kind new to a table adds runs only after it has reproduced one
recorded run of a stable genotype within the robust seed std (:func:`ensure_verified`).
``docs/synthetic_benchmark.md`` describes the benchmark, the protocol and how it was chosen;
``docs/search_results.md`` ("Protocol") the rules this module applies.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time

# The rules shared with the installed benchmark API (mmnas_tf.benchmark) live there.
from mmnas_tf.benchmark.statistics import (  # noqa: F401  (re-exported for the tests)
    INFORMATIVE_RATIO,
    ROBUST,
    family_stats,
    informative_families,
    macros,
    robust_seed_std,
)

METRIC = "macro_accuracy"  # mean over the question families of val accuracy, percent
QUESTION_SET = "structured"
ENCODER = ("SA",)  # one fixed encoder block after the LSTM
DECODER_POOL = ("SA", "GA", "RSA", "FFN")
NUM_DECODER = 3
#: The dropout generator of a protocol without the key ("dropout_generator"): every committed
#: table and scoreboard was built with it. PROTOCOL leaves the key out, so the builders keep the
#: tables' numerics whatever ModelConfig's default is, and old and new tables compare equal.
TABLE_DROPOUT_GENERATOR = "uniform"
#: The stand-alone training protocol (docs/synthetic_benchmark.md).
PROTOCOL = {
    "question_set": QUESTION_SET,
    "num_images": 4000,
    "data_seed": 0,
    "size": "tiny",
    "width": 48,
    "heads": 4,
    "relation_size": 16,
    "dropout": 0.0,
    "max_tokens": 16,
    "batch_size": 64,
    "steps": 2000,
    "learning_rate": 2e-3,
    "warmup_steps": 100,
    "decay": "cosine to 0",
    "clip_norm": 1.0,
    "loss": "BCE sum / batch",
    "eval_split": "val",
    "dtype": "float32",
    "bucketing": False,
}
SMOKE = {"num_images": 60, "width": 16, "steps": 3, "warmup_steps": 1, "batch_size": 16}
#: The smoke space: 4 genotypes (CI).
SMOKE_POOL, SMOKE_DECODER = ("GA", "RSA"), 2
#: The second space, too big to enumerate: searchable encoder slots, the original's pools.
ENCODER_POOL, NUM_ENCODER_LARGE, NUM_DECODER_LARGE = ("SA", "FFN"), 2, 4
SAMPLE, SAMPLE_SEED = 96, 0  # the large table's uniform sample (ground truth)
#: The large smoke space: 16 genotypes, a sample of 6 (CI).
SMOKE_LARGE_SAMPLE = 6

#: The rules of the protocol (docs/search_results.md, "Protocol"), fixed before the first
#: table's extra seeds and the second table were built; each table records them.
BIMODAL_RATIO = 5.0  # a genotype is bimodal when its seeds span >= 5 x the robust seed std
SEEDS, BIMODAL_SEEDS = 3, 5  # target seeds per genotype of the first table
RULES = {
    "robust_seed_std": "median over genotypes with >= 2 seeds of the median over their seed "
    "pairs of |a - b|, divided by 0.6745 * sqrt(2)",
    "informative_family": f"between-genotype std of the family's accuracy (genotype means) >= "
    f"{INFORMATIVE_RATIO:g} x the family's robust seed std (first table's seeds), and > 0",
    "bimodal_genotype": f"max - min of its seeds >= {BIMODAL_RATIO:g} x the table's robust "
    "seed std",
    "stable_genotype": "max - min of its seeds <= the table's robust seed std; the check "
    "reproduces the lowest recorded seed of the best-mean stable genotype",
    "version_check": "a (commit, machine kind) new to a table adds runs only after it has "
    "reproduced that run within the robust seed std",
}


def space(pool=DECODER_POOL, num_decoder=NUM_DECODER, encoder=ENCODER) -> dict:
    """The slots and their pools (a one-op pool is a fixed slot); ``encoder``: one pool per
    encoder slot's op (fixed slots, the first table) or, as a list of pools, searchable slots."""
    slots = [list(p) if isinstance(p, (list, tuple)) else [p] for p in encoder]
    return {"encoder": slots, "decoder": [list(pool) for _ in range(num_decoder)]}


def space_large(
    pool=DECODER_POOL,
    num_decoder=NUM_DECODER_LARGE,
    enc_pool=ENCODER_POOL,
    num_encoder=NUM_ENCODER_LARGE,
) -> dict:
    """The second space: ``num_encoder`` encoder slots over ``enc_pool`` and ``num_decoder``
    decoder slots over ``pool`` (default 2 x {SA, FFN}, 4 x {SA, GA, RSA, FFN}: 1,024)."""
    return space(pool, num_decoder, [tuple(enc_pool)] * num_encoder)


def stage_pools(spec: dict) -> tuple[tuple[str, ...], tuple[str, ...], int]:
    """(encoder pool, decoder pool, decoder blocks) of ``spec``: the supernet has one pool for
    every encoder slot (one op: a fixed encoder) and one for every decoder slot."""
    decoder = {tuple(p) for p in spec["decoder"]}
    encoder = {tuple(p) for p in spec["encoder"]}
    if len(decoder) != 1 or len(encoder) > 1:
        raise ValueError(
            f"space {spec}: expected one pool for every encoder slot and one for every decoder slot"
        )
    return (encoder.pop() if encoder else ()), decoder.pop(), len(spec["decoder"])


def genotypes(spec: dict | None = None) -> list:
    """Every genotype of ``spec`` (default :func:`space`), in a fixed order."""
    from mmnas_tf.genotype import Genotype

    spec = spec or space()
    slots = spec["encoder"] + spec["decoder"]
    m = len(spec["encoder"])
    return [Genotype(c[:m], c[m:]) for c in itertools.product(*slots)]


def build_order(spec: dict | None = None) -> list:
    """The genotypes of ``spec`` in a fixed random order (seed 0): a partial table is an
    unbiased sample of the space."""
    import numpy as np

    names = genotypes(spec)
    return [names[i] for i in np.random.default_rng(0).permutation(len(names))]


def sample(spec: dict, size: int, seed: int = SAMPLE_SEED) -> list:
    """``size`` distinct genotypes of ``spec`` drawn uniformly with ``seed`` (in draw order:
    the large table's build order, so a partial table is a uniform sample too)."""
    import numpy as np

    names = genotypes(spec)
    if not 0 < size <= len(names):
        raise ValueError(f"sample of {size}: expected 1..{len(names)} (the space's size)")
    return [names[i] for i in np.random.default_rng(seed).choice(len(names), size, replace=False)]


def code_version() -> str:
    """The commit of the checkout this file is in, ``-dirty`` when a tracked file outside
    ``bench/results`` has edits (the builders write their tables there, in the checkout)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def git(*args):
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        edits = git(
            "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)bench/results"
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if edits else "")


def prepare_data(data_dir: str, protocol: dict) -> str:
    """Generates the benchmark into ``data_dir`` unless it already holds it."""
    from mmnas_tf.data import writer
    from mmnas_tf.synthbench import benchmark
    from mmnas_tf.tasks import get_task

    if not os.path.exists(os.path.join(data_dir, writer.MANIFEST)):
        benchmark.generate(
            get_task("vqa"),
            data_dir,
            protocol["size"],
            num_images=protocol["num_images"],
            seed=protocol["data_seed"],
            feature_dtype="float32",
            question_set=protocol["question_set"],
        )
    return data_dir


def model_config(data_dir: str, protocol: dict, genotype, spec: dict | None = None):
    """The protocol's model around ``genotype`` (None: the supernet over ``spec``, default
    :func:`space`)."""
    from mmnas_tf.config import ModelConfig
    from mmnas_tf.data import writer
    from mmnas_tf.genotype import OpPools

    manifest = writer.load_manifest(data_dir)
    with open(os.path.join(data_dir, writer.VOCAB_FILE), encoding="utf-8") as f:
        vocab = len(f.read().split())
    d = protocol["width"]
    spec = spec or space()
    encoder, pool, num_decoder = stage_pools(spec)
    return ModelConfig(
        hidden_size=d,
        num_heads=protocol["heads"],
        ffn_size=4 * d,
        relation_size=protocol["relation_size"],
        vocab_size=vocab,
        word_embed_size=64,
        feature_size=manifest["feature_dim"],
        max_tokens=protocol["max_tokens"],
        max_regions=manifest["max_regions"],
        pool_mlp_size=d,
        pool_output_size=2 * d,
        num_encoder_blocks=len(spec["encoder"]),
        num_decoder_blocks=num_decoder,
        dropout=protocol["dropout"],
        # the protocol decides; a protocol without the key (every table built so far) means
        # "uniform", the only generator before the setting existed
        dropout_generator=protocol.get("dropout_generator", TABLE_DROPOUT_GENERATOR),
        genotype=genotype,
        pools=OpPools(encoder, pool),
    )


def _pipeline_config(protocol: dict, manifest: dict, training: bool, seed=None, subset="all"):
    from mmnas_tf.data import pipeline
    from mmnas_tf.tasks import get_task

    return pipeline.PipelineConfig(
        get_task("vqa"),
        batch_size=protocol["batch_size"] if training else 256,
        max_regions=manifest["max_regions"],
        max_tokens=protocol["max_tokens"],
        training=training,
        seed=seed,
        deterministic=True,
        repeat=training,
        subset=subset,
    )


def eval_batches(data_dir: str, protocol: dict, split: str = "val") -> list:
    """The held-out split as a list of (inputs, targets) batches (read once, reused)."""
    from mmnas_tf.data import pipeline, writer

    manifest = writer.load_manifest(data_dir)
    cfg = _pipeline_config(protocol, manifest, training=False)
    return list(pipeline.Pipeline(data_dir, split, cfg).dataset())


def family_names(protocol: dict) -> list[str]:
    from mmnas_tf.synthbench import benchmark

    return [f[0] for f in benchmark.QUESTION_SETS[protocol["question_set"]].FAMILIES]


def evaluate(model, batches, families: list[str], arch=None) -> dict:
    """Accuracy (percent) per question family, their mean (:data:`METRIC`) and overall.

    ``arch``: a supernet path (inherited-weight evaluation); the family of a question is
    ``question_id // 100 % 10``."""
    import numpy as np
    import tensorflow as tf

    kwargs = {} if arch is None else {"arch": arch}
    fams, correct = [], []
    for inputs, targets in batches:
        pred = tf.argmax(model(inputs, training=False, **kwargs)["logits"], -1)
        correct.append(tf.gather(targets["answer_scores"], pred, batch_dims=1).numpy() > 0)
        fams.append(targets["question_id"].numpy() // 100 % 10)
    fams, correct = np.concatenate(fams), np.concatenate(correct)
    per_family = {
        name: round(100 * float(correct[fams == f].mean()), 3)
        for f, name in enumerate(families)
        if (fams == f).any()
    }
    return {
        METRIC: round(float(np.mean(list(per_family.values()))), 3),
        "overall": round(100 * float(correct.mean()), 3),
        "per_family": per_family,
    }


def forward_flops(model, batch_inputs) -> int:
    """FLOPs of one forward pass of one example (TensorFlow's graph profiler, float ops)."""
    import tensorflow as tf
    from tensorflow.python.profiler import model_analyzer, option_builder

    one = tf.nest.map_structure(lambda t: t[:1], batch_inputs)
    fn = tf.function(lambda x: model(x, training=False)["logits"])
    graph = fn.get_concrete_function(one).graph
    opts = (
        option_builder.ProfileOptionBuilder(option_builder.ProfileOptionBuilder.float_operation())
        .with_empty_output()
        .build()
    )
    # the profiler's own internals call a TF1 API and log a deprecation advice a user cannot act on
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")
    try:
        return int(model_analyzer.profile(graph, options=opts).total_float_ops)
    finally:
        logger.setLevel(level)


def train_one(data_dir, protocol: dict, genotype, seed: int, batches, families, spec=None) -> dict:
    """Trains ``genotype`` from scratch with the protocol and scores it on ``batches``."""
    import keras
    import tensorflow as tf

    from mmnas_tf.data import pipeline, writer
    from mmnas_tf.synthbench import questions
    from mmnas_tf.tasks import get_task

    keras.config.set_floatx("float32")
    # The table is float32 on every machine (protocol "dtype"), whatever --dtype_policy defaults to.
    keras.config.set_dtype_policy(protocol.get("dtype", "float32"))
    keras.utils.set_random_seed(seed)
    task = get_task("vqa")
    manifest = writer.load_manifest(data_dir)
    model = task.build_model(
        model_config(data_dir, protocol, genotype, spec).replace(num_answers=len(questions.ANSWERS))
    )
    steps, warmup = protocol["steps"], protocol["warmup_steps"]
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0,
        steps - warmup,
        alpha=0.0,
        warmup_target=protocol["learning_rate"],
        warmup_steps=warmup,
    )
    optimizer = keras.optimizers.Adam(schedule, clipnorm=protocol["clip_norm"])
    cfg = _pipeline_config(protocol, manifest, training=True, seed=seed)
    train = pipeline.Pipeline(data_dir, "train", cfg).dataset()
    scale = 1.0 / protocol["batch_size"]

    @tf.function(jit_compile=False, autograph=False)
    def step(inputs, targets):
        with tf.GradientTape() as tape:
            loss = task.compute_loss(model, inputs, targets, training=True) * scale
        grads = tape.gradient(loss, model.trainable_variables)
        # a genotype without RSA leaves the relation embedding unused: no gradient, no warning
        present = [(g, v) for g, v in zip(grads, model.trainable_variables) if g is not None]
        optimizer.apply([g for g, _ in present], [v for _, v in present])
        return loss

    cpu0, start = _cpu_seconds(), time.perf_counter()
    for done, (inputs, targets) in enumerate(train, 1):
        loss = step(inputs, targets)
        if done >= steps:
            break
    out = {
        "train_seconds": round(time.perf_counter() - start, 1),
        "train_cpu_seconds": round(_cpu_seconds() - cpu0, 1),
        "final_loss": round(float(loss), 4),
    }
    out.update(evaluate(model, batches, families))
    out["params"] = int(model.count_params())
    out["flops"] = forward_flops(model, batches[0][0])
    return out


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load_table(path: str) -> dict | None:
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_json(path: str, data: dict) -> None:
    """Atomic write (temp file + rename): a killed build never leaves half a table."""
    from mmnas_tf.nas.reporting import write_json as write

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write(path, data)


def new_table(
    protocol: dict,
    command: str,
    spec: dict,
    sampled: list | None = None,
    sample_seed: int | None = None,
) -> dict:
    table = {
        "metric": METRIC,
        "space": spec,
        "protocol": protocol,
        "families": family_names(protocol),
        "code_version": code_version(),
        "command": command,
        "genotypes": {},
        "rules": RULES,
    }
    if sampled is not None:
        table.update(space_size=len(genotypes(spec)), sample=sampled, sample_seed=sample_seed)
    return table


def record(entry: dict | None, seed: int, run: dict) -> dict:
    """Adds one training of seed ``seed`` to a genotype's table entry (runs kept per seed)."""
    entry = entry or {"seeds": [], "seed_ids": [], "runs": []}
    entry["seed_ids"].append(seed)
    entry["seeds"].append(run[METRIC])
    entry["runs"].append({k: run[k] for k in run if k not in ("params", "flops")})
    entry["params"], entry["flops"] = run["params"], run["flops"]
    entry["per_family"] = {
        name: round(sum(r["per_family"][name] for r in entry["runs"]) / len(entry["runs"]), 3)
        for name in entry["runs"][0]["per_family"]
    }
    entry["train_seconds"] = [r["train_seconds"] for r in entry["runs"]]
    return entry


# ---- provenance and the code-version check --------------------------------------------------
def cpu_info() -> dict:
    """Vendor, model name (with family and model number) and flags of the first CPU listed in
    /proc/cpuinfo (``platform`` where there is none)."""
    fields = {}
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                break  # the first processor is enough
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    model = fields.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in fields:
        model += f" (family {fields['cpu family']} model {fields.get('model', '?')})"
    return {
        "vendor": fields.get("vendor_id", ""),
        "model": model,
        "flags": sorted(fields.get("flags", "").split()),
    }


def machine_kind(vendor: str, flags) -> str:
    """``<vendor>-<widest vector unit>``: intel-amx, amd-avx512, amd-avx2, ... (the CPU kinds
    whose float32 rounding differs)."""
    flags = set(flags)
    unit = next((u for f, u in _UNITS if f in flags), "other")
    brand = {"GenuineIntel": "intel", "AuthenticAMD": "amd"}.get(vendor, vendor.lower() or "cpu")
    return f"{brand}-{unit}"


_UNITS = (("amx_tile", "amx"), ("avx512f", "avx512"), ("avx2", "avx2"), ("asimd", "neon"))


def data_hash(data_dir: str) -> str:
    """sha256 (first 16 hex digits) of the generated data: every file's name and content, a
    TFRecord file's records as deterministically serialised ``tf.train.Example`` protos (the
    writer's bytes order the feature map by Python's per-process string hash)."""
    import tensorflow as tf

    digest = hashlib.sha256()
    for root, dirs, files in os.walk(data_dir):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            digest.update(os.path.relpath(path, data_dir).encode() + b"\0")
            if name.endswith(".tfrecord"):
                for raw in tf.data.TFRecordDataset(path).as_numpy_iterator():
                    example = tf.train.Example.FromString(raw)
                    digest.update(example.SerializeToString(deterministic=True))
                continue
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()[:16]


def provenance(data_dir: str) -> dict:
    """What a run depends on besides the protocol: commit, library versions, CPU, threads and
    the generated data. ``cpu_flags`` is the full flag list (a table keeps it once, under
    :func:`flags_id`)."""
    import keras
    import numpy as np
    import tensorflow as tf

    cpu = cpu_info()
    return {
        "commit": code_version(),
        "machine_kind": machine_kind(cpu["vendor"], cpu["flags"]),
        "cpu_model": cpu["model"],
        "cpu_flags": " ".join(cpu["flags"]),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "threads": {
            "cpus": len(os.sched_getaffinity(0)),  # the CPUs this process may run on
            # 0: TensorFlow's default (one thread per available CPU)
            "tf_intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "tf_inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        },
        "data_hash": data_hash(data_dir),
    }


PROVENANCE_KEYS = (
    "commit",
    "machine_kind",
    "cpu_model",
    "cpu_flags",
    "tensorflow",
    "keras",
    "numpy",
    "python",
    "threads",
    "data_hash",
)


def flags_id(flags: str) -> str:
    return hashlib.sha256(flags.encode()).hexdigest()[:12]


def _stamp(table: dict, prov: dict) -> dict:
    """``prov`` as a run records it: the flags kept once in ``table["cpu_flags"]``."""
    key = flags_id(prov["cpu_flags"])
    table.setdefault("cpu_flags", {})[key] = prov["cpu_flags"]
    return {**prov, "cpu_flags": key}


def table_seed_std(table: dict) -> float:
    """The table's robust seed std of :data:`METRIC`."""
    return robust_seed_std([e["seeds"] for e in table["genotypes"].values()])


def bimodal(table: dict) -> list[str]:
    """Genotypes whose seeds span >= :data:`BIMODAL_RATIO` x the table's robust seed std."""
    std = table_seed_std(table)
    return [
        g
        for g, e in table["genotypes"].items()
        if len(e["seeds"]) > 1 and max(e["seeds"]) - min(e["seeds"]) >= BIMODAL_RATIO * std
    ]


def stable_run(table: dict) -> tuple[str, int, float]:
    """(genotype, seed, value) the code-version check reproduces: the lowest recorded seed of the
    best-mean genotype whose seeds span at most the robust seed std. A table of one seed per
    genotype (the large table) shows no stability: the best run of its sample. Picks trained
    into it later are not part of the reference, so adding them never moves the check."""
    if all(len(e["seeds"]) == 1 for e in table["genotypes"].values()) and table["genotypes"]:
        pool = table.get("sample") or list(table["genotypes"])
        name = max(pool, key=lambda g: table["genotypes"][g]["seeds"][0])
        entry = table["genotypes"][name]
        return name, entry["seed_ids"][0], entry["seeds"][0]
    std = table_seed_std(table)
    stable = {
        g: sum(e["seeds"]) / len(e["seeds"])
        for g, e in table["genotypes"].items()
        if len(e["seeds"]) > 1 and max(e["seeds"]) - min(e["seeds"]) <= std
    }
    if not stable:
        raise ValueError("no stable genotype (>= 2 seeds within the robust seed std) to reproduce")
    name = max(stable, key=stable.get)
    entry = table["genotypes"][name]
    seed = min(entry["seed_ids"])
    return name, seed, entry["seeds"][entry["seed_ids"].index(seed)]


def accepted(table: dict) -> set[tuple[str, str]]:
    """The (commit, machine kind) pairs allowed to add runs: the table's origin and every pair
    that passed the check."""
    pairs = {
        (v["commit"], v["machine_kind"]) for v in table.get("verifications", []) if v["passed"]
    }
    if "origin" in table:
        pairs.add((table["origin"]["commit"], table["origin"]["machine_kind"]))
    return pairs


def runs_per_machine_kind(table: dict) -> dict[str, int]:
    counts = {}
    for e in table["genotypes"].values():
        for run in e["runs"]:
            kind = run.get("provenance", {}).get("machine_kind", "unrecorded")
            counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items()))


def ensure_verified(
    out: str, prov: dict, reference: str | None, train, log=print, noise: str | None = None
) -> dict | None:
    """Lets ``prov``'s (commit, machine kind) add runs to ``out``, or raises RuntimeError.

    The reference table (``reference``, default ``out`` itself) decides: a pair it accepts
    passes; a table without runs and without a reference takes the pair as its origin; else
    ``train(genotype, seed, spec)`` reproduces :func:`stable_run` of the reference and the pair
    passes when the result is within the reference's robust seed std (a reference of one seed
    per genotype has none and takes that of ``noise``, a table path: the first table's). The
    outcome is recorded in the reference (and in ``out``); a recorded failure refuses without
    training again."""
    key = (prov["commit"], prov["machine_kind"])
    ref_path = reference or out
    with _locked(ref_path + ".verify"):  # two builders: one trains the check, the other waits
        ref = load_table(ref_path)
        if ref is None:
            raise FileNotFoundError(f"no reference table at {ref_path}")
        if ref["protocol"] != load_table(out)["protocol"]:
            raise ValueError(f"{ref_path} was built with another protocol than {out}: no reference")
        if (
            reference is None
            and "origin" not in ref
            and not any(e["runs"] for e in ref["genotypes"].values())
        ):
            with _locked(out):
                table = load_table(out)
                table["origin"] = {"commit": key[0], "machine_kind": key[1]}
                write_json(out, table)
            return None
        found = _verification(ref, key)
        if found is None:
            name, seed, value = stable_run(ref)
            tolerance = table_seed_std(ref)
            if not math.isfinite(tolerance) and noise:  # one seed per genotype: borrow the noise
                tolerance = table_seed_std(load_table(noise))
            if not math.isfinite(tolerance):
                raise ValueError(
                    f"{ref_path} has one seed per genotype: no seed noise to check against "
                    "(give the table that has it)"
                )
            log(
                f"code-version check: {key[0]} on {key[1]} reproduces {name} seed {seed} ({value:.3f}, tolerance {tolerance:.3f})"
            )
            from bench.searched_vs_random import parse_genotype

            run = train(parse_genotype(name), seed, ref["space"])
            got = run[METRIC]
            found = {
                "commit": key[0],
                "machine_kind": key[1],
                "genotype": name,
                "seed": seed,
                "recorded": value,
                "reproduced": got,
                "difference": round(got - value, 3),
                "tolerance": round(tolerance, 3),
                "passed": abs(got - value) <= tolerance,
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "run": {k: run[k] for k in ("per_family", "train_seconds", "train_cpu_seconds")},
            }
            with _locked(ref_path):
                ref = load_table(ref_path)
                found["provenance"] = _stamp(ref, prov)
                ref.setdefault("verifications", []).append(found)
                write_json(ref_path, ref)
        if ref_path != out:
            with _locked(out):
                table = load_table(out)
                if _verification(table, key) is None:
                    _stamp(table, prov)
                    table.setdefault("verifications", []).append(
                        {
                            "commit": key[0],
                            "machine_kind": key[1],
                            "passed": True,
                            "genotype": None,
                            "note": f"the origin of {ref_path}",
                        }
                        if found == "origin"
                        else found
                    )
                    write_json(out, table)
    if found == "origin":
        return None
    verdict = (
        f"commit {key[0]} on {key[1]}: {found['genotype']} seed {found['seed']} gave "
        f"{found['reproduced']:.3f}, recorded {found['recorded']:.3f} (difference "
        f"{found['difference']:+.3f}, tolerance {found['tolerance']:.3f}, the robust seed std)"
    )
    if not found["passed"]:
        raise RuntimeError(
            f"code-version check FAILED: {verdict}; this commit / machine kind may not add runs "
            f"to {out} (changed code or another CPU kind: docs/search_results.md, Protocol)"
        )
    log(f"code-version check passed: {verdict}")
    return found


def same_data(table: dict) -> set[str]:
    """The data hashes whose runs may join ``table``: the one its runs used, and each that passed
    :func:`ensure_same_data`."""
    hashes = {table["data_hash"]} if "data_hash" in table else set()
    return hashes | {c["data_hash"] for c in table.get("data_checks", []) if c["passed"]}


def data_reference(table: dict, machine_kind: str) -> tuple[str, int, dict] | None:
    """(genotype, seed, per-family accuracies) of a run recorded on ``machine_kind`` with data
    the table accepts (:func:`same_data`): the code-version check's run (:func:`stable_run`) when
    it is one, else another seed of its genotype, else the best such run; None when the table
    holds none (runs of another kind differ like another seed, so only a run of this kind can
    show that the data are the same)."""
    accepted_data = same_data(table)
    runs = []  # (genotype, seed, value, per_family)
    for name, e in table["genotypes"].items():
        for seed, value, run in zip(e["seed_ids"], e["seeds"], e["runs"]):
            prov = run.get("provenance") or {}
            if prov.get("backfilled") or prov.get("machine_kind") != machine_kind:
                continue
            if prov.get("data_hash") in accepted_data:
                runs.append((name, seed, value, run["per_family"]))
    for v in table.get("verifications", []):
        prov = v.get("provenance") or {}
        if v.get("genotype") and v["machine_kind"] == machine_kind and "run" in v:
            if prov.get("data_hash") in accepted_data:
                runs.append((v["genotype"], v["seed"], v["reproduced"], v["run"]["per_family"]))
    if not runs:
        return None
    try:
        stable = stable_run(table)[:2]
    except ValueError:
        stable = (None, None)
    name, seed, _, per_family = max(runs, key=lambda r: (r[:2] == stable, r[0] == stable[0], r[2]))
    return name, seed, per_family


def ensure_same_data(
    out: str,
    data_dir: str,
    prov: dict,
    train,
    log=print,
    reference: str | None = None,
    noise: str | None = None,
) -> dict | None:
    """Lets data whose hash is not the table's add runs to ``out`` when they are the same data
    for training, or raises RuntimeError; returns the code-version check when it was the one that
    decided (below), else None.

    The hash covers every file, so data that train alike can hash apart: the image features are a
    float32 matrix product of numpy's BLAS, whose kernel and thread count (so its summation order)
    depend on the machine, and the other fields are drawn by seeded generators. With OpenBLAS on
    one thread instead of two, the benchmark's features differ by at most 2e-6 and every other field
    is equal. When the table holds a run of this machine kind on its data (:func:`data_reference`),
    the check retrains it on the new data and requires every family's accuracy equal to the
    recorded run's, to the recorded digit: a change in what a training reads would move them.
    Without one (a machine kind new to the table), nothing can be reproduced exactly, since
    kernels of another kind round otherwise; the code-version check (:func:`ensure_verified`,
    ``reference`` and ``noise`` as there) then runs on these data and its pass, within the robust
    seed std, admits the data with the kind. The outcome is recorded under ``data_checks``; a
    recorded failure refuses without training again."""
    with _locked(out):
        table = load_table(out)
    if "data_hash" not in table or prov["data_hash"] in same_data(table):
        return
    mine, theirs = prov["data_hash"], table["data_hash"]
    regenerate = "regenerate it with this protocol into an empty directory"
    failed = [c for c in table.get("data_checks", []) if c["data_hash"] == mine]
    if failed:
        raise RuntimeError(
            f"the data in {data_dir} hash to {mine}, the table's runs used {theirs}, and a "
            f"data check of {mine} failed ({failed[0]['date']}): {regenerate}"
        )
    ref = data_reference(table, prov["machine_kind"])
    if ref is None:
        return _same_data_by_version_check(out, data_dir, prov, train, log, reference, noise)
    name, seed, recorded = ref
    log(
        f"data check: {data_dir} hashes to {mine}, the table's runs used {theirs}; retraining "
        f"{name} seed {seed} on it, to reproduce its recorded accuracies exactly"
    )
    from bench.searched_vs_random import parse_genotype

    run = train(parse_genotype(name), seed, table["space"])
    reproduced = {f: run["per_family"][f] for f in recorded}
    _record_data_check(
        out,
        {
            "data_hash": mine,
            "table_data_hash": theirs,
            "genotype": name,
            "seed": seed,
            "recorded": recorded,
            "reproduced": reproduced,
            "passed": reproduced == recorded,
        },
        prov,
    )
    if reproduced != recorded:
        moved = {f: (recorded[f], reproduced[f]) for f in recorded if recorded[f] != reproduced[f]}
        raise RuntimeError(
            f"data check FAILED: {name} seed {seed} on the data in {data_dir} ({mine}) is not "
            f"the run recorded with {theirs} (recorded, reproduced: {moved}): {regenerate}"
        )
    log(f"data check passed: {mine} trains {name} seed {seed} exactly as {theirs} did")
    return None


#: How a data check of a machine kind new to the table decides (``data_checks[i]["method"]``).
BY_VERSION_CHECK = "code-version check on these data (no run of this machine kind to reproduce)"


def _same_data_by_version_check(out, data_dir, prov, train, log, reference, noise) -> dict | None:
    """:func:`ensure_same_data` on a machine kind the table has no run of: the code-version check
    trains on these data and decides (its failure is recorded as the check's, and raised); a pass
    is recorded under ``data_checks`` with its numbers. Returns the check (None: the table's
    origin)."""
    mine, theirs = prov["data_hash"], load_table(out)["data_hash"]
    log(
        f"data check: {data_dir} hashes to {mine}, the table's runs used {theirs}, and the table "
        f"holds no run of this machine kind ({prov['machine_kind']}) to reproduce exactly: the "
        "code-version check on these data decides"
    )
    found = ensure_verified(out, prov, reference, train, log, noise)
    if found is None:
        return None  # the table's origin: nothing to compare with
    used = (found.get("provenance") or {}).get("data_hash")
    if used != mine:
        raise RuntimeError(
            f"the data in {data_dir} hash to {mine}, the table's runs used {theirs}, and the "
            f"code-version check of {prov['commit']} on {prov['machine_kind']} was made on other "
            f"data ({used}): regenerate the data that check used, or check from another commit"
        )
    keys = ("genotype", "seed", "recorded", "reproduced", "tolerance", "passed")
    check = {"data_hash": mine, "table_data_hash": theirs, "method": BY_VERSION_CHECK}
    _record_data_check(out, {**check, **{k: found[k] for k in keys}}, prov)
    log(f"data check passed: {mine} with {prov['machine_kind']}, by the code-version check")
    return found


def _record_data_check(out: str, check: dict, prov: dict) -> None:
    check.update(
        commit=prov["commit"],
        machine_kind=prov["machine_kind"],
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    )
    with _locked(out):
        table = load_table(out)
        table.setdefault("data_checks", []).append(check)
        write_json(out, table)


def _verification(table: dict, key: tuple[str, str]) -> dict | str | None:
    """The recorded check of ``key`` in ``table``, "origin" for the pair that built it, or None."""
    origin = table.get("origin") or {}
    if (origin.get("commit"), origin.get("machine_kind")) == key:
        return "origin"
    return next(
        (v for v in table.get("verifications", []) if (v["commit"], v["machine_kind"]) == key),
        None,
    )


# ---- building ----------------------------------------------------------------------------------
def pending(table: dict, order: list, seeds: int, bimodal_seeds: int | None = None) -> list:
    """The (genotype, seed) trainings still missing from ``table`` for ``seeds`` seeds per
    genotype of ``order`` and ``bimodal_seeds`` per :func:`bimodal` one (these first), each
    genotype's seeds together."""
    bimodal_seeds = max(bimodal_seeds or seeds, seeds)
    twin = set(bimodal(table)) if bimodal_seeds > seeds else set()
    todo = []
    for g in sorted(order, key=lambda g: str(g) not in twin):  # stable: keeps ``order``
        have = table["genotypes"].get(str(g), {}).get("seed_ids", [])
        target = bimodal_seeds if str(g) in twin else seeds
        todo += [(g, s) for s in range(target) if s not in have]
    return todo


def build(
    out: str,
    data_dir: str,
    protocol: dict,
    seeds: int,
    command: str,
    limit=None,
    spec=None,
    log=print,
    shard: tuple[int, int] = (0, 1),
    bimodal_seeds: int | None = None,
    sample_size: int | None = None,
    sample_seed: int = SAMPLE_SEED,
    reference: str | None = None,
    require_clean: bool = False,
    picks: list[str] = (),
    noise: str | None = None,
):
    """Trains every missing (genotype, seed) of ``spec`` (default :func:`space`), all seeds of
    a genotype one after the other, genotypes in :func:`build_order` (with ``sample_size``: the
    uniform :func:`sample` of that size, in draw order), :func:`bimodal` ones first up to
    ``bimodal_seeds``, rewriting ``out`` after each training (a partial table is a uniform
    sample of the space). ``shard=(i, n)``: only the i-th of every n genotypes of that order, so
    n builders can share one file (each write re-reads the file under a lock and adds its
    training). Before the first training the commit and machine kind must pass
    :func:`ensure_verified` against ``reference`` (default: ``out``; seed noise from ``noise``
    when the reference has none); ``require_clean`` refuses
    a checkout with uncommitted edits (its runs could not be reproduced). ``picks``: genotype
    strings of a sampled space outside its sample (the searches' picks) trained after the sample
    with the same seeds, listed under ``picks``: they get a ground truth but are not part of the
    reference a pick is placed in."""
    spec = spec or space()
    index, count = shard
    if not 0 <= index < count:
        raise ValueError(f"shard {index}/{count}: expected 0 <= i < n")
    order = build_order(spec) if sample_size is None else sample(spec, sample_size, sample_seed)
    sampled = None if sample_size is None else (sample_seed, [str(g) for g in order])
    extra = _picks_outside(spec, order, picks)
    order = order + extra
    if require_clean and (code_version().endswith("-dirty") or code_version() == "unknown"):
        raise RuntimeError(
            f"the checkout has uncommitted edits (version {code_version()}): commit them (or "
            "build from a checkout pinned to a commit) before adding runs to a table"
        )
    with _locked(out):
        table = _checked_table(out, protocol, command, spec, sampled)
        if extra:
            listed = table.setdefault("picks", [])
            listed += [str(g) for g in extra if str(g) not in listed]
        write_json(out, table)
    prepare_data(data_dir, protocol)
    prov = provenance(data_dir)
    batches, families = eval_batches(data_dir, protocol), family_names(protocol)
    checked = {}  # (genotype, seed) -> run: the data check and the code-version check share one

    def train(genotype, seed, genotype_spec):
        key = (str(genotype), seed)
        if key not in checked:
            checked[key] = train_one(
                data_dir, protocol, genotype, seed, batches, families, genotype_spec
            )
        return checked[key]

    if ensure_same_data(out, data_dir, prov, train, log, reference, noise) is None:
        ensure_verified(out, prov, reference, train, log, noise)  # else the data check ran it
    mine = [g for k, g in enumerate(order) if k % count == index]
    done = 0
    while limit is None or done < limit:
        todo = pending(table, mine, seeds, bimodal_seeds)  # a new seed can make a genotype bimodal
        if not todo:
            break
        genotype, seed = todo[0]
        run = train(genotype, seed, spec)
        done += 1
        key = str(genotype)
        with _locked(out):
            table = _checked_table(out, protocol, command, spec, sampled)
            if seed not in table["genotypes"].get(key, {}).get("seed_ids", []):
                run["provenance"] = _stamp(table, prov)
                table.setdefault("data_hash", prov["data_hash"])
                table["genotypes"][key] = record(table["genotypes"].get(key), seed, run)
                write_json(out, table)
        log(
            f"[{done}/{done + len(todo) - 1}] {key} seed {seed}: {METRIC} {run[METRIC]:.1f} "
            f"{json.dumps(run['per_family'])} {run['train_seconds']} s"
        )
    return table


def _picks_outside(spec: dict, order: list, picks) -> list:
    """The genotypes of ``picks`` (strings) that are not in ``order``, in the order given, once;
    ValueError naming a pick outside the space or when the space is not sampled."""
    if not picks:
        return []
    names = {str(g): g for g in genotypes(spec)}
    if len(order) == len(names):
        raise ValueError("picks are for a sampled space: this table enumerates its space")
    inside, out = {str(g) for g in order}, []
    for text in picks:
        key = text.strip()
        if key not in names:
            raise ValueError(f"pick {key!r} is not a genotype of the space {spec}")
        if key not in inside and names[key] not in out:
            out.append(names[key])
    return out


def scoreboard_picks(path: str) -> list[str]:
    """Every pick of every estimator of a scoreboard (``search_quality*.json``), in file order."""
    with open(path, encoding="utf-8") as f:
        board = json.load(f)
    return list(dict.fromkeys(g for e in board["estimators"].values() for g in e["picks"]))


def _checked_table(out: str, protocol: dict, command: str, spec: dict, sampled=None) -> dict:
    """The table in ``out`` (or a new one) after checking that it was built the same way
    (``sampled``: (seed, genotype strings) of the large table's sample)."""
    seed, names = sampled or (None, None)
    table = load_table(out) or new_table(protocol, command, spec, names, seed)
    if table["space"] != spec:
        raise ValueError(f"{out} holds the space {table['space']}, this run {spec}")
    if table["protocol"] != protocol:
        raise ValueError(
            f"{out} was built with another protocol ({table['protocol']}); this run uses "
            f"{protocol}: write to another file"
        )
    if sampled is not None and (table.get("sample_seed"), table.get("sample")) != sampled:
        raise ValueError(
            f"{out} holds another sample (seed {table.get('sample_seed')}, "
            f"{len(table.get('sample') or [])} genotypes) than this run's (seed {sampled[0]}, "
            f"{len(sampled[1])}): write to another file"
        )
    if table.setdefault("rules", RULES) != RULES:
        raise ValueError(
            f"{out} was built under other rules ({table['rules']}); this code applies {RULES}"
        )
    table.setdefault("code_versions", [table["code_version"]])
    if code_version() not in table["code_versions"]:
        table["code_versions"].append(code_version())
    return table


# ---- checking and reporting ------------------------------------------------------------------
def check_table(table: dict) -> list[str]:
    """Every way ``table`` breaks the builder's invariants, one message each ([]: sound): entries
    consistent with their runs, every run with its provenance from an accepted (commit, machine
    kind), every check within its tolerance, the sample reproducible from its seed."""
    import numpy as np

    problems = []
    names = {str(g) for g in genotypes(table["space"])}
    if "sample" in table:
        drawn = [str(g) for g in sample(table["space"], len(table["sample"]), table["sample_seed"])]
        if table["sample"] != drawn:
            problems.append(f"the sample is not the one seed {table['sample_seed']} draws")
        if table["space_size"] != len(names):
            problems.append(f"space_size {table['space_size']}, the space has {len(names)}")
        names = set(table["sample"]) | (set(table.get("picks", [])) & names)
        for g in set(table.get("picks", [])) - {str(g) for g in genotypes(table["space"])}:
            problems.append(f"pick {g} is not in the space")
    ok = accepted(table)
    for v in table.get("verifications", []):
        if v.get("genotype") and v["passed"] != (
            abs(v["reproduced"] - v["recorded"]) <= v["tolerance"]
        ):
            problems.append(
                f"check of {v['commit']} on {v['machine_kind']}: 'passed' contradicts its numbers"
            )
    for c in table.get("data_checks", []):
        if c.get("method") == BY_VERSION_CHECK:
            agrees = abs(c["reproduced"] - c["recorded"]) <= c["tolerance"]
        else:
            agrees = c["reproduced"] == c["recorded"]
        if c["passed"] != agrees:
            problems.append(f"data check of {c['data_hash']}: 'passed' contradicts its numbers")
    for name, e in table["genotypes"].items():
        where = f"{name}:"
        if name not in names:
            problems.append(f"{where} not in the space{' sample' if 'sample' in table else ''}")
        if not (e["seeds"] and len(e["seeds"]) == len(e["seed_ids"]) == len(e["runs"])):
            problems.append(f"{where} seeds, seed_ids and runs differ in length")
            continue
        if sorted(e["seed_ids"]) != list(range(len(e["seed_ids"]))):
            problems.append(f"{where} seed ids {e['seed_ids']} are not 0..{len(e['seeds']) - 1}")
        if not all(math.isfinite(v) and 0 <= v <= 100 for v in e["seeds"]):
            problems.append(f"{where} a seed's value is not a percentage")
        if not (e["params"] > 0 and e["flops"] > 0):
            problems.append(f"{where} params / flops missing")
        for fam in table["families"]:
            mean = np.mean([r["per_family"][fam] for r in e["runs"]])
            if abs(e["per_family"].get(fam, -1) - mean) > 0.0015:  # rounded to 3 decimals
                problems.append(f"{where} per_family[{fam}] is not the mean of its runs")
        for seed, value, run in zip(e["seed_ids"], e["seeds"], e["runs"]):
            fams = [run["per_family"][f] for f in table["families"]]
            if run[METRIC] != value or abs(sum(fams) / len(fams) - value) > 0.0015:
                problems.append(f"{where} seed {seed}: {METRIC} is not its families' mean")
            prov = run.get("provenance")
            if prov is None:
                problems.append(f"{where} seed {seed}: no provenance")
                continue
            if (prov.get("commit"), prov.get("machine_kind")) not in ok:
                problems.append(
                    f"{where} seed {seed}: {prov.get('commit')} on {prov.get('machine_kind')} "
                    "never passed the code-version check"
                )
            if not prov.get("backfilled"):
                missing = [k for k in PROVENANCE_KEYS if k not in prov]
                if missing:
                    problems.append(f"{where} seed {seed}: provenance lacks {missing}")
                elif prov["data_hash"] not in same_data(table):
                    problems.append(
                        f"{where} seed {seed}: data hash {prov['data_hash']} is not the table's"
                    )
                elif prov["cpu_flags"] not in table.get("cpu_flags", {}):
                    problems.append(
                        f"{where} seed {seed}: CPU flags {prov['cpu_flags']} not recorded"
                    )
    return problems


def report(table: dict, noise: dict | None = None) -> dict:
    """The table's summary: runs per machine kind and commit, the checks, the robust seed std,
    the bimodal genotypes, the families (and which are informative, seed noise from ``noise``,
    default the table) and per genotype the 6-family and the informative-family macro."""
    stats = family_stats(table, noise)
    informative = [f for f, s in stats.items() if s["informative"]]
    commits = {}
    for e in table["genotypes"].values():
        for run in e["runs"]:
            c = run.get("provenance", {}).get("commit", "unrecorded")
            commits[c] = commits.get(c, 0) + 1
    return {
        "genotypes": len(table["genotypes"]),
        "trainings": sum(len(e["seeds"]) for e in table["genotypes"].values()),
        "runs_per_machine_kind": runs_per_machine_kind(table),
        "runs_per_commit": commits,
        "verifications": table.get("verifications", []),
        "robust_seed_std": table_seed_std(noise or table),
        "bimodal": bimodal(table),
        "families": stats,
        "informative_families": informative,
        "macro": {g: macros(e, informative) for g, e in table["genotypes"].items()},
    }


def print_report(summary: dict, top: int = 10) -> None:
    for key in ("genotypes", "trainings", "runs_per_machine_kind", "runs_per_commit"):
        print(f"{key}: {summary[key]}")
    for v in summary["verifications"]:
        print(f"check: {json.dumps({k: v[k] for k in v if k != 'provenance'})}")
    print(f"robust seed std: {summary['robust_seed_std']:.3f}; bimodal: {summary['bimodal']}")
    for fam, s in summary["families"].items():
        print(
            f"  {fam}: between-genotype std {s['between_std']:.2f}, robust seed std "
            f"{s['seed_std']:.2f}: {'informative' if s['informative'] else 'not informative'}"
        )
    rows = sorted(summary["macro"].items(), key=lambda kv: -kv[1]["all"])[:top]
    print(f"top {len(rows)} (6-family macro, informative-family macro):")
    for g, m in rows:
        print(f"  {g}: {m['all']:.2f} {m['informative']:.2f}")


@contextlib.contextmanager
def _locked(out: str):
    """An exclusive lock on ``out + ".lock"`` (builders sharing one table)."""
    import fcntl

    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out + ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", help="default bench/results/search_space_table[_large].json")
    parser.add_argument("--data_dir", default="/tmp/mmnas_table_data", help="generated once")
    parser.add_argument(
        "--space",
        default="small",
        choices=("small", "large"),
        help="small: enc[SA] + 3 decoder slots (64); large: 2 encoder slots "
        "over {SA, FFN} + 4 decoder slots (1,024), a uniform sample",
    )
    parser.add_argument(
        "--seeds", type=int, help=f"trainings per genotype (small {SEEDS}, large 1)"
    )
    parser.add_argument(
        "--bimodal_seeds", type=int, help=f"trainings per bimodal genotype (small {BIMODAL_SEEDS})"
    )
    parser.add_argument("--sample", type=int, help=f"large: genotypes sampled ({SAMPLE})")
    parser.add_argument("--sample_seed", type=int, default=SAMPLE_SEED)
    parser.add_argument(
        "--reference",
        help="the table whose stable run checks a new commit or "
        "machine kind (small: --out; large: the small table; 'self': --out, "
        "whose first builder is then its origin)",
    )
    parser.add_argument("--report", action="store_true", help="print the table's summary")
    parser.add_argument("--first_seed", type=int, default=0, help="--genotypes: first seed")
    parser.add_argument("--limit", type=int, help="stop after this many trainings")
    parser.add_argument(
        "--shard",
        default="0/1",
        help="i/n: every n-th genotype from the i-th (n builders sharing one file)",
    )
    parser.add_argument(
        "--genotypes", help="train only these (';'-separated genotype strings): protocol checks"
    )
    parser.add_argument(
        "--picks_from",
        help="large: also train every pick of this scoreboard JSON that is not in "
        "the sample (listed under 'picks': ground truth, not reference)",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: seconds per training")
    parser.add_argument(
        "--set", default="", help="protocol changes key=value,... (numbers parsed as JSON)"
    )
    args = parser.parse_args(argv)
    large = args.space == "large"
    first = os.path.join("bench", "results", "search_space_table.json")
    args.out = args.out or (first.replace(".json", "_large.json") if large else first)
    protocol = {**PROTOCOL, **SMOKE} if args.smoke else dict(PROTOCOL)
    for item in filter(None, args.set.split(",")):
        key, _, value = item.partition("=")
        if key not in protocol:
            raise ValueError(f"--set: unknown protocol key {key!r}; accepted: {sorted(protocol)}")
        protocol[key] = json.loads(value) if value[:1].isdigit() or value[:1] == "-" else value
    if args.report:
        table = load_table(args.out)
        if table is None:
            raise FileNotFoundError(f"no table at {args.out}")
        large_noise = "sample" in table and not args.smoke  # one seed each: the first table's
        noise = load_table(args.reference or first) if large_noise else None
        print_report(report(table, noise))
        problems = check_table(table)
        print("\n".join(["problems:", *problems]) if problems else "no problems found")
        return 1 if problems else 0
    command = "python -m bench.search_space_table " + " ".join(argv)
    if args.genotypes:
        return check_genotypes(args, protocol)
    if large:
        spec = space_large(SMOKE_POOL, SMOKE_DECODER) if args.smoke else space_large()
        size = args.sample or (SMOKE_LARGE_SAMPLE if args.smoke else SAMPLE)
        reference = args.reference or (None if args.smoke else first)
        noise = None if args.smoke else first  # the large table has one seed per genotype
    else:
        spec = space(SMOKE_POOL, SMOKE_DECODER) if args.smoke else space()
        size, reference, noise = None, args.reference, None
    reference = None if reference in ("self", args.out) else reference
    seeds = args.seeds or (1 if large else SEEDS)
    bimodal_seeds = args.bimodal_seeds or (seeds if large else BIMODAL_SEEDS)
    index, _, count = args.shard.partition("/")
    shard = (int(index), int(count or 1))
    try:
        build(
            args.out,
            args.data_dir,
            protocol,
            seeds,
            command,
            args.limit,
            spec,
            shard=shard,
            bimodal_seeds=bimodal_seeds,
            sample_size=size,
            sample_seed=args.sample_seed,
            reference=reference,
            require_clean=not args.smoke,
            picks=scoreboard_picks(args.picks_from) if args.picks_from else (),
            noise=noise,
        )
    except RuntimeError as e:  # a refused code version, checkout or data: one clear line
        print(f"search_space_table: {e}", file=sys.stderr)
        return 2
    return 0


def check_genotypes(args, protocol) -> int:
    """Trains the listed genotypes for ``--seeds`` seeds each and prints mean / std (the
    protocol's seed noise and the hand-picked checks of docs/synthetic_benchmark.md)."""
    import numpy as np

    from bench.searched_vs_random import parse_genotype

    prepare_data(args.data_dir, protocol)
    batches, families = eval_batches(args.data_dir, protocol), family_names(protocol)
    report = {"protocol": protocol, "runs": {}}
    for text in args.genotypes.split(";"):
        genotype = parse_genotype(text)
        runs = report["runs"][str(genotype)] = []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            runs.append(train_one(args.data_dir, protocol, genotype, seed, batches, families))
            if args.out:
                write_json(args.out, report)
        values = np.array([r[METRIC] for r in runs])
        print(
            f"{genotype}: {METRIC} {values.mean():.2f} +- {values.std(ddof=1) if len(values) > 1 else 0:.2f} "
            f"{[round(v, 1) for v in values]} per family "
            f"{ {f: round(float(np.mean([r['per_family'][f] for r in runs])), 1) for f in families} } "
            f"{np.mean([r['train_seconds'] for r in runs]):.0f} s",
            flush=True,
        )
    if args.out:
        write_json(args.out, report)
    return 0


if __name__ == "__main__":
    from bench.common import run_program

    run_program(main, machine_settings=False)  # oneDNN as the tables' protocol pins it
