# kinglet — interoperability with ejabberd 23.01 (Debian package): one
# throwaway server (tests/ejabberd/ejabberd.sh) started once on loopback in a
# network namespace; safe/off/direct-TLS/SCRAM logins, a message and its
# echo, wrong password, BOSH endpoint; ~15 s (ejabberd takes ~3 s to start).
# Target: check-ejabberd (in CHECK_STEPS).

check-ejabberd: $(BUILD)/kinglet
	@tests/integration/ejabberd_test.sh

CHECK_STEPS += check-ejabberd
.PHONY: check-ejabberd
