"""Export a model trained by this project: rebuild it from ``run.json``, restore, write a version.

Training (``python -m mmnas_tf.train``) writes TF checkpoints plus ``run.json`` (the resolved
ModelConfig, genotype, answer count, experiment) into its model directory; this module turns that
into ``BASE/<version>/`` with the lead's :func:`export_saved_model`. Original PyTorch ``.pkl``
checkpoints go through ``python -m mmnas_tf.import_official`` instead.
"""

from __future__ import annotations

import os


def _data_file(explicit: str | None, data_dir: str, name: str) -> str | None:
    if explicit:
        return explicit
    path = os.path.join(data_dir, name) if data_dir else ""
    return path if path and os.path.exists(path) else None


def export_checkpoint(
    task: str,
    checkpoint: str,
    export_dir: str,
    version: int | None = None,
    vocab_file: str | None = None,
    answers_file: str | None = None,
    overwrite: bool = False,
    fixed_shapes: bool = False,
    explain: bool = False,
    dtype_policy: str = "float32",
) -> str:
    """Restores ``checkpoint`` (directory or prefix with ``run.json`` beside it) and exports it.

    Vocabularies default to ``vocab.txt`` / ``answers.txt`` of the run's data directory; with a
    vocabulary the export also gets the ``predict_text`` signature; ``fixed_shapes`` as in
    :func:`export_saved_model`; with ``explain`` the ``explain`` signature (attention weights).
    ``dtype_policy`` ("float32", "mixed_bfloat16" or "auto": the machine's, see
    ``mmnas_tf.precision``) is what the exported graph computes in; its signatures take and return
    float32 either way. Returns the version path.
    """
    from mmnas_tf import precision
    from mmnas_tf.data import writer
    from mmnas_tf.engine.checkpoint import restore_model
    from mmnas_tf.runs import find_run
    from mmnas_tf.serving.export import export_saved_model
    from mmnas_tf.tasks import get_task

    run = find_run(checkpoint)
    if run is None:
        raise FileNotFoundError(
            f"no run.json next to {checkpoint}: export rebuilds the model from the run.json that "
            "python -m mmnas_tf.train writes; for an original PyTorch .pkl use "
            "python -m mmnas_tf.import_official"
        )
    experiment = run.get("experiment") or {}
    run_task = experiment.get("task")
    if run_task and run_task != task:
        raise ValueError(f"{checkpoint} was trained for task {run_task!r}, not {task!r}")
    config = run["model"]
    task_obj = get_task(task)
    policy = precision.resolve_policy(dtype_policy, hidden_size=precision.hidden_size_of(config))
    with precision.policy_scope(policy):
        model = task_obj.build_model(config)
    restore_model(model, checkpoint)
    data_dir = (experiment.get("data") or {}).get("data_dir", "")
    vocab_file = _data_file(vocab_file, data_dir, writer.VOCAB_FILE)
    if task_obj.uses_answer_vocabulary:
        answers_file = _data_file(answers_file, data_dir, writer.ANSWERS_FILE)
    return export_saved_model(
        model,
        task,
        config,
        export_dir,
        version,
        vocab_file=vocab_file,
        answers_file=answers_file,
        overwrite=overwrite,
        fixed_shapes=fixed_shapes,
        explain=explain,
    )
