"""Pictures of what the model and the search do: attention maps, theta curves, genotype diagrams.

The drawing needs matplotlib and Pillow, which come with the ``viz`` extra
(``pip install "mmnas-tf[viz]"``); they are imported only when a picture is drawn, so the core
install stays lean. :func:`explain_outputs` (the numbers behind an attention picture) needs neither.
"""

from mmnas_tf.viz.deps import require
from mmnas_tf.viz.explain import EXPLAIN_SIGNATURE, Explanation, explain_example, explain_outputs

__all__ = [
    "EXPLAIN_SIGNATURE",
    "Explanation",
    "draw_explanation",
    "draw_genotype",
    "explain_example",
    "explain_outputs",
    "plot_selection",
    "plot_theta_history",
    "require",
]


def plot_theta_history(history, path=None, xlabel="epoch"):
    """See :func:`mmnas_tf.viz.search_plots.plot_theta_history`."""
    from mmnas_tf.viz.search_plots import plot_theta_history as plot

    return plot(history, path, xlabel)


def plot_selection(selection, path=None, score_name="the selection's score"):
    """See :func:`mmnas_tf.viz.search_plots.plot_selection`."""
    from mmnas_tf.viz.search_plots import plot_selection as plot

    return plot(selection, path, score_name)


def draw_genotype(genotype, path=None, title=None):
    """See :func:`mmnas_tf.viz.search_plots.draw_genotype`."""
    from mmnas_tf.viz.search_plots import draw_genotype as draw

    return draw(genotype, path, title)


def draw_explanation(explanation, path=None, image=None):
    """See :func:`mmnas_tf.viz.attention.draw_explanation`."""
    from mmnas_tf.viz.attention import draw_explanation as draw

    return draw(explanation, path, image)
