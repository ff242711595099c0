"""The ``tuned`` variant: what PyTorch's own performance guides recommend, each setting with its source.

The default variant (``eager``) is how the tutorials run a model. ``tuned`` changes only what the guides
say pays on this kind of model, measured on this machine (docs/fairness.md):

- image models with convolutions: channels-last memory format for the model and every staged batch
  (the eager NCHW convolution with one input channel goes through oneDNN reorders; channels-last skips
  them): about 1.4x on cnn Offline inference at batch 1024, 2 threads;
- the same models: ``torch.compile`` of the inference forward only (inductor fuses ReLU and max-pool into
  one vectorised loop and drops max-pool's index output): about 3.5x on cnn Offline, 6 s to compile on
  2 cores, paid once in the first ``predict`` call (reported as ``infer_first_call_s``). Training stays
  eager: compiling the backward costs tens of seconds on two cores, more than a quick case trains.
"""

from __future__ import annotations

from typing import Any

GUIDES = {
    "channels_last": "PyTorch Tutorials, '(beta) Channels Last Memory Format in PyTorch'; PyTorch Performance "
                     "Tuning Guide, 'CPU specific optimizations: Utilize channels_last memory format'",
    "compiled_inference": "PyTorch Tutorials, 'Introduction to torch.compile' (inductor on CPU); PyTorch Performance "
                          "Tuning Guide, 'Enable torch.compile'",
}


def has_convolutions(spec: Any) -> bool:
    return any(layer.kind == "conv2d" for layer in spec.layers)


def settings(spec: Any) -> dict[str, str]:
    """Setting -> what was done and the guide it follows (empty when the guides have nothing for this model)."""
    if not has_convolutions(spec):
        return {}
    return {"channels_last": "model and staged batches in torch.channels_last; " + GUIDES["channels_last"],
            "compiled_inference": "predict runs torch.compile(model) (mode=default); " + GUIDES["compiled_inference"]}


def prepare_model(torch: Any, net: Any, spec: Any) -> Any:
    """The model in the memory format the guide recommends for it."""
    return net.to(memory_format=torch.channels_last) if has_convolutions(spec) else net


def stage_images(torch: Any, nchw: Any, spec: Any) -> Any:
    """A staged NCHW image batch, stored channels-last when the model is (same shape, other strides)."""
    return nchw.contiguous(memory_format=torch.channels_last) if has_convolutions(spec) else nchw.contiguous()


def inference_forward(torch: Any, net: Any, spec: Any) -> Any:
    """What ``predict`` calls: a compiled forward for convolutional models, else the module itself."""
    return torch.compile(net) if has_convolutions(spec) else net
