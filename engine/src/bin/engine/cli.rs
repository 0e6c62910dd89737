//! The `engine` command line (clap derive structs).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// isolab's docker-like container engine: build, import and unpack OCI images, run them
/// as containers (overlay of shared image layers, namespaces, cgroup limits, networks,
/// volumes) and manage named volumes. Everything lives under --root.
const EXAMPLES: &str = "Examples:
  engine image build -t demo ./ctx          build ./ctx/Containerfile as demo:latest
  engine image import ./layout -t app:1     import an OCI layout (skopeo, umoci, buildah)
  engine image unpack demo ./bundle         then: runc run --bundle ./bundle demo1
  engine run --rm --memory 64m demo         run it with a memory limit
  engine run -d --name web -v data:/data demo
  engine logs web; engine stop web; engine rm web";

#[derive(Debug, Parser)]
#[command(name = "engine", version, after_help = EXAMPLES)]
pub struct Cli {
    /// Where images, the build cache, containers and volumes are kept (the runtime's
    /// state is in DIR/state, for `engine-oci --root DIR/state`).
    #[arg(
        long,
        global = true,
        default_value = "/var/lib/isolab",
        value_name = "DIR"
    )]
    pub root: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build, import, list, inspect, remove and unpack images.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Run an image as a container: in the foreground (exit status = the program's) or
    /// detached with -d.
    Run(RunArgs),
    /// List containers: running ones, or all with -a.
    Ps {
        /// Show stopped and exited containers too.
        #[arg(short, long)]
        all: bool,
    },
    /// Print the output of a detached container.
    Logs {
        /// Container id or name.
        container: String,
    },
    /// Stop containers: SIGTERM, then SIGKILL after the grace time.
    Stop {
        /// Seconds to wait after SIGTERM.
        #[arg(short = 't', long = "time", default_value_t = 10)]
        time: u64,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Remove containers (their writable layer goes with them; volumes stay).
    Rm {
        /// Kill and remove running containers too.
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// List and remove named volumes (they outlive containers).
    #[command(subcommand)]
    Volume(VolumeCommand),
}

/// The network a container gets.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Network {
    /// Its own network namespace with only loopback.
    None,
    /// The host's network namespace.
    Host,
    /// Its own namespace, a veth pair to the isolab bridge, an address and NAT.
    Bridge,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Run in the background and print the container id; see `engine logs`.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// The container's name (its id); random when not given.
    #[arg(long)]
    pub name: Option<String>,
    /// Memory limit, like 64m or 1g; the program is OOM-killed past it.
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// CPU limit in CPUs, like 0.5.
    #[arg(long, value_name = "CPUS")]
    pub cpus: Option<String>,
    /// Most processes and threads the container may have.
    #[arg(long, value_name = "N")]
    pub pids_limit: Option<i64>,
    /// The container's network.
    #[arg(long, value_enum, default_value = "none")]
    pub network: Network,
    /// A volume: HOST_PATH:DST or NAME:DST (named volume, created if needed), :ro for
    /// read-only.
    #[arg(short = 'v', long = "volume", value_name = "SRC:DST[:ro]")]
    pub volumes: Vec<String>,
    /// An environment variable over the image's.
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Print how long each startup step took, as a TIMINGS {json} line on stderr.
    #[arg(long)]
    pub timings: bool,
    /// NAME[:TAG] or image id.
    pub image: String,
    /// Replaces the image's CMD.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Build an image from a Containerfile (FROM, COPY, ADD, ENV, WORKDIR, ENTRYPOINT,
    /// CMD, LABEL, RUN); unchanged steps reuse their cached layer and say "Using cache".
    Build(BuildArgs),
    /// Import the images of an OCI image layout (a directory or a tar) made by skopeo,
    /// umoci, buildah or another tool.
    Import(ImportArgs),
    /// List images.
    Ls,
    /// Show an image's id, names, manifest and config as JSON.
    Inspect {
        /// NAME[:TAG], or an image id (or a unique prefix of one).
        image: String,
    },
    /// Remove image names; blobs and unpacked layers nothing uses any more are deleted.
    Rm {
        /// Remove it even if containers were made from it (they keep their layers).
        #[arg(short, long)]
        force: bool,
        /// NAME[:TAG] or image id; an id removes every name of that image.
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Write an OCI runtime bundle (rootfs/ + config.json) that runc can run:
    /// `runc run --bundle BUNDLE_DIR ID`.
    Unpack {
        /// NAME[:TAG] or image id.
        image: String,
        /// The bundle directory; created, or it must be empty.
        bundle: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Name of the image: NAME[:TAG] (the tag defaults to latest).
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub tag: String,
    /// The Containerfile (default: CONTEXT/Containerfile, else CONTEXT/Dockerfile).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Build every step, ignoring the build cache.
    #[arg(long)]
    pub no_cache: bool,
    /// A runc-compatible runtime binary (runc, crun) to execute RUN steps with,
    /// instead of isolab's own runtime.
    #[arg(long, value_name = "BIN")]
    pub runtime: Option<PathBuf>,
    /// The build context: COPY and ADD sources are taken from here.
    pub context: PathBuf,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Name for the image (needed when the layout does not name it).
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub tag: Option<String>,
    /// The OCI image layout: a directory with oci-layout and index.json, or a tar of one.
    pub path: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a named volume (engine run -v NAME:/path creates one too).
    Create {
        /// Letters, digits and _ . -
        name: String,
    },
    /// List named volumes.
    Ls,
    /// Remove named volumes and their data.
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
}
