# kinglet — conformance peers: servers for behaviour no shipped server has.
#
# Exports:
#   XEP0305_PEER  tests/conformance/xep0305_peer.py — XEP-0305 server side
#                 (full pipelining) over real TLS; see its docstring for the
#                 CLI, the flights it writes and its log/summary format.
# Targets: check-xep0305-peer (in CHECK_STEPS): the peer's self-test, a
# separately written pipelining client (tests/conformance/peer_selftest.py)
# inside tests/netns.sh; needs root and the openssl CLI; ~5 s.

XEP0305_PEER := tests/conformance/xep0305_peer.py

check-xep0305-peer:
	@$(NETNS) python3 tests/conformance/peer_selftest.py

CHECK_STEPS += check-xep0305-peer

.PHONY: check-xep0305-peer
