//! The `floodgate` command; everything is in the library (`floodgate_cli`).

fn main() {
    std::process::exit(floodgate_cli::run(std::env::args_os()));
}
