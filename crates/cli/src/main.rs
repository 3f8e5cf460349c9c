//! `alation-rotator`: keeps Alation API tokens fresh in the secret stores integrations read.

fn main() -> std::process::ExitCode {
    alation_rotator::App::new().main()
}
