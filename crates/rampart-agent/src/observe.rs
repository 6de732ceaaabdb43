//! What the host is talking to and serving, reported with each run so the server can match it
//! against threat intelligence: remote ends of established TCP connections and listening
//! sockets (`/proc/net/tcp`, `/proc/net/tcp6`), and the static resolver table (`/etc/hosts`,
//! where malware and adware like to pin names).
//!
//! Read under the scan root like every other file, so a mounted image reports its own
//! `/etc/hosts`. Bounded: files are read up to [`MAX_FILE_BYTES`], at most [`MAX_OBSERVABLES`]
//! are reported, and anything unparsable is skipped (it is evidence, not input to trust).

use std::collections::HashSet;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use rampart_core::fleet::{Observable, ObservableKind};

/// Observables reported per run, at most.
pub const MAX_OBSERVABLES: usize = 20_000;
/// Bytes read from one file, at most.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// TCP states in `/proc/net/tcp` (include/net/tcp_states.h).
const ESTABLISHED: &str = "01";
const LISTEN: &str = "0A";

fn read_capped(path: &Path) -> Option<String> {
    let f = std::fs::File::open(path).ok()?;
    let mut bytes = Vec::new();
    f.take(MAX_FILE_BYTES).read_to_end(&mut bytes).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// `0100007F:0035` (IPv4) or 32 hex digits + port (IPv6), as the kernel prints them: each
/// 32-bit word in the host's byte order, the port big-endian.
fn socket_addr(text: &str) -> Option<(IpAddr, u16)> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |hex: &str| u32::from_str_radix(hex, 16).ok().map(u32::to_ne_bytes);
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(addr)?)),
        32 => {
            let mut b = [0u8; 16];
            for (i, chunk) in b.chunks_mut(4).enumerate() {
                chunk.copy_from_slice(&word(addr.get(i * 8..i * 8 + 8)?)?);
            }
            let v6 = Ipv6Addr::from(b);
            match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            }
        }
        _ => return None,
    };
    Some((ip, port))
}

