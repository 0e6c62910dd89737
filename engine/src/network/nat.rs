//! NAT out of the bridge subnet: IPv4 forwarding on, and iptables rules (tagged with the
//! comment `isolab`) that masquerade the subnet and accept forwarding through `isolab0`.
//! The rules are added once (checked with `-C` first) and removed with the bridge.

use std::process::Command;

use super::bridge::BRIDGE;
use super::ipam::{PREFIX_LEN, SUBNET};
use super::NetworkError;

/// `(table, chain, rule)` of every rule isolab adds.
fn rules() -> Vec<(&'static str, &'static str, Vec<String>)> {
    let subnet = format!("{SUBNET}/{PREFIX_LEN}");
    let tag = ["-m", "comment", "--comment", "isolab"].map(String::from);
    let rule = |args: &[&str]| {
        let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        v.extend(tag.iter().cloned());
        v
    };
    vec![
        (
            "nat",
            "POSTROUTING",
            rule(&["-s", &subnet, "!", "-o", BRIDGE, "-j", "MASQUERADE"]),
        ),
        ("filter", "FORWARD", rule(&["-i", BRIDGE, "-j", "ACCEPT"])),
        ("filter", "FORWARD", rule(&["-o", BRIDGE, "-j", "ACCEPT"])),
    ]
}

/// Runs `iptables -w -t TABLE OP CHAIN RULE...`; `Ok(false)` when it exits non-zero.
fn iptables(table: &str, op: &str, chain: &str, rule: &[String]) -> Result<bool, NetworkError> {
    let out = Command::new("iptables")
        .args(["-w", "-t", table, op, chain])
        .args(rule)
        .output();
    let out = match out {
        // Without iptables no rule of ours can exist.
        Err(e) if op == "-C" && e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(source) => {
            let what = "running iptables (is it installed?)".into();
            return Err(NetworkError::Nat {
                what,
                detail: source.to_string(),
            });
        }
        Ok(out) => out,
    };
    if op == "-C" || out.status.success() {
        return Ok(out.status.success());
    }
    Err(NetworkError::Nat {
        what: format!("iptables -t {table} {op} {chain} {}", rule.join(" ")),
        detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    })
}

/// Turns on forwarding and adds the rules that are missing. Forwarding stays on
/// afterwards: other software on the host may rely on it too.
pub(crate) fn ensure() -> Result<(), NetworkError> {
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").map_err(|e| NetworkError::Nat {
        what: "enabling /proc/sys/net/ipv4/ip_forward".into(),
        detail: e.to_string(),
    })?;
    for (table, chain, rule) in rules() {
        if !iptables(table, "-C", chain, &rule)? {
            iptables(table, "-A", chain, &rule)?;
        }
    }
    Ok(())
}

/// Removes every isolab rule (each as often as it is there).
pub(crate) fn remove() -> Result<(), NetworkError> {
    for (table, chain, rule) in rules() {
        while iptables(table, "-C", chain, &rule)? {
            iptables(table, "-D", chain, &rule)?;
        }
    }
    Ok(())
}

/// Whether the masquerade rule is installed.
pub fn masquerade_installed() -> Result<bool, NetworkError> {
    let (table, chain, rule) = rules().swap_remove(0);
    iptables(table, "-C", chain, &rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_names_the_bridge_and_carries_the_isolab_tag() {
        for (_, _, rule) in rules() {
            assert!(rule.iter().any(|a| a == BRIDGE), "{rule:?}");
            assert!(
                rule.ends_with(&["--comment".into(), "isolab".into()]),
                "{rule:?}"
            );
        }
        assert!(rules()[0].2.contains(&"10.213.0.0/24".to_owned()));
    }
}
