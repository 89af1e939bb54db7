# Building and installing libfloodgate the way C libraries are.
#   make                       build target/release/libfloodgate.{a,so}
#   make header                regenerate include/floodgate.h (cbindgen 0.29.2, nightly for macro expansion)
#   make install PREFIX=/usr/local [DESTDIR=...] [LIBDIR=...]
#                              install the header, both libraries and floodgate.pc
#   make examples              build and run the C examples (under valgrind if VALGRIND=1)
#   make deb [DEB_ARCHS="amd64 arm64 armhf"]
#                              the Debian packages, in target/deb/ (packaging/deb.sh)
# CARGO_TARGET=<rust target triple> builds and installs a cross-compiled
# library instead (target/<triple>/release; the packaging sets it).
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
# The SONAME's version, as ffi/build.rs sets it: the major number, or
# 0.<minor> before 1.0.
SOVERSION := $(shell echo $(VERSION) | awk -F. '{ print ($$1 == 0) ? $$1 "." $$2 : $$1 }')
CARGO_TARGET ?=
BUILD_DIR := target/$(if $(CARGO_TARGET),$(CARGO_TARGET)/)release
DEB_ARCHS ?= amd64 arm64 armhf
# What a Rust staticlib needs from the system when linked statically.
STATIC_LIBS := -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc

.PHONY: all header install examples clean deb FORCE
all:
	cargo build --release -p floodgate-ffi $(if $(CARGO_TARGET),--target $(CARGO_TARGET))

header:
	RUSTUP_TOOLCHAIN=nightly cbindgen --config ffi/cbindgen.toml --crate floodgate-ffi --output include/floodgate.h ffi

# Written on every install: its paths come from PREFIX/LIBDIR/INCLUDEDIR,
# which change from one install to the next.
$(BUILD_DIR)/floodgate.pc: FORCE
	mkdir -p $(BUILD_DIR)
	printf '%s\n' \
	  'prefix=$(PREFIX)' \
	  'libdir=$(LIBDIR)' \
	  'includedir=$(INCLUDEDIR)' \
	  '' \
	  'Name: floodgate' \
	  'Description: allocation-free rate limits for Kamailio, FreeSWITCH and app_rpt: pipelimit, limit, GCRA' \
	  'Version: $(VERSION)' \
	  'Libs: -L$${libdir} -lfloodgate' \
	  'Libs.private: $(STATIC_LIBS)' \
	  'Cflags: -I$${includedir}' > $@

# libfloodgate.so.$(VERSION) (SONAME libfloodgate.so.$(SOVERSION)), the
# SONAME's link to it, and the development link libfloodgate.so.
install: all $(BUILD_DIR)/floodgate.pc
	install -d $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 644 include/floodgate.h $(DESTDIR)$(INCLUDEDIR)/floodgate.h
	install -m 644 $(BUILD_DIR)/libfloodgate.a $(DESTDIR)$(LIBDIR)/libfloodgate.a
	install -m 755 $(BUILD_DIR)/libfloodgate.so $(DESTDIR)$(LIBDIR)/libfloodgate.so.$(VERSION)
	ln -sf libfloodgate.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libfloodgate.so.$(SOVERSION)
	ln -sf libfloodgate.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libfloodgate.so
	install -m 644 $(BUILD_DIR)/floodgate.pc $(DESTDIR)$(LIBDIR)/pkgconfig/floodgate.pc

deb:
	bash packaging/deb.sh $(DEB_ARCHS)

examples: all
	$(MAKE) -C c-examples run

clean:
	cargo clean