fn endpoint(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

fn boring(ip: IpAddr) -> bool {
    ip.is_unspecified() || ip.is_loopback()
}

/// Sockets of one `/proc/net/tcp`-format file.
fn sockets(text: &str, family: &str, out: &mut Vec<Observable>) {
    for line in text.lines().skip(1) {
        let mut f = line.split_whitespace();
        let (Some(_slot), Some(local), Some(remote), Some(state)) =
            (f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        let (Some((lip, lport)), Some((rip, rport))) = (socket_addr(local), socket_addr(remote))
        else {
            continue;
        };
        match state {
            ESTABLISHED if !boring(rip) => out.push(Observable {
                kind: ObservableKind::Connection,
                value: endpoint(rip, rport),
                context: format!(
                    "{family} {} -> {}",
                    endpoint(lip, lport),
                    endpoint(rip, rport)
                ),
            }),
            LISTEN if !lip.is_loopback() => out.push(Observable {
                kind: ObservableKind::Listener,
                value: endpoint(lip, lport),
                context: format!("{family} {} LISTEN", endpoint(lip, lport)),
            }),
            _ => {}
        }
    }
}

/// Names and addresses of an `/etc/hosts`-format file.
fn hosts(text: &str, shown: &str, out: &mut Vec<Observable>) {
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("");
        let mut f = line.split_whitespace();
        let Some(Ok(ip)) = f.next().map(str::parse::<IpAddr>) else {
            continue;
        };
        let names: Vec<&str> = f
            .filter(|name| {
                !(name.eq_ignore_ascii_case("localhost")
                    || name.starts_with("localhost.")
                    || name.starts_with("ip6-"))
            })
            .collect();
        let context = format!("{shown}:{} {}", n + 1, line.trim());
        for name in &names {
            out.push(Observable {
                kind: ObservableKind::Resolver,
                value: (*name).to_owned(),
                context: context.clone(),
            });
        }
        if !names.is_empty() && !boring(ip) {
            out.push(Observable {
                kind: ObservableKind::Resolver,
                value: ip.to_string(),
                context,
            });
        }
    }
}

/// Everything observable under `root`, deduplicated by (kind, value), at most
/// [`MAX_OBSERVABLES`].
pub fn observables(root: &Path) -> Vec<Observable> {
    let mut out = Vec::new();
    for (file, family) in [("proc/net/tcp", "tcp"), ("proc/net/tcp6", "tcp6")] {
        if let Some(text) = read_capped(&root.join(file)) {
            sockets(&text, family, &mut out);
        }
    }
    if let Some(text) = read_capped(&root.join("etc/hosts")) {
        hosts(&text, "/etc/hosts", &mut out);
    }
    let mut seen = HashSet::new();
    out.retain(|o| seen.insert((o.kind, o.value.clone())));
    if out.len() > MAX_OBSERVABLES {
        tracing::warn!(
            found = out.len(),
            kept = MAX_OBSERVABLES,
            "more observables than are reported; the rest are left out"
        );
        out.truncate(MAX_OBSERVABLES);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Lines as Linux 6.x on x86_64 prints them.
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 20 1 0 100 0 0 10 0
   1: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000   105        0 21 1 0 100 0 0 10 0
   2: 0500000A:D0EE CDE94B43:01BB 01 00000000:00000000 02:000A7F0C 00000000  1000        0 22 2 0 20 4 30 10 -1
   3: 0100007F:8F3A 0100007F:0CEA 01 00000000:00000000 00:00000000 00000000  1000        0 23 1 0 20 4 30 10 -1
   4: garbage line
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 30 1 0 100 0 0 10 0
   1: 0000000000000000FFFF00000500000A:D0F0 0000000000000000FFFF0000CDE94B43:0050 01 00000000:00000000 00:00000000 00000000  1000        0 31 1 0 20 4 30 10 -1
   2: B80D0120000000000000000001000000:D0F2 B80D0120000000000000000005000000:01BB 01 00000000:00000000 00:00000000 00000000  1000        0 32 1 0 20 4 30 10 -1
";

    #[test]
    fn sockets_decode_as_the_kernel_prints_them() {
        if cfg!(target_endian = "big") {
            return; // The fixture lines are little-endian words.
        }
        let mut out = Vec::new();
        sockets(TCP, "tcp", &mut out);
        sockets(TCP6, "tcp6", &mut out);
        let got: Vec<(ObservableKind, &str, &str)> = out
            .iter()
            .map(|o| (o.kind, o.value.as_str(), o.context.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    ObservableKind::Listener,
                    "0.0.0.0:22",
                    "tcp 0.0.0.0:22 LISTEN"
                ),
                (
                    ObservableKind::Connection,
                    "67.75.233.205:443",
                    "tcp 10.0.0.5:53486 -> 67.75.233.205:443"
                ),
                (ObservableKind::Listener, "[::]:22", "tcp6 [::]:22 LISTEN"),
                (
                    ObservableKind::Connection,
                    "67.75.233.205:80",
                    "tcp6 10.0.0.5:53488 -> 67.75.233.205:80"
                ),
                (
                    ObservableKind::Connection,
                    "[2001:db8::5]:443",
                    "tcp6 [2001:db8::1]:53490 -> [2001:db8::5]:443"
                ),
            ]
        );
    }

    #[test]
    fn hosts_entries_name_their_line() {
        let mut out = Vec::new();
        hosts(
            "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n\n# pinned\n203.0.113.9  update.evil.example  cdn.evil.example # added by installer\nnot-an-ip name\n",
            "/etc/hosts",
            &mut out,
        );
        let got: Vec<(&str, &str)> = out
            .iter()
            .map(|o| (o.value.as_str(), o.context.as_str()))
            .collect();
        let ctx = "/etc/hosts:5 203.0.113.9  update.evil.example  cdn.evil.example";
        assert_eq!(
            got,
            [
                ("update.evil.example", ctx),
                ("cdn.evil.example", ctx),
                ("203.0.113.9", ctx)
            ]
        );
    }

    #[test]
    fn a_root_without_these_files_reports_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert!(observables(dir.path()).is_empty());
    }
}
