use std::process::ExitCode;

fn main() -> ExitCode {
    match mcpist::cli::run() {
        Ok(code) => code,
        // The reader went away (`mcpist plugins list | head`): not an error.
        Err(error)
            if error
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("mcpist: {error:#}");
            ExitCode::FAILURE
        }
    }
}
