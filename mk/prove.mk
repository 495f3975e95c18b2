# kinglet — absence of runtime errors in the codecs that read the peer's bytes,
# by abstract interpretation: Frama-C's EVA (frama-c-base, Frama-C 25) on a
# driver per codec, tests/prove/prove_NAME.c, that feeds the codec every input
# of length 0..N (each byte any of 0..255), in chunks whose boundaries are
# themselves unknown. 32-bit machdep (gcc_x86_32), signed overflow an alarm,
# unsigned wrap-around not (it is defined C). What each driver covers, N and
# the chunking per codec, and what the result does and does not mean:
# tests/prove/README.md. Runner: tests/prove/prove.sh (logs in $(BUILD)/prove/).
# Targets:
#   prove        the full sizes (larger N); per codec: N, chunking, alarms,
#                time; exit 1 on any alarm or vacuous result (the driver's
#                end or a parser outcome never reached), naming the codec
#   check-prove  the same drivers at the fast sizes (in CHECK_STEPS, ~6 min);
#                prints "check-prove: P passed, F failed (...)"
# Both stop with "run make deps" when frama-c is not installed.
# PROVE_ONLY="base64" limits either to some codecs (default: those that pass;
# the drafts dns, xml, xw are run only when named).

prove:
	@tests/prove/prove.sh full $(BUILD) $(PROVE_ONLY)

check-prove:
	@tests/prove/prove.sh fast $(BUILD) $(PROVE_ONLY)

CHECK_STEPS += check-prove
.PHONY: prove check-prove
