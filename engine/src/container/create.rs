//! `create`: plan the container from its bundle, then clone the init into its namespaces,
//! put it in its cgroup and network, let it build its rootfs, and leave it waiting for
//! `start`. Every step is undone if a later one fails ([`Rollback`]).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use oci_spec::runtime::{ContainerState, LinuxIdMapping, Spec};

use super::state::{live_start_time, ContainerRecord};
use super::{bundle, ContainerError, Runtime};
use crate::cgroups::Cgroup;
use crate::network::{self, NetworkHandle, NetworkMode, NetworkRequest};
use crate::process::init::InitChannels;
use crate::process::sync::{self, Pipes, Report};
use crate::process::{self, InitPlan, ProcessError};
use crate::rootfs::RootfsPlan;
use crate::syscall::LinuxSyscall;
use crate::timings::{self, Injected, Timings, FAIL_AT_ENV};

/// `create`'s options (runc's flags).
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Write the init's pid here.
    pub pid_file: Option<PathBuf>,
    /// Test hook (see [`timings::FAIL_AT_ENV`]); read from the environment by default.
    pub fail_at: Option<String>,
}

impl CreateOptions {
    /// Options with the failure hook read from the environment.
    pub fn from_env(pid_file: Option<PathBuf>) -> Self {
        CreateOptions {
            pid_file,
            fail_at: std::env::var(FAIL_AT_ENV).ok(),
        }
    }
}

/// A created container, as its creator holds it.
#[derive(Debug)]
pub struct Created {
    /// The init's pid.
    pub pid: Pid,
    /// The init's report pipe: end-of-file once it exec'd (see `run`).
    pub report: File,
    /// Startup phases so far.
    pub timings: Timings,
    /// The container's state dir.
    pub state_dir: PathBuf,
}

/// Undoes a partial create, newest first: the init, the network, the cgroup, the state dir.
#[derive(Debug)]
struct Rollback {
    state_dir: PathBuf,
    child: Option<Pid>,
    cgroup: Option<Cgroup>,
    network: Option<NetworkHandle>,
}

impl Rollback {
    fn disarm(mut self) {
        self.child = None;
        self.network = None;
        self.cgroup = None;
        self.state_dir = PathBuf::new();
    }
}

impl Drop for Rollback {
    fn drop(&mut self) {
        if let Some(pid) = self.child.take() {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
        }
        if let Some(net) = self.network.take() {
            let _ = net.teardown();
        }
        if let Some(cg) = self.cgroup.take() {
            let _ = cg.destroy();
        }
        if !self.state_dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.state_dir);
        }
    }
}

/// What create works out before touching the host.
struct Plan {
    bundle: PathBuf,
    spec: Spec,
    init: InitPlan,
    network: network::NetworkMode,
    /// uid and gid mappings, with a user namespace.
    id_maps: Option<(Vec<LinuxIdMapping>, Vec<LinuxIdMapping>)>,
}

fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Writes the init's uid_map and gid_map (the engine is root: no setgroups dance needed).
fn write_id_maps(
    pid: Pid,
    maps: &(Vec<LinuxIdMapping>, Vec<LinuxIdMapping>),
) -> Result<(), ContainerError> {
    for (file, text) in [
        ("uid_map", map_text(&maps.0)),
        ("gid_map", map_text(&maps.1)),
    ] {
        let path = PathBuf::from(format!("/proc/{pid}/{file}"));
        std::fs::write(&path, text).map_err(|e| ContainerError::Io("writing", path, e))?;
    }
    Ok(())
}

fn plan(id: &str, bundle_path: &Path, state_dir: &Path) -> Result<Plan, ContainerError> {
    let (bundle, spec) = bundle::load(bundle_path)?;
    let (clone_flags, cgroup_ns) = process::plan::namespace_flags(&spec)?;
    let userns = clone_flags.contains(CloneFlags::CLONE_NEWUSER);
    let linux = spec.linux().clone().unwrap_or_default();
    let maps = (
        linux.uid_mappings().clone().unwrap_or_default(),
        linux.gid_mappings().clone().unwrap_or_default(),
    );
    if userns && (maps.0.is_empty() || maps.1.is_empty()) {
        return Err(ContainerError::Bundle(
            bundle,
            "a user namespace needs linux.uidMappings and linux.gidMappings".into(),
        ));
    }
    let hostname = spec.hostname().clone().filter(|h| !h.is_empty());
    if hostname.is_some() && !clone_flags.contains(CloneFlags::CLONE_NEWUTS) {
        return Err(ContainerError::Bundle(
            bundle,
            "hostname is set but there is no uts namespace".into(),
        ));
    }
    let network = bundle::network_mode(&spec, clone_flags.contains(CloneFlags::CLONE_NEWNET))?;
    let init = InitPlan {
        clone_flags,
        cgroup_ns,
        hostname,
        loopback_up: network.loopback_by_init(),
        rootfs: RootfsPlan {
            cgroup_dir: v2_base()
                .map(|b| b.join(bundle::cgroup_path(&spec, id).trim_start_matches('/'))),
            ..RootfsPlan::from_spec(&spec, &bundle, state_dir, userns)?
        },
        process: process::plan::process_plan(&spec)?,
    };
    let id_maps = userns.then_some(maps);
    Ok(Plan {
        bundle,
        spec,
        init,
        network,
        id_maps,
    })
}

