//! The built-in Linux baseline on fixture trees: a hardened Debian-like root passes every check,
//! a deliberately weak one fails every check (one documented exception), family by family; and
//! on the live host, selected checks agree with an independent look at the system.

use super::harness::*;
use rampart_core::{PolicyReport, Status};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn baseline() -> rampart_policy::Policy {
    rampart_policy::builtin::linux_baseline().expect("baseline compiles")
}

const SYSCTL_HARDENED: &[(&str, &str)] = &[
    ("net/ipv4/ip_forward", "0"),
    ("net/ipv4/conf/all/send_redirects", "0"),
    ("net/ipv4/conf/default/send_redirects", "0"),
    ("net/ipv4/conf/all/accept_redirects", "0"),
    ("net/ipv4/conf/default/accept_redirects", "0"),
    ("net/ipv4/conf/all/secure_redirects", "0"),
    ("net/ipv4/conf/default/secure_redirects", "0"),
    ("net/ipv4/conf/all/accept_source_route", "0"),
    ("net/ipv4/conf/default/accept_source_route", "0"),
    ("net/ipv4/conf/all/log_martians", "1"),
    ("net/ipv4/conf/default/log_martians", "1"),
    ("net/ipv4/icmp_echo_ignore_broadcasts", "1"),
    ("net/ipv4/icmp_ignore_bogus_error_responses", "1"),
    ("net/ipv4/conf/all/rp_filter", "1"),
    ("net/ipv4/conf/default/rp_filter", "2"),
    ("net/ipv4/tcp_syncookies", "1"),
    ("net/ipv6/conf/all/accept_ra", "0"),
    ("net/ipv6/conf/default/accept_ra", "0"),
    ("net/ipv6/conf/all/accept_redirects", "0"),
    ("net/ipv6/conf/default/accept_redirects", "0"),
    ("kernel/randomize_va_space", "2"),
    ("kernel/yama/ptrace_scope", "1"),
    ("fs/suid_dumpable", "0"),
    ("kernel/kptr_restrict", "1"),
    ("kernel/dmesg_restrict", "1"),
    ("fs/protected_hardlinks", "1"),
    ("fs/protected_symlinks", "1"),
    ("kernel/unprivileged_bpf_disabled", "2"),
];

fn dpkg(packages: &[&str]) -> String {
    packages
        .iter()
        .map(|p| format!("Package: {p}\nStatus: install ok installed\nVersion: 1.0\n\n"))
        .collect::<String>()
        + "Package: removed-thing\nStatus: deinstall ok config-files\n\n"
}

fn common(t: &Tree) {
    t.file(
        "/etc/os-release",
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n",
    );
}

