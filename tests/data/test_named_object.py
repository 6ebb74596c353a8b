"""The object an attribute question names (what the attention-localisation measure needs)."""

import numpy as np

from mmnas_tf.synthbench import questions, scenes


def test_attribute_questions_carry_the_named_object():
    rng = np.random.default_rng(11)
    sc = scenes.sample_scenes(300, scenes.SCENE_SETTINGS["tiny"], rng)
    tx = questions.vqa_texts(sc, 5.0, rng)
    attribute = np.isin(tx.family, questions.ATTRIBUTE_FAMILIES)
    assert attribute.sum() > 100 and (~attribute).sum() > 100
    assert (tx.named[~attribute] == -1).all()
    for s, k, f, a, text in zip(tx.scene, tx.named, tx.family, tx.answer, tx.text):
        if k < 0:
            continue
        assert sc.valid[s, k]
        colour, shape = scenes.COLOURS[sc.colour[s, k]], scenes.SHAPES[sc.shape[s, k]]
        name, answer = questions.FAMILIES[f][0], questions.ANSWERS[a]
        if name == "colour_of_shape":  # "what colour is the square?": the only square
            assert text == f"what colour is the {shape}?" and answer == colour
        elif name == "shape_of_colour":
            assert text == f"what shape is the {colour} object?" and answer == shape
        else:
            assert name == "size_of_object" and text == f"what size is the {colour} {shape}?"
            assert answer == scenes.SIZES[sc.size[s, k]]