fn hook(opts: &CreateOptions, phase: &str) -> Result<(), ContainerError> {
    match timings::injected(opts.fail_at.as_deref(), phase) {
        Injected::No => Ok(()),
        Injected::Fail => Err(ContainerError::Injected(phase.into())),
        Injected::Kill => {
            let _ = kill(Pid::this(), Signal::SIGKILL);
            Err(ContainerError::Injected(phase.into()))
        }
    }
}

fn make_state_dir(rt: &Runtime, id: &str) -> Result<PathBuf, ContainerError> {
    std::fs::create_dir_all(&rt.root)
        .map_err(|e| ContainerError::Io("creating", rt.root.clone(), e))?;
    let dir = rt.state_dir(id)?;
    match std::fs::create_dir(&dir) {
        Ok(()) => Ok(dir),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(ContainerError::Exists(id.into()))
        }
        Err(e) => Err(ContainerError::Io("creating", dir, e)),
    }
}

fn clone_init(
    plan: &InitPlan,
    pipes: Pipes,
    fifo: PathBuf,
    fail_at: Option<String>,
    cgroup: Option<&std::os::fd::OwnedFd>,
) -> Result<Spawned, ContainerError> {
    let Pipes {
        go_read,
        go_write,
        report_read,
        report_write,
    } = pipes;
    let (parent_go, parent_report) = (go_write.as_raw_fd(), report_read.as_raw_fd());
    let ch = InitChannels {
        go_read,
        report_write,
        exec_fifo: fifo,
        fail_at,
    };
    let cgroup = cgroup.map(std::os::fd::AsFd::as_fd);
    let (pid, placed) = process::clone::spawn(plan.clone_flags, cgroup, move || {
        // SAFETY: these are the engine's pipe ends, copied into this child by the clone; the
        // child never uses them, and closing them lets each side see the other's exit.
        unsafe {
            libc::close(parent_go);
            libc::close(parent_report);
        }
        process::init::run(plan, ch, &LinuxSyscall)
    })?;
    let pipes = Pipes2 {
        go_write,
        report: File::from(report_read),
    };
    Ok(Spawned { pid, placed, pipes })
}

/// The init as the engine holds it after the clone.
struct Spawned {
    pid: Pid,
    /// Born in its cgroup (clone3 CLONE_INTO_CGROUP).
    placed: bool,
    pipes: Pipes2,
}

/// The engine's ends of the pipes after the clone.
struct Pipes2 {
    go_write: std::os::fd::OwnedFd,
    report: File,
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn await_ready(report: &mut File) -> Result<Vec<timings::Phase>, ContainerError> {
    match sync::read_report(report)? {
        Some(Report::Ready(phases)) => Ok(phases),
        Some(Report::Error(msg)) => Err(ProcessError::InitFailed(msg).into()),
        None => Err(ProcessError::InitFailed("the init exited before it was ready".into()).into()),
    }
}

impl Runtime {
    /// Creates container `id` from the bundle at `bundle`; it waits for `start`.
    pub fn create(
        &self,
        id: &str,
        bundle: &Path,
        opts: &CreateOptions,
    ) -> Result<Created, ContainerError> {
        let state_dir = self.state_dir(id)?;
        let plan = plan(id, bundle, &state_dir)?;
        let state_dir = make_state_dir(self, id)?;
        let mut rollback = Rollback {
            state_dir: state_dir.clone(),
            child: None,
            cgroup: None,
            network: None,
        };
        let mut record = ContainerRecord {
            id: id.into(),
            status: ContainerState::Creating,
            pid: None,
            pid_start_time: None,
            bundle: plan.bundle.clone(),
            annotations: plan.spec.annotations().clone().unwrap_or_default(),
            created_unix: now_unix(),
            // Known before the cgroup exists, so that one save covers both (each save
            // replaces state.json, which costs a flush on ext4) and `delete --force` after
            // a crash finds the cgroup.
            cgroup_path: Some(bundle::cgroup_path(&plan.spec, id)),
            network: None,
        };
        record.save(&state_dir)?;
        let mut t = Timings::default();
        let created =
            self.create_steps(&plan, &state_dir, &mut record, &mut rollback, &mut t, opts)?;
        rollback.disarm();
        Ok(created)
    }

