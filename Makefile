# Two commands for a fresh Debian/Ubuntu machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
APT    := $(shell command -v apt-get 2>/dev/null)
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test venv data browser clean

# make run benchmarks the built-in plugins (about 9 minutes on 2 cores); `make run SKIP_PLUGINS=` adds JAX.
SKIP_PLUGINS ?= jax
# make run GPU=1 installs CUDA builds (the `gpu` extra: torch with CUDA, tensorflow[and-cuda], NVML; jax[cuda12])
# into the venv instead of the CPU ones; every device then runs (docs/gpu.md). An NVIDIA driver must be installed.
GPU ?=
comma := ,
EXTRAS := $(if $(GPU),gpu$(comma)test,all$(comma)test)
STAMP  := $(BIN)/.installed$(if $(GPU),-gpu,)

run: venv data  ## set up, then benchmark every installed framework x model x task (quick profile)
	DLBENCH_DISABLE_PLUGINS=$(SKIP_PLUGINS) $(BIN)/dlbench run --all --report

test: venv data browser  ## set up, then run the test suite (real frameworks, tiny budgets)
	$(BIN)/python -m pytest -q

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(if $(GPU),$(BIN)/pip uninstall -q -y tensorflow-cpu || true)
	$(BIN)/pip install -q -c constraints.txt -e '.[$(EXTRAS)]' -e plugins/jax $(if $(GPU),'jax[cuda12]')
	touch $@

data:  ## Debian's Fashion-MNIST (IDX files under /usr/share/datasets/fashion-mnist), where apt exists
ifneq ($(APT),)
	@[ -d /usr/share/datasets/fashion-mnist ] || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq dataset-fashion-mnist; }
else
	@echo "no apt-get: put the Fashion-MNIST IDX files in \$$DLBENCH_DATA/fashion-mnist (see dlbench list tasks)"
endif

browser:  ## headless Chromium for the HTML report test (skipped without it)
ifneq ($(APT),)
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; } || echo "chromium not installed: the browser test will be skipped"
endif

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
