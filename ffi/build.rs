//! Gives `libfloodgate.so` an ELF SONAME, as every shared C library on
//! Linux has one: programs linked with `-lfloodgate` then record
//! `libfloodgate.so.<abi>` (not the development symlink `libfloodgate.so`),
//! and Debian's tools (dpkg-shlibdeps, ldconfig) can track the library.
//!
//! `<abi>` follows Cargo's compatibility rule for the workspace version: the
//! major number from 1.0 on (`libfloodgate.so.1`), `0.<minor>` before it
//! (`libfloodgate.so.0.1`), since a 0.x minor release may break the ABI.
//! The Makefile's `install` target names the files the same way.

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_default();
    let minor = std::env::var("CARGO_PKG_VERSION_MINOR").unwrap_or_default();
    let abi = if major == "0" {
        format!("0.{minor}")
    } else {
        major
    };
    // ELF targets only (the linker flag is GNU ld's / lld's).
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libfloodgate.so.{abi}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
