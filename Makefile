# The two commands of the quick start: `make run` and `make test`.
PYTHON_SYSTEM ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_EMAIL ?= admin@example.com
DEMO_PASSWORD ?= demo-password
MOCK_PORT ?= 9101
PORT ?= 8000
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: run test install migrate demo bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON_SYSTEM) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

migrate: $(STAMP)
	$(PY) manage.py migrate --noinput

demo: migrate
	@mkdir -p var
	@sed 's#127.0.0.1:9101#127.0.0.1:$(MOCK_PORT)#g' routing/catalogs/demo.json > var/demo-catalog.json
	$(PY) manage.py load_catalog var/demo-catalog.json
	@$(PY) manage.py bootstrap --org "Demo Org" --email $(DEMO_EMAIL) --password $(DEMO_PASSWORD) \
		--credits 100 --inference-key > var/bootstrap.txt
	@echo
	@echo "  Dashboard:       http://127.0.0.1:$(PORT)/   (log in as $(DEMO_EMAIL) / $(DEMO_PASSWORD))"
	@echo "  Admin:           http://127.0.0.1:$(PORT)/admin/"
	@echo "  API base URL:    http://127.0.0.1:$(PORT)/api/v1"
	@echo "  Demo model:      demo/chat (served offline by the mock provider on port $(MOCK_PORT))"
	@grep '^Inference key' var/bootstrap.txt | sed 's/^Inference key (Default workspace): /  Inference key:   /'
	@echo "  Management key:  $$(tail -n 1 var/bootstrap.txt)"
	@echo

run: demo
	@$(PY) -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', $(MOCK_PORT)))" 2>/dev/null || \
	  { echo "Port $(MOCK_PORT) is in use: stop what holds it, or run make run MOCK_PORT=<free port>"; exit 1; }
	@$(PY) manage.py mockprovider --port $(MOCK_PORT) & mock=$$!; \
	trap 'kill $$mock 2>/dev/null' EXIT INT TERM; \
	for i in $$(seq 50); do \
	  if ! kill -0 $$mock 2>/dev/null; then \
	    echo "The mock provider could not start on port $(MOCK_PORT) (in use?). Try: make run MOCK_PORT=9102"; exit 1; \
	  fi; \
	  $(PY) -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$(MOCK_PORT)/health', timeout=1)" \
	    2>/dev/null && break; sleep 0.2; \
	done; \
	$(PY) manage.py serve --port $(PORT)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf var/test var/test-logs
