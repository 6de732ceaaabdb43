//! How commands share the CPU: CPU slots are held while a command computes and given back while
//! it sleeps.

use rampart_engine::command::{CommandOutcome, run_in_slot};
use rampart_engine::slots::CpuSlots;
use std::path::Path;
use std::time::{Duration, Instant};

/// Runs `sh -c "echo $$ > pid; BODY; echo > done"` holding the only slot of a set, waits until
/// the script has written its pid, then waits for the slot and reports whether BODY was still
/// going when the slot came free. (Whether the process is alive would not do: it closes its
/// output, which gives the slot back, a moment before it becomes a zombie.)
fn slot_freed_while_running(body: &str) -> bool {
    let dir = tempfile::tempdir().expect("tmp");
    let pidfile = dir.path().join("pid");
    let donefile = dir.path().join("done");
    let slots = CpuSlots::new(1);
    let mut slot = slots.acquire(None).expect("free slot");
    std::thread::scope(|s| {
        let runner = s.spawn(|| {
            let argv = [
                "sh".to_string(),
                "-c".to_string(),
                format!(
                    "echo $$ > {}; {body}; echo > {}",
                    pidfile.display(),
                    donefile.display()
                ),
            ];
            run_in_slot(&argv, Duration::from_secs(60), None, Some(&mut slot))
        });
        while !std::fs::read_to_string(&pidfile).is_ok_and(|p| p.ends_with('\n')) {
            assert!(!runner.is_finished(), "the script never wrote its pid");
            std::thread::sleep(Duration::from_millis(5));
        }
        let _mine = slots
            .acquire(Some(Instant::now() + Duration::from_secs(60)))
            .expect("slot within a minute");
        let still_going = !donefile.exists();
        if still_going {
            // Done with it: end the script early.
            let pid = std::fs::read_to_string(&pidfile).expect("pid");
            let _ = std::process::Command::new("kill").arg(pid.trim()).status();
        }
        let outcome = runner.join().expect("runner");
        assert!(
            matches!(outcome, CommandOutcome::Exited { .. }),
            "{outcome:?}"
        );
        still_going
    })
}

#[test]
fn a_sleeping_command_gives_its_slot_back() {
    assert!(slot_freed_while_running("exec sleep 30"));
}

#[test]
fn a_computing_pipeline_keeps_its_slot_while_its_shell_waits() {
    // The outer shell and `cat` sleep; the inner shell computes.
    assert!(!slot_freed_while_running(
        "sh -c 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done' | cat"
    ));
}

#[test]
fn a_computing_command_keeps_its_slot_until_it_ends() {
    // A shell loop: runnable the whole time, however loaded the machine is.
    assert!(!slot_freed_while_running(
        "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"
    ));
}

/// Four checks whose commands append their number to `log`, scanned one at a time, with
/// `costs` (argv of check N → duration); returns the order the commands ran in and the report.
fn run_order(
    log: &Path,
    costs: &[(u32, u64)],
) -> (
    String,
    rampart_core::PolicyReport,
    rampart_engine::ScanContext,
) {
    use crate::engine::harness::{load, options, sca4};
    let _ = std::fs::remove_file(log);
    let argv = |n: u32| {
        vec![
            "sh".to_string(),
            "-c".to_string(),
            format!("echo {n} >> {}; echo ran", log.display()),
        ]
    };
    let rules: Vec<String> = (1..=4)
        .map(|n| format!("c:{} -> r:ran", shell_words(&argv(n))))
        .collect();
    let checks: Vec<(u32, &str, Vec<&str>)> = (1..=4u32)
        .map(|n| (n, "all", vec![rules[n as usize - 1].as_str()]))
        .collect();
    let refs: Vec<(u32, &str, &[&str])> = checks
        .iter()
        .map(|(n, c, r)| (*n, *c, r.as_slice()))
        .collect();
    let policy = load(&sca4(&refs));
    let mut expected = rampart_engine::costs::CommandCosts::new();
    for (n, ms) in costs {
        expected.record(Path::new("/"), &argv(*n), Duration::from_millis(*ms));
    }
    let ctx = rampart_engine::ScanContext::new(rampart_engine::ScanOptions {
        jobs: 1,
        command_slots: 1,
        ..options(Path::new("/"))
    })
    .with_command_costs(expected);
    let mut reports = rampart_engine::scan(&ctx, std::slice::from_ref(&policy), &|_, _| {});
    let order = std::fs::read_to_string(log)
        .expect("log")
        .split_whitespace()
        .collect();
    (order, reports.remove(0), ctx)
}

/// The SCA command line for `argv` (Wazuh tokenises on spaces, double quotes group).
fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if a.contains(' ') {
                format!("\"{a}\"")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn checks_behind_the_longest_commands_of_earlier_scans_start_first() {
    let dir = tempfile::tempdir().expect("tmp");
    let log = dir.path().join("order");
    // No history: policy order.
    let (order, plain, ctx) = run_order(&log, &[]);
    assert_eq!(order, "1234");
    // What this scan measured is what the next one orders by: every command, once.
    let measured = ctx.measured_costs();
    assert_eq!(measured.len(), 4, "{measured:?}");
    // History says check 3's command is slowest, then check 2's; unknown ones keep their order.
    let (order, costed, ctx) = run_order(&log, &[(3, 900), (2, 40)]);
    assert_eq!(order, "3214");
    // What is kept for the next scan: this scan's four measurements, replacing the earlier ones.
    let updated = ctx.updated_costs().expect("commands ran");
    assert_eq!(updated, ctx.measured_costs());
    // A scan that ran no command has nothing new to keep.
    let idle = rampart_engine::ScanContext::new(crate::engine::harness::options(Path::new("/")));
    assert!(idle.updated_costs().is_none());
    // Ordering never changes a result.
    let statuses = |r: &rampart_core::PolicyReport| {
        r.checks
            .iter()
            .map(|c| (c.id.clone(), c.status))
            .collect::<Vec<_>>()
    };
    assert_eq!(statuses(&plain), statuses(&costed));
    assert!(
        costed
            .checks
            .iter()
            .all(|c| c.status == rampart_core::Status::Pass)
    );
}
