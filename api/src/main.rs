//! `agentsecrets-connect`: the server and the operator's commands.

fn main() -> std::process::ExitCode {
    connect_api::cli::main()
}
