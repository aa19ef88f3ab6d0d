//! `cognitive-operator demo` (in progress).

#[derive(clap::Args, Debug)]
pub struct DemoArgs {}

pub async fn run(_args: DemoArgs) -> i32 {
    0
}
