.PHONY: check test demo
check:
	scripts/check
test: check
demo:
	python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/tummler demo
