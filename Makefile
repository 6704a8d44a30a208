.PHONY: setup demo test bench protos stubs studio proto-check clean

setup:
	bash scripts/setup.sh

demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

# Every benchmark (modx vs the obvious alternative, side by side; about 90 min on 2 cores); rewrites docs/benchmarks.md.
bench:
	.venv/bin/python bench/run_all.py

# Regenerate the committed Python stubs from protos/ into gen/python/modx/v1, the package modx.v1 that
# the daemon and the CLI import (tests/test_protos.py checks them).
protos:
	.venv/bin/python scripts/gen_protos.py

# Regenerate the committed TypeScript (Node, @grpc/grpc-js) and Go stubs from protos/
# (tests/service/test_clients.py checks them). Local plugins only: buf and ts-proto from
# clients/typescript/node_modules (npm ci), protoc-gen-go and protoc-gen-go-grpc from Debian
# (apt-get install protoc-gen-go protoc-gen-go-grpc); see buf.gen.yaml.
TS := clients/typescript
BUF := $(TS)/node_modules/.bin/buf

$(TS)/node_modules/.modx-installed: $(TS)/package-lock.json
	cd $(TS) && npm ci --no-audit --no-fund
	touch $@

stubs: $(TS)/node_modules/.modx-installed
	rm -rf $(TS)/src/gen $(TS)/lib clients/go/modxv1
	$(BUF) generate
	cd $(TS) && node_modules/.bin/tsc -p tsconfig.json

# The studio (browser front end, clients/web): regenerate its Connect client from protos/ and bundle it
# into daemon/modxd/web/static/, which is committed so a Python-only host needs no Node
# (tests/web/test_studio_bundle.py checks it is fresh). Local plugins only (clients/web/node_modules).
WEB := clients/web

$(WEB)/node_modules/.modx-installed: $(WEB)/package-lock.json
	cd $(WEB) && npm ci --no-audit --no-fund
	touch $@

studio: $(WEB)/node_modules/.modx-installed
	rm -rf $(WEB)/src/gen
	$(WEB)/node_modules/.bin/buf generate --template $(WEB)/buf.gen.yaml
	cd $(WEB) && node_modules/.bin/tsc -p tsconfig.json && node build.mjs

# Proto hygiene: buf lint, and buf breaking against the protos committed on main.
proto-check: $(TS)/node_modules/.modx-installed
	$(BUF) lint
	@tmp=$$(mktemp -d); rc=0; \
	if git rev-parse -q --verify main >/dev/null && git cat-file -e main:protos 2>/dev/null; then \
	  git archive main protos | tar -x -C $$tmp && $(BUF) breaking protos --against $$tmp/protos || rc=$$?; \
	else echo "buf breaking: main has no protos yet, nothing to compare"; fi; \
	rm -rf $$tmp; exit $$rc

clean:
	rm -rf .demo .pytest_cache
