"""The selection step that ends a search whose estimator says so (``Estimator.ends_with_selection``):
evaluate candidate genotypes with the supernet's INHERITED weights on D_a and keep the best.

- After a supernet trained with uniform path sampling (``uniform``, single-path one-shot search,
  SPOS; theta never moves), :func:`select`: an evolutionary search over the supernet's slots (as
  SPOS does): a random initial population, then generations of the best ``parents`` mutated
  (each slot re-drawn with probability ``mutation``) and crossed over, every genotype evaluated
  at most once. With ``generations=0`` it is plain random sampling.
- After a theta search (``gumbel_selection``), :func:`select_from_theta`: the argmax genotype and
  genotypes drawn from the final softmax(theta) per block, by default as many as 5% of the space
  (:func:`default_candidates`).

The score is the task metric on D_a (VQA accuracy, VG accuracy) where the task has one, else minus
the loss per example; ties go to the first evaluated candidate (the argmax, after a theta search).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

import numpy as np
import tensorflow as tf

from mmnas_tf.genotype import Genotype
from mmnas_tf.nas.searcher import _Outputs  # precomputed outputs: the loss without a 2nd forward

#: The selection's output in the search's model_dir (the best genotype and every candidate).
SELECTION_FILE = "selection.json"
#: The key of a candidate's ranking score in :data:`SELECTION_FILE`.
SCORE_KEY = "score"


def slot_pools(search_model) -> list[tuple[str, int, tuple[str, ...]]]:
    """``(stage, index, ops)`` per block of the supernet; a fixed block has one op."""
    out = []
    for stage, i, block in search_model.slots:
        ops = tuple(block.candidates) if hasattr(block, "candidates") else (block.op_name,)
        out.append((stage, i, ops))
    return out


def genotype_of(pools, choice: Iterable[int]) -> Genotype:
    """The genotype taking op ``choice[k]`` of slot ``k`` of ``pools``."""
    ops = {"encoder": [], "decoder": []}
    for (stage, _, candidates), c in zip(pools, choice):
        ops[stage].append(candidates[int(c)])
    return Genotype(ops["encoder"], ops["decoder"])


class ArchEvaluator:
    """Scores genotypes with the supernet's inherited weights on a fixed list of batches.

    One ``tf.function`` over the op-index vector of the mixed slots: no retracing per genotype.
    """

    def __init__(self, search_model, batches: list):
        self.model, self.batches = search_model, batches
        task = search_model.task
        self.metrics = task.build_metrics()  # the first is the score; none: minus the loss
        mixed = search_model.mixed

        def step(inputs, targets, choices):
            inputs, targets = search_model.prepare(inputs, targets)
            arch = search_model.arch_from_choices([choices[k] for k in range(len(mixed))])
            outputs = search_model.task_model(inputs, training=False, arch=arch)
            loss = search_model.task.compute_loss(_Outputs(outputs), inputs, targets, False)
            task.update_metrics(self.metrics, outputs, inputs, targets)
            return loss, tf.shape(tf.nest.flatten(inputs)[0])[0]

        self._step = tf.function(step, autograph=False, reduce_retracing=True)

    def __call__(self, genotype: Genotype) -> dict:
        arch = self.model.arch_of(genotype)
        choices = tf.stack([arch[stage][i] for stage, i, _ in self.model.mixed])
        for metric in self.metrics:
            metric.reset_state()
        total, count = 0.0, 0
        for inputs, targets in self.batches:
            loss, n = self._step(inputs, targets, choices)
            total, count = total + float(loss), count + int(n)
        out = {"loss": total / max(count, 1)}
        out.update({m.name: float(m.result()) for m in self.metrics})
        out["score"] = out[self.metrics[0].name] if self.metrics else -out["loss"]
        return out


def evolve(
    pools,
    score: Callable[[Genotype], dict],
    population: int = 16,
    generations: int = 3,
    parents: int = 4,
    mutation: float = 0.25,
    seed: int = 0,
) -> list[dict]:
    """Evolutionary (or, with ``generations=0``, random) search over ``pools``; returns every
    evaluated candidate ``{"genotype": str, "generation": g, **score}`` in evaluation order."""
    if population < 1 or generations < 0 or parents < 1 or not 0 <= mutation <= 1:
        raise ValueError(
            "population >= 1, generations >= 0, parents >= 1 and 0 <= mutation <= 1 expected; got "
            f"{population}, {generations}, {parents}, {mutation}"
        )
    rng = np.random.default_rng(seed)
    sizes = [len(ops) for _, _, ops in pools]
    space = int(np.prod(sizes))
    seen: dict[tuple, dict] = {}

    def add(choice, generation):
        key = tuple(int(c) for c in choice)
        if key in seen:
            return False
        genotype = genotype_of(pools, key)
        seen[key] = {
            "genotype": str(genotype),
            "choice": list(key),
            "generation": generation,
            **score(genotype),
        }
        return True

    def draw():
        return [rng.integers(n) for n in sizes]

    tries = 0
    while len(seen) < min(population, space) and tries < 100 * population:
        add(draw(), 0)
        tries += 1
    for generation in range(1, generations + 1):
        best = sorted(seen, key=lambda k: -seen[k]["score"])[:parents]
        made, tries = 0, 0
        while made < population and len(seen) < space and tries < 100 * population:
            tries += 1
            if made % 2 == 0:  # mutation of a parent
                child = [
                    rng.integers(n) if rng.random() < mutation else c
                    for c, n in zip(best[rng.integers(len(best))], sizes)
                ]
            else:  # crossover of two parents
                a, b = best[rng.integers(len(best))], best[rng.integers(len(best))]
                child = [x if rng.random() < 0.5 else y for x, y in zip(a, b)]
            made += add(child, generation)
    return list(seen.values())


def best_candidate(candidates: list[dict]) -> dict:
    """The candidate with the highest score (the first evaluated among ties)."""
    if not candidates:
        raise ValueError("no candidate was evaluated")
    return max(candidates, key=lambda c: c["score"])


def select(search_model, batches: list, **evolve_args) -> dict:
    """``{"genotype": str, "best": candidate, "candidates": [...], "settings": ...}`` for a
    uniform-trained supernet, scored on ``batches`` (D_a) with inherited weights."""
    evaluator = ArchEvaluator(search_model, batches)
    pools = slot_pools(search_model)
    candidates = evolve(pools, evaluator, **evolve_args)
    best = best_candidate(candidates)
    return {
        "genotype": best["genotype"],
        "best": best,
        "candidates": candidates,
        "settings": {
            "method": "evolution" if evolve_args.get("generations", 3) else "random",
            **evolve_args,
            "batches": len(batches),
        },
    }


#: The share of the space a theta search's selection scores by default.
SPACE_SHARE = 0.05


def space_size(search_model) -> int:
    """The number of genotypes of the supernet's space."""
    return int(np.prod([len(ops) for _, _, ops in slot_pools(search_model)]))


