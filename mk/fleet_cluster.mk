# kinglet — kinglet-fleet against the two-node ejabberd 23.01 cluster
# (tests/ejabberd/cluster.sh): tests/integration/fleet_cluster_test.sh,
# 100 devices with both nodes as endpoints (A first):
#   failover   node A SIGKILLed: every device back on B within the backoff
#              window, 0 readings lost end to end (KL_EV_UNACKED resent)
#   comeback   the whole service down, then back: with jitter the reconnects
#              spread over the backoff window, --no-jitter shows the herd
# Target: check-fleet-cluster (root, in CHECK_STEPS, ~40 s; 6 runs in a row passed).

check-fleet-cluster: $(FLEET_BIN)
	@KINGLET_FLEET=$(abspath $(FLEET_BIN)) tests/integration/fleet_cluster_test.sh

.PHONY: check-fleet-cluster

CHECK_STEPS += check-fleet-cluster
