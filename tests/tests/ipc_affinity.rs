//! The IPC server's I/O thread pinned to a CPU (`ServerConfig::io_cpu`). Its own test binary:
//! it looks the thread up by name, which other tests' servers would share.

use outpost_runtime::ipc::proto::{ResultMsg, ServerMsg};
use outpost_runtime::ipc::{ResultServer, ServerConfig};
use outpost_tests::ipc_raw::Raw;

/// The CPUs the process's thread named `name` may run on, from `/proc` (`Cpus_allowed_list`).
fn thread_cpus(name: &str) -> Option<String> {
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let dir = task.ok()?.path();
        let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
        if comm.trim_end() == name {
            let status = std::fs::read_to_string(dir.join("status")).ok()?;
            return status
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .map(|v| v.trim().to_owned());
        }
    }
    None
}

#[test]
fn io_thread_pins_to_the_configured_cpu_or_bind_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.sock");
    let config = ServerConfig {
        io_cpu: Some(0),
        ..Default::default()
    };
    let server = ResultServer::bind(&path, config).unwrap();
    assert_eq!(thread_cpus("outpost-ipc").as_deref(), Some("0"));
    // Pinned, it still serves.
    let mut c = Raw::handshake_and_subscribe(&path);
    server
        .publisher()
        .publish(&ResultMsg {
            seq: 7,
            ..Default::default()
        })
        .unwrap();
    match c.recv() {
        Some(ServerMsg::Result(r)) => assert_eq!(r.seq, 7),
        other => panic!("got {other:?}"),
    }
    drop(c);
    drop(server);

    // A CPU that does not exist: a clear error, no thread left behind, no socket file.
    let config = ServerConfig {
        io_cpu: Some(100_000),
        ..Default::default()
    };
    let err = ResultServer::bind(&path, config).unwrap_err().to_string();
    assert!(err.contains("cannot pin the I/O thread"), "{err}");
    assert!(!path.exists(), "socket file removed");
    assert_eq!(thread_cpus("outpost-ipc"), None, "I/O thread gone");
}