def default_candidates(size: int) -> int:
    """Candidates of a theta search's selection when not set: 5% of a space of ``size``
    genotypes, rounded down, and at least one (the argmax). 64 genotypes: 3; 1,024: 51."""
    return max(1, int(size * SPACE_SHARE))


def theta_draws(pools, probabilities: list, argmax: list[int], count: int, seed: int = 0) -> list:
    """``count`` distinct op-index choices: ``argmax`` first, then draws of one op per slot from
    ``probabilities`` (softmax(theta) per slot), duplicates drawn again (fewer when the
    distribution cannot give more distinct ones in 100 x ``count`` draws)."""
    if count < 1:
        raise ValueError(f"the selection needs at least 1 candidate, got {count}")
    if not all(np.all(np.isfinite(p)) for p in probabilities):
        raise ValueError(
            "the selection step cannot draw from softmax(theta): theta is NaN or infinite after "
            "the search (its epoch lines read 'loss not finite'); check the data (e.g. examples "
            "whose every image region is masked) or lower the learning rates"
        )
    rng = np.random.default_rng(seed)
    chosen, tries = [tuple(int(c) for c in argmax)], 0
    space = int(np.prod([len(ops) for _, _, ops in pools]))
    while len(chosen) < min(count, space) and tries < 100 * count:
        tries += 1
        draw = tuple(int(rng.choice(len(p), p=np.asarray(p) / np.sum(p))) for p in probabilities)
        if draw not in chosen:
            chosen.append(draw)
    return chosen


def select_from_theta(search_model, batches: list, candidates: int = 0, seed: int = 0) -> dict:
    """The selection after a theta search: the argmax genotype and genotypes drawn from the final
    softmax(theta) per block (``candidates`` in all; 0: :func:`default_candidates` of the space),
    scored on ``batches`` (D_a) with inherited weights. Returns :func:`select`'s fields plus
    ``"argmax"``, the theta search's own pick."""
    pools = slot_pools(search_model)
    size = space_size(search_model)
    count = candidates or default_candidates(size)
    table = search_model.theta_table()
    probabilities = [table[stage][i] for stage, i, _ in pools]
    argmax = [int(np.argmax(p)) for p in probabilities]
    evaluator = ArchEvaluator(search_model, batches)
    scored = []
    for choice in theta_draws(pools, probabilities, argmax, count, seed):
        genotype = genotype_of(pools, choice)
        scored.append(
            {
                "genotype": str(genotype),
                "choice": list(choice),
                "generation": 0,
                **evaluator(genotype),
            }
        )
    best = best_candidate(scored)
    return {
        "genotype": best["genotype"],
        "best": best,
        "candidates": scored,
        "argmax": str(genotype_of(pools, argmax)),
        "settings": {
            "method": "theta_draws",
            "candidates": count,
            "space_size": size,
            "seed": seed,
            "batches": len(batches),
        },
    }


def select_and_write(
    search_model,
    batches: list,
    model_dir: str,
    status: dict,
    result: dict | None = None,
    **evolve_args,
) -> dict:
    """The selection step at the end of a search: writes ``selection.json`` (the best genotype,
    every evaluated candidate) and makes the selected genotype the last epoch's in the history
    files, so ``genotypes.json`` (read by ``--genotype``) ends with it. ``result``: a selection
    already made (:func:`select_from_theta`, an estimator's ``select``), else :func:`select`
    with ``evolve_args``. Returns the status with that history and the selection under
    ``"selection"``."""
    from mmnas_tf.nas import reporting

    result = result or select(search_model, batches, **evolve_args)
    chosen = genotype_of(slot_pools(search_model), result["best"]["choice"])
    head_size = search_model.genotype().head_size  # that of the supernet
    result["selected"] = Genotype(chosen.encoder, chosen.decoder, head_size).to_original()
    history = {k: dict(v) for k, v in status["history"].items()}
    if history:
        last = max(history, key=lambda k: int(k[5:]))
        history[last]["genotype"] = result["selected"]
        history[last]["selected_by"] = SELECTION_FILE
    if _is_chief():
        reporting.write_history(model_dir, history)
        reporting.write_json(os.path.join(model_dir, SELECTION_FILE), result)
    return {**status, "history": history, "selection": result}


def _is_chief() -> bool:
    from mmnas_tf.engine.distribute import worker_info

    return worker_info()[1]
