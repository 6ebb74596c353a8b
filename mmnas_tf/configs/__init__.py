"""The named experiments: each module here is one recipe, ``get_config() -> ExperimentConfig``,
with the commands that use it in its docstring (``--config=<module name>``). ``genotypes/`` holds
the published architectures they retrain. ``mmnas_tf.experiments.get_experiment(name)`` reads a
module of this folder by name, as ``--config=path/to/file.py`` reads a file of your own.
``common`` holds what the recipes share (it is not an experiment).
"""
