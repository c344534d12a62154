//! The `roadwatch` binary: all behaviour lives in the library; see `roadwatch --help`.
fn main() -> std::process::ExitCode {
    roadwatch::cli::main()
}
