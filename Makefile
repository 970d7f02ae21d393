# beamprof: the two commands are `make demo` and `make test`; both install
# what is missing first (scripts/setup.sh).
REBAR ?= rebar3
MIX_ENV_VARS = MIX_BUILD_ROOT=$(CURDIR)/_build_mix MIX_ENV=test
ASAN_LIB = $(shell gcc -print-file-name=libasan.so)
# The NIF suites (and the scan NIFs' random-argument properties, the process table
# walk included) under AddressSanitizer, in one VM: the ASan builds of both libraries,
# the runtime preloaded into the VM (the BEAM itself is not instrumented).
ASAN_ENV = BEAMPROF_NIF=$(CURDIR)/c_src/asan/beamprof_nif \
	BEAMPROF_NATIVE_NIF=$(CURDIR)/c_src/asan/beamprof_native_nif LD_PRELOAD=$(ASAN_LIB) \
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:halt_on_error=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

# What `make test` runs on one OTP release, in order (test-local; scripts/otp_matrix.sh
# runs the same steps one by one in each Debian root of the OTP matrix).
TEST_STEPS = setup test-c test-eunit test-ct test-asan test-elixir test-deps check
# The OTP matrix after the host's suites: auto (run it when this machine can, else say so
# in one line), required (fail when it cannot; .ci/run), off (the host's suites only).
BEAMPROF_MATRIX ?= auto
OTP ?= all

.PHONY: all setup build docs test test-local test-steps test-otp test-c test-erlang test-eunit \
	test-ct test-asan test-elixir test-deps check demo bench clean

# -Werror (C) is for our test and CI builds only: c_src/Makefile adds it when
# BEAMPROF_WERROR=1, which these targets export to every make they run, rebar3's and
# mix's pre-build included. (warnings_as_errors: rebar.config's test profile.) A
# project that depends on beamprof builds without either.
test test-local test-otp test-c test-erlang test-eunit test-ct test-asan test-elixir check: \
	export BEAMPROF_WERROR = 1

all: build

setup:
	@scripts/setup.sh

build: setup
	$(REBAR) compile

# Every suite: C units (plain and ASan), the core cross-compiled for aarch64,
# EUnit, Common Test (PropEr runs in both), the NIF suites again under ASan,
# ExUnit, beamprof as a dependency of new mix and rebar3 projects, xref, dialyzer
# and edoc (and the bench's C helper compiles cleanly), on the host's OTP; then all
# of it again on OTP 27 and 29 (scripts/otp_matrix.sh), as BEAMPROF_MATRIX says.
test: test-local
	@BEAMPROF_MATRIX=$(BEAMPROF_MATRIX) scripts/otp_matrix.sh test

test-local: $(TEST_STEPS)
	@echo "make test: all suites passed on the host's OTP"

test-steps:
	@echo $(TEST_STEPS)

# One release of the matrix alone (OTP=27, OTP=29 or OTP=all); needs root.
test-otp:
	@scripts/otp_matrix.sh run $(OTP)

test-c:
	$(MAKE) -C c_src test
	$(MAKE) -C c_src test-asan
	$(MAKE) -C c_src cross-aarch64

test-erlang: test-eunit test-ct

# Every module of test/ named *_tests: `rebar3 eunit --app beamprof` runs only the
# ones named after a module of src/ (beamprof_docs_tests, the doc coverage, has none).
EUNIT_MODULES = $(subst $(eval) ,$(comma),$(sort $(basename $(notdir $(wildcard test/*_tests.erl)))))
comma := ,

test-eunit:
	$(REBAR) eunit --module $(EUNIT_MODULES)

test-ct:
	$(REBAR) ct

test-asan:
	$(MAKE) -C c_src asan
	$(ASAN_ENV) $(REBAR) ct --suite test/beamprof_nif_SUITE,test/beamprof_native_nif_SUITE,test/beamprof_scan_prop_SUITE

test-elixir:
	$(MIX_ENV_VARS) mix test

# A copy of this tree (git's files, or the package's where git is not usable) as the
# dependency of a new mix project (path:) and a new rebar3 project (_checkouts/):
# each compiles offline and calls beamprof:top(memory, 3). Builds as a user's project
# does, without BEAMPROF_WERROR.
test-deps:
	scripts/dep_check.sh

check:
	$(REBAR) xref
	$(REBAR) dialyzer
	$(REBAR) edoc
	$(CC) -std=c11 -Wall -Wextra -Werror -fsyntax-only bench/host_pinger.c

# The API docs from the edoc comments: HTML in _build/edoc, EEP-48 chunks in doc/chunks
# (for h(beamprof, top) in the shell; shipped in the package).
docs:
	$(REBAR) edoc
	$(REBAR) as chunks edoc

demo: build
	@scripts/demo.sh

bench: build
	@bench/run.sh

# The matrix's roots are unmounted (and removed) first: removing a root with /dev
# still bound in it would delete the host's device nodes.
clean:
	scripts/otp_matrix.sh clean
	-$(REBAR) clean
	$(MAKE) -C c_src clean
	rm -rf _build _build_mix priv/*.so
