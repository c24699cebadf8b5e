# berth — see README.md. `make` builds target/release/berth.
CARGO ?= cargo
BERTH := target/release/berth
ROOTFS := hack/.cache/rootfs

.PHONY: all build demo test deps rootfs unit integration e2e vm-test sysvm-test sysvm-image bench link-order test-stress lint clean

all build:
	$(CARGO) build --release --bin berth

deps:
	bash hack/deps.sh

rootfs:
	bash hack/mkrootfs.sh $(ROOTFS)

demo: build rootfs
	bash hack/demo.sh

# Everything CI runs (bash .ci/run calls this).
test: deps build rootfs
	bash hack/test.sh

unit: build rootfs
	BERTH_ROOTFS=$(CURDIR)/$(ROOTFS) $(CARGO) test --release -- --test-threads=2

integration: build rootfs
	bash hack/integration.sh

e2e: build rootfs
	bash hack/e2e/run.sh

vm-test: build rootfs
	bash hack/vm/run-tests.sh

# Suites in the systemd + cgroup v2 guest (hack/sysvm/README.md); SYSVM_SUITES="smoke; e2e" by default.
sysvm-test: build rootfs
	bash hack/sysvm/run-tests.sh

sysvm-image:
	bash hack/sysvm/build.sh

# The host's figures, then the systemd driver's in the systemd guest (hack/sysvm; TCG is slow:
# fewer samples there, SYSTEMD_N).
bench: build rootfs
	bash hack/bench/run.sh
	bash hack/sysvm/run.sh --timeout 3000 -- env SYSTEMD=1 N=$${SYSTEMD_N:-30} bash hack/bench/run.sh

# Regenerate hack/link/berth.order (hot-first function layout, see build.rs) and relink; ~7 min.
link-order: rootfs
	bash hack/link/profile.sh

test-stress: build rootfs
	bash hack/stress.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

clean:
	$(CARGO) clean
	rm -rf hack/.cache
