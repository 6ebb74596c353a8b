"""The synthetic benchmark (a tool around the library; the library never imports it): scenes of
coloured shapes, questions / captions / referring expressions about them, written in the records of
a task (``python -m mmnas_tf.synthetic``).

Modules: ``scenes`` (scenes and their region features), ``questions`` (question families),
``benchmark`` (``generate``: the dataset folder of a task).
"""
