"""Visual question answering: the task (``task``), its accuracy (``metrics``), the VQA-v2
converter (``converter``) and the synthetic questions (``synthetic``)."""

from mmnas_tf.tasks.vqa.task import TOP_K, VQATask

__all__ = ["TOP_K", "VQATask"]
