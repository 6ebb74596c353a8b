"""The generic training machinery shared by train, evaluate and search (nothing NAS- or
driver-specific: the search lives in ``nas``, run directories in ``runs``, flags in ``cli``).

Modules (import the one you need; this package imports nothing heavy itself):
  schedules      EpochSchedule (warm-up x1/4, x1/2, x3/4, decay x0.2), StepwiseEpochSchedule
  checkpoint     Checkpointer, TrainingState, restore_model, model_variables
  loop           EpochLoop: the epoch loop shared by training and search (resume, hooks, saves)
  optimizers     make_adam, global_sum_gradients
  trainer        Trainer
  callbacks      ProgressBar, TensorBoardScalars, ProfilerWindow, parse_profile_steps
  distribute     make_strategy, distribute_dataset, worker_info
"""
