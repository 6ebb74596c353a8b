"""The bf16 hardware path and the dtype policy a run takes (mmnas_tf.precision)."""

import keras
import pytest

from mmnas_tf import precision

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
flags\t\t: fpu sse2 avx2 avx512f {extra}
bugs\t\t: spectre_v1
"""


@pytest.mark.parametrize(
    ("extra", "path", "policy"),
    [
        ("avx512_bf16 amx_bf16 amx_tile", precision.AMX, "mixed_bfloat16"),
        # bf16 without AMX: measured slower than float32, so auto stays float32.
        ("avx512_bf16", precision.AVX512_BF16, "float32"),
        ("avx512_vnni", precision.NO_BF16, "float32"),
    ],
)
def test_cpu_flags_decide_the_path_and_the_default_policy(extra, path, policy):
    flags = precision.cpu_flags(CPUINFO.format(extra=extra))
    assert "avx2" in flags and "spectre_v1" not in flags  # the flags line only
    found = precision.hardware_path(flags, gpus=[])
    assert found.name == path
    assert found.default_policy == policy
    assert precision.resolve_policy("auto", found) == policy
    # An explicit policy is kept whatever the hardware.
    assert precision.resolve_policy("float32", found) == "float32"
    assert precision.resolve_policy("mixed_bfloat16", found) == "mixed_bfloat16"


def test_no_cpuinfo_means_no_flags():
    assert precision.cpu_flags("") == frozenset()
    assert precision.hardware_path(frozenset(), gpus=[]).name == precision.NO_BF16


def test_a_gpu_decides_by_its_compute_capability():
    ampere = [("/physical_device:GPU:0", (8, 0))]
    volta = [("/physical_device:GPU:0", (7, 0))]
    assert precision.hardware_path(frozenset(), ampere).name == precision.GPU
    assert precision.hardware_path({"amx_bf16"}, ampere).name == precision.GPU
    old = precision.hardware_path(frozenset(), volta)
    assert old.name == precision.NO_BF16 and "GPU:0" in old.detail
    assert old.default_policy == "float32"
    # A pre-Ampere GPU next to an AMX CPU: the CPU path is reported.
    assert precision.hardware_path({"amx_bf16"}, volta).name == precision.AMX


def test_describe_names_the_policy_and_the_path():
    amx = precision.HardwarePath(precision.AMX, "CPU flags amx_bf16, amx_tile")
    assert precision.describe("mixed_bfloat16", amx) == (
        "precision: mixed_bfloat16 (bf16 via AMX; CPU flags amx_bf16, amx_tile)"
    )
    none = precision.HardwarePath(precision.NO_BF16, "no amx_bf16 / avx512_bf16")
    assert "emulated" in precision.describe("mixed_bfloat16", none)
    assert "emulated" not in precision.describe("float32", none)


def test_a_bad_policy_names_the_accepted_values():
    with pytest.raises(ValueError, match="auto, float32, mixed_bfloat16; got 'bf16'"):
        precision.resolve_policy("bf16")


def test_policy_scope_builds_in_the_policy_and_restores_the_global_one():
    before = keras.config.dtype_policy().name
    with precision.policy_scope("mixed_bfloat16"):
        layer = keras.layers.Dense(2)
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == before
    assert layer.compute_dtype == "bfloat16" and layer.variable_dtype == "float32"
    with precision.policy_scope(None):
        assert keras.config.dtype_policy().name == before


@pytest.mark.parametrize(
    ("name", "default"),
    [
        ("train", "auto"),
        ("search", "auto"),
        ("evaluate", "auto"),
        ("export", "float32"),
        ("import_official", "float32"),
        ("predict", "float32"),
    ],
)
def test_entry_points_take_dtype_policy_with_their_default(name, default):
    import importlib

    from absl import flags

    fv = flags.FlagValues()
    importlib.import_module(f"mmnas_tf.{name}").define_flags(fv)
    assert fv["dtype_policy"].default == default
    with pytest.raises(flags.IllegalFlagValueError, match="auto.float32.mixed_bfloat16"):
        fv["dtype_policy"].parse("bf16")


def test_auto_keeps_narrow_models_in_float32():
    amx = precision.HardwarePath(precision.AMX)
    assert precision.resolve_policy("auto", amx, hidden_size=64) == "float32"
    assert precision.resolve_policy("auto", amx, hidden_size=512) == "mixed_bfloat16"
    assert precision.resolve_policy("mixed_bfloat16", amx, hidden_size=64) == "mixed_bfloat16"
    assert precision.hidden_size_of({"hidden_size": 48}) == 48


def test_apply_sets_the_global_policy_and_says_so():
    before = keras.config.dtype_policy().name
    try:
        line = precision.apply("float32", hidden_size=512)
        assert line.startswith("precision: float32 (")
        assert keras.config.dtype_policy().name == "float32"
    finally:
        keras.config.set_dtype_policy(before)
