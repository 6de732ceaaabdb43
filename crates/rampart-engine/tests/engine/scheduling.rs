//! How commands share the CPU: CPU slots are held while a command computes and given back while
//! it sleeps.

use rampart_engine::command::{CommandOutcome, run_in_slot};
use rampart_engine::slots::CpuSlots;
use std::path::Path;
use std::time::{Duration, Instant};

/// Whether the process whose pid `sh` wrote to `pidfile` is alive and not a zombie.
fn alive(pidfile: &Path) -> bool {
    let Ok(pid) = std::fs::read_to_string(pidfile) else {
        return false;
    };
    std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).is_ok_and(|stat| {
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|s| s.split_whitespace().next());
        !matches!(state, Some("Z" | "X"))
    })
}

/// Runs `script` under `sh` holding the only slot of `slots`, waits until the script has written
/// its pid, then waits for the slot and reports whether the script was still running when the
/// slot came free.
fn slot_freed_while_running(script: &str) -> bool {
    let dir = tempfile::tempdir().expect("tmp");
    let pidfile = dir.path().join("pid");
    let slots = CpuSlots::new(1);
    let mut slot = slots.acquire(None).expect("free slot");
    std::thread::scope(|s| {
        let runner = s.spawn(|| {
            let argv = [
                "sh".to_string(),
                "-c".to_string(),
                format!("echo $$ > {}; {script}", pidfile.display()),
            ];
            run_in_slot(&argv, Duration::from_secs(60), None, Some(&mut slot))
        });
        while !pidfile.exists() || std::fs::read_to_string(&pidfile).expect("pid").is_empty() {
            assert!(!runner.is_finished(), "the script never wrote its pid");
            std::thread::sleep(Duration::from_millis(5));
        }
        let _mine = slots
            .acquire(Some(Instant::now() + Duration::from_secs(60)))
            .expect("slot within a minute");
        let running = alive(&pidfile);
        if running {
            // Done with it: end the script early.
            let pid = std::fs::read_to_string(&pidfile).expect("pid");
            let _ = std::process::Command::new("kill").arg(pid.trim()).status();
        }
        let outcome = runner.join().expect("runner");
        assert!(
            matches!(outcome, CommandOutcome::Exited { .. }),
            "{outcome:?}"
        );
        running
    })
}

#[test]
fn a_sleeping_command_gives_its_slot_back() {
    assert!(slot_freed_while_running("exec sleep 30"));
}

#[test]
fn a_computing_command_keeps_its_slot_until_it_ends() {
    // A shell loop: runnable the whole time, however loaded the machine is.
    assert!(!slot_freed_while_running(
        "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"
    ));
}
