//! OCI images: a content-addressed store (`store`), image names (`reference`), layers
//! (`layer` writes them, `unpack` extracts them safely), Containerfile builds
//! (`containerfile`, `build`, `run_step` for RUN), imports from other tools (`import`) and runnable OCI
//! bundles (`bundle`).

pub mod build;
pub mod bundle;
pub mod containerfile;
pub mod digest;
pub mod import;
pub mod layer;
pub mod reference;
pub mod run_step;
pub mod store;
pub mod unpack;