fn hardened() -> Tree {
    let t = Tree::new();
    common(&t);
    t.file_mode(
        "/etc/ssh/sshd_config",
        "Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin no\nPermitEmptyPasswords no\nMaxAuthTries 4\n\
         HostbasedAuthentication no\nIgnoreRhosts yes\nX11Forwarding no\nClientAliveInterval 300\nClientAliveCountMax 3\n\
         LoginGraceTime 60\nLogLevel VERBOSE\nUsePAM yes\nCiphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com\n\
         MACs hmac-sha2-512-etm@openssh.com\nBanner /etc/issue.net\n",
        0o600,
    )
    .file("/etc/ssh/sshd_config.d/10-site.conf", "# site settings\n")
    .file("/etc/security/pwquality.conf", "minlen = 14\nminclass = 4\n")
    .file("/etc/security/faillock.conf", "deny = 5\nunlock_time = 900\n")
    .file_mode("/etc/security/opasswd", "", 0o600)
    .file(
        "/etc/pam.d/common-password",
        "password requisite pam_pwquality.so retry=3\npassword required pam_pwhistory.so remember=24 enforce_for_root use_authtok\n\
         password [success=1 default=ignore] pam_unix.so obscure use_authtok yescrypt\n",
    )
    .file("/etc/pam.d/common-auth", "auth [success=1 default=ignore] pam_unix.so\nauth requisite pam_deny.so\n")
    .file("/etc/pam.d/su", "auth sufficient pam_rootok.so\nauth required pam_wheel.so use_uid group=sugroup\n")
    .file(
        "/etc/login.defs",
        "ENCRYPT_METHOD YESCRYPT\nPASS_MAX_DAYS 365\nPASS_MIN_DAYS 1\nPASS_WARN_AGE 7\nUMASK 027\n",
    )
    .file("/etc/default/useradd", "SHELL=/bin/sh\nINACTIVE=45\n")
    .file_mode(
        "/etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nsync:x:4:65534:sync:/bin:/bin/sync\n\
         shutdown:x:6:0:shutdown:/sbin:/sbin/shutdown\nalice:x:1000:1000:Alice:/home/alice:/bin/bash\n",
        0o644,
    )
    .file_mode("/etc/passwd-", "root:x:0:0:root:/root:/bin/bash\n", 0o644)
    .file_mode("/etc/group", "root:x:0:\nshadow:x:42:\nsudo:x:27:alice\nalice:x:1000:\n", 0o644)
    .file_mode("/etc/group-", "root:x:0:\n", 0o644)
    .file_mode("/etc/shadow", "root:$y$j9T$abc:19000:1:365:7:45::\ndaemon:*:19000:0:99999:7:::\nalice:!:19000:1:365:7:45::\n", 0o640)
    .file_mode("/etc/shadow-", "root:$y$j9T$abc:19000:1:365:7:45::\n", 0o640)
    .file_mode("/etc/gshadow", "root:*::\n", 0o640)
    .file_mode("/etc/gshadow-", "root:*::\n", 0o640)
    .file_mode(
        "/etc/sudoers",
        "Defaults env_reset\nDefaults use_pty\nDefaults logfile=\"/var/log/sudo.log\"\nroot ALL=(ALL:ALL) ALL\n%sudo ALL=(ALL:ALL) ALL\n",
        0o440,
    )
    .dir("/etc/sudoers.d")
    .file_mode("/boot/grub/grub.cfg", "set timeout=5\n", 0o600)
    .file_mode("/etc/crontab", "SHELL=/bin/sh\n", 0o600)
    .file_mode("/etc/cron.allow", "root\n", 0o640)
    .file_mode("/etc/issue", "Authorised use only.\n", 0o644)
    .dir_mode("/var/log", 0o755)
    .file(
        "/etc/modprobe.d/rampart-hardening.conf",
        "install cramfs /bin/false\ninstall freevxfs /bin/false\ninstall hfs /bin/false\ninstall hfsplus /bin/false\n\
         install jffs2 /bin/false\ninstall udf /bin/false\ninstall usb-storage /bin/false\ninstall dccp /bin/false\n\
         install sctp /bin/false\ninstall rds /bin/false\ninstall tipc /bin/false\n",
    )
    .file("/proc/modules", "ext4 1048576 1 - Live 0x0000000000000000\n")
    .file(
        "/var/lib/dpkg/status",
        &dpkg(&["libpam-pwquality", "sudo", "chrony", "auditd", "cron", "rsyslog", "logrotate"]),
    )
    .file_mode(
        "/etc/audit/auditd.conf",
        "max_log_file_action = keep_logs\nspace_left_action = email\nadmin_space_left_action = single\n",
        0o640,
    )
    .file(
        "/etc/audit/rules.d/50-rampart.rules",
        "-a always,exit -F arch=b64 -S adjtimex,settimeofday,clock_settime -k time-change\n-w /etc/localtime -p wa -k time-change\n\
         -w /etc/passwd -p wa -k identity\n-w /etc/group -p wa -k identity\n-w /etc/shadow -p wa -k identity\n\
         -w /etc/gshadow -p wa -k identity\n-w /etc/sudoers -p wa -k scope\n-w /etc/sudoers.d -p wa -k scope\n\
         -w /var/log/lastlog -p wa -k logins\n-a always,exit -F arch=b64 -S init_module,finit_module,delete_module -k kernel_modules\n",
    )
    .file("/etc/audit/rules.d/99-finalize.rules", "-e 2\n")
    .file(
        "/proc/mounts",
        "/dev/vda1 / ext4 rw,relatime 0 0\ntmpfs /tmp tmpfs rw,nosuid,nodev,noexec,relatime 0 0\n\
         tmpfs /dev/shm tmpfs rw,nosuid,nodev,noexec 0 0\n/dev/vda2 /home ext4 rw,nodev,relatime 0 0\n\
         /dev/vda3 /var/tmp ext4 rw,nosuid,nodev,noexec 0 0\n/dev/vda4 /var/log ext4 rw,nosuid,nodev,noexec 0 0\n\
         /dev/vda5 /var/log/audit ext4 rw,nosuid,nodev,noexec 0 0\n",
    );
    for d in [
        "/etc/cron.hourly",
        "/etc/cron.daily",
        "/etc/cron.weekly",
        "/etc/cron.monthly",
        "/etc/cron.d",
    ] {
        t.dir_mode(d, 0o700);
    }
    t.dir("/var/log/journal")
        .file(
            "/etc/systemd/journald.conf",
            "[Journal]\nStorage=persistent\nCompress=yes\n",
        )
        .file("/etc/rsyslog.conf", "$FileCreateMode 0640\n")
        .file("/etc/logrotate.conf", "weekly\n")
        .file("/var/log/wtmp", "")
        .file("/var/log/btmp", "");
    for (k, v) in SYSCTL_HARDENED {
        t.file(&format!("/proc/sys/{k}"), &format!("{v}\n"));
    }
    t
}

