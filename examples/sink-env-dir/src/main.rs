//! `alation-rotator` with one store more: `type = "env_dir"`.

fn main() -> std::process::ExitCode {
    alation_rotator::App::new()
        .with_store::<alation_rotator_sink_env_dir::EnvDir>()
        .main()
}
