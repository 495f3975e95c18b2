# kinglet — the API reference and the documents in docs/.
# Targets:
#   docs         Doxygen (Debian's doxygen; make deps) over the public headers
#                and the port headers a board uses, with docs/Doxyfile:
#                build/docs/html/index.html. Any Doxygen warning fails it
#                (WARN_AS_ERROR = FAIL_ON_WARNINGS: the baseline is 0).
#   check-docs   (in CHECK_STEPS, a few seconds) tests/docs/docs_test.sh: the
#                same run into a temporary directory with no warning; a page
#                for every function declared in include/kinglet/*.h and for
#                kl_client_t, kl_session_t, kl_cache_t and each kl_*_ops_t;
#                every kl_/KL_ name in docs/*.md exists in include/ or port/;
#                README.md points nowhere outside the repository.

DOCS_INPUTS := docs/Doxyfile docs/doxygen-filter.py docs/api-main.md \
	$(wildcard include/kinglet/*.h port/posix/*.h port/mbedtls/*.h port/lwip/*.h)

$(BUILD)/docs/html/index.html: $(DOCS_INPUTS)
	@command -v doxygen >/dev/null || { echo "docs: doxygen is not installed (make deps)"; exit 1; }
	@rm -rf $(BUILD)/docs && mkdir -p $(BUILD)
	@{ cat docs/Doxyfile; echo "OUTPUT_DIRECTORY = $(BUILD)/docs"; } | doxygen - || \
	  { echo "docs: doxygen warnings (above) fail the build"; rm -rf $(BUILD)/docs; exit 1; }
	@echo "docs: $@"

docs: $(BUILD)/docs/html/index.html

check-docs:
	@tests/docs/docs_test.sh

CHECK_STEPS += check-docs

.PHONY: docs check-docs
