# kinglet — scripts/deps.sh's own test, and the benchmark's extra sources.
# Targets:
#   check-deps-sources  tests/deps_sources_test.sh: `scripts/deps.sh --print-mirror`
#                       finds the Debian archive in synthetic apt configurations
#                       (deb822 and one-line; security, -updates, third-party,
#                       disabled and ignored entries; KL_DEPS_MIRROR) and names
#                       this machine's; `scripts/deps.sh --print-plan` fetches
#                       exactly what is missing, from the right suite, and the
#                       benchmark's sources only with --bench; no network, < 1 s
#                       (in CHECK_STEPS)
#   deps-bench          `make deps`, then the sources bench-xml builds expat 2.5
#                       and libxml2 2.9 from (scripts/deps.sh --bench: Debian
#                       source packages, suite bookworm, into third_party/);
#                       quiet when they are there. `make bench` runs it first;
#                       `make check` and `make demo` do not. A failed fetch is
#                       a warning: bench-xml then links the system's libraries.

check-deps-sources:
	@tests/deps_sources_test.sh

CHECK_STEPS += check-deps-sources

deps-bench: deps
	@scripts/deps.sh --bench

bench: deps-bench

.PHONY: check-deps-sources deps-bench
