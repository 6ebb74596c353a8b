"""The generic training machinery shared by train, evaluate and search.

Modules (import the one you need; this package imports nothing heavy itself):
  schedules      EpochSchedule (warm-up x1/4, x1/2, x3/4, decay x0.2), TemperatureSchedule
  checkpoint     Checkpointer, TrainingState, restore_model, model_variables
  loop           EpochLoop: the epoch loop shared by training and search (resume, hooks, saves)
  trainer        Trainer, make_adam, global_sum_gradients
  callbacks      ProgressBar, TensorBoardScalars, ProfilerWindow, parse_profile_steps
  distribute     make_strategy, distribute_dataset, worker_info
  inherit        inherit_from_supernet (searched weights -> fixed network)
  runs           run.json (resolved model of a run), data sizes, embeddings
  cli            per-driver absl FlagValues, experiment flags
"""
