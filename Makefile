# Two commands on a fresh machine: `make run` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8080
# gunicorn workers of `make run`; WEB_CONCURRENCY tells the app how many share its limits.
WORKERS ?= 2
export FLASK_APP := run

# Debian packages the product needs (libzbar0 for QR decoding, postgresql-client for
# pg_dump/pg_restore/psql of the backups) and the tests need (chromium and CJK fonts for
# browser tests, poppler-utils for PDF checks, postgresql-client for the backup tests,
# nginx to check the shipped site configuration in deploy/).
RUN_DEBS := libzbar0 postgresql-client
TEST_DEBS := chromium fonts-noto-cjk poppler-utils postgresql-client nginx

.PHONY: run test install system-deps test-deps translations db serve lint-imports test-sqlite test-postgres bench ha-drill clean

install: $(STAMP) translations

$(STAMP): requirements.txt
	@$(MAKE) --no-print-directory system-deps DEBS="$(RUN_DEBS)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $(STAMP)

# Install the Debian packages in DEBS that are missing (as root, or with sudo).
system-deps:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

test-deps:
	@$(MAKE) --no-print-directory system-deps DEBS="$(TEST_DEBS)"

# A fuzzy or broken catalogue would silently leave the UI in English: fail instead.
translations: $(STAMP)
	@$(BIN)/pybabel compile -d translations 2>&1 | grep -v "^compiling" | (! grep .) || (echo "translations did not compile" >&2; exit 1)
	@test -f translations/ja/LC_MESSAGES/messages.mo

db: install
	$(BIN)/flask init
	@if [ ! -f instance/.demo-seeded ]; then $(BIN)/flask demo seed && touch instance/.demo-seeded; \
	else $(BIN)/flask demo seed; fi  # again: it skips what exists and books today's desk
	$(BIN)/flask users ensure-admin

# Plain http on loopback for a local try-out; production sits behind HTTPS (README).
run: db
	COOKIE_SECURE=$${COOKIE_SECURE:-0} WEB_CONCURRENCY=$(WORKERS) $(BIN)/gunicorn --bind 127.0.0.1:$(PORT) --workers $(WORKERS) --threads 4 --access-logfile - run:app

# The failover drill (make ha-drill, about a minute, mostly waiting) runs beside the SQLite
# pass; its table is printed after the pass, and either failing fails `make test`.
test: install test-deps
	$(MAKE) --no-print-directory lint-imports
	@$(MAKE) --no-print-directory system-deps DEBS="$(HA_DEBS)"
	@echo "== the failover drill (bench/ha_drill.py) starts beside the SQLite pass =="
	@log=$$(mktemp); ($(BIN)/python bench/ha_drill.py > $$log 2>&1) & drill=$$!; \
	$(MAKE) --no-print-directory test-sqlite; tests=$$?; \
	wait $$drill; drilled=$$?; \
	echo "== the failover drill (exit $$drilled) =="; cat $$log; rm -f $$log; \
	[ $$tests -eq 0 ] && [ $$drilled -eq 0 ]
	$(MAKE) --no-print-directory test-postgres

# The direction of dependencies (models <- services <- views / public / cli), as the
# contracts in .importlinter state it: an import against it fails the build.
lint-imports: $(STAMP)
	$(BIN)/lint-imports

# Two workers (pytest-xdist): each has its own database; TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -q -n $(TEST_WORKERS) tests

test-sqlite:
	@echo "== tests on SQLite =="
	$(PYTEST)

# The PostgreSQL pass runs what depends on the database: not the tests that never touch
# it (ONLY_DATABASE_TESTS, tests/conftest.py), nor those marked `layout` (how pages look
# at staff and phone sizes, axe-core), nor the browser walks of tests/e2e: they drive the
# same pages and services, which the unit and web tests run here in full.
test-postgres:
	@echo "== tests on PostgreSQL =="
	ONLY_DATABASE_TESTS=1 bash scripts/with-postgres.sh $(PYTEST) -m "not layout" --ignore=tests/e2e

# Speed goals, printed as a table (never timed tests): bench/run.py says what it measures.
bench: install
	$(BIN)/python bench/run.py
	@echo "== booking and booking races again, and backups, on PostgreSQL =="
	bash scripts/with-postgres.sh sh -c 'DATABASE_URL=$$TEST_DATABASE_URL $(BIN)/python bench/run.py booking races backups'
	@echo "== two app instances behind nginx, and failover, on throwaway PostgreSQL clusters =="
	@$(MAKE) --no-print-directory system-deps DEBS="$(HA_DEBS)"
	$(BIN)/python bench/run.py ha

# The failover drill (issue 16): a PostgreSQL primary and a synchronous standby, two app
# instances behind nginx, bookings and check-ins while one instance is killed and the
# primary stopped and the standby promoted; prints what was lost (must be nothing).
HA_DEBS := nginx postgresql
ha-drill: install
	@$(MAKE) --no-print-directory system-deps DEBS="$(HA_DEBS)"
	$(BIN)/python bench/ha_drill.py $(HA_DRILL_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache tests/e2e/screenshots
