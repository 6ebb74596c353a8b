"""The ground-truth table of a search space (a NAS-Bench-style tabular benchmark) on the
``structured`` synthetic VQA benchmark: every genotype trained stand-alone with a fixed protocol,
scored on the held-out ``val`` split (searches use D_m / D_a of ``train`` only).

    python -m bench.search_space_table --out=bench/results/search_space_table.json \\
        --data_dir=/tmp/mmnas_table_data [--seeds=2] [--limit=N] [--smoke]

Resumable: the JSON is rewritten atomically after every training, and a (genotype, seed) already
in it is skipped; the protocol, the code version and the command are pinned in the JSON, and a
run whose protocol differs from the file's refuses to continue it. fp32, no bucketing.
``docs/synthetic_benchmark.md`` describes the benchmark, the protocol and how it was chosen.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import resource
import subprocess
import sys
import time

METRIC = "macro_accuracy"  # mean over the question families of val accuracy, percent
QUESTION_SET = "structured"
ENCODER = ("SA",)  # one fixed encoder block after the LSTM
DECODER_POOL = ("SA", "GA", "RSA", "FFN")
NUM_DECODER = 3
#: The stand-alone training protocol (docs/synthetic_benchmark.md).
PROTOCOL = {
    "question_set": QUESTION_SET, "num_images": 4000, "data_seed": 0, "size": "tiny",
    "width": 48, "heads": 4, "relation_size": 16, "dropout": 0.0, "max_tokens": 16,
    "batch_size": 64, "steps": 2000, "learning_rate": 2e-3, "warmup_steps": 100,
    "decay": "cosine to 0", "clip_norm": 1.0, "loss": "BCE sum / batch", "eval_split": "val",
    "dtype": "float32", "bucketing": False,
}  # fmt: skip
SMOKE = {"num_images": 60, "width": 16, "steps": 3, "warmup_steps": 1, "batch_size": 16}
#: The smoke space: 4 genotypes (CI).
SMOKE_POOL, SMOKE_DECODER = ("GA", "RSA"), 2


def space(pool=DECODER_POOL, num_decoder=NUM_DECODER) -> dict:
    """The slots and their pools (a one-op pool is a fixed slot)."""
    return {
        "encoder": [[op] for op in ENCODER],
        "decoder": [list(pool) for _ in range(num_decoder)],
    }


def stage_pools(spec: dict) -> tuple[tuple[str, ...], tuple[str, ...], int]:
    """(encoder ops, decoder pool, decoder blocks) of ``spec``: the supernet has one pool per
    decoder stage and a fixed encoder."""
    decoder = {tuple(p) for p in spec["decoder"]}
    if (
        len(decoder) != 1
        or len({tuple(p) for p in spec["encoder"]}) > 1
        or any(len(p) != 1 for p in spec["encoder"])
    ):
        raise ValueError(
            f"space {spec}: expected encoder slots fixed to one op and one pool for every decoder slot"
        )
    return tuple(p[0] for p in spec["encoder"]), decoder.pop(), len(spec["decoder"])


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


def code_version() -> str:
    """``git describe`` of the checkout this file is in (``-dirty`` when it has edits)."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=40"], cwd=here,
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def prepare_data(data_dir: str, protocol: dict) -> str:
    """Generates the benchmark into ``data_dir`` unless it already holds it."""
    from mmnas_tf.data import writer
    from mmnas_tf.synthbench import benchmark
    from mmnas_tf.tasks import get_task

    if not os.path.exists(os.path.join(data_dir, writer.MANIFEST)):
        benchmark.generate(
            get_task("vqa"), data_dir, protocol["size"], num_images=protocol["num_images"],
            seed=protocol["data_seed"], feature_dtype="float32",
            question_set=protocol["question_set"],
        )  # fmt: skip
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
    encoder, pool, num_decoder = stage_pools(spec or space())
    return ModelConfig(
        hidden_size=d, num_heads=protocol["heads"], ffn_size=4 * d,
        relation_size=protocol["relation_size"], vocab_size=vocab, word_embed_size=64,
        feature_size=manifest["feature_dim"], max_tokens=protocol["max_tokens"],
        max_regions=manifest["max_regions"], pool_mlp_size=d, pool_output_size=2 * d,
        num_encoder_blocks=len(encoder), num_decoder_blocks=num_decoder,
        dropout=protocol["dropout"], genotype=genotype,
        pools=OpPools(encoder[:1], pool),
    )  # fmt: skip


