//! `facepay`: the project's one command-line tool.

use clap::{Parser, Subcommand};

mod bench_server;
mod bench_vision;
mod camera;
mod clip_frames;
mod demo;
mod enroll;
mod eval_far;
mod eval_lfw;
mod eval_liveness;
mod eval_matching;
mod models_nnef;
mod pay;
mod replay;
mod scripted;
mod scripted_clip;

/// FacePay: pay with a selfie, verified on the device and signed end to end.
#[derive(Parser)]
#[command(name = "facepay", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Full demo on built-in defaults: embedded server, enrol from a clip, pay, print the receipt.
    Demo(demo::Args),
    /// Enrol the shopper from a clip and register this device with a running checkout server.
    Enroll(enroll::Args),
    /// Pay an order against a running checkout server with a clip.
    Pay(pay::Args),
    /// Accuracy evaluations.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Speed and memory benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Model conversions (maintainer tools).
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Replay a recorded session or a clip folder through the liveness session.
    Replay(replay::Args),
    /// List the webcams (builds with the `camera` feature).
    Cameras(camera::Args),
}

#[derive(Subcommand)]
enum EvalCommand {
    /// Face verification on LFW pairs.
    Lfw(eval_lfw::Args),
    /// False-accept rate on every pair of an image set, the DET curve, thresholds for FAR targets.
    Far(eval_far::Args),
    /// Liveness BPCER/APCER over clip folders and stills.
    Liveness(eval_liveness::Args),
    /// Per-attempt FRR and FAR of the face match on clips, enrolled and matched as the product does.
    Matching(eval_matching::Args),
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Convert the manifest's ONNX models to tract's NNEF form (what the library loads).
    Nnef(models_nnef::Args),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Per-stage vision latency, model load time and peak memory.
    Vision(bench_vision::Args),
    /// Signed payments per second against a real checkout server.
    Server(bench_server::Args),
}

/// Runs the command; an error is printed as one `error: …` line with its causes (never a backtrace: these are
/// user-facing messages) and the exit code is 1.
fn main() -> std::process::ExitCode {
    match run(Cli::parse().command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Demo(args) => demo::run(args),
        Command::Enroll(args) => enroll::run(args),
        Command::Pay(args) => pay::run(args),
        Command::Eval(EvalCommand::Lfw(args)) => eval_lfw::run(args),
        Command::Eval(EvalCommand::Far(args)) => eval_far::run(args),
        Command::Eval(EvalCommand::Liveness(args)) => eval_liveness::run(args),
        Command::Eval(EvalCommand::Matching(args)) => eval_matching::run(args),
        Command::Bench(BenchCommand::Vision(args)) => bench_vision::run(args),
        Command::Bench(BenchCommand::Server(args)) => bench_server::run(args),
        Command::Models(ModelsCommand::Nnef(args)) => models_nnef::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Cameras(args) => camera::run(args),
    }
}
