//! The `clearwatch` binary: parses the command line and hands it to [`clearwatch::cli`].

fn main() -> std::process::ExitCode {
    clearwatch::cli::main()
}
