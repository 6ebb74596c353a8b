"""SampledPathAdam follows torch.optim.Adam, whose step count is per parameter: a candidate that
was not sampled for k weight steps resumes its bias correction where it stopped."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmnas_tf.nas.search_model import SampledPathAdam

# Step s (1-based) gradients; None = the candidate was not sampled (skipped at steps 2, 3, 4).
ALWAYS = [[1.0, -2.0], [0.5, 0.25], [-1.0, 3.0], [2.0, -0.5], [0.1, 0.2], [-0.3, 1.5]]
CANDIDATE = [[1.0, -1.0], None, None, None, [0.5, 2.0], [-1.5, 0.5]]
START = ([1.0, 2.0], [3.0, 4.0])
# (always, candidate) after each step, computed once with torch 2.13 (float32):
#   a, c = Parameter(tensor(START[0])), Parameter(tensor(START[1]))
#   opt = torch.optim.Adam([a, c], lr=0.1, betas=betas, eps=eps)
#   per step: a.grad = tensor(ALWAYS[s]); c.grad = None or tensor(CANDIDATE[s]); opt.step()
TORCH = {
    (0.9, 0.98, 1e-9): [
        ([0.8999999761581421, 2.0999999046325684], [2.9000000953674316, 4.099999904632568]),
        ([0.8065122365951538, 2.1575217247009277], [2.9000000953674316, 4.099999904632568]),
        ([0.7954341769218445, 2.129249095916748], [2.9000000953674316, 4.099999904632568]),
        ([0.7438732981681824, 2.114180564880371], [2.9000000953674316, 4.099999904632568]),
        ([0.6979394555091858, 2.098395824432373], [2.8065123558044434, 4.063494682312012]),
        ([0.6646907925605774, 2.065850019454956], [2.8146817684173584, 4.0218706130981445]),
    ],
    (0.9, 0.999, 1e-2): [
        ([0.9009901285171509, 2.0995025634765625], [2.9009900093078613, 4.099009990692139]),
        ([0.8089367151260376, 2.1563570499420166], [2.9009900093078613, 4.099009990692139]),
        ([0.7979848980903625, 2.128115177154541], [2.9009900093078613, 4.099009990692139]),
        ([0.7464486956596375, 2.1131420135498047], [2.9009900093078613, 4.099009990692139]),
        ([0.7008014917373657, 2.0975420475006104], [2.808936595916748, 4.062629699707031]),
        ([0.6679347157478333, 2.065372943878174], [2.81705904006958, 4.021376609802246]),
    ],
}
LR = 0.1


def pytorch_adam(grads, start, beta_1, beta_2, eps, global_step=False):
    """Adam as torch.optim.Adam computes it (float64), one parameter; ``grads[s] is None`` skips
    the step. ``global_step=True`` counts skipped steps too (what a global step would do)."""
    p, m, v, t = np.array(start, np.float64), 0.0, 0.0, 0
    out = []
    for s, g in enumerate(grads, 1):
        if g is not None:
            t = s if global_step else t + 1
            g = np.asarray(g, np.float64)
            m = beta_1 * m + (1 - beta_1) * g
            v = beta_2 * v + (1 - beta_2) * g * g
            denom = np.sqrt(v) / np.sqrt(1 - beta_2**t) + eps
            p = p - LR / (1 - beta_1**t) * m / denom
        out.append(p.copy())
    return out


def run_keras(beta_1, beta_2, eps, fused=None):
    always, candidate = tf.Variable(START[0]), tf.Variable(START[1])
    opt = SampledPathAdam(LR, beta_1, beta_2, eps, fused=fused)
    opt.build([always, candidate])
    step = tf.function(lambda gs: opt.apply(gs, [always, candidate]))
    out = []
    for ga, gc in zip(ALWAYS, CANDIDATE):
        step([tf.constant(ga), tf.zeros(2) if gc is None else tf.constant(gc)])
        out.append((always.numpy().copy(), candidate.numpy().copy()))
    return out, opt


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "elementwise"])
@pytest.mark.parametrize("betas_eps", sorted(TORCH), ids=str)
def test_skipped_candidate_matches_pytorch_adam(betas_eps, fused):
    beta_1, beta_2, eps = betas_eps
    ours, opt = run_keras(beta_1, beta_2, eps, fused)
    assert opt.fused is fused
    by_hand = {
        "always": pytorch_adam(ALWAYS, START[0], beta_1, beta_2, eps),
        "candidate": pytorch_adam(CANDIDATE, START[1], beta_1, beta_2, eps),
    }
    for s, ((a, c), (ta, tc)) in enumerate(zip(ours, TORCH[betas_eps]), 1):
        np.testing.assert_allclose(a, ta, rtol=0, atol=1e-6, err_msg=f"always, step {s}")
        np.testing.assert_allclose(c, tc, rtol=0, atol=1e-6, err_msg=f"candidate, step {s}")
        np.testing.assert_allclose(a, by_hand["always"][s - 1], rtol=0, atol=1e-6)
        np.testing.assert_allclose(c, by_hand["candidate"][s - 1], rtol=0, atol=1e-6)
    # The per-variable steps: 6 for the always-sampled variable, 3 for the candidate.
    assert [float(s.numpy()) for s in opt._steps] == [6.0, 3.0]
    # A global step's bias correction would give the candidate another update after its skip.
    global_step = pytorch_adam(CANDIDATE, START[1], beta_1, beta_2, eps, global_step=True)
    assert np.abs(global_step[4] - np.asarray(TORCH[betas_eps][4][1])).max() > 1e-3


def test_skipped_candidate_keeps_its_value():
    ours, opt = run_keras(0.9, 0.98, 1e-9)
    for s in (1, 2, 3):
        np.testing.assert_array_equal(ours[s][1], ours[0][1])
    assert not np.array_equal(ours[4][1], ours[0][1])


def test_amsgrad_is_refused():
    with pytest.raises(ValueError, match="without amsgrad"):
        SampledPathAdam(0.1, amsgrad=True)


def test_saves_and_restores_its_steps():
    """The steps are optimizer variables: a .keras file (save_own_variables) carries them."""
    _, opt = run_keras(0.9, 0.98, 1e-9)
    store = {}
    opt.save_own_variables(store)
    restored = SampledPathAdam.from_config(opt.get_config())
    restored.build([tf.Variable(START[0]), tf.Variable(START[1])])
    restored.load_own_variables(store)
    assert [float(s.numpy()) for s in restored._steps] == [6.0, 3.0]
    assert isinstance(
        keras.optimizers.deserialize(keras.optimizers.serialize(opt)), SampledPathAdam
    )
