# Two commands do everything on a fresh machine:
#   make run   – install, ingest the bundled corpus, serve API + web chat on http://127.0.0.1:8000
#   make test  – install (with test extras, Chromium and PostgreSQL) and run all tests twice: with the state
#                database on SQLite (the default), then on PostgreSQL
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: install install-dev browser fonts postgresql redis run test eval bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# torch first (CPU build from local disk), so sentence-transformers does not pull a CUDA build.
install: $(PY)
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[st,llm]'

install-dev: $(PY)
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[st,llm,dev]'

browser:
	@test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

# DejaVu fonts for PDF dossiers (German umlauts and ß); Debian package fonts-dejavu-core.
fonts:
	@test -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-dejavu-core >/dev/null)

# PostgreSQL binaries for the second test pass (the tests start their own server in a temporary directory).
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null)

# Redis for the tests of the shared job queue, rate limits and writer lock (tests/redis_support.py); Debian package
# redis-server. The tests start their own server on a free port; the system service is not needed.
redis:
	@test -x /usr/bin/redis-server || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null)

run: install fonts
	$(VENV)/bin/stadtretter ingest corpus --prune
	$(VENV)/bin/stadtretter serve

# Second pass on PostgreSQL; tests/cluster runs on PostgreSQL in the first pass already.
test: install-dev browser fonts postgresql redis
	$(PY) -m pytest -q
	STADTRETTER_TEST_DATABASE=postgresql $(PY) -m pytest -q -m "not cluster"

eval: install
	$(VENV)/bin/stadtretter eval

clean:
	rm -rf data .eval-cache test-artifacts
