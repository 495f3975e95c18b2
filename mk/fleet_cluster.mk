# kinglet — kinglet-fleet against the two-node ejabberd 23.01 cluster
# (tests/ejabberd/cluster.sh): tests/integration/fleet_cluster_test.sh,
# 100 devices with both nodes as endpoints (A first):
#   failover   node A SIGKILLed: every device back on B within the backoff
#              window, 0 readings lost end to end (KL_EV_UNACKED resent)
#   comeback   the whole service down, then back: with jitter the reconnects
#              spread over the backoff window, --no-jitter shows the herd
#   storm      N devices at once, spread over both nodes; then Tsung on the same
#              storm (baseline, reported)
# Target: check-fleet-cluster (root, in CHECK_STEPS, ~60 s).

check-fleet-cluster: $(FLEET_BIN)
	@KINGLET_FLEET=$(abspath $(FLEET_BIN)) tests/integration/fleet_cluster_test.sh

.PHONY: check-fleet-cluster

CHECK_STEPS += check-fleet-cluster

# make bench: the same scenarios with 5000 devices (KL_FLEET_BENCH_N), the
# login storm beside Tsung's; every run's JSON summary in
# $(BUILD)/bench/fleet.jsonl. ~10 min, root. Time bounds reported, not asserted.
KL_FLEET_BENCH_N ?= 5000
bench-fleet: $(FLEET_BIN)
	@mkdir -p $(BUILD)/bench && rm -f $(BUILD)/bench/fleet.jsonl
	@KINGLET_FLEET=$(abspath $(FLEET_BIN)) KL_FLEET_N=$(KL_FLEET_BENCH_N) \
	  KL_FLEET_BENCH_OUT=$(abspath $(BUILD)/bench/fleet.jsonl) tests/integration/fleet_cluster_test.sh

BENCH_STEPS += bench-fleet
.PHONY: bench-fleet
