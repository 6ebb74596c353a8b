"""SearchModel: alternating weight / architecture updates over a supernet (paper Algorithm 1).

Design (one ``train_step`` = one search CYCLE, everything in-graph):

- A dataset element is ``(dm, da)``: ``dm = (inputs, targets)`` whose tensors are
  ``[B, u, ...]`` (u D_m batches stacked on axis 1, so a distribution strategy still splits the
  batch axis 0; :func:`cycle_dataset` builds it) and ``da = (inputs, targets)`` one D_a batch.
- ``train_step`` runs in the cross-replica context: a ``tf.while_loop`` of u weight steps, then,
  when the ``phase`` variable says "search" (and the estimator learns theta), one theta step under
  ``tf.cond``. Each step samples its architecture from ``(seed, counter)`` variables in the
  cross-replica context (every replica gets the same architecture) and calls
  ``strategy.run`` on the per-replica step: ``optimizer.apply`` inside a ``tf.cond`` /
  ``tf.while_loop`` that itself runs inside ``strategy.run`` is refused by MirroredStrategy, the
  other way round works.
- Two optimizers over DISJOINT variables: the weight optimizer over every trainable weight except
  theta, the architecture optimizer over theta only (``optimizer.apply(grads, variables)``).
- Losses are the tasks' sum-reduced losses of the per-replica batch: the optimizers all-reduce
  gradients with SUM, which is the gradient of the global-batch sum, so no per-replica scaling.
- Warm-up (``phase`` 0): weight steps only, sampling uniformly (paper) or from softmax(theta)
  with theta initialised from a prior genotype (+1 / -1, the original).

Candidates that did not run get exactly-zero gradients (the ``switch`` gradient), not "no
gradient" as in PyTorch: :class:`SampledPathAdam` skips such variables, so Adam's momentum does not
move weights that a step did not use (the original's ``param.grad = None``), and counts Adam's steps
per variable as PyTorch does, so a skipped candidate's bias correction does not advance.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from mmnas_tf import inputs as names
from mmnas_tf.engine import optimizers as engine_optimizers
from mmnas_tf.engine.distribute import replicas_in_sync
from mmnas_tf.engine.optimizers import fused_adam_update, global_sum_gradients, make_adam
from mmnas_tf.genotype import Genotype
from mmnas_tf.nas import estimators as est
from mmnas_tf.nas.choices import check_choice

PHASES = ("warmup", "search")


@keras.saving.register_keras_serializable(package="mmnas_tf")
class SampledPathAdam(keras.optimizers.Adam):
    """PyTorch's Adam for sampled paths: a variable whose whole gradient is exactly zero (a
    candidate the weight step did not sample; PyTorch skips parameters without a gradient) keeps
    its value, its moments AND its step count. Like ``torch.optim.Adam``, each variable counts its
    own steps for the bias correction, and epsilon is added to the bias-corrected
    ``sqrt(v) / sqrt(1 - beta_2^t)``. Same arguments as ``keras.optimizers.Adam`` (no amsgrad),
    plus ``fused`` (default ``engine.optimizers.FUSED_ADAM``): the update of a used variable is one
    ``ResourceApplyAdam`` kernel, with epsilon scaled by ``sqrt(1 - beta_2^t)`` so that it lands
    after the bias correction (the same formula)."""

    def __init__(self, *args, fused: bool | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if self.amsgrad:
            raise ValueError("SampledPathAdam implements PyTorch's Adam without amsgrad")
        self.fused = engine_optimizers.FUSED_ADAM if fused is None else bool(fused)
        self.sampled = None  # {variable index: bool tensor} during a search weight step

    def get_config(self):
        return {**super().get_config(), "fused": self.fused}

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._steps = []
        for var in var_list:
            colocate = var.value if isinstance(var, keras.Variable) else var
            with self._distribution_strategy.extended.colocate_vars_with(colocate):
                self._steps.append(self.add_variable((), dtype="float32", name="step"))

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)

        def update():
            dtype = variable.dtype
            step = self._steps[index]
            t = tf.cast(step, dtype) + 1
            self.assign(step, tf.cast(t, step.dtype))
            gradient_ = tf.cast(gradient, dtype)
            beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
            m, v = self._momentums[index], self._velocities[index]
            if self.fused:
                epsilon = tf.cast(self.epsilon, dtype) * tf.sqrt(1 - tf.pow(beta_2, t))
                fused_adam_update(
                    variable, m, v, gradient_, learning_rate, beta_1, beta_2, epsilon, t
                )
                return tf.constant(True)
            self.assign_add(m, (gradient_ - m) * (1 - beta_1))
            self.assign_add(v, (tf.square(gradient_) - v) * (1 - beta_2))
            denom = tf.sqrt(v) / tf.sqrt(1 - tf.pow(beta_2, t)) + tf.cast(self.epsilon, dtype)
            step_size = tf.cast(learning_rate, dtype) / (1 - tf.pow(beta_1, t))
            self.assign_sub(variable, step_size * m / denom)
            return tf.constant(True)

        def nonzero():
            return tf.reduce_any(tf.not_equal(gradient, 0))

        # ``sampled`` (set by the search model's weight step for the duration of one ``apply``):
        # False for a candidate the step did not run, whose gradient is then not even read
        sampled = (self.sampled or {}).get(index)
        used = (
            nonzero() if sampled is None else tf.cond(sampled, nonzero, lambda: tf.constant(False))
        )
        tf.cond(used, update, lambda: tf.constant(False))


def default_weight_optimizer(
    learning_rate: float = 4e-4, beta_1: float = 0.9, beta_2: float = 0.98, epsilon: float = 1e-9
) -> keras.optimizers.Optimizer:
    """The original's W optimizer in search: Adam(betas 0.9/0.98, eps 1e-9) that skips unsampled
    candidates; the gradient-norm clip is the search model's ``clip_norm`` (applied to the
    all-reduced gradient)."""
    return SampledPathAdam(learning_rate, beta_1, beta_2, epsilon, name="weight_adam")


def default_arch_optimizer(
    learning_rate: float = 0.1, beta_1: float = 0.0, beta_2: float = 0.999
) -> keras.optimizers.Optimizer:
    """The original's theta optimizer: Adam(lr 0.1, betas (0, 0.999), eps 1e-8)
    (docs/original_behaviour.md, "Search")."""
    return make_adam(learning_rate, beta_1, beta_2, epsilon=1e-8, name="arch_adam")


def cycle_dataset(dm: tf.data.Dataset, da: tf.data.Dataset, weight_steps: int) -> tf.data.Dataset:
    """Zips batched D_m and D_a datasets of ``(inputs, targets)`` into search cycles: ``u`` D_m
    batches stacked on axis 1 (``[B, u, ...]``) and one D_a batch. Repeat both inputs first for
    step-driven training (an epoch = a number of cycles)."""

    def batch_axis_first(t):
        return tf.transpose(t, [1, 0] + list(range(2, len(t.shape))))

    grouped = dm.batch(weight_steps, drop_remainder=True).map(
        lambda *x: tf.nest.map_structure(batch_axis_first, x)
    )
    return tf.data.Dataset.zip((grouped, da))


@keras.saving.register_keras_serializable(package="mmnas_tf")
class SearchModel(keras.Model):
    """Architecture search over a task model whose backbone is a supernet (``genotype=None``).

    Args:
      task: the ``Task`` (its ``compute_loss(model, inputs, targets, training, arch)``).
      model: the task model built by ``task.build_model(config)`` with a supernet backbone.
      estimator: the name of a registered estimator (``nas.estimators``): ``gumbel`` (default),
        ``proxyless``, ``uniform``, ``gumbel_selection`` or one registered by the caller.
      weight_steps: u, weight steps per theta step (5).
      warmup: ``uniform`` (paper: uniform sampling) or ``prior`` (original: theta starts at
        +1 on ``prior``'s ops and -1 elsewhere; warm-up samples from softmax(theta)).
      prior: the prior ``Genotype`` for ``warmup="prior"`` (default: the original's
        [SA, FFN] / [RSA, GA, FFN] pattern).
      prior_logit: float, the +/- value of the prior's initial theta (1.0 in the original).
      clip_norm: float, clip of the global norm of the all-reduced weight gradient (1.0; 0 = off).
      seed: int, seed of the architecture sampler.
      arch_paths: what a ``gumbel`` theta step computes: ``all`` (default: every candidate runs,
        the non-sampled ones stop-gradient'ed, so ``dL/dgate_j = <o_j, dL/dout>`` for every j and
        the straight-through gradient compares each op with the others) or ``sampled`` (only the
        sampled op runs, GDAS-style: one candidate's forward instead of P, but the gradient then
        only says whether scaling the sampled block's output lowers the loss, which favours
        whichever op is sampled most; see ``docs/search_results.md``). ``proxyless`` always computes every candidate.
      batch_fn: optional in-graph ``fn(inputs, targets) -> (inputs, targets)`` applied to every
        per-replica batch (weight, theta and evaluation steps), e.g. the ITM hard-negative
        miner's ``add_negatives``.

    State variables (checkpointed with the model): ``phase`` (0 warm-up, 1 search),
    ``temperature`` (Gumbel tau), ``sample_counter`` and ``sampler_seed``.

    Call: ``search_model(inputs, training=None, arch=None)`` runs the task model with ``arch``
    (default: the argmax architecture). ``train_step((dm, da))``: one cycle (module docstring);
    ``test_step((inputs, targets))``: the loss of the argmax architecture with inherited weights.

    Example::

        task = get_task("vqa")
        model = task.build_model(task.model_config(hidden_size=32, genotype=None))
        search = SearchModel(task, model, estimator="gumbel")
        search.compile(weight_optimizer=default_weight_optimizer(),
                       arch_optimizer=default_arch_optimizer(), jit_compile=False)
        search.set_state("search", temperature=5.0)
        search.fit(cycle_dataset(dm, da, 5), epochs=1, steps_per_epoch=10)
        search.genotype()
    """

    def __init__(
        self,
        task,
        model: keras.Model,
        estimator: str = "gumbel",
        weight_steps: int = 5,
        warmup: str = "uniform",
        prior: Genotype | None = None,
        prior_logit: float = 1.0,
        clip_norm: float = 1.0,
        seed: int = 0,
        arch_paths: str = "all",
        batch_fn=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.estimator = est.check_choice("estimator", estimator, est.ESTIMATORS)
        #: the registered ``nas.estimators.Estimator`` named ``estimator``
        self.gradient_estimator = est.get_estimator(estimator)
        self.arch_paths = est.check_choice("arch_paths", arch_paths, est.ARCH_PATHS)
        self.batch_fn = batch_fn
        self.warmup = est.check_choice("warm-up mode", warmup, est.WARMUP_MODES)
        if int(weight_steps) < 1:
            raise ValueError(f"weight_steps must be >= 1, got {weight_steps}")
        self.weight_steps = int(weight_steps)
        self.clip_norm = float(clip_norm)
        self.task = task
        self.task_model = model
        backbone = model.backbone
        self.stages = {
            "encoder": len(backbone.encoder_blocks),
            "decoder": len(backbone.decoder_blocks),
        }
        self.slots = [
            (stage, i, block)
            for stage, blocks in (
                ("encoder", backbone.encoder_blocks),
                ("decoder", backbone.decoder_blocks),
            )
            for i, block in enumerate(blocks)
        ]
        self.mixed = [(s, i, b) for s, i, b in self.slots if hasattr(b, "candidates")]
        if not self.mixed:
            raise ValueError("the model has no searchable slot: build it with genotype=None")
        self.arch_variables = backbone.architecture_variables()
        arch_ids = {id(v) for v in self.arch_variables}
        self.weight_variables = [v for v in model.trainable_variables if id(v) not in arch_ids]
        # (mixed slot, candidate) of each weight variable of a candidate op, else None: a weight
        # step knows from its architecture which gradients are exactly zero without reading them
        owner = {
            id(v): (s, j)
            for s, (_, _, block) in enumerate(self.mixed)
            for j, op in enumerate(block.candidate_ops)
            for v in op.trainable_variables
        }
        self._candidate_of = [owner.get(id(v)) for v in self.weight_variables]
        self._noise_width = max(len(b.candidates) for _, _, b in self.mixed)
        self.phase = self.add_weight(
            shape=(), dtype="int32", initializer="zeros", trainable=False, name="phase"
        )
        self.temperature = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(5.0),
            trainable=False,
            name="temperature",
        )
        self.sample_counter = self.add_weight(
            shape=(), dtype="int64", initializer="zeros", trainable=False, name="sample_counter"
        )
        self.sampler_seed = self.add_weight(
            shape=(),
            dtype="int64",
            initializer=keras.initializers.Constant(seed),
            trainable=False,
            name="sampler_seed",
        )
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.arch_loss_tracker = keras.metrics.Mean(name="arch_loss")
        if warmup == "prior":
            c = backbone.config
            prior = prior or est.original_prior(c.num_encoder_blocks, c.num_decoder_blocks)
            values = est.prior_logits(prior, [(s, i, b.candidates) for s, i, b in self.mixed])
            for var, value in zip(self.arch_variables, values):
                var.assign(np.asarray(value, np.float32) * prior_logit)
        self.built = True

    # ---- state -----------------------------------------------------------------------------------
    @property
    def metrics(self):
        return [self.loss_tracker, self.arch_loss_tracker]

    def set_state(self, phase: str, temperature: float | None = None) -> None:
        """Sets the phase (``warmup`` or ``search``) and, optionally, the Gumbel temperature."""
        self.phase.assign(PHASES.index(est.check_choice("phase", phase, PHASES)))
        if temperature is not None:
            self.temperature.assign(float(temperature))

    def _next_noise(self) -> tf.Tensor:
        seed = tf.stack(
            [tf.convert_to_tensor(self.sampler_seed), tf.convert_to_tensor(self.sample_counter)]
        )
        self.sample_counter.assign_add(1)
        return est.gumbel_noise(seed, len(self.mixed), self._noise_width)

    def arch_from_choices(self, choices, all_paths: bool = False) -> dict:
        """The ``arch`` call argument of the task model from one entry per mixed slot (an op
        index, or a gate vector [P]); ``all_paths``: a theta step's every-candidate form."""
        return self._arch(choices, all_paths)

    def _arch(self, choices, all_paths: bool = False) -> dict:
        # Keras refuses call arguments that mix tensors and Python values: fixed slots (which
        # ignore their entry) get a 0 tensor and the all-paths flag is a constant tensor.
        arch = {stage: [tf.zeros((), tf.int32)] * n for stage, n in self.stages.items()}
        for (stage, i, _), choice in zip(self.mixed, choices):
            arch[stage][i] = choice
        if all_paths:
            arch["all_paths"] = tf.constant(True)
        return arch

    def argmax_arch(self) -> dict:
        """Per mixed slot the index of the largest theta (the architecture the search returns)."""
        return self._arch([tf.argmax(v, output_type=tf.int32) for v in self.arch_variables])

    def arch_of(self, genotype: Genotype) -> dict:
        """The supernet path of ``genotype`` (to evaluate it with inherited weights). Raises
        ValueError if its blocks or ops do not fit the supernet."""
        stages = {"encoder": tuple(genotype.encoder), "decoder": tuple(genotype.decoder)}
        for stage, n in self.stages.items():
            if len(stages[stage]) != n:
                raise ValueError(
                    f"genotype has {len(stages[stage])} {stage} blocks, the supernet {n}"
                )
        choices = []
        for stage, i, block in self.mixed:
            op = stages[stage][i]
            if op not in block.candidates:
                raise ValueError(
                    f"{stage} block {i}: op {op!r} not in the pool {list(block.candidates)}"
                )
            choices.append(tf.constant(block.candidates.index(op), tf.int32))
        return self._arch(choices)

    def set_all_paths_form(self, form: str) -> None:
        """How a theta step's every-candidate form is computed in every mixed slot
        (``MixedOp.all_paths_form``: ``forward_only`` or the reference ``where``); read when the
        step is traced, so set it before the first call."""
        check_choice("all-paths form", form, ("forward_only", "where"))
        for _, _, block in self.mixed:
            block.all_paths_form = form

    def _uniform_sampling(self):
        searching = tf.equal(tf.convert_to_tensor(self.phase), 1)
        return self.gradient_estimator.uniform_sampling(searching, self.warmup)

    def sample_arch(self) -> dict:
        """Draws the architecture of one weight step (advances the sampler)."""
        choices = est.sample_indices(
            self.arch_variables, self._next_noise(), self._uniform_sampling()
        )
        return self._arch(choices)

    # ---- training --------------------------------------------------------------------------------
    def compile(
        self,
        weight_optimizer: keras.optimizers.Optimizer | None = None,
        arch_optimizer: keras.optimizers.Optimizer | None = None,
        jit_compile: bool = False,
        **kwargs,
    ) -> None:
        """Builds both optimizers over their variable sets (call inside the strategy scope).
        ``jit_compile`` is explicit: XLA + MirroredStrategy fails on CPU."""
        super().compile(
            optimizer=weight_optimizer or default_weight_optimizer(),
            jit_compile=jit_compile,
            **kwargs,
        )
        self.weight_optimizer = self.optimizer
        self.arch_optimizer = arch_optimizer or default_arch_optimizer()
        self.weight_optimizer.build(self.weight_variables)
        self.arch_optimizer.build(self.arch_variables)

    def call(self, inputs, training=None, arch=None):
        return self.task_model(inputs, training=training, arch=arch or self.argmax_arch())

    def prepare(self, inputs, targets) -> tuple:
        """A per-replica batch through ``batch_fn`` (identity without one)."""
        return (inputs, targets) if self.batch_fn is None else self.batch_fn(inputs, targets)

    def _loss(self, inputs, targets, arch, training=True):
        return self.task.compute_loss(
            self.task_model, inputs, targets, training=training, arch=arch
        )

    def theta_loss(self, inputs, targets, theta: list, noise, all_paths: bool | None = None):
        """The loss of one theta step (dropout on) on a prepared batch: the estimator's gates
        from ``theta`` (one tensor per mixed slot, watched by the caller's tape) and ``noise``
        (:func:`nas.estimators.gumbel_noise`); ``all_paths`` defaults to what the estimator
        computes under the model's ``arch_paths``. What ``train_step``'s theta step
        differentiates, for benchmarks and tests."""
        gates = self.gradient_estimator.gates(theta, noise, self.temperature)
        if all_paths is None:
            all_paths = self.gradient_estimator.all_paths(self.arch_paths)
        return self._loss(inputs, targets, self._arch(gates, all_paths=all_paths))

    def _weight_step(self, dm, index, arch):
        inputs, targets = tf.nest.map_structure(lambda t: tf.gather(t, index, axis=1), dm)
        inputs, targets = self.prepare(inputs, targets)
        with tf.GradientTape() as tape:
            loss = self._loss(inputs, targets, arch)
        grads = tape.gradient(loss, self.weight_variables)
        sampled = self._sampled_flags(arch)
        kept = [i for i, g in enumerate(grads) if g is not None]
        variables, flags = [self.weight_variables[i] for i in kept], [sampled[i] for i in kept]
        grads, _ = global_sum_gradients([grads[i] for i in kept], self.clip_norm, flags)
        optimizer = self.weight_optimizer
        # one replica only: replicas trace in threads, and the update runs in a merge call
        flagged = isinstance(optimizer, SampledPathAdam) and replicas_in_sync() == 1
        if flagged:  # the optimizer skips unsampled candidates without reading their gradient
            optimizer.sampled = {
                optimizer._get_variable_index(v): f for v, f in zip(variables, flags)
            }
        try:
            optimizer.apply(grads, variables)
        finally:
            if flagged:
                optimizer.sampled = None
        _track(self.loss_tracker, loss, inputs)
        return loss

    def _sampled_flags(self, arch) -> list:
        """Per weight variable: None (not a candidate's) or a bool tensor, True iff ``arch`` runs
        its candidate (the gradient of one it does not run is exactly zero: ``switch``)."""
        choices = [arch[stage][i] for stage, i, _ in self.mixed]
        return [
            None if owner is None else tf.equal(choices[owner[0]], owner[1])
            for owner in self._candidate_of
        ]

    def _arch_step(self, da, noise):
        inputs, targets = self.prepare(*da)
        watched = [_tf_variable(v) for v in self.arch_variables]
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(watched)
            loss = self.theta_loss(inputs, targets, watched, noise)
        grads = tape.gradient(loss, watched)
        self.arch_optimizer.apply(grads, self.arch_variables)
        _track(self.arch_loss_tracker, loss, inputs)
        return loss

    def train_step(self, data):
        strategy = self.distribute_strategy  # the strategy the model was built under
        dm, da = data

        def weight_step(i):
            strategy.run(self._weight_step, args=(dm, i, self.sample_arch()))
            return (i + 1,)

        tf.while_loop(lambda i: i < self.weight_steps, weight_step, (tf.constant(0),))
        if self.gradient_estimator.learns_theta:

            def arch_step():
                strategy.run(self._arch_step, args=(da, self._next_noise()))
                return tf.constant(True)

            searching = tf.equal(tf.convert_to_tensor(self.phase), 1)
            tf.cond(searching, arch_step, lambda: tf.constant(False))
        return {m.name: m.result() for m in self.metrics}

    def make_train_function(self, force: bool = False):
        """``train_step`` already distributes its steps (it runs in the cross-replica context), so
        unlike Keras's default the compiled function does not wrap it in ``strategy.run``."""
        if self.train_function is not None and not force:
            return self.train_function
        step = self.train_step
        if not self.run_eagerly:
            step = tf.function(
                step, jit_compile=self.jit_compile, reduce_retracing=True, autograph=False
            )

        def function(iterator):
            return step(next(iterator))

        self.train_function = function
        return function

    def test_step(self, data):
        inputs, targets = self.prepare(data[0], data[1])
        loss = self._loss(inputs, targets, self.argmax_arch(), training=False)
        _track(self.loss_tracker, loss, inputs)
        return {"loss": self.loss_tracker.result()}

    # ---- results ---------------------------------------------------------------------------------
    def genotype(self) -> Genotype:
        """Per block the op with the largest theta (fixed slots keep their op)."""
        ops = {"encoder": [], "decoder": []}
        for stage, _, block in self.slots:
            if hasattr(block, "candidates"):
                ops[stage].append(block.candidates[int(np.argmax(block.arch_logits.numpy()))])
            else:
                ops[stage].append(block.op_name)
        c = self.task_model.backbone.config
        return Genotype(ops["encoder"], ops["decoder"], c.hidden_size // c.heads)

    def theta_table(self) -> dict:
        """softmax(theta) per block: ``{"encoder": [[p, ...], ...], "decoder": ..., "ops": pools}``."""
        table = {"encoder": [], "decoder": []}
        for stage, _, block in self.slots:
            if hasattr(block, "candidates"):
                theta = block.arch_logits.numpy().astype(np.float64)
                p = np.exp(theta - theta.max())
                table[stage].append((p / p.sum()).tolist())
            else:
                table[stage].append([1.0])
        pools = self.task_model.backbone.config.pools
        table["ops"] = {"encoder": list(pools.encoder), "decoder": list(pools.decoder)}
        return table

    def get_config(self):
        raise NotImplementedError("a SearchModel is not serialised; save its checkpoint instead")


def _tf_variable(v):
    return v.value if isinstance(v, keras.Variable) else v


def _track(tracker, loss, inputs):
    """Mean loss per example over the global batch (sum-reduced losses, summed over replicas)."""
    n = tf.cast(tf.shape(inputs[names.TEXT_IDS])[0], loss.dtype)
    tracker.update_state(loss / n, sample_weight=n)
