//! The container claim scenarios that need a shell in the image (container model only,
//! once each; the image is `/bin/busybox`, static, copied `FROM scratch`):
//! - `interference` (CLAIMS C8): two containers from one image run at once, each
//!   writes its own name to the same path `/shared`, waits, and reads it back:
//!   `isolated` = 1 when each read its own write.
//! - `volume` (CLAIMS C11): a container writes `/layer` (its writable layer) and
//!   `/data/file` (a named volume); a second container from the same image looks for
//!   both: `layer_write_survives`, `volume_write_survives`.

use std::path::Path;
use std::process::Command;

use super::{Ctx, Measured, Params, Scenario};
use crate::models::Model;
use crate::process::Instance;

/// Where the busybox binary is looked for.
pub const BUSYBOX: &str = "/bin/busybox";
const IMAGE: &str = "isolab-bench-shell";

/// Which of the two claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// C8: two containers from one image do not see each other's writes.
    Interference,
    /// C11: writes vanish with the container unless they are in a volume.
    Volume,
}

impl Scenario for Sharing {
    fn name(&self) -> &'static str {
        match self {
            Sharing::Interference => "interference",
            Sharing::Volume => "volume",
        }
    }

    fn once(&self) -> bool {
        true
    }

    fn applies_to(&self, model: &dyn Model) -> bool {
        model.name() == "container"
    }

    fn skip_for(&self, _model: &dyn Model) -> Option<String> {
        (!Path::new(BUSYBOX).is_file()).then(|| {
            format!("needs a static busybox at {BUSYBOX} (apt-get install busybox-static)")
        })
    }

    fn sample(&self, ctx: &Ctx<'_>, _params: &Params) -> Result<Measured, String> {
        let dir = ctx
            .scratch
            .join(format!("{}-{}", self.name(), super::next_id()));
        let root = dir.join("root");
        let outcome = build_shell_image(ctx, &dir).and_then(|()| match self {
            Sharing::Interference => interference(ctx, &root),
            Sharing::Volume => volume(ctx, &root),
        });
        let _ = std::fs::remove_dir_all(&dir);
        outcome
    }
}

/// `FROM scratch` + busybox, built under `dir/root`.
pub fn build_shell_image(ctx: &Ctx<'_>, dir: &Path) -> Result<(), String> {
    let context = dir.join("context");
    std::fs::create_dir_all(&context)
        .map_err(|e| format!("creating {}: {e}", context.display()))?;
    std::fs::copy(BUSYBOX, context.join("busybox"))
        .map_err(|e| format!("copying {BUSYBOX}: {e}"))?;
    let file = "FROM scratch\nCOPY busybox /bin/busybox\nCMD [\"/bin/busybox\", \"sh\"]\n";
    std::fs::write(context.join("Containerfile"), file)
        .map_err(|e| format!("writing the Containerfile: {e}"))?;
    let mut cmd = engine(ctx, &dir.join("root"));
    cmd.args(["image", "build", "-t", IMAGE]).arg(&context);
    crate::models::oci::run_quiet(cmd)
}

fn engine(ctx: &Ctx<'_>, root: &Path) -> Command {
    let mut cmd = Command::new(&ctx.tools.engine);
    cmd.arg("--root").arg(root);
    cmd
}

/// `engine run --rm [OPTIONS] IMAGE busybox sh -c SCRIPT`, started.
pub fn start(
    ctx: &Ctx<'_>,
    root: &Path,
    options: &[&str],
    script: &str,
) -> Result<Instance, String> {
    let mut cmd = engine(ctx, root);
    cmd.args(["run", "--rm"]).args(options).arg(IMAGE);
    cmd.args([BUSYBOX, "sh", "-c", script]);
    Instance::spawn(cmd).map_err(|e| e.to_string())
}

/// Waits for a container and returns its stdout; a failure is an error.
pub fn output(ctx: &Ctx<'_>, mut instance: Instance) -> Result<String, String> {
    let f = instance
        .wait_exit(ctx.timeout)
        .map_err(|e| format!("engine run: {e}"))?;
    if !f.success() {
        return Err(format!(
            "engine run ended with {}{}",
            f.status_text(),
            crate::process::tail(&f.stderr)
        ));
    }
    Ok(f.stdout)
}

fn interference(ctx: &Ctx<'_>, root: &Path) -> Result<Measured, String> {
    // Both write, then both wait long enough for the other's write to land, then read.
    let script =
        |name: &str| format!("echo {name} > /shared; {BUSYBOX} sleep 1; {BUSYBOX} cat /shared");
    let a = start(ctx, root, &[], &script("container-a"))?;
    let b = start(ctx, root, &[], &script("container-b"))?;
    let (seen_a, seen_b) = (output(ctx, a)?, output(ctx, b)?);
    let isolated = seen_a.trim() == "container-a" && seen_b.trim() == "container-b";
    let mut m = Measured::default();
    m.metric("isolated", if isolated { 1.0 } else { 0.0 }, "bool");
    m.facts.insert("a_read".into(), seen_a.trim().to_owned());
    m.facts.insert("b_read".into(), seen_b.trim().to_owned());
    Ok(m)
}

fn volume(ctx: &Ctx<'_>, root: &Path) -> Result<Measured, String> {
    let vol = format!("{}:/data", super::next_id());
    let write = "echo layer > /layer; echo volume > /data/file";
    output(ctx, start(ctx, root, &["-v", &vol], write)?)?;
    let read =
        format!("{BUSYBOX} cat /layer 2>/dev/null; {BUSYBOX} cat /data/file 2>/dev/null; true");
    let seen = output(ctx, start(ctx, root, &["-v", &vol], &read)?)?;
    let mut m = Measured::default();
    let has = |word: &str| seen.lines().any(|l| l.trim() == word);
    m.metric(
        "layer_write_survives",
        if has("layer") { 1.0 } else { 0.0 },
        "bool",
    );
    m.metric(
        "volume_write_survives",
        if has("volume") { 1.0 } else { 0.0 },
        "bool",
    );
    m.facts.insert(
        "second_container_read".into(),
        seen.trim().replace('\n', ", "),
    );
    Ok(m)
}
