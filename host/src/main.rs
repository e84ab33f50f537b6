use std::process::ExitCode;

fn main() -> ExitCode {
    match mcpist::cli::run() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("mcpist: {error:#}");
            ExitCode::FAILURE
        }
    }
}
