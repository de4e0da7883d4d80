# Set-up and the two entry points of the README.
#   make demo   installs into .venv, makes the demo data, trains, evaluates, predicts
#   make test   installs into .venv (with pytest) and runs the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_CONFIG ?= configs/quick_start/ccnet_resnet18_demo.yml
DEMO_OUT ?= output/demo
# Test processes (pytest-xdist). One OpenMP thread each, so two workers share
# the two cores of CI instead of fighting over them; --dist loadfile keeps a
# module (a TIPC chain, an op build) on one worker. --max-worker-restart 0:
# a worker that crashes ends the run naming its test (pytest-xdist hangs
# after replacing a crashed worker under loadfile, pytest-xdist#784).
TEST_WORKERS ?= 2
ONEDNN_HEADERS ?= onednn-devel==2025.0.0

.PHONY: install demo test clean

$(BIN)/.installed: requirements.txt requirements-dev.txt setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt -e .
	# oneDNN's headers for the training convolution (paddleseg/ops/onednn_conv.py);
	# --no-deps: its runtime package would pull in a SYCL stack we do not use.
	$(BIN)/python -m pip install --quiet --no-deps $(ONEDNN_HEADERS)
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/python tools/run_demo.py --config $(DEMO_CONFIG) --save_dir $(DEMO_OUT)

test: install
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n $(TEST_WORKERS) \
		--dist loadfile --max-worker-restart 0 --durations=25 tests

clean:
	rm -rf $(VENV) output
