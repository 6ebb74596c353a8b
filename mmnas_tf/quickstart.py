"""The whole pipeline in a few minutes on a laptop: synthetic data -> search -> retrain the found
genotype -> evaluate -> export a SavedModel -> one prediction -> pictures (the search's theta
curves, its selection step's candidates and scores, the selected genotype's diagram, one
attention picture), on the tiny VQA experiment.

python -m mmnas_tf.quickstart --workdir=/tmp/mmnas_quickstart

Each stage calls the real entry point's ``main`` (the same code as its command line, printed before
it runs). The summary is printed and written to ``WORKDIR/summary.json``.

The demo's settings differ from the library's defaults so that a few minutes show a search that
chooses and a model that looks at the image: easy data (:data:`DATA_FLAGS`: ``quick`` scenes of
3-5 objects whose regions all fit the tiny model's 6 slots, and the ``attributes`` questions), the
default search (a uniform start, then a selection step whose candidates and scores are printed)
with faster weight training and momentum on theta (:data:`SEARCH_FLAGS`) and a retrain at a
higher rate (:data:`TRAIN_OVERRIDES`). ``--seed`` seeds the search and the retrain; whether the
search picks guided attention depends on it (README, "See what it does"). The summary gives the
retrained model's accuracy next to the same model's with every region feature set to zero (what
the question alone earns).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import shlex
import time
from collections.abc import Sequence

import numpy as np
from absl import flags

from mmnas_tf import cli
from mmnas_tf.config import DEFAULT_DROPOUT_GENERATOR, DROPOUT_GENERATORS

#: The quickstart's data: scenes whose regions all fit the tiny model's 6 region slots, and
#: questions about one named object's colour, shape or size (the generator's defaults are larger
#: scenes with relational questions, which a tiny model does not learn in minutes).
DATA_FLAGS = ("--size=quick", "--question_set=attributes")
#: The quickstart's search is ``python -m mmnas_tf.search``'s default recipe (a uniform start,
#: temperature 1, gumbel, then the selection step) with these differences: weights train at 5e-3
#: without warm-up (default 4e-4 with warm-up) on batches of 16 (default 8), and theta's Adam
#: keeps momentum (beta_1 0.9 at rate 0.05; default 0 at 0.1): a step follows a running mean of
#: the noisy theta gradients, not the last one alone (smoother curves).
SEARCH_FLAGS = (
    "--batch_size=16",
    "--override=search.weight_learning_rate=5e-3;search.warmup=;search.arch_beta_1=0.9;"
    "search.arch_learning_rate=0.05",
)
#: The retrain: rate 3e-3 (tiny default 1e-3) without warm-up, decayed from the 13th epoch, on
#: batches of 32 (default 8).
TRAIN_OVERRIDES = "train.learning_rate=3e-3;train.warmup=;train.decay_epochs=12;data.batch_size=32"


def define_flags(fv: flags.FlagValues) -> None:
    flags.DEFINE_string(
        "workdir", "/tmp/mmnas_quickstart", "Everything is written here.", flag_values=fv
    )
    flags.DEFINE_string(
        "config", "vqa_tiny", "Experiment (a tiny one: this is a demo).", flag_values=fv
    )
    flags.DEFINE_integer(
        "num_images", 400, "Synthetic training images (val gets a fifth).", flag_values=fv
    )
    flags.DEFINE_integer("warmup_epochs", 2, "Search epochs training weights only.", flag_values=fv)
    flags.DEFINE_integer(
        "search_epochs", 8, "Search epochs alternating weights and theta.", flag_values=fv
    )
    flags.DEFINE_integer("epochs", 15, "Retrain epochs.", flag_values=fv)
    flags.DEFINE_integer(
        "seed",
        None,
        "Seed of the search and the retrain (default: the experiment's, 0); the "
        "data stays the same.",
        flag_values=fv,
    )
    flags.DEFINE_enum(
        "dropout_generator",
        None,
        list(DROPOUT_GENERATORS),
        "Dropout mask generator of the search and the retrain (default: the library's, "
        f"{DEFAULT_DROPOUT_GENERATOR}); the README's figures were made with uniform.",
        flag_values=fv,
    )
    cli.define_progress_flag(fv)


def _stage(title: str, module: str, argv: list[str]):
    """Runs ``module.main(argv)`` and says how long it took."""
    mod = importlib.import_module(module)
    print(f"\n=== {title}: python -m {module} {shlex.join(argv[1:])}", flush=True)
    start = time.perf_counter()
    result = mod.main(argv)
    print(f"--- {title} done in {time.perf_counter() - start:.0f}s", flush=True)
    return result


def _synthetic(task: str, out_dir: str, num_images: int, shown: list[str]):
    argv = ["synthetic", f"--task={task}", f"--out_dir={out_dir}", f"--num_images={num_images}"]
    argv += [*DATA_FLAGS, *shown]
    if os.path.exists(os.path.join(out_dir, "manifest.json")):
        print(f"\n=== data: reusing {out_dir}")
        return
    _stage("data", "mmnas_tf.synthetic", argv)


def main(argv: Sequence[str]) -> dict:
    """Runs every stage; returns {"genotype", "metrics", "export", "prediction"} (None = skipped)."""
    fv = cli.parse(define_flags, argv)
    from mmnas_tf.experiments import get_experiment

    exp = get_experiment(fv.config)
    work = fv.workdir
    data, search_dir, train_dir = (os.path.join(work, d) for d in ("data", "search", "train"))
    common = [f"--config={fv.config}", f"--data_dir={data}"]
    seeded = [] if fv.seed is None else [f"--seed={fv.seed}"]
    out = {
        "genotype": None,
        "selection": None,
        "metrics": None,
        "image_blind_metrics": None,
        "export": None,
        "prediction": None,
        "pictures": None,
    }

    # what every stage shows: --verbosity to all, --noprogress to those with progress
    verbosity = [f"--verbosity={fv.verbosity}"] if fv.verbosity is not None else []
    shown = verbosity + ([] if fv.progress else ["--noprogress"])
    _synthetic(exp.task, data, fv.num_images, shown)

    genotype_arg = []
    search_argv = [
        "search",
        *common,
        *seeded,
        f"--model_dir={search_dir}",
        *SEARCH_FLAGS,
        f"--warmup_epochs={fv.warmup_epochs}",
        f"--search_epochs={fv.search_epochs}",
    ]
    if fv.dropout_generator:
        search_argv.append(f"--override=search_model.dropout_generator={fv.dropout_generator}")
    searched = _stage("search", "mmnas_tf.search", [*search_argv, *shown])
    genotype_file = os.path.join(search_dir, "genotypes.json")
    if searched is not None and os.path.exists(genotype_file):
        from mmnas_tf.genotype import Genotype

        out["genotype"] = str(Genotype.load(genotype_file))
        out["selection"] = _show_selection(search_dir)
        print(f"found genotype: {out['genotype']}")
        genotype_arg = [f"--genotype={genotype_file}"]
    else:
        print(f"retraining the experiment's default genotype instead: {exp.load_genotype()}")

    train_argv = [
        "train",
        *common,
        *seeded,
        *genotype_arg,
        f"--model_dir={train_dir}",
        f"--epochs={fv.epochs}",
        f"--override={TRAIN_OVERRIDES}",
        *shown,
    ]
    if fv.dropout_generator:
        train_argv.append(f"--override=model.dropout_generator={fv.dropout_generator}")
    _stage("retrain", "mmnas_tf.train", train_argv)
    out["metrics"] = _stage(
        "evaluate", "mmnas_tf.evaluate", ["evaluate", *common, f"--checkpoint={train_dir}", *shown]
    )
    if out["metrics"]:
        out["image_blind_metrics"] = _image_blind(train_dir, exp, data)

    export_dir = os.path.join(work, "export")
    out["export"] = _stage(
        "export",
        "mmnas_tf.export",
        [
            "export",
            f"--task={exp.task}",
            f"--checkpoint={train_dir}",
            f"--export_dir={export_dir}",
            "--overwrite",
            "--version=1",
            *verbosity,
        ],
    )
    if out["export"]:
        out["prediction"] = _predict_one(out["export"], exp, data)
    out["pictures"] = _pictures(work, search_dir, train_dir, exp, data, verbosity)

    print("\n=== summary")
    print(f"genotype:   {out['genotype'] or '(experiment default)'}")
    if out["metrics"]:
        shown = {k: round(v, 2) for k, v in out["metrics"].items() if isinstance(v, float)}
        print(f"metrics:    {shown}")
        seeing, blind = out["metrics"]["overall"], out["image_blind_metrics"]["overall"]
        print(
            f"accuracy:   {seeing:.1f}% of {out['metrics']['questions']} validation questions; "
            f"image features zeroed: {blind:.1f}% ({seeing - blind:+.1f} points from the image)"
        )
    print(f"SavedModel: {out['export'] or '(skipped)'}")
    print(f"prediction: {out['prediction'] or '(skipped)'}")
    for name, path in (out["pictures"] or {}).items():
        print(f"{name + ':':<11} {path}")
    with open(os.path.join(work, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, default=str)
    return out


def _show_selection(search_dir: str) -> dict | None:
    """Prints the search's selection step (``selection.json``: every candidate genotype and its
    score on D_a with the supernet's weights, the argmax of theta first) and returns
    ``{"argmax", "selected", "candidates": [[genotype, score], ...]}``; None for a search
    without one."""
    from mmnas_tf.nas.selection import SCORE_KEY, SELECTION_FILE

    path = os.path.join(search_dir, SELECTION_FILE)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        selection = json.load(f)
    argmax, selected = selection.get("argmax"), selection["genotype"]
    candidates = [[c["genotype"], c[SCORE_KEY]] for c in selection["candidates"]]
    print(
        f"selection: {len(candidates)} candidates scored on D_a with the supernet's weights "
        "(the argmax of theta, then draws from softmax(theta)); the best is kept:"
    )
    for genotype, score in candidates:
        marks = [m for m, g in (("argmax", argmax), ("selected", selected)) if genotype == g]
        print(f"  {score:.4f}  {genotype}" + (f"  <- {', '.join(marks)}" if marks else ""))
    return {"argmax": argmax, "selected": selected, "candidates": candidates}


def _image_blind(train_dir: str, exp, data_dir: str) -> dict:
    """The retrained model's evaluation with every region feature set to zero: the accuracy the
    question alone earns (the answers are balanced per family, so about chance)."""
    import tensorflow as tf

    from mmnas_tf.engine.checkpoint import restore_model
    from mmnas_tf.inputs import IMAGE_FEATURES
    from mmnas_tf.runs import find_run
    from mmnas_tf.tasks import get_task

    print("\n=== image-blind evaluate: the same checkpoint, every region feature set to 0")
    run, task = find_run(train_dir), get_task(exp.task)
    model = task.build_model(run["model"])
    restore_model(model, train_dir)

    def blind(inputs, training=False):
        zeroed = {**inputs, IMAGE_FEATURES: tf.zeros_like(inputs[IMAGE_FEATURES])}
        return model(zeroed, training=training)

    output_dir = os.path.join(train_dir, "eval_image_blind")
    os.makedirs(output_dir, exist_ok=True)
    data = dataclasses.replace(exp.data, data_dir=data_dir)
    metrics = task.evaluate(blind, data, run["model"], data.eval_split, output_dir)
    print(json.dumps({k: v for k, v in metrics.items() if isinstance(v, float)}, sort_keys=True))
    return metrics


def _serve_one(saved_model: str, question: str, inputs: dict) -> dict:
    """Serves the export with the local PredictionService (gRPC on a free 127.0.0.1 port) and asks
    it one raw-text question through the ``predict_text`` signature, as a client would."""
    from mmnas_tf.devserver.client import ServingClient
    from mmnas_tf.devserver.server import ModelServer, single_model_config

    base = os.path.dirname(saved_model)
    with ModelServer(
        single_model_config("quickstart", base), grpc_port=0, rest_port=None
    ) as server:
        print(f"serving {base} on 127.0.0.1:{server.grpc_port} (gRPC PredictionService)")
        with ServingClient(f"127.0.0.1:{server.grpc_port}", "quickstart") as client:
            client.wait_until_available(timeout=120)
            request = {k: v.numpy() for k, v in inputs.items() if k != "text_ids"}
            if "predict_text" in client.signatures():
                request["text"] = np.array([question.encode("utf-8")])
                wanted = client.signature("predict_text").inputs
                return client.predict(
                    {k: v for k, v in request.items() if k in wanted}, "predict_text"
                )
            request["text_ids"] = inputs["text_ids"].numpy()
            wanted = client.signature().inputs
            return client.predict({k: v for k, v in request.items() if k in wanted})


def _first_example(train_dir: str, exp, data_dir: str):
    """(question, inputs, targets) of the first validation example, padded as the run's model."""
    from mmnas_tf.runs import find_run
    from mmnas_tf.tasks import get_task

    run = find_run(train_dir)
    config = run["model"] if run else exp.model
    data = dataclasses.replace(exp.data, data_dir=data_dir)
    dataset = get_task(exp.task).build_inputs(
        data, config, data.eval_split, training=False, batch_size=1, bucket_boundaries=None
    )
    inputs, targets = next(iter(dataset))
    with open(os.path.join(data_dir, "vocab.txt"), encoding="utf-8") as f:
        vocab = f.read().splitlines()
    question = " ".join(vocab[i] for i in inputs["text_ids"][0].numpy() if i > 2)
    return question, inputs, targets


