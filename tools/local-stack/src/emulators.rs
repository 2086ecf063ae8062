//! Starting the emulators (moto, localstripe, the fixture-backed Stripe) from the project's
//! venv on loopback ports. Each runs under emulators/supervise.py, which stops it when this
//! process ends, however it ends.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

/// A program of the emulator venv (`PSS_VENV`, default `<workspace>/.venv`). A missing venv
/// fails loudly: run `scripts/bootstrap`.
pub fn venv_bin(name: &str) -> PathBuf {
    let venv = std::env::var_os("PSS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv"));
    let path = venv.join("bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: run `scripts/bootstrap` to install the emulators",
        path.display()
    );
    path
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A running emulator process. Its supervisor stops it when this process exits.
pub struct Emulator {
    pub url: String,
    pub port: u16,
    _child: Mutex<Child>,
}

/// Starts `program args` under the supervisor and waits until `port` accepts connections.
pub fn start(program: PathBuf, args: &[String], port: u16) -> Emulator {
    let supervisor = workspace_root().join("tests/emulators/supervise.py");
    let mut child = Command::new(venv_bin("python"))
        .arg(supervisor)
        .arg(&program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut stderr) = child.stderr.take() {
                let _ = stderr.read_to_string(&mut err);
            }
            panic!("{} exited with {status}: {err}", program.display());
        }
        assert!(
            Instant::now() < deadline,
            "{} did not listen on {port}",
            program.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Drain stderr in the background so a chatty emulator never blocks on a full pipe.
    if let Some(mut stderr) = child.stderr.take() {
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    }
    Emulator {
        url: format!("http://127.0.0.1:{port}"),
        port,
        _child: Mutex::new(child),
    }
}

/// moto (DynamoDB), serving one request at a time (see tests/emulators/moto_serial.py).
pub fn start_moto(port: u16) -> Emulator {
    let script = workspace_root().join("tests/emulators/moto_serial.py");
    start(
        venv_bin("python"),
        &[
            script.display().to_string(),
            "--port".into(),
            port.to_string(),
        ],
        port,
    )
}

/// localstripe (Stripe with 2017 object shapes; sends signed webhooks).
pub fn start_localstripe(port: u16) -> Emulator {
    start(
        venv_bin("localstripe"),
        &["--port".into(), port.to_string(), "--from-scratch".into()],
        port,
    )
}

/// The fixture-backed Stripe; with `upstream`, everything it does not own goes there.
pub fn start_fake_stripe(port: u16, upstream: Option<&str>) -> Emulator {
    let script = workspace_root().join("tests/emulators/fake_stripe.py");
    let mut args = vec![
        script.display().to_string(),
        "--port".into(),
        port.to_string(),
    ];
    if let Some(url) = upstream {
        args.extend(["--upstream".to_owned(), url.to_owned()]);
    }
    start(venv_bin("python"), &args, port)
}
