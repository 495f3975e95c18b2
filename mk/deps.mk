# kinglet — scripts/deps.sh's own test.
# Targets:
#   check-deps-sources  tests/deps_sources_test.sh: `scripts/deps.sh --print-mirror`
#                       finds the Debian archive in synthetic apt configurations
#                       (deb822 and one-line; security, -updates, third-party,
#                       disabled and ignored entries; KL_DEPS_MIRROR) and names
#                       this machine's; no network, < 1 s (in CHECK_STEPS)

check-deps-sources:
	@tests/deps_sources_test.sh

CHECK_STEPS += check-deps-sources

.PHONY: check-deps-sources