def _predict_one(saved_model: str, exp, data_dir: str) -> str:
    """Answers the first validation question through the local server."""
    train_dir = os.path.join(os.path.dirname(os.path.dirname(saved_model)), "train")
    question, inputs, targets = _first_example(train_dir, exp, data_dir)
    outputs = _serve_one(saved_model, question, inputs)
    from mmnas_tf.tasks import get_task

    said = get_task(exp.task).annotate(outputs).lines  # the task's own reading of its outputs
    answers = targets["answers"][0].numpy() if "answers" in targets else []
    truth = [a.decode("utf-8") for a in answers if a]
    text = f"{question!r} -> {said[0]}" + (f"; annotators said {truth[:3]}" if truth else "")
    print(text)
    return text


def _pictures(
    work: str, search_dir: str, train_dir: str, exp, data_dir: str, verbosity: list[str]
) -> dict | None:
    """The search's theta plot and genotype diagram, and the first validation question's attention
    drawn by ``python -m mmnas_tf.predict --explain`` (None without the ``viz`` extra)."""
    from mmnas_tf.nas import reporting

    try:
        from mmnas_tf import viz

        viz.require("matplotlib")
        viz.require("PIL.Image")
    except ImportError as e:
        print(f"\n=== pictures: skipped ({e})")
        return None
    out = {}
    for name, file in (("theta plot", reporting.THETA_PLOT), ("genotype", reporting.GENOTYPE_PLOT)):
        if os.path.exists(os.path.join(search_dir, file)):
            out[name] = os.path.join(search_dir, file)
    out.update(_selection_pictures(search_dir))
    if os.path.exists(os.path.join(train_dir, "run.json")):
        from mmnas_tf.explain_run import save_regions

        question, inputs, _ = _first_example(train_dir, exp, data_dir)
        features = save_regions(os.path.join(work, "example.npz"), inputs)
        attention = os.path.join(work, "attention.png")
        argv = [
            "predict",
            f"--checkpoint={train_dir}",
            f"--question={question}",
            f"--features={features}",
            f"--explain={attention}",
            *verbosity,
        ]
        if _stage("explain", "mmnas_tf.predict", argv) is not None:
            out["attention"] = attention
    return out


def _selection_pictures(search_dir: str) -> dict:
    """After a selection step: its candidates' scores drawn (``selection.png``), and the genotype
    diagram redrawn with the selected genotype (the search drew its last epoch's argmax before
    the selection ran)."""
    from mmnas_tf import viz
    from mmnas_tf.genotype import Genotype
    from mmnas_tf.nas import reporting
    from mmnas_tf.nas.selection import SCORE_KEY, SELECTION_FILE

    path = os.path.join(search_dir, SELECTION_FILE)
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        selection = json.load(f)
    # the score is the task's first metric (VQA: in_vocabulary_accuracy), else minus the loss
    known = ("genotype", "choice", "generation", "loss", SCORE_KEY)
    score = next((k for k in selection["best"] if k not in known), "minus the loss")
    picture = os.path.join(search_dir, "selection.png")
    viz.plot_selection(selection, picture, score)
    genotype = Genotype.load(os.path.join(search_dir, reporting.GENOTYPE_FILE))
    diagram = os.path.join(search_dir, reporting.GENOTYPE_PLOT)
    viz.draw_genotype(genotype, diagram, title=f"selected: {genotype}")
    return {"selection": picture, "genotype": diagram}


if __name__ == "__main__":
    cli.run(main)
