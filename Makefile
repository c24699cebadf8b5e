# berth — see README.md. `make` builds target/release/berth.
CARGO ?= cargo
PREFIX ?= /usr/local
DESTDIR ?=
BERTH := target/release/berth
ROOTFS := hack/.cache/rootfs

.PHONY: all build demo test deps deps-build docs install uninstall static rootfs unit integration cri cri-canfail cri-sysvm e2e vm-test sysvm-test sysvm-image bench bench-cri link-order test-stress lint clean

all build:
	$(CARGO) build --release --bin berth

# The Debian packages the tests need (hack/deps.sh has the two lists).
deps:
	bash hack/deps.sh test

# Only what the build needs (no engines, no runc).
deps-build:
	bash hack/deps.sh build

rootfs:
	bash hack/mkrootfs.sh $(ROOTFS)

demo: deps-build build rootfs
	bash hack/demo.sh

# A statically linked berth (glibc and libseccomp inside): target/static/berth.
static: deps-build
	bash hack/static.sh

# Man pages and shell completions, generated from the CLI's definitions into target/docs-out/.
docs:
	bash hack/install.sh docs

# $(DESTDIR)$(PREFIX)/bin/berth, share/man/man8/berth*.8 and the bash, zsh and fish completions.
install: build docs
	PREFIX="$(PREFIX)" DESTDIR="$(DESTDIR)" bash hack/install.sh install

# Removes exactly the files install puts there.
uninstall: docs
	PREFIX="$(PREFIX)" DESTDIR="$(DESTDIR)" bash hack/install.sh uninstall

# Everything CI runs (bash .ci/run calls this).
test: deps build rootfs
	bash hack/test.sh

unit: build rootfs
	BERTH_ROOTFS=$(CURDIR)/$(ROOTFS) $(CARGO) test --release -- --test-threads=2

integration: build rootfs
	bash hack/integration.sh

# Kubernetes pods through containerd's CRI (integration/cri), berth and runc side by side.
cri: build rootfs
	bash hack/cri.sh

# Can the CRI suite's checks fail? The suite against deliberately wrong runtimes (~13 min).
cri-canfail: build rootfs
	bash hack/cri/canfail.sh

# The CRI suite with the systemd cgroup driver in the systemd guest (berth and runc; RUNTIMES=...).
cri-sysvm: build rootfs
	bash hack/cri/sysvm.sh

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
	bash hack/bench/cri.sh
	[ "$${BENCH_CRIU:-1}" = 0 ] || bash hack/bench/criu.sh   # checkpoint/restore, in the VM guest
	bash hack/sysvm/run.sh --timeout 3000 -- env SYSTEMD=1 N=$${SYSTEMD_N:-30} bash hack/bench/run.sh

# The pod-scale CRI benchmark alone (~6 min): 50 pods x 2 containers through containerd.
bench-cri: build rootfs
	bash hack/bench/cri.sh

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
