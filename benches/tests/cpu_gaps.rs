//! `cpu_gaps`: one line per CPU measured, and a CPU it cannot pin to is an error (exit 2).

use std::process::Command;

fn cpu_gaps(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cpu_gaps"))
        .args(args)
        .output()
        .expect("run cpu_gaps")
}

#[test]
fn one_line_per_cpu_with_the_time_lost() {
    let cpus = outpost_runtime::affinity::current_thread_cpus().unwrap();
    let o = cpu_gaps(&["--secs", "0.05"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), cpus.len() + 1, "{out}");
    for (line, cpu) in lines[1..].iter().zip(&cpus) {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f[0], cpu.to_string(), "{line}");
        let lost: f64 = f[f.len() - 4].parse().unwrap();
        assert!((0.0..=100.0).contains(&lost), "{line}");
    }
}

#[test]
fn bad_cpu_or_duration_exits_2() {
    let o = cpu_gaps(&["--secs", "0.01", "--cpus", "4095"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("CPU 4095"));
    let o = cpu_gaps(&["--secs", "0"]);
    assert_eq!(o.status.code(), Some(2));
}
