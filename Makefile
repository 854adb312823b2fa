# env_actor developer entry points. Every process started from here that may
# start rclpy stays on loopback DDS with a per-run domain (README: no DDS traffic leaves
# the host).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.env_actor_stamp

export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export ROS_DOMAIN_ID ?= $(shell echo $$(( $$$$ % 90 + 10 )))
export PYTHONUNBUFFERED := 1

.PHONY: setup demo smoke test bench mutation lock clean

## setup: create .venv with the pinned environment (fast when nothing changed)
setup: $(STAMP)

$(STAMP): requirements.txt constraints.txt setup.py package.xml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt -c constraints.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

## demo: set up, then run the main job: the simulated robot driven by the shipped policy
demo: setup
	$(PY) -m env_actor.tools.demo --episodes 5 --out out

## smoke: build the example policy and print one action chunk
smoke: setup
	$(PY) -m env_actor.tools.smoke

## test: set up, then run the whole test suite
test: setup
	$(PY) -m pytest -q test

## bench: run the benchmarks (results land in bench/results/)
bench: setup
	$(PY) bench/inference.py

## mutation: mutation testing (mutmut) of the safety-critical runtime modules; not in `test`
mutation: setup
	$(PY) -m pip install -q mutmut==3.8.1
	rm -rf mutants
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(VENV)/bin/mutmut run --max-children 2 || true
	$(PY) bench/mutation_score.py

## lock: rewrite constraints.txt from the current .venv (torch pinned by public version)
lock:
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e' \
		| sed -E 's/^(torch==[^+]+)\+.*/\1/' > constraints.txt

clean:
	rm -rf $(VENV) build *.egg-info mutants
