//! The `roadwatch` binary: all behaviour lives in the library; see `roadwatch --help`.
// mimalloc: the replay path allocates a few small strings per record, and glibc's
// malloc/free were ~11% of it in perf (docs/PERFORMANCE.md, "Engine").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    roadwatch::cli::main()
}