fn weak() -> Tree {
    let t = Tree::new();
    common(&t);
    t.file_mode(
        "/etc/ssh/sshd_config",
        "PermitRootLogin yes\nPermitEmptyPasswords yes\nMaxAuthTries 6\nHostbasedAuthentication yes\nIgnoreRhosts no\n\
         X11Forwarding yes\nClientAliveInterval 0\nLoginGraceTime 120\nLogLevel QUIET\nUsePAM no\nCiphers aes128-cbc,aes256-ctr\n\
         MACs hmac-md5,hmac-sha2-256\n",
        0o644,
    )
    .file("/etc/security/pwquality.conf", "minlen = 8\nminclass = 1\n")
    .file("/etc/security/faillock.conf", "deny = 0\nunlock_time = 60\n")
    .file_mode("/etc/security/opasswd", "", 0o644)
    .file("/etc/pam.d/common-password", "password [success=1 default=ignore] pam_unix.so obscure sha512\n")
    .file("/etc/pam.d/common-auth", "auth [success=1 default=ignore] pam_unix.so nullok\n")
    .file("/etc/pam.d/su", "auth sufficient pam_rootok.so\n# auth required pam_wheel.so\n")
    .file("/etc/login.defs", "ENCRYPT_METHOD MD5\nPASS_MAX_DAYS 99999\nPASS_MIN_DAYS 0\nPASS_WARN_AGE 3\nUMASK 022\n")
    .file("/etc/default/useradd", "INACTIVE=-1\n")
    .file_mode(
        "/etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\ntoor:x:0:5:backdoor:/root:/bin/bash\ngames:x:5:0:games:/usr/games:/bin/bash\n\
         bob:$6$inline$hash:1001:1001::/home/bob:/bin/bash\n+::::::\n",
        0o666,
    )
    .file_mode("/etc/passwd-", "root:x:0:0:root:/root:/bin/bash\n", 0o666)
    .file_mode("/etc/group", "root:x:0:alice\n+:::\n", 0o664)
    .file_mode("/etc/group-", "root:x:0:\n", 0o666)
    .file_mode("/etc/shadow", "root:$1$md5:19000:0:99999:7:::\nbob::19000:0:99999:7:::\n", 0o644)
    .file_mode("/etc/shadow-", "root:x\n", 0o644)
    .file_mode("/etc/gshadow", "root:*::\n", 0o644)
    .file_mode("/etc/gshadow-", "root:*::\n", 0o644)
    .file_mode("/etc/sudoers", "root ALL=(ALL:ALL) ALL\n%sudo ALL=(ALL) NOPASSWD: ALL\n", 0o640)
    .file_mode("/boot/grub/grub.cfg", "set timeout=5\n", 0o644)
    .file_mode("/etc/crontab", "SHELL=/bin/sh\n", 0o644)
    .file_mode("/etc/issue", "Debian \\n \\l\n", 0o666)
    .dir_mode("/var/log", 0o777)
    .file("/proc/modules", "cramfs 1 0 - Live 0x0\nfreevxfs 1 0 - Live 0x0\nhfs 1 0 - Live 0x0\nhfsplus 1 0 - Live 0x0\njffs2 1 0 - Live 0x0\nudf 1 0 - Live 0x0\nusb_storage 1 0 - Live 0x0\n")
    .file(
        "/var/lib/dpkg/status",
        &dpkg(&["telnetd", "rsh-server", "nis", "tftpd-hpa", "xinetd", "vsftpd", "snmpd", "avahi-daemon", "rsync-daemon", "talk"]),
    )
    .file_mode("/etc/audit/auditd.conf", "max_log_file_action = rotate\nspace_left_action = ignore\nadmin_space_left_action = suspend\n", 0o666)
    .file("/etc/audit/rules.d/audit.rules", "-D\n-b 8192\n")
    .file(
        "/proc/mounts",
        "/dev/vda1 / ext4 rw 0 0\ntmpfs /tmp tmpfs rw,relatime 0 0\ntmpfs /dev/shm tmpfs rw 0 0\n/dev/vda2 /home ext4 rw 0 0\n/dev/vda3 /var/tmp ext4 rw,nodev 0 0\n",
    )
    .file("/etc/systemd/journald.conf", "[Journal]\nStorage=auto\nCompress=no\n")
    .file("/etc/rsyslog.conf", "$FileCreateMode 0644\n");
    for d in [
        "/etc/cron.hourly",
        "/etc/cron.daily",
        "/etc/cron.weekly",
        "/etc/cron.monthly",
        "/etc/cron.d",
    ] {
        t.dir_mode(d, 0o755);
    }
    for (k, v) in SYSCTL_HARDENED {
        let bad = match *v {
            "0" => "1",
            "2" => "0",
            _ => "0",
        };
        t.file(&format!("/proc/sys/{k}"), &format!("{bad}\n"));
    }
    t
}

