//! `engine image ...`: calls into `engine::image` and prints the results.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use engine::image::build::{self, BuildOptions};
use engine::image::bundle;
use engine::image::import;
use engine::image::reference::Reference;
use engine::image::store::{Image, ImageStore};

use super::cli::{BuildArgs, ImageCommand, ImportArgs};

pub fn execute(root: &Path, cmd: &ImageCommand) -> Result<()> {
    let store = ImageStore::open(root)
        .with_context(|| format!("opening the image store under {}", root.display()))?;
    match cmd {
        ImageCommand::Build(args) => build_image(&store, args),
        ImageCommand::Import(args) => import_image(&store, args),
        ImageCommand::Ls => list(&store),
        ImageCommand::Inspect { image } => inspect(&store.resolve(image)?),
        ImageCommand::Rm { force, images } => {
            let frontend = engine::frontend::Frontend::new(root);
            for image in images {
                for name in frontend.remove_image(image, *force)? {
                    println!("Untagged: {name}");
                }
            }
            Ok(())
        }
        ImageCommand::Unpack { image, bundle } => {
            let image = store.resolve(image)?;
            bundle::unpack_bundle(&store, &image, bundle).with_context(|| {
                format!("unpacking {} into {}", image.short_id(), bundle.display())
            })?;
            println!("{}", bundle.display());
            Ok(())
        }
    }
}

fn build_image(store: &ImageStore, args: &BuildArgs) -> Result<()> {
    let tag: Reference = args.tag.parse()?;
    let containerfile = match &args.file {
        Some(file) => file.clone(),
        None => default_containerfile(&args.context),
    };
    let opts = BuildOptions {
        context: args.context.clone(),
        containerfile,
        tag,
        no_cache: args.no_cache,
        runtime: args.runtime.clone(),
    };
    build::build(store, &opts, &mut std::io::stdout().lock())?;
    Ok(())
}

fn default_containerfile(context: &Path) -> PathBuf {
    let containerfile = context.join("Containerfile");
    let dockerfile = context.join("Dockerfile");
    if !containerfile.exists() && dockerfile.exists() {
        dockerfile
    } else {
        containerfile
    }
}

fn import_image(store: &ImageStore, args: &ImportArgs) -> Result<()> {
    let tag = args
        .tag
        .as_deref()
        .map(str::parse::<Reference>)
        .transpose()?;
    for imported in import::import(store, &args.path, tag.as_ref())? {
        println!("Imported {} {}", imported.name, imported.id);
    }
    Ok(())
}

fn list(store: &ImageStore) -> Result<()> {
    println!(
        "{:<30} {:<12} {:<14} {:>7} {:>12}",
        "NAME", "TAG", "IMAGE ID", "LAYERS", "SIZE"
    );
    for image in store.list()? {
        let layers = image.manifest.layers().len();
        let size = image.size();
        let names: Vec<_> = image
            .names
            .iter()
            .filter_map(|n| n.parse::<Reference>().ok())
            .collect();
        for name in &names {
            println!(
                "{:<30} {:<12} {:<14} {:>7} {:>12}",
                name.name,
                name.tag,
                image.short_id(),
                layers,
                size
            );
        }
        if names.is_empty() {
            println!(
                "{:<30} {:<12} {:<14} {:>7} {:>12}",
                "<none>",
                "<none>",
                image.short_id(),
                layers,
                size
            );
        }
    }
    Ok(())
}

fn inspect(image: &Image) -> Result<()> {
    let doc = serde_json::json!({
        "id": image.id.to_string(),
        "names": image.names,
        "size": image.size(),
        "manifest": image.manifest,
        "config": image.config,
    });
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}
