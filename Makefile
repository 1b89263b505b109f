# Two commands for a newcomer: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: install run test lint format bench clean

# uv resolves and installs the dependencies in seconds where pip takes minutes;
# it goes into the venv first, and plain pip stays the fallback if it fails.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	{ $(BIN)/pip install -q uv && \
	  $(BIN)/uv pip install -q --python $(BIN)/python -e '.[dev]'; } || \
	{ echo "uv failed; installing with pip" && \
	  $(BIN)/pip install -q --upgrade pip && $(BIN)/pip install -q -e '.[dev]'; }
	touch $(STAMP)

install: $(STAMP)

## Run the product on the embedded default: SQLite in var/, no Redis, tasks in-process.
run: export DEBUG ?= 1
run: install
	$(BIN)/python manage.py migrate --noinput -v0
	$(BIN)/python manage.py collectstatic --noinput -v0
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py serve --host $(HOST) --port $(PORT)

.PHONY: demo-notebook-runtime-up demo-notebook-runtime-down
## The product on the docker backend: a private Docker engine, a worker image
## imported locally (no registry), the demo data; alice can start "analysis".
demo-notebook-runtime-up: install
	BIN=$(BIN) HOST=$(HOST) PORT=$(PORT) scripts/demo-notebook-runtime.sh up

## Stop that server and remove its workers' containers (the engine stays up).
demo-notebook-runtime-down:
	BIN=$(BIN) HOST=$(HOST) PORT=$(PORT) scripts/demo-notebook-runtime.sh down

## Lint, then the whole suite (set DATABASE_URL / REDIS_URL / NOTEBOOK_RUNTIME_DOCKER_URL for the full run).
## -rs prints the reason of every skip at the end.
test: install lint
	$(BIN)/pytest -rs

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	@ls bench/*.py

clean:
	rm -rf $(VENV) var/db.sqlite3* var/staticfiles
