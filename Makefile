.PHONY: setup demo test protos clean

setup:
	bash scripts/setup.sh

demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

# Regenerate the committed Python stubs from protos/ (tests/test_protos.py checks them).
protos:
	.venv/bin/python scripts/gen_protos.py

clean:
	rm -rf .demo .pytest_cache