fn families(r: &PolicyReport) -> BTreeMap<String, Vec<(String, Status, String)>> {
    let mut out: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for c in &r.checks {
        let fam = c.id.split('-').nth(1).unwrap_or("?").to_string();
        out.entry(fam).or_default().push((
            c.id.clone(),
            c.status,
            c.reason.clone().unwrap_or_default(),
        ));
    }
    out
}

#[test]
fn hardened_tree_passes_every_check_in_every_family() {
    if !is_root() {
        eprintln!(
            "SKIP hardened_tree_passes_every_check_in_every_family: needs root (fixture files must be owned by uid 0)"
        );
        return;
    }
    let t = hardened();
    let r = scan_root(&baseline(), t.path());
    assert!(r.requirements.as_ref().is_some_and(|q| q.satisfied));
    let fams = families(&r);
    for fam in [
        "SSH", "PAM", "ACCT", "PERM", "NET", "KRN", "MOD", "SVC", "AUD", "MNT", "CRON", "LOG",
    ] {
        let checks = fams.get(fam).unwrap_or_else(|| panic!("no {fam} family"));
        let bad: Vec<_> = checks
            .iter()
            .filter(|(_, s, _)| *s != Status::Pass)
            .collect();
        assert!(
            bad.is_empty(),
            "{fam}: not passing on the hardened tree: {bad:#?}"
        );
    }
    assert_eq!(r.summary.passed, r.summary.total);
}

