//! Binaries of this package (its tests and benches) embed the interpreter the build was
//! configured with: an rpath to that interpreter's own `LIBDIR` keeps the loader from picking
//! another `libpython` of the same version (DESIGN §9). The library records which interpreter
//! that was, for `embedded_interpreter`.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    pyo3_build_config::add_libpython_rpath_link_args();
    let config = pyo3_build_config::get();
    println!(
        "cargo:rustc-env=MIYABI_BUILD_PYTHON={}",
        config.executable().unwrap_or("")
    );
    println!(
        "cargo:rustc-env=MIYABI_BUILD_PYTHON_LIBDIR={}",
        config.lib_dir().unwrap_or("")
    );
}
