//! `miyabi-aws`: the command line. Everything lives in [`miyabi_aws::cli`], which the wheel's
//! console script runs too.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(miyabi_aws::cli::main_with(std::env::args_os()))
}
