//! The `engine` command line (clap derive structs).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// isolab's docker-like container engine: build, import and unpack OCI images, and
/// manage named volumes. Images live in an OCI image layout under --root.
#[derive(Debug, Parser)]
#[command(name = "engine", version)]
pub struct Cli {
    /// Where images, the build cache and volumes are kept.
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
    /// List and remove named volumes (they outlive containers).
    #[command(subcommand)]
    Volume(VolumeCommand),
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
    /// Remove image names; blobs no image uses any more are deleted.
    Rm {
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
    /// The runc-compatible runtime that executes RUN steps.
    #[arg(long, default_value = "runc", value_name = "BIN")]
    pub runtime: PathBuf,
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
