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


def test_resnet20_counts_by_hand():
    spec = get_model("resnet20")
    stem = 3 * 3 * 3 * 16 + 32  # no conv bias before batch norm; gamma, beta
    stage1 = 3 * 2 * (9 * 16 * 16 + 32)
    stage2 = (9 * 16 * 32 + 64) + (9 * 32 * 32 + 64) + (16 * 32 + 64) + 2 * 2 * (9 * 32 * 32 + 64)  # 1x1 projection
    stage3 = (9 * 32 * 64 + 128) + (9 * 64 * 64 + 128) + (32 * 64 + 128) + 2 * 2 * (9 * 64 * 64 + 128)
    assert spec.param_count((32, 32, 3)) == stem + stage1 + stage2 + stage3 + 64 * 10 + 10 == 272_474  # "0.27 M"
    assert spec.shapes((32, 32, 3))[-3:] == [(8, 8, 64), (64,), (10,)]
    assert spec.shapes((28, 28, 1))[-3] == (7, 7, 64)  # 'same' stride 2: 28 -> 14 -> 7
    macs = 32 * 32 * 9 * 3 * 16 + 6 * 32 * 32 * 9 * 16 * 16 \
        + 16 * 16 * (9 * 16 * 32 + 16 * 32 + 5 * 9 * 32 * 32) + 8 * 8 * (9 * 32 * 64 + 32 * 64 + 5 * 9 * 64 * 64) + 640
    assert spec.flops_per_sample((32, 32, 3)) == 2 * macs


def test_transformer_counts_by_hand():
    spec = get_model("transformer")
    attention = 3 * (128 * 128 + 128) + 128 * 128 + 128  # query, key, value, output with biases
    block = 2 * 256 + attention + (128 * 512 + 512) + (512 * 128 + 128)  # two layer norms, the feed-forward
    assert spec.param_count(TEXT) == 10000 * 128 + 100 * 128 + 2 * block + 256 + 129
    per_block = 2 * 100 * 128 * 128 * 4 + 2 * 2 * 100 * 100 * 128 + 2 * 2 * 100 * 128 * 512
    assert spec.flops_per_sample(TEXT) == 2 * per_block + 2 * 128
    assert spec.layer_kinds() >= {"attention", "layernorm", "position_embedding", "residual", "global_avgpool"}
    assert spec.activations() == {"gelu"} and spec.outputs == 1


def test_missing_names_what_a_builder_lacks_nested_layers_included():
    spec = get_model("resnet20")
    assert spec.missing(spec.layer_kinds(), {"relu"}) == []
    assert spec.missing({"conv2d", "batchnorm", "activation", "dense", "residual"}, ()) == \
        ["layer kind 'global_avgpool'", "activation 'relu'"]
    lacking = [layer for layer in spec.walk() if layer.kind == "conv2d" and layer.kernel == 1]
    assert len(lacking) == 2  # the two projection shortcuts, found inside their blocks
