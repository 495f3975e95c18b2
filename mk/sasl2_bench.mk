# kinglet — the SASL2 login benchmark (tests/bench/sasl2_bench.sh): time to
# online (median and p90 of KL_SASL2_BENCH_RUNS runs, default 5), round
# trips, flights and wire bytes out/in through a 200 ms RTT delay proxy
# (KL_BENCH_RTT_MS), inside tests/netns.sh, on Prosody 13 and ejabberd 24.12
# (mk/sasl2.mk's servers), direct TLS and STARTTLS: kinglet SASL2 with cached
# features (password), FAST, the RFC 6120 path (--no-sasl2) with the same
# hints, libstrophe 0.12 (no SASL2), and FAST + inline stream-management
# resumption after one link drop (tests/fault_proxy.py). One table on stdout,
# the same rows as JSON lines in $(BUILD)/bench/sasl2.jsonl. ~3 min, root.
# In BENCH_STEPS (`make bench`), never in `make check`: wall-clock figures.

bench-sasl2: $(BUILD)/kinglet $(BUILD)/tests/strophe_client
	@KINGLET=$(BUILD)/kinglet STROPHE_CLIENT=$(BUILD)/tests/strophe_client \
	  KL_SASL2_BENCH_OUT=$(BUILD)/bench/sasl2.jsonl tests/bench/sasl2_bench.sh

BENCH_STEPS += bench-sasl2
.PHONY: bench-sasl2