    fn create_steps(
        &self,
        plan: &Plan,
        dir: &Path,
        record: &mut ContainerRecord,
        rollback: &mut Rollback,
        t: &mut Timings,
        opts: &CreateOptions,
    ) -> Result<Created, ContainerError> {
        let fifo = Runtime::exec_fifo(dir);
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600))
            .map_err(|e| ContainerError::Io("creating fifo", fifo.clone(), e.into()))?;
        hook(opts, "cgroups")?;
        let since = Instant::now();
        create_cgroup(plan, &record.id, rollback)?;
        t.record("cgroups", since);

        hook(opts, "clone_namespaces")?;
        let since = Instant::now();
        let v2_dir = open_v2_dir(rollback.cgroup.as_ref());
        let init = clone_init(
            &plan.init,
            Pipes::new()?,
            fifo,
            opts.fail_at.clone(),
            v2_dir.as_ref(),
        )?;
        let (pid, mut pipes) = (init.pid, init.pipes);
        rollback.child = Some(pid);
        if let Some(maps) = &plan.id_maps {
            write_id_maps(pid, maps)?;
        }
        record.pid = Some(pid.as_raw());
        record.pid_start_time = live_start_time(pid.as_raw());
        record.save(dir)?;
        t.record("clone_namespaces", since);
        if let Some(cgroup) = &rollback.cgroup {
            join_cgroup(cgroup, pid, init.placed, t)?;
        }

        hook(opts, "network")?;
        let since = Instant::now();
        setup_network(plan, record, rollback, (dir, &self.root), pid)?;
        if !plan.init.loopback_up {
            // Otherwise the init times its own loopback setup as `network`.
            t.record("network", since);
        }

        sync::send_go(&pipes.go_write)?;
        t.phases.extend(await_ready(&mut pipes.report)?);
        self.finish_create(record, dir, opts, t)?;
        Ok(Created {
            pid,
            report: pipes.report,
            timings: t.clone(),
            state_dir: dir.into(),
        })
    }

    fn finish_create(
        &self,
        record: &mut ContainerRecord,
        dir: &Path,
        opts: &CreateOptions,
        t: &Timings,
    ) -> Result<(), ContainerError> {
        record.status = ContainerState::Created;
        record.save(dir)?;
        if let (Some(pid_file), Some(pid)) = (&opts.pid_file, record.pid) {
            std::fs::write(pid_file, pid.to_string())
                .map_err(|e| ContainerError::Io("writing pid file", pid_file.clone(), e))?;
        }
        t.save(dir)
            .map_err(|e| ContainerError::Io("writing", dir.join(timings::FILE_NAME), e))
    }
}

/// Moves the init into the parts of its cgroup that the clone did not put it in: the v1
/// hierarchies (v1 hosts, and hybrid ones where limits need v1 controllers), or every
/// hierarchy when CLONE_INTO_CGROUP was not available. Each move costs an RCU grace period
/// (9-25 ms on the build host), the largest single step of a start, so the step (and its
/// `cgroup_join` timing) is skipped when the clone has done everything.
fn join_cgroup(
    cgroup: &Cgroup,
    pid: Pid,
    placed: bool,
    t: &mut Timings,
) -> Result<(), ContainerError> {
    let since = Instant::now();
    match (placed, cgroup.has_v1_dirs()) {
        (true, false) => return Ok(()),
        (true, true) => cgroup.add_process_to_v1(pid.as_raw())?,
        (false, _) => cgroup.add_process(pid.as_raw())?,
    }
    t.record("cgroup_join", since);
    Ok(())
}

/// Where the host's cgroup v2 hierarchy is mounted (v2 and hybrid hosts).
fn v2_base() -> Option<PathBuf> {
    super::cgroup_root().ok()?.unified().map(Path::to_path_buf)
}

/// The container's cgroup v2 directory, opened for CLONE_INTO_CGROUP, when it has one.
fn open_v2_dir(cgroup: Option<&Cgroup>) -> Option<std::os::fd::OwnedFd> {
    let dir = File::options()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(cgroup?.unified_dir()?)
        .ok()?;
    Some(dir.into())
}

fn create_cgroup(plan: &Plan, id: &str, rollback: &mut Rollback) -> Result<(), ContainerError> {
    let path = bundle::cgroup_path(&plan.spec, id);
    let resources = plan
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref());
    rollback.cgroup = Some(Cgroup::create(&super::cgroup_root()?, &path, resources)?);
    Ok(())
}

fn setup_network(
    plan: &Plan,
    record: &mut ContainerRecord,
    rollback: &mut Rollback,
    (dir, state_root): (&Path, &Path),
    pid: Pid,
) -> Result<(), ContainerError> {
    let request = NetworkRequest {
        container_id: record.id.clone(),
        netns_pid: pid.as_raw(),
        state_root: state_root.into(),
    };
    let handle = network::setup_host_side(plan.network, &request)?;
    let undo = handle.mode == NetworkMode::Bridge;
    record.network = Some(handle.clone());
    rollback.network = Some(handle);
    // Only a bridge leaves host objects that `delete --force` must find after a crash;
    // otherwise the next save ("created") records the handle.
    if undo {
        record.save(dir)?;
    }
    Ok(())
}
