//! One rustls crypto provider: the operator installs ring at start-up, so building a TLS client
//! never fails on provider selection, even in builds where a dependency compiles in a second one.
//! (`.ci/run` also checks that the shipped binary's dependency graph has no aws-lc-rs.)

#[test]
fn ring_is_the_process_provider_and_https_clients_build() {
    cognitive_operator::install_crypto_provider();
    cognitive_operator::install_crypto_provider(); // twice is harmless
    let provider = rustls::crypto::CryptoProvider::get_default().expect("a provider is installed");
    let ring = rustls::crypto::ring::default_provider();
    let names = |p: &rustls::crypto::CryptoProvider| {
        p.cipher_suites
            .iter()
            .map(|s| format!("{:?}", s.suite()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(provider),
        names(&ring),
        "the installed provider is ring"
    );
    // A TLS client config for a real https endpoint builds from the default provider.
    let roots = rustls::RootCertStore::empty();
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    assert!(!config.alpn_protocols.contains(&b"bogus".to_vec()));
    let client = cognitive_operator::arm::ArmClient::new(
        cognitive_operator::arm::ArmClientConfig::new("https://management.azure.com"),
        std::sync::Arc::new(cognitive_operator::arm::Credential::static_token("t")),
    );
    assert!(
        client.is_ok(),
        "an https ARM client builds: {:?}",
        client.err()
    );
}
