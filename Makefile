# Two commands do all the set-up on a fresh machine (Python 3.11, no Docker):
#   make demo   crawl the bundled local mirror of French outlets and show what came out
#   make test   the whole test suite, with a real OpenSearch node started from Maven artifacts
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: demo test install searchnode-tools bench clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/veille demo

# Java 17 + Maven run the search node of the integration suite; install them when missing.
searchnode-tools:
	@command -v java >/dev/null && command -v mvn >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jdk-headless maven)

test: install searchnode-tools
	$(BIN)/python -m crawler.searchnode fetch
	$(BIN)/pytest

bench: install
	$(BIN)/python bench/crawl_throughput.py
	$(BIN)/python bench/extraction_quality.py
	$(BIN)/python bench/dedup_quality.py
	$(BIN)/python bench/dedup_perf.py

clean:
	rm -rf $(VENV) data .pytest_cache
