# LiveInsight: `make run` serves the app with a demo site; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
SAM_VENV := .venv-sam
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 2

.PHONY: run test stress bench install install-dev install-aws chromium sam tracker vendor clean

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev
install-aws: $(VENV)/.installed-aws

$(VENV)/.installed: requirements.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt requirements-aws.txt
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

# boto3, for the commands run against DynamoDB (bin/liveinsight with LIVEINSIGHT_STORE=dynamodb://...).
$(VENV)/.installed-aws: $(VENV)/.installed requirements-aws.txt
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements-aws.txt
	touch $@

# The AWS SAM CLI pins an older boto3: it gets a virtualenv of its own.
$(SAM_VENV)/.installed: requirements-sam.txt
	test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install -q --disable-pip-version-check -r requirements-sam.txt
	touch $@

sam: $(SAM_VENV)/.installed

# Browser tests drive Debian's Chromium; install it when missing if we may.
chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "error: the browser tests need Chromium: run 'sudo apt-get install chromium' (Debian) and retry" >&2; \
	    exit 1; \
	  fi; \
	fi

# gunicorn reads the rest (what it serves, how) from gunicorn.conf.py, here.
run: $(VENV)/.installed
	$(VENV)/bin/flask --app app demo-setup --host $(HOST) --port $(PORT)
	$(VENV)/bin/gunicorn --workers $(WORKERS) --bind $(HOST):$(PORT)

test: $(VENV)/.installed-dev $(SAM_VENV)/.installed chromium
	$(VENV)/bin/pytest

# The DynamoDB part of the suite RUNS times over, Python switching threads every microsecond
# so that thread races show: a hang would fail a test at its time limit (pytest.ini).
RUNS ?= 30
stress: $(VENV)/.installed-dev $(SAM_VENV)/.installed
	for i in $$(seq $(RUNS)); do \
	  echo "stress run $$i of $(RUNS)"; \
	  $(VENV)/bin/pytest -q -p no:cacheprovider -k "dynamodb or lambda" --switch-interval 1e-6 || exit 1; \
	done

bench: $(VENV)/.installed-dev
	$(VENV)/bin/python -m bench.run

# Rebuild the minified tracker (needs npm); the built file is committed.
tracker:
	bash tracker/build.sh

# Refresh the vendored front-end libraries from npm at the versions pinned in vendor/package.json.
vendor:
	cd vendor && npm ci --silent --no-audit --no-fund
	cp vendor/node_modules/htmx.org/dist/htmx.min.js static/vendor/htmx-$$(node -p "require('./vendor/node_modules/htmx.org/package.json').version").min.js
	cp vendor/node_modules/chart.js/dist/chart.umd.min.js static/vendor/chart-$$(node -p "require('./vendor/node_modules/chart.js/package.json').version").umd.min.js
	sed -i "/sourceMappingURL/d" static/vendor/chart-*.umd.min.js

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam instance .pytest_cache
