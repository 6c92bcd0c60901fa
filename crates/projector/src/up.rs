//! `projector up`: every role in one process on fixed addresses.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, Result};
use clap::Args;

use crate::cluster::{Cluster, ClusterConfig, DataServiceAt};
use crate::listen::LimitArgs;
use crate::roles::{DatasvcAccessArgs, KeysArgs, WorkerTuning};
use crate::signals::Signals;
use crate::stores::{StoreArgs, create_dir};

/// The worker node of a one-machine deployment.
const NODE_ID: &str = "node-1";

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    stores: StoreArgs,
    #[arg(long, env = "PROJECTOR_GATEWAY_ADDR", default_value = "127.0.0.1:8000")]
    gateway_addr: SocketAddr,
    #[arg(long, env = "PROJECTOR_DATASVC_ADDR", default_value = "127.0.0.1:8080")]
    datasvc_addr: SocketAddr,
    /// Use a data service running elsewhere instead of starting one.
    #[arg(long, env = "PROJECTOR_DATASVC_URL", value_name = "URL")]
    datasvc_url: Option<String>,
    /// The token of the data service started here (one is generated when absent),
    /// or of the one at `--datasvc-url`.
    #[command(flatten)]
    datasvc_access: DatasvcAccessArgs,
    #[arg(
        long,
        env = "PROJECTOR_ORCHESTRATOR_ADDR",
        default_value = "127.0.0.1:3000"
    )]
    orchestrator_addr: SocketAddr,
    /// One is generated and kept in the data directory when no key is given.
    #[command(flatten)]
    keys: KeysArgs,
    #[command(flatten)]
    tuning: WorkerTuning,
    #[command(flatten)]
    limits: LimitArgs,
}

pub async fn up(args: UpArgs) -> Result<()> {
    let signals = Signals::install()?;
    let mut api_keys = args.keys.given();
    // A key is a secret: it is shown only on the start that generated it.
    let shown_key = if api_keys.is_empty() {
        let (key, shown) = kept_api_key(&args.stores.data_dir)?;
        api_keys.push(key);
        shown
    } else {
        "given in PROJECTOR_API_KEY or --api-key (not shown)".to_string()
    };
    let datasvc = match args.datasvc_url {
        Some(url) => DataServiceAt::External {
            url,
            token: args.datasvc_access.token(),
        },
        None => DataServiceAt::Embedded {
            address: args.datasvc_addr,
            access: args.datasvc_access,
        },
    };
    let mut worker = args.tuning.config(NODE_ID);
    // `up` is the only process on its node id: a crash's registration is its own.
    worker.reclaim_node_id = true;
    let mut cluster = Cluster::start(ClusterConfig {
        stores: args.stores.clone(),
        gateway_addr: args.gateway_addr,
        datasvc,
        orchestrator_addr: args.orchestrator_addr,
        worker,
        api_keys: api_keys.clone(),
        cache_ttl: args.tuning.cache_ttl(),
        limits: args.limits.limits(),
    })
    .await?;
    println!(
        "projector is up (data in {})",
        args.stores.data_dir.display()
    );
    println!("  gateway       {}", cluster.gateway_url);
    println!("  data service  {}/api", cluster.datasvc_url);
    println!("  orchestrator  {}", cluster.orchestrator_url);
    println!("  API key       {shown_key}");
    let outcome = tokio::select! {
        () = signals.first() => Ok(()),
        failed = cluster.worker_failed() => failed,
    };
    cluster.stop().await;
    outcome
}

/// The key generated on first start and kept in the data directory, readable
/// by this user only, and what to print of it: the key itself only when it was
/// just generated.
fn kept_api_key(data_dir: &Path) -> Result<(String, String)> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

    create_dir(data_dir)?;
    let path = data_dir.join("api-key");
    if let Ok(key) = std::fs::read_to_string(&path) {
        // Files written by earlier releases were readable by everyone.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot make {} private", path.display()))?;
        let shown = format!("kept in {} (not shown)", path.display());
        return Ok((key.trim().to_string(), shown));
    }
    let key = generate_key();
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut file| {
            file.write_all(format!("{key}\n").as_bytes())?;
            file.sync_all()
        })
        .with_context(|| format!("cannot write the API key to {}", path.display()))?;
    Ok((key.clone(), key))
}

pub fn generate_key() -> String {
    use rand::Rng;
    let bytes: [u8; 24] = rand::rng().random();
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
