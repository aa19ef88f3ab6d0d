//! A real Kubernetes control plane for the end-to-end tests: etcd, kube-apiserver (RBAC on,
//! service-account tokens signed with a key made per run) and kube-controller-manager (only its
//! garbage collector, namespace and ClusterRole aggregation controllers), all on loopback ports, in a temporary folder
//! that is removed with every process when the value is dropped — also when a test panics.
//!
//! The binaries come from `tools/k8s/build.sh` (pinned Go modules, cached outside the work
//! tree): the folder named by `KUBEBUILDER_ASSETS`, or the script's answer when that is unset.
#![allow(dead_code)]

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

/// The admin's bearer token (group `system:masters`), from the API server's token file.
const ADMIN_TOKEN: &str = "e2e-admin-token";
const READY_WITHIN: Duration = Duration::from_secs(120);
/// Users without any group, so without any permission until a test binds them a role.
pub const USERS: [&str; 1] = ["alice"];

fn user_token(user: &str) -> String {
    format!("e2e-{user}-token")
}

/// The folder holding etcd, kube-apiserver, kube-controller-manager, kubectl, helm and
/// kstatus-judge.
pub fn assets() -> PathBuf {
    if let Some(dir) = std::env::var_os("KUBEBUILDER_ASSETS") {
        return PathBuf::from(dir);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/k8s/build.sh");
    let output = Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .expect("run tools/k8s/build.sh");
    assert!(
        output.status.success(),
        "tools/k8s/build.sh failed: the end-to-end tests need Go to build the control plane"
    );
    PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}

/// A loopback port free at the time of asking (the programs take ports as flags).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A temporary folder removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "{prefix}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create a temporary folder");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    /// `E2E_KEEP=1` keeps the folder (logs, kubeconfigs) for a look after the test.
    fn drop(&mut self) {
        if std::env::var_os("E2E_KEEP").is_some() {
            eprintln!("kept {}", self.0.display());
        } else {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// A child process whose output goes to a log file; killed when dropped. When a test panics,
/// the last lines of its log are printed, so the failure says what the process saw.
pub struct Process {
    pub name: String,
    child: Child,
    pub log: PathBuf,
}

impl Process {
    pub fn spawn(name: &str, mut command: Command, log: PathBuf) -> Process {
        let file = fs::File::create(&log).expect("create a log file");
        die_with_parent(&mut command);
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|error| panic!("start {name}: {error}"));
        Process {
            name: name.to_string(),
            child,
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: the process gets no chance to clean up.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    pub fn output(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Drop kills every process on a normal end or a panic; this covers the test process being
/// killed outright (SIGKILL, a timeout): the kernel then sends each child SIGKILL. (It fires
/// when the spawning thread ends: here the test's own thread, which outlives its processes.)
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches only the calling (child) process.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let output = self.output();
            let lines: Vec<&str> = output.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            eprintln!("--- last lines of {} ---\n{}", self.name, tail.join("\n"));
        }
    }
}

/// Files the API server reads: its serving certificate, the token file and the signing key.
struct Credentials {
    ca_pem: String,
}

impl Credentials {
    fn write(dir: &Path) -> Credentials {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "e2e control plane CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

        let serving_key = KeyPair::generate().unwrap();
        let serving_params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        let serving = serving_params.signed_by(&serving_key, &ca).unwrap();
        fs::write(dir.join("serving.crt"), serving.pem()).unwrap();
        fs::write(dir.join("serving.key"), serving_key.serialize_pem()).unwrap();

        // ECDSA P-256: kube-apiserver signs service-account tokens with ES256.
        let signing = KeyPair::generate().unwrap();
        fs::write(dir.join("sa.key"), signing.serialize_pem()).unwrap();
        fs::write(dir.join("sa.pub"), signing.public_key_pem()).unwrap();
        let mut tokens = format!("{ADMIN_TOKEN},e2e-admin,e2e-admin-uid,system:masters\n");
        for user in USERS {
            tokens.push_str(&format!("{},{user},{user}-uid\n", user_token(user)));
        }
        fs::write(dir.join("tokens.csv"), tokens).unwrap();
        fs::write(dir.join("ca.crt"), ca.pem()).unwrap();
        Credentials { ca_pem: ca.pem() }
    }
}

/// etcd + kube-apiserver + kube-controller-manager.
pub struct ControlPlane {
    pub assets: PathBuf,
    pub apiserver_port: u16,
    /// A kubeconfig for the admin (group system:masters).
    pub kubeconfig: PathBuf,
    ca_pem: String,
    controller_manager: Option<Process>,
    apiserver: Option<Process>,
    etcd: Option<Process>,
    etcd_url: String,
    // Last: removed after every process has stopped.
    dir: TempDir,
}

impl ControlPlane {
    pub fn start() -> ControlPlane {
        let assets = assets();
        let dir = TempDir::new("cognitive-operator-e2e");
        let credentials = Credentials::write(dir.path());
        let apiserver_port = free_port();
        let etcd_url = format!("http://127.0.0.1:{}", free_port());
        let mut plane = ControlPlane {
            assets,
            apiserver_port,
            kubeconfig: dir.path().join("admin.kubeconfig"),
            ca_pem: credentials.ca_pem,
            controller_manager: None,
            apiserver: None,
            etcd: None,
            etcd_url,
            dir,
        };
        plane.write_kubeconfig(&plane.kubeconfig.clone(), ADMIN_TOKEN);
        plane.start_etcd();
        plane.start_apiserver();
        plane.start_controller_manager();
        plane
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn binary(&self, name: &str) -> PathBuf {
        self.assets.join(name)
    }

    pub fn server_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.apiserver_port)
    }

    /// The `iss` of the service-account tokens this API server signs.
    pub fn service_account_issuer(&self) -> String {
        format!("{}/", self.server_url())
    }

    /// Writes a kubeconfig for `token` on this API server.
    pub fn write_kubeconfig(&self, path: &Path, token: &str) {
        let config = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: e2e\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: e2e\n  user:\n    token: {token}\ncontexts:\n- name: e2e\n  context: {{cluster: e2e, user: e2e, namespace: default}}\ncurrent-context: e2e\n",
            self.server_url(),
            self.dir().join("ca.crt").display(),
        );
        fs::write(path, config).expect("write a kubeconfig");
    }

    /// A kubeconfig for one of [`USERS`].
    pub fn user_kubeconfig(&self, user: &str) -> PathBuf {
        assert!(USERS.contains(&user), "{user} is not in the token file");
        let path = self.dir().join(format!("{user}.kubeconfig"));
        self.write_kubeconfig(&path, &user_token(user));
        path
    }

    fn start_etcd(&mut self) {
        let data = self.dir().join("etcd");
        let peer = format!("http://127.0.0.1:{}", free_port());
        let mut command = Command::new(self.binary("etcd"));
        command
            .arg(format!("--data-dir={}", data.display()))
            .arg(format!("--listen-client-urls={}", self.etcd_url))
            .arg(format!("--advertise-client-urls={}", self.etcd_url))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=default={peer}"))
            .arg("--unsafe-no-fsync=true")
            .arg("--log-level=warn");
        self.etcd = Some(Process::spawn("etcd", command, self.dir().join("etcd.log")));
    }

    fn start_apiserver(&mut self) {
        let dir = self.dir().to_path_buf();
        let file = |name: &str| dir.join(name).display().to_string();
        let mut command = Command::new(self.binary("kube-apiserver"));
        command
            .arg(format!("--etcd-servers={}", self.etcd_url))
            .arg(format!("--secure-port={}", self.apiserver_port))
            .arg("--bind-address=127.0.0.1")
            .arg("--advertise-address=127.0.0.1")
            .arg(format!("--cert-dir={}", file("certs")))
            .arg(format!("--tls-cert-file={}", file("serving.crt")))
            .arg(format!("--tls-private-key-file={}", file("serving.key")))
            .arg(format!("--token-auth-file={}", file("tokens.csv")))
            .arg("--authorization-mode=RBAC")
            .arg(format!(
                "--service-account-issuer={}",
                self.service_account_issuer()
            ))
            .arg(format!("--service-account-key-file={}", file("sa.pub")))
            .arg(format!(
                "--service-account-signing-key-file={}",
                file("sa.key")
            ))
            // Allocated, never contacted: no Service of these tests gets traffic.
            .arg("--service-cluster-ip-range=10.0.0.0/24")
            .arg("--disable-admission-plugins=ServiceAccount")
            .arg("--allow-privileged=true");
        let log = self.dir().join(format!(
            "kube-apiserver-{}.log",
            fs::read_dir(self.dir()).map(|d| d.count()).unwrap_or(0)
        ));
        self.apiserver = Some(Process::spawn("kube-apiserver", command, log));
        self.wait_until_ready();
    }

    fn start_controller_manager(&mut self) {
        let kubeconfig = self.kubeconfig.display().to_string();
        let mut command = Command::new(self.binary("kube-controller-manager"));
        command
            .arg(format!("--kubeconfig={kubeconfig}"))
            .arg(format!("--authentication-kubeconfig={kubeconfig}"))
            .arg(format!("--authorization-kubeconfig={kubeconfig}"))
            .arg("--controllers=garbage-collector-controller,namespace-controller,clusterrole-aggregation-controller")
            .arg("--leader-elect=false")
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--secure-port={}", free_port()))
            .arg(format!(
                "--cert-dir={}",
                self.dir().join("kcm-certs").display()
            ));
        self.controller_manager = Some(Process::spawn(
            "kube-controller-manager",
            command,
            self.dir().join("kube-controller-manager.log"),
        ));
    }

    /// Polls `/readyz` through kubectl until the API server answers ok.
    fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let answer = self.kubectl_output(&["get", "--raw", "/readyz"]);
            if answer.status.success() {
                return;
            }
            let apiserver = self.apiserver.as_mut().unwrap();
            assert!(
                !apiserver.has_exited(),
                "kube-apiserver exited:\n{}",
                apiserver.output()
            );
            assert!(
                Instant::now() < deadline,
                "kube-apiserver not ready within {READY_WITHIN:?}:\n{}",
                String::from_utf8_lossy(&answer.stderr)
            );
            // Polling a readiness endpoint, not standing in for one.
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Kills the API server (as a crash would: its graceful shutdown waits a minute for open
    /// watches) and starts it again on the same etcd data.
    pub fn restart_apiserver(&mut self) {
        if let Some(mut apiserver) = self.apiserver.take() {
            apiserver.kill();
        }
        self.start_apiserver();
    }

    /// A kube client for the admin.
    pub async fn client(&self) -> kube::Client {
        client_for(&self.kubeconfig).await
    }

    pub fn kubectl_output(&self, args: &[&str]) -> Output {
        self.kubectl_as(&self.kubeconfig, args)
    }

    pub fn kubectl_as(&self, kubeconfig: &Path, args: &[&str]) -> Output {
        kubectl_stdin(&self.binary("kubectl"), kubeconfig, args, "")
    }

    /// Runs kubectl as the admin and returns its standard output; panics with its error
    /// output when it fails.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let output = self.kubectl_output(args);
        assert!(
            output.status.success(),
            "kubectl {} failed:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Runs kubectl with `stdin` as its input (e.g. `apply -f -`).
    pub fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Output {
        kubectl_stdin(&self.binary("kubectl"), &self.kubeconfig, args, stdin)
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        // Stop in reverse order of start; the folder goes last (field order).
        self.controller_manager.take();
        self.apiserver.take();
        self.etcd.take();
    }
}

pub async fn client_for(kubeconfig: &Path) -> kube::Client {
    let config = kube::config::Kubeconfig::read_from(kubeconfig).expect("read the kubeconfig");
    let config =
        kube::Config::from_custom_kubeconfig(config, &kube::config::KubeConfigOptions::default())
            .await
            .expect("a client configuration");
    kube::Client::try_from(config).expect("a kube client")
}

/// kubectl with its discovery cache beside the kubeconfig (in the temporary folder), never in
/// ~/.kube: each control plane is new, and a cached discovery of an older one would mislead.
pub fn kubectl_stdin(kubectl: &Path, kubeconfig: &Path, args: &[&str], stdin: &str) -> Output {
    let cache = kubeconfig.with_extension("kubectl-cache");
    let flags = [
        format!("--kubeconfig={}", kubeconfig.display()),
        format!("--cache-dir={}", cache.display()),
    ];
    let mut all: Vec<&str> = flags.iter().map(String::as_str).collect();
    all.extend_from_slice(args);
    pipe(kubectl, &all, stdin)
}

/// Runs `program` with `stdin` as its standard input and collects its output.
pub fn pipe(program: &Path, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("run {}: {error}", program.display()));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}
