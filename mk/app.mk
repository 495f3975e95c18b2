# kinglet — the application API of build/kinglet against real servers:
# messages of any size (50 echoes up to 50 KB, byte-identical, --bodies),
# a 1000-item roster (max RSS beside a 10-item one), XEP-0115 caps checked
# by an independent peer, unhandled IQs, presence subscriptions and roster
# pushes (acknowledged), PEP publish / events, MUC join without history,
# CSI (held presence). Prosody 0.12.3 (tests/prosody/prosody.sh --app) and
# ejabberd 23.01 (tests/ejabberd/ejabberd.sh --pep) in one loopback-only
# namespace; the peer is tests/integration/app_peer.py (python3-slixmpp).
# Target: check-app (in CHECK_STEPS, root, ~60 s): read
# tests/integration/app_test.sh's header. Prints "check-app: N passed, N failed".

check-app: $(BUILD)/kinglet
	@KINGLET=$(BUILD)/kinglet $(NETNS) tests/integration/app_test.sh

CHECK_STEPS += check-app
.PHONY: check-app
