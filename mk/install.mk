# kinglet — make install / uninstall, and the install test.
#   make install PREFIX=/opt/kinglet [DESTDIR=/tmp/stage]
#     $(PREFIX)/lib/libkinglet.a             the core library (CORE_LIB)
#     $(PREFIX)/include/kinglet/*.h          the public headers
#     $(PREFIX)/lib/pkgconfig/kinglet.pc     from kinglet.pc.in, written here
#   make uninstall PREFIX=… [DESTDIR=…]      removes exactly those files
# Overrides: LIBDIR, INCLUDEDIR, PKGCONFIGDIR (default under PREFIX).
# kinglet.pc's Cflags carry the -DKL_* of EXTRA_CFLAGS (KL_ENABLE_*, buffer
# sizes: they change struct layouts), so a consumer sees the values the
# library was built with; with the defaults there are none. Build such a
# library in its own BUILD: `make install BUILD=build-min
# EXTRA_CFLAGS="-DKL_ENABLE_SM=0" PREFIX=…` (make does not track flags).
# The CMake build (CMakeLists.txt) installs the same layout plus the ports
# and a find_package() config. Version: VERSION, read by both.
#
# check-install (in CHECK_STEPS): tests/install/install_test.sh.

KINGLET_VERSION := $(strip $(file <VERSION))
PREFIX ?= /usr/local
DESTDIR ?=
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
KL_PC_CFLAGS = $(filter -DKL_%,$(EXTRA_CFLAGS))
KL_INSTALL_HDRS := $(sort $(wildcard include/kinglet/*.h))

# ${prefix}-relative paths in kinglet.pc where they are under PREFIX.
kl_pc_dir = $(if $(filter $(PREFIX)/%,$(1)),$${prefix}/$(patsubst $(PREFIX)/%,%,$(1)),$(1))

install: $(CORE_LIB) kinglet.pc.in VERSION
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR)/kinglet $(DESTDIR)$(PKGCONFIGDIR)
	install -m 644 $(CORE_LIB) $(DESTDIR)$(LIBDIR)/libkinglet.a
	install -m 644 $(KL_INSTALL_HDRS) $(DESTDIR)$(INCLUDEDIR)/kinglet/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(call kl_pc_dir,$(LIBDIR))|' \
	    -e 's|@INCLUDEDIR@|$(call kl_pc_dir,$(INCLUDEDIR))|' -e 's|@VERSION@|$(KINGLET_VERSION)|' \
	    -e 's|@KL_CFLAGS@|$(KL_PC_CFLAGS)|' -e 's| *$$||' kinglet.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/kinglet.pc
	chmod 644 $(DESTDIR)$(PKGCONFIGDIR)/kinglet.pc

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libkinglet.a $(DESTDIR)$(PKGCONFIGDIR)/kinglet.pc \
	  $(addprefix $(DESTDIR)$(INCLUDEDIR)/kinglet/,$(notdir $(KL_INSTALL_HDRS)))
	-rmdir $(DESTDIR)$(INCLUDEDIR)/kinglet 2>/dev/null

# make install into temporary prefixes and CMake's install, each used by an
# out-of-tree program (pkg-config, find_package), a non-default option
# round trip through both, no network. ~30-60 s.
check-install: $(CORE_LIB)
	@BUILD=$(BUILD) tests/install/install_test.sh

CHECK_STEPS += check-install
.PHONY: install uninstall check-install
