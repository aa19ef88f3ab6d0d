use clap::Parser;

#[tokio::main]
async fn main() {
    cognitive_operator::install_crypto_provider();
    let cli = cognitive_operator::cli::Cli::parse();
    let code = cognitive_operator::cli::main(cli).await;
    std::process::exit(code);
}
