"""The zoo's analytic counts, checked by hand."""

import pytest

from dlbench.zoo import MODELS, get_model
from dlbench.errors import UnknownName

IMAGE, TEXT = (28, 28, 1), (100,)


def test_parameter_counts_by_hand():
    assert get_model("softmax").param_count(IMAGE) == 784 * 10 + 10
    # conv 3*3*1*32+32; pool 13x13x32 = 5408 -> dense 64; dense 10
    assert get_model("cnn").param_count(IMAGE) == 320 + 5408 * 64 + 64 + 650
    assert get_model("cnn_bn").param_count(IMAGE) == 288 + 64 + 5408 * 64 + 64 + 650  # no conv bias; gamma, beta
    # embedding; LSTM with one bias vector per gate (Keras); dense
    assert get_model("lstm").param_count(TEXT) == 10000 * 128 + 4 * (100 * (128 + 100) + 100) + 101
    assert get_model("cnn3").shapes(IMAGE)[4] == (3, 3, 64)  # 26, 13, 11, 5, 3


def test_flops_by_hand():
    assert get_model("softmax").flops_per_sample(IMAGE) == 2 * 784 * 10
    conv = 2 * 26 * 26 * 9 * 32
    assert get_model("cnn").flops_per_sample(IMAGE) == conv + 2 * 5408 * 64 + 2 * 64 * 10
    assert get_model("lstm").flops_per_sample(TEXT) == 2 * 100 * 4 * 100 * 228 + 2 * 100


def test_every_model_has_targets_and_a_known_loss():
    for spec in MODELS.values():
        assert spec.targets, spec.name
        assert spec.loss in ("binary_crossentropy", "sparse_categorical_crossentropy")
    assert get_model("lstm").expected_initial_loss(2) == pytest.approx(0.6931, abs=1e-4)


def test_unknown_model_lists_the_valid_names():
    with pytest.raises(UnknownName, match="choose from softmax, mlp"):
        get_model("resnet")
