//! The binary the container image ships (built as the Dockerfile builds it:
//! `--no-default-features`) has no ARM emulator in it: no `demo`, no `emulator`, no
//! `plan --emulator`. tools/test.sh builds it and names it in COGNITIVE_OPERATOR_IMAGE_BINARY.

use std::process::{Command, Output};

fn image_binary(args: &[&str]) -> Output {
    let path = std::env::var("COGNITIVE_OPERATOR_IMAGE_BINARY")
        .expect("COGNITIVE_OPERATOR_IMAGE_BINARY names the image's binary (tools/test.sh sets it)");
    Command::new(path).args(args).output().expect("runs")
}

#[test]
#[ignore = "needs the binary built as the image builds it (cargo build --no-default-features): bash tools/test.sh"]
fn the_image_binary_has_no_emulator_and_still_does_the_job() {
    for subcommand in ["emulator", "demo"] {
        let refused = image_binary(&[subcommand]);
        assert_eq!(refused.status.code(), Some(2), "{subcommand}");
        let said = String::from_utf8_lossy(&refused.stderr);
        assert!(
            said.contains(&format!("unrecognized subcommand '{subcommand}'")),
            "{said}"
        );
    }
    for subcommand in ["plan", "apply"] {
        let refused = image_binary(&[subcommand, "--emulator", "-f", "-"]);
        assert_eq!(refused.status.code(), Some(2), "{subcommand} --emulator");
        assert!(String::from_utf8_lossy(&refused.stderr).contains("--emulator"));
    }

    let help = String::from_utf8_lossy(&image_binary(&["--help"]).stdout).to_string();
    for kept in ["run", "crd", "plan", "apply"] {
        assert!(help.contains(&format!("  {kept} ")), "{help}");
    }
    let crd = image_binary(&["crd"]);
    assert!(crd.status.success());
    let committed = [
        "cognitiveservicesaccounts.cognitive-operator.dev.yaml",
        "cognitiveservicesdeployments.cognitive-operator.dev.yaml",
    ]
    .map(|file| {
        std::fs::read_to_string(format!("{}/crds/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    })
    .join("---\n");
    assert_eq!(String::from_utf8_lossy(&crd.stdout), committed);
}