#[test]
fn weak_tree_fails_every_check_in_every_family() {
    if !is_root() {
        eprintln!(
            "SKIP weak_tree_fails_every_check_in_every_family: needs root (fixture files must be owned by uid 0)"
        );
        return;
    }
    let t = weak();
    let r = scan_root(&baseline(), t.path());
    // /tmp is a separate mount on the weak tree (so that its options can be checked and fail).
    let exceptions = [("RMP-MNT-001", Status::Pass)];
    let fams = families(&r);
    for (fam, checks) in &fams {
        for (id, status, reason) in checks {
            let want = exceptions
                .iter()
                .find(|(e, _)| e == id)
                .map_or(Status::Fail, |(_, s)| *s);
            assert_eq!(*status, want, "{fam} {id}: {reason}");
        }
    }
}

#[test]
fn checks_without_their_subject_are_not_applicable() {
    let t = Tree::new();
    common(&t);
    let r = scan_root(&baseline(), t.path());
    for id in [
        "RMP-SSH-001",
        "RMP-PAM-004",
        "RMP-ACCT-010",
        "RMP-PERM-010",
        "RMP-AUD-002",
        "RMP-CRON-002",
        "RMP-MNT-002",
    ] {
        let (s, why) = result(&r, id);
        assert_eq!(s, Status::NotApplicable, "{id}");
        assert!(why.starts_with("does not apply:"), "{id}: {why}");
    }
    // Without /proc/sys in the tree, kernel parameters cannot be read.
    let (s, why) = result(&r, "RMP-NET-001");
    assert_eq!(s, Status::NotApplicable);
    assert!(why.contains("net.ipv4.ip_forward"), "{why}");
    // A root without an os-release file is not a Linux system the baseline knows.
    let empty = Tree::new();
    let r = scan_root(&baseline(), empty.path());
    assert!(r.requirements.as_ref().is_some_and(|q| !q.satisfied));
}

#[test]
fn live_host_answers_match_an_independent_look() {
    let r = scan_root(&baseline(), Path::new("/"));
    assert!(
        r.checks.iter().all(|c| c.status != Status::Error),
        "errors on the live host"
    );
    // /etc/passwd permissions, read directly.
    let m = std::fs::metadata("/etc/passwd").expect("/etc/passwd");
    let ok = m.mode() & 0o7133 == 0 && m.uid() == 0 && m.gid() == 0;
    assert_eq!(
        status(&r, "RMP-PERM-001"),
        if ok { Status::Pass } else { Status::Fail }
    );
    // IP forwarding, read directly.
    if let Ok(v) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward") {
        let want = if v.trim() == "0" {
            Status::Pass
        } else {
            Status::Fail
        };
        assert_eq!(status(&r, "RMP-NET-001"), want);
    }
    // UID 0 accounts, counted directly.
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read");
    let uid0 = passwd
        .lines()
        .filter(|l| l.split(':').nth(2) == Some("0"))
        .count();
    assert_eq!(
        status(&r, "RMP-ACCT-001"),
        if uid0 == 1 {
            Status::Pass
        } else {
            Status::Fail
        }
    );
    // Packages, from dpkg's own view when dpkg exists.
    if Path::new("/var/lib/dpkg/status").exists() {
        let installed = std::process::Command::new("dpkg-query")
            .args(["-W", "-f", "${Status}", "sudo"])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).ends_with(" installed"));
        assert_eq!(
            status(&r, "RMP-ACCT-009"),
            if installed {
                Status::Pass
            } else {
                Status::Fail
            }
        );
    }
}
