# The two set-up commands of the README: `make demo` and `make test`. Both install what they need.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: demo test lint system-deps clean

$(BIN)/wushi: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

# Debian packages the browser tests and screenshots need (Chromium, its driver, a CJK font).
system-deps:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ] || ! fc-list 2>/dev/null | grep -qi "noto sans cjk"; then \
		echo "installing chromium, chromium-driver and fonts-noto-cjk"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			chromium chromium-driver fonts-noto-cjk >/dev/null; \
	fi

demo: $(BIN)/wushi
	$(BIN)/wushi demo

test: $(BIN)/wushi system-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy dashboard layouts callbacks datasources geo
	$(BIN)/pytest
	$(BIN)/pytest -m slow

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
