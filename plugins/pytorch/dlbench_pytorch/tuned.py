"""The ``tuned`` variant: what PyTorch's own performance guides recommend for the device, each with its source.

The default variant (``eager``) is how the tutorials run a model. ``tuned`` changes only what the guides
say pays on this kind of model and device.

On the CPU (measured on this machine, docs/fairness.md):

- image models with convolutions: channels-last memory format for the model and every staged batch
  (the eager NCHW convolution with one input channel goes through oneDNN reorders; channels-last skips
  them): about 1.4x on cnn Offline inference at batch 1024, 2 threads;
- the same models: ``torch.compile`` of the inference forward only (inductor fuses ReLU and max-pool into
  one vectorised loop and drops max-pool's index output): about 3.5x on cnn Offline, 6 s to compile on
  2 cores, paid once in the first ``predict`` call (reported as ``infer_first_call_s``). Training stays
  eager: compiling the backward costs tens of seconds on two cores, more than a quick case trains.

On a GPU (docs/gpu.md: at batch 128 an eager step is launch-bound, tens of kernels of microseconds each):

- CUDA graphs through ``torch.compile(mode="reduce-overhead")`` for training (forward and backward) and
  inference: one graph replay instead of a launch per kernel; ``torch.compiler.cudagraph_mark_step_begin()``
  before each step, as the torch.compile CUDA-graph docs ask when outputs are not kept across steps;
- the fused Adam (``fused=True``): one kernel for every parameter's update instead of a few per tensor;
- cuDNN's auto-tuner (``torch.backends.cudnn.benchmark``) for the fixed-shape convolutions;
- channels-last for convolutional models, as on the CPU.

TF32 stays off: the tuned variant computes in the same float32 as the others.
"""

from __future__ import annotations

from typing import Any

GUIDES = {
    "channels_last": "PyTorch Tutorials, '(beta) Channels Last Memory Format in PyTorch'; PyTorch Performance "
                     "Tuning Guide, 'CPU specific optimizations: Utilize channels_last memory format'",
    "compiled_inference": "PyTorch Tutorials, 'Introduction to torch.compile' (inductor on CPU); PyTorch Performance "
                          "Tuning Guide, 'Enable torch.compile'",
    "cuda_graphs": "PyTorch docs, 'torch.compile' (mode='reduce-overhead' uses CUDA graphs to reduce Python and "
                   "launch overhead) and 'CUDAGraph Trees'; PyTorch Performance Tuning Guide, 'Use CUDA Graphs'",
    "fused_adam": "PyTorch docs, torch.optim.Adam (fused=True; 'Algorithms: foreach and fused implementations', "
                  "fused is fastest on CUDA)",
    "cudnn_benchmark": "PyTorch Performance Tuning Guide, 'GPU specific optimizations: Enable cuDNN auto-tuner'",
    "channels_last_gpu": "PyTorch Tutorials, '(beta) Channels Last Memory Format in PyTorch' (convolutions on "
                         "NVIDIA GPUs run channels-last kernels)",
}


def has_convolutions(spec: Any) -> bool:
    return any(layer.kind == "conv2d" for layer in spec.layers)


def settings(spec: Any, device: str = "cpu") -> dict[str, str]:
    """Setting -> what was done and the guide it follows (empty when the guides have nothing for this model)."""
    if device == "gpu":
        chosen = {"cuda_graphs": "torch.compile(model, mode='reduce-overhead') for training and predict, "
                                 "cudagraph_mark_step_begin() before each step; " + GUIDES["cuda_graphs"],
                  "fused_adam": "torch.optim.Adam(..., fused=True); " + GUIDES["fused_adam"],
                  "cudnn_benchmark": "torch.backends.cudnn.benchmark = True; " + GUIDES["cudnn_benchmark"]}
        if has_convolutions(spec):
            chosen["channels_last"] = "model and staged batches in torch.channels_last; " + GUIDES["channels_last_gpu"]
        return chosen
    if not has_convolutions(spec):
        return {}
    return {"channels_last": "model and staged batches in torch.channels_last; " + GUIDES["channels_last"],
            "compiled_inference": "predict runs torch.compile(model) (mode=default); " + GUIDES["compiled_inference"]}


def describe(spec: Any, device: str) -> dict[str, Any]:
    """The fairness profile's entries the tuned variant changes: ``tuning``, and layout/compile where they differ."""
    tuning = settings(spec, device)
    changes: dict[str, Any] = {"tuning": tuning or {"none": "the guides have nothing for this model"}}
    if "channels_last" in tuning:
        changes["layout"] = "NCHW shape in torch.channels_last memory format (NHWC strides); flatten in C,H,W order"
    if "cuda_graphs" in tuning:
        changes["compile"] = "torch.compile(mode=reduce-overhead): CUDA graphs of training and predict"
        changes["cudnn_benchmark"] = True
    elif "compiled_inference" in tuning:
        changes["compile"] = "torch.compile(mode=default) of the inference forward (predict); training eager"
    return changes


def prepare_model(torch: Any, net: Any, spec: Any, device: str = "cpu") -> Any:
    """The model in the memory format the guide recommends for it; cuDNN's auto-tuner on for a GPU."""
    if device == "gpu":
        torch.backends.cudnn.benchmark = True
    return net.to(memory_format=torch.channels_last) if has_convolutions(spec) else net


def adam_options(device: str) -> dict[str, Any]:
    """Keyword arguments of torch.optim.Adam: the fused implementation on a GPU."""
    return {"fused": True} if device == "gpu" else {}


def training_forward(torch: Any, net: Any, device: str) -> Any:
    """What train() calls: CUDA graphs on a GPU; the eager module on the CPU (compiling backward costs minutes)."""
    return torch.compile(net, mode="reduce-overhead") if device == "gpu" else net


def inference_forward(torch: Any, net: Any, spec: Any, device: str = "cpu", training: Any = None) -> Any:
    """What ``predict`` calls: on a GPU the training wrapper (one compiled module, a graph per mode); on the CPU
    a compiled forward for convolutional models, else the module itself."""
    if device == "gpu":
        return training if training is not None else torch.compile(net, mode="reduce-overhead")
    return torch.compile(net) if has_convolutions(spec) else net


def step_marker(torch: Any, device: str) -> Any:
    """``cudagraph_mark_step_begin`` on a GPU (a new step's outputs may overwrite the last one's), else None."""
    return torch.compiler.cudagraph_mark_step_begin if device == "gpu" else None


def stage_images(torch: Any, nchw: Any, spec: Any) -> Any:
    """A staged NCHW image batch, stored channels-last when the model is (same shape, other strides)."""
    return nchw.contiguous(memory_format=torch.channels_last) if has_convolutions(spec) else nchw.contiguous()