def _pipeline_config(protocol: dict, manifest: dict, training: bool, seed=None, subset="all"):
    from mmnas_tf.data import pipeline
    from mmnas_tf.tasks import get_task

    return pipeline.PipelineConfig(
        get_task("vqa"), batch_size=protocol["batch_size"] if training else 256,
        max_regions=manifest["max_regions"], max_tokens=protocol["max_tokens"], training=training,
        seed=seed, deterministic=True, repeat=training, subset=subset,
    )  # fmt: skip


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
    opts = option_builder.ProfileOptionBuilder(option_builder.ProfileOptionBuilder.float_operation()).with_empty_output().build()  # fmt: skip
    return int(model_analyzer.profile(graph, options=opts).total_float_ops)


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
        model_config(data_dir, protocol, genotype, spec), num_answers=len(questions.ANSWERS)
    )
    steps, warmup = protocol["steps"], protocol["warmup_steps"]
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, steps - warmup, alpha=0.0, warmup_target=protocol["learning_rate"],
        warmup_steps=warmup,
    )  # fmt: skip
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


def new_table(protocol: dict, command: str, spec: dict) -> dict:
    return {
        "metric": METRIC,
        "space": spec,
        "protocol": protocol,
        "families": family_names(protocol),
        "code_version": code_version(),
        "command": command,
        "genotypes": {},
    }


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


def build(
    out: str, data_dir: str, protocol: dict, seeds: int, command: str, limit=None, spec=None,
    log=print, shard: tuple[int, int] = (0, 1),
):  # fmt: skip
    """Trains every missing (genotype, seed) of ``spec`` (default :func:`space`), all seeds of
    a genotype one after the other, genotypes in :func:`build_order`, rewriting ``out`` after
    each training (a partial table is a uniform sample of the space with every seed). ``shard=(i, n)``: only the i-th of every n genotypes of that order, so n
    builders can share one file (each write re-reads the file under a lock and adds its training)."""
    spec = spec or space()
    index, count = shard
    if not 0 <= index < count:
        raise ValueError(f"shard {index}/{count}: expected 0 <= i < n")
    with _locked(out):
        table = _checked_table(out, protocol, command, spec)
        write_json(out, table)
    prepare_data(data_dir, protocol)
    batches, families = eval_batches(data_dir, protocol), family_names(protocol)
    todo = [
        (g, s)
        for k, g in enumerate(build_order(spec))
        if k % count == index
        for s in range(seeds)
        if s not in table["genotypes"].get(str(g), {}).get("seed_ids", [])
    ]
    for done, (genotype, seed) in enumerate(todo[:limit] if limit else todo, 1):
        run = train_one(data_dir, protocol, genotype, seed, batches, families, spec)
        key = str(genotype)
        with _locked(out):
            table = _checked_table(out, protocol, command, spec)
            if seed not in table["genotypes"].get(key, {}).get("seed_ids", []):
                table["genotypes"][key] = record(table["genotypes"].get(key), seed, run)
                write_json(out, table)
        log(
            f"[{done}/{len(todo)}] {key} seed {seed}: {METRIC} {run[METRIC]:.1f} "
            f"{json.dumps(run['per_family'])} {run['train_seconds']} s"
        )
    return table


def _checked_table(out: str, protocol: dict, command: str, spec: dict) -> dict:
    """The table in ``out`` (or a new one) after checking that it was built the same way."""
    table = load_table(out) or new_table(protocol, command, spec)
    if table["space"] != spec:
        raise ValueError(f"{out} holds the space {table['space']}, this run {spec}")
    if table["protocol"] != protocol:
        raise ValueError(
            f"{out} was built with another protocol ({table['protocol']}); this run uses "
            f"{protocol}: write to another file"
        )
    table.setdefault("code_versions", [table["code_version"]])
    if code_version() not in table["code_versions"]:
        table["code_versions"].append(code_version())
    return table


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
    parser.add_argument("--out", default="bench/results/search_space_table.json")
    parser.add_argument("--data_dir", default="/tmp/mmnas_table_data", help="generated once")
    parser.add_argument("--seeds", type=int, default=2, help="trainings per genotype")
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
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: seconds per training")
    parser.add_argument(
        "--set", default="", help="protocol changes key=value,... (numbers parsed as JSON)"
    )
    args = parser.parse_args(argv)
    protocol = {**PROTOCOL, **SMOKE} if args.smoke else dict(PROTOCOL)
    for item in filter(None, args.set.split(",")):
        key, _, value = item.partition("=")
        if key not in protocol:
            raise ValueError(f"--set: unknown protocol key {key!r}; accepted: {sorted(protocol)}")
        protocol[key] = json.loads(value) if value[:1].isdigit() or value[:1] == "-" else value
    command = "python -m bench.search_space_table " + " ".join(argv)
    if args.genotypes:
        return check_genotypes(args, protocol)
    spec = space(SMOKE_POOL, SMOKE_DECODER) if args.smoke else space()
    index, _, count = args.shard.partition("/")
    shard = (int(index), int(count or 1))
    build(args.out, args.data_dir, protocol, args.seeds, command, args.limit, spec, shard=shard)
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
    sys.exit(main(sys.argv[1:]))
