"""The built-in pytorch plugin, with real torch on real data (Fashion-MNIST subsets, synthetic text)."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from dlbench.contract import FrameworkUnavailable, Session, Setup  # noqa: E402
from dlbench.data import DataError, load_task  # noqa: E402
from dlbench.plugins.registry import load_registry  # noqa: E402
from dlbench.testing.conformance import DEFAULT_MODELS  # noqa: E402
from dlbench.zoo import FIRST_KINDS, MODELS  # noqa: E402

from dlbench_pytorch import framework as framework_module  # noqa: E402
from dlbench_pytorch.framework import TorchFramework  # noqa: E402

BATCH = 128
# One thread unless a test is about threads: this 2-core machine is shared, and OpenMP's spinning
# threads slow down many-fold when the cores are oversubscribed. Results do not depend on it.
THREADS = 1


@pytest.fixture(scope="module")
def fashion():
    try:
        return load_task("fashion_mnist")
    except DataError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def fashion_small(fashion):
    """Real Fashion-MNIST, fewer samples: staging 54,000 images per test costs time, not coverage."""
    return dataclasses.replace(fashion, x_train=fashion.x_train[:6400], y_train=fashion.y_train[:6400],
                               x_val=fashion.x_val[:1000], y_val=fashion.y_val[:1000],
                               x_test=fashion.x_test[:1000], y_test=fashion.y_test[:1000])


@pytest.fixture(scope="module")
def text():
    return load_task("synthetic_text")


def prepare(spec_name, data, variant="eager", seed=0, batch_size=BATCH, threads=THREADS):
    setup = Setup(MODELS[spec_name], data, "cpu", variant, seed, threads=threads, batch_size=batch_size)
    return TorchFramework().prepare(setup)


def data_for(name, fashion_small, text):
    return fashion_small if MODELS[name].modality == "image" else text


def has_dropout(name):
    return any(layer.kind in ("dropout", "spatial_dropout1d") for layer in MODELS[name].layers)


# --- discovery, cheap questions --------------------------------------------------------------------------

def test_registered_through_the_entry_point():
    registry = load_registry()
    framework = registry.frameworks["pytorch"]
    assert isinstance(framework, TorchFramework)
    assert registry.owner["pytorch"].name == "pytorch" and not registry.owner["pytorch"].error
    assert framework.variants()[0] == "eager" and "compile" in framework.variants()
    assert "cpu" in framework.devices()
    assert all(framework.supports(spec) for spec in MODELS.values())


def test_listing_does_not_import_torch():
    code = ("import sys\nfrom dlbench.plugins.registry import load_registry\nfrom dlbench.zoo import MODELS\n"
            "fw = load_registry().frameworks['pytorch']\n"
            "fw.version(); fw.variants(); [fw.supports(s) for s in MODELS.values()]\n"
            "import glob\nif not glob.glob('/dev/nvidia[0-9]*'): fw.devices()\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_missing_torch_says_how_to_install(monkeypatch):
    def not_installed(name):
        raise framework_module.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(framework_module.metadata, "version", not_installed)
    with pytest.raises(FrameworkUnavailable, match=r"pip install 'dlbench\[torch\]'"):
        TorchFramework().version()


def test_unknown_variant_is_refused(text):
    with pytest.raises(ValueError, match="variant"):
        prepare("lstm", text, variant="jit")


# --- every zoo model: parity and learning ----------------------------------------------------------------

# The first zoo's models that the conformance kit (test_conformance_builtin.py) does not train: it trains its
# DEFAULT_MODELS, gives resnet20 and transformer (a second a step here) their parameter count, first loss and a short
# training; benchmarks/zoo_same_function.py checks their function. (A batch-norm ResNet's eval loss rises for its
# first tens of steps anyway.)
UNTRAINED_BY_THE_KIT = [name for name, spec in MODELS.items()
                        if spec.layer_kinds() <= FIRST_KINDS and name not in DEFAULT_MODELS]


@pytest.mark.parametrize("name", UNTRAINED_BY_THE_KIT)
def test_zoo_model_matches_spec_and_learns(name, fashion_small, text):
    spec, data = MODELS[name], data_for(name, fashion_small, text)
    session = prepare(name, data)
    assert isinstance(session, Session)
    assert session.param_count() == spec.param_count(data.input_shape)

    first_loss, _ = session.evaluate(data.x_train[:BATCH], data.y_train[:BATCH])
    expected = spec.expected_initial_loss(data.num_classes)
    assert abs(first_loss - expected) < 0.25 * expected, (first_loss, expected)

    x_fixed, y_fixed = data.x_train[:512], data.y_train[:512]
    staged = session.stage(x_fixed[:64])
    if has_dropout(name):
        # eval mode: deterministic; train mode: dropout makes two forward passes differ
        assert torch.equal(session.predict(staged), session.predict(staged))
        session.net.train()
        with torch.no_grad():
            assert not torch.equal(session.net(staged), session.net(staged))
    before, _ = session.evaluate(x_fixed, y_fixed)
    if spec.modality == "image":
        session.train(15)
        assert session.evaluate(x_fixed, y_fixed)[0] < 0.9 * before
    else:  # the recurrent models leave the ln 2 plateau later (0.69 -> 0.38 after 30 steps for lstm)
        session.train(25)
        assert session.evaluate(x_fixed, y_fixed)[0] < before - 0.01


# --- initialisation as the zoo prescribes ------------------------------------------------------------------

def test_lstm_init_and_frozen_second_bias(text):
    session = prepare("lstm", text)
    embedding, _, recurrent, dense = session.net
    torch.set_grad_enabled(False)  # restored below; only reading weights here
    lstm, units = recurrent.lstm, 100
    assert float(embedding.weight.abs().max()) <= 0.05
    assert not lstm.bias_hh_l0.requires_grad and float(lstm.bias_hh_l0.abs().max()) == 0.0
    expected_bias = torch.zeros(4 * units)
    expected_bias[units:2 * units] = 1.0
    assert torch.equal(lstm.bias_ih_l0.detach(), expected_bias)
    w_hh = lstm.weight_hh_l0.detach()  # (4u, u), the transpose of Keras' orthogonal (u, 4u)
    assert torch.allclose(w_hh.T @ w_hh, torch.eye(units), atol=1e-4)
    limit = math.sqrt(6.0 / (128 + 4 * units))  # glorot over Keras' whole (input, 4u) kernel
    assert float(lstm.weight_ih_l0.abs().max()) <= limit
    assert float(lstm.weight_ih_l0.abs().max()) > 0.9 * limit
    assert float(dense.bias.abs().max()) == 0.0
    torch.set_grad_enabled(True)
    session.train(3)
    assert float(lstm.bias_hh_l0.abs().max()) == 0.0  # still frozen after training


def test_batch_norm_and_conv_bias_follow_keras(fashion_small):
    session = prepare("cnn_bn", fashion_small)
    conv, bn = session.net[0], session.net[1]
    assert conv.bias is None
    assert bn.momentum == pytest.approx(0.01) and bn.eps == pytest.approx(1e-3)
    limit = math.sqrt(6.0 / (9 * 1 + 9 * 32))
    assert float(conv.weight.detach().abs().max()) <= limit


def test_spatial_dropout_drops_whole_channels():
    from dlbench_pytorch.modules import SpatialDropout1d

    layer = SpatialDropout1d(0.5).train()
    out = layer(torch.ones(8, 100, 16))
    per_channel = out.amax(dim=1), out.amin(dim=1)
    assert torch.equal(per_channel[0], per_channel[1])  # constant along the sequence
    assert set(out.unique().tolist()) == {0.0, 2.0}
    assert torch.equal(layer.eval()(out), out)


# --- the session contract -----------------------------------------------------------------------------

def test_hook_called_after_every_block_and_training_stays_in_train_mode(text):
    session = prepare("cnn_lstm", text)
    seen = []  # (training flag, grad enabled) of every forward pass
    session.net.register_forward_pre_hook(lambda module, args: seen.append(
        (module.training, torch.is_grad_enabled())))

    class Hook:
        steps = 3
        calls = 0

        def __call__(self):
            Hook.calls += 1
            session.evaluate(text.x_val[:64], text.y_val[:64])  # like time-to-accuracy does

    session.train(10, Hook())
    assert Hook.calls == 10 // 3
    steps = [training for training, grad in seen if grad]
    assert steps == [True] * 10


def test_batches_come_from_a_fresh_permutation_each_epoch(text):
    small = dataclasses.replace(text, x_train=text.x_train[:300], y_train=text.y_train[:300])
    session = prepare("cnn_lstm", small)
    batches = []
    session.net.register_forward_pre_hook(lambda module, args: batches.append(args[0].clone()))
    session.train(5)  # 2 full batches per epoch; the last 44 samples of each permutation are dropped
    assert [len(b) for b in batches] == [BATCH] * 5
    rows = [{tuple(r) for r in b.tolist()} for b in batches]
    assert not rows[0] & rows[1] and not rows[2] & rows[3]  # no sample twice within an epoch
    assert rows[0] | rows[1] != rows[2] | rows[3]  # reshuffled


def test_same_seed_same_run_other_seed_other_run(fashion_small):
    runs = []
    for seed in (0, 0, 1):
        session = prepare("mlp", fashion_small, seed=seed)
        session.train(5)
        runs.append(session.evaluate(fashion_small.x_val, fashion_small.y_val)[0])
    assert runs[0] == runs[1] and runs[0] != runs[2]


def test_stage_predict_and_describe(fashion_small):
    session = prepare("cnn", fashion_small, threads=2)
    staged = session.stage(fashion_small.x_test[:7])
    assert staged.shape == (7, 1, 28, 28) and staged.is_contiguous() and staged.dtype == torch.float32
    assert torch.equal(staged[:, 0], torch.from_numpy(fashion_small.x_test[:7, :, :, 0]))
    out = session.predict(staged)
    session.sync()
    assert out.shape == (7, 10)
    assert session.predict(session.stage(fashion_small.x_test[:1])).shape == (1, 10)
    info = session.describe()
    for key in ("threads", "interop_threads", "precision", "compile", "sync", "layout", "framework_versions",
                "device_name"):
        assert info[key], key
    assert "set_num_threads(2)" in info["threads"] and torch.get_num_threads() == 2
    assert info["precision"] == "float32" and info["compile"] == "none"
    assert info["framework_versions"]["torch"] == torch.__version__
    assert info["sync"].startswith("none")


def test_evaluate_matches_a_direct_computation(text):
    session = prepare("lstm", text)
    x, y = text.x_test[:1500], text.y_test[:1500]  # more than one evaluation batch of 1024
    loss, accuracy = session.evaluate(x, y)
    logits = session.predict(session.stage(x)).squeeze(1).double()
    target = torch.from_numpy(y).double()
    assert loss == pytest.approx(float(torch.nn.functional.binary_cross_entropy_with_logits(logits, target)),
                                 rel=1e-4)
    assert accuracy == pytest.approx(float(((logits > 0).double() == target).double().mean()))


@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")  # torch's own
def test_compile_variant_trains_mlp(fashion_small):
    session = prepare("mlp", fashion_small, variant="compile")
    x_fixed, y_fixed = fashion_small.x_train[:512], fashion_small.y_train[:512]
    before, _ = session.evaluate(x_fixed, y_fixed)
    session.train(1)  # compiles forward and backward
    session.train(29)
    after, _ = session.evaluate(x_fixed, y_fixed)
    assert after < 0.9 * before
    staged = session.stage(fashion_small.x_test[:256])
    assert torch.allclose(session.predict(staged), session.net.eval()(staged), atol=1e-5)
    assert session.describe()["compile"] == "torch.compile(mode=default)"


@pytest.mark.slow
def test_cnn_third_of_an_epoch_reaches_fashion_mnist_accuracy(fashion):
    """A third of an epoch (the quick profile's budget) on real data: 82.1% measured, 80% required (a whole epoch
    reached 85% at three times the cost; the kit proves learning on every model, this proves it on a real task)."""
    session = prepare("cnn", fashion)
    session.train(len(fashion.x_train) // BATCH // 3)
    _, accuracy = session.evaluate(fashion.x_test, fashion.y_test)
    assert accuracy >= 0.80
