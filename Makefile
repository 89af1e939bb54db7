# Building and installing libfloodgate the way C libraries are.
#   make                       build target/release/libfloodgate.{a,so}
#   make header                regenerate include/floodgate.h (cbindgen 0.29.2, nightly for macro expansion)
#   make install PREFIX=/usr/local [DESTDIR=...]
#                              install the header, both libraries and floodgate.pc
#   make examples              build and run the C examples (under valgrind if VALGRIND=1)
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
# What a Rust staticlib needs from the system when linked statically.
STATIC_LIBS := -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc

.PHONY: all header install examples clean
all:
	cargo build --release -p floodgate-ffi

header:
	RUSTUP_TOOLCHAIN=nightly cbindgen --config ffi/cbindgen.toml --crate floodgate-ffi --output include/floodgate.h ffi

target/floodgate.pc: Cargo.toml Makefile
	mkdir -p target
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

install: all target/floodgate.pc
	install -d $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 644 include/floodgate.h $(DESTDIR)$(INCLUDEDIR)/floodgate.h
	install -m 644 target/release/libfloodgate.a $(DESTDIR)$(LIBDIR)/libfloodgate.a
	install -m 755 target/release/libfloodgate.so $(DESTDIR)$(LIBDIR)/libfloodgate.so
	install -m 644 target/floodgate.pc $(DESTDIR)$(LIBDIR)/pkgconfig/floodgate.pc

examples: all
	$(MAKE) -C c-examples run

clean:
	cargo clean
