//! Is a host port free, and if not, who holds it? Used by `lab up` before it creates a container
//! (Docker's own "address already in use" names neither the port's owner nor the fix) and by
//! `lab doctor`.
//!
//! "Free" is decided by binding the address, which is exactly what Docker will do. The holder is
//! looked up in `/proc` (Linux): the listening socket's inode in `/proc/net/tcp{,6}`, then the
//! process with that inode among its open files. Processes of other users stay anonymous unless
//! we run as root; the port is still reported as taken.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;

/// A process listening on a port, as far as `/proc` tells.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PortHolder {
    pub pid: Option<u32>,
    pub command: Option<String>,
}

impl std::fmt::Display for PortHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.command, self.pid) {
            (Some(c), Some(p)) => write!(f, "{c} (pid {p})"),
            (None, Some(p)) => write!(f, "pid {p}"),
            _ => f.write_str("another process (not visible to this user; try `sudo ss -ltnp`)"),
        }
    }
}

/// `Ok(())` when `ip:port` can be bound now; otherwise who holds it.
pub fn check_free(ip: &str, port: u16) -> Result<(), PortHolder> {
    let ip: IpAddr = ip.parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    match TcpListener::bind(SocketAddr::new(ip, port)) {
        // Dropped at once: the port is free again for Docker.
        Ok(_listener) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(holder_of(port)),
        Err(e) => {
            // Not ours to decide (e.g. no such address here): Docker will report it precisely.
            tracing::debug!(error = %e, %ip, port, "cannot test-bind the port");
            Ok(())
        }
    }
}

/// The process listening on TCP `port` (any local address), from `/proc`.
#[must_use]
pub fn holder_of(port: u16) -> PortHolder {
    let inodes: Vec<u64> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|table| listening_inodes(&table, port))
        .collect();
    for inode in inodes {
        if let Some(pid) = pid_with_socket(Path::new("/proc"), inode) {
            let command = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .ok()
                .map(|c| c.trim().to_string());
            return PortHolder {
                pid: Some(pid),
                command,
            };
        }
    }
    PortHolder {
        pid: None,
        command: None,
    }
}

/// Inodes of the sockets in LISTEN state on `port` in one `/proc/net/tcp*` table.
fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    const LISTEN: &str = "0A";
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            let local = fields.get(1)?;
            let state = fields.get(3)?;
            let inode = fields.get(9)?.parse::<u64>().ok()?;
            let local_port = u16::from_str_radix(local.rsplit(':').next()?, 16).ok()?;
            (local_port == port && *state == LISTEN && inode != 0).then_some(inode)
        })
        .collect()
}

/// The first process with `socket:[inode]` among its file descriptors.
fn pid_with_socket(proc_root: &Path, inode: u64) -> Option<u32> {
    let wanted = format!("socket:[{inode}]");
    for entry in std::fs::read_dir(proc_root).ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue; // gone, or another user's
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|target| target.as_os_str() == wanted.as_str()) {
                return Some(pid);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listening_sockets_from_a_proc_table() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:4E21 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 123456 1 0000000000000000 100 0 0 10 0
   1: 0100007F:4E21 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 20 4 30 10 -1
   2: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 999 1 0000000000000000 100 0 0 10 0";
        assert_eq!(listening_inodes(table, 0x4E21), vec![123_456]);
        assert_eq!(listening_inodes(table, 8080), vec![999]);
        assert!(listening_inodes(table, 9).is_empty());
    }

    #[test]
    fn a_bound_port_is_taken_and_names_this_process() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let holder = check_free("127.0.0.1", port).unwrap_err();
        assert_eq!(holder.pid, Some(std::process::id()));
        let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
        assert_eq!(holder.command.as_deref(), Some(comm.trim()));
        assert!(holder.to_string().contains(&format!("pid {}", std::process::id())));
        drop(listener);
        assert_eq!(check_free("127.0.0.1", port), Ok(()));
    }
}
