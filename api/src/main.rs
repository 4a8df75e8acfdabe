//! `agentsecrets-connect`: the server and the operator's commands.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    connect_api::cli::main()
}
