//! `net`: TCP round-trip latency and stream throughput between the workload in the
//! model and a peer on the host (`workload net --serve 127.0.0.1:PORT`, run natively by
//! the harness). Container models join the host's network namespace for this scenario
//! so the peer on loopback is reachable; the fact `network` says so.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::Command;

use super::memory::stop;
use super::throughput::from_results;
use super::{run_to_exit, Ctx, Measured, Params, Scenario};
use crate::models::Placement;
use crate::process::Instance;

/// The net scenario.
#[derive(Debug)]
pub struct Net;

impl Scenario for Net {
    fn name(&self) -> &'static str {
        "net"
    }

    fn sample(&self, ctx: &Ctx<'_>, _params: &Params) -> Result<Measured, String> {
        let addr = free_loopback_port()?;
        let mut peer = start_peer(ctx, addr)?;
        let (trips, mib) = if ctx.quick {
            ("200", "8")
        } else {
            ("5000", "256")
        };
        let target = addr.to_string();
        let args = [
            "net",
            "--connect",
            &target,
            "--round-trips",
            trips,
            "--stream-mib",
            mib,
        ];
        let outcome = run_to_exit(ctx, &args, true);
        stop(&mut peer, Placement::Process);
        let finished = outcome?;
        let mut m = from_results(&finished.stdout, "net")?;
        if ctx.model.placement() == Placement::Container {
            m.facts
                .insert("network".into(), "host network namespace (loopback)".into());
        }
        m.absorb_phases(ctx.model.observe(&finished.stderr));
        Ok(m)
    }
}

/// A loopback address with a port that was free a moment ago.
fn free_loopback_port() -> Result<SocketAddr, String> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| format!("binding loopback: {e}"))?;
    l.local_addr()
        .map_err(|e| format!("reading the bound port: {e}"))
}

/// Starts the native peer and waits for its `READY` (printed once it listens).
fn start_peer(ctx: &Ctx<'_>, addr: SocketAddr) -> Result<Instance, String> {
    let mut cmd = Command::new(&ctx.tools.workload);
    cmd.args(["net", "--serve", &addr.to_string()]);
    let mut peer = Instance::spawn(cmd).map_err(|e| format!("net peer: {e}"))?;
    match peer.wait_ready(ctx.timeout) {
        Ok(_) => Ok(peer),
        Err(e) => Err(format!("the net peer on {addr} did not start: {e}")),
    }
}
