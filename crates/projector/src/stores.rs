//! Where each role keeps its store, and the stores a process opens for its roles.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use database::{Location, SchemaPolicy};
use datasvc::DataStore;
use jobstore::{AnyJobStore, JobStore, StoreOptions};
use orchestrator::ReportStore;

use crate::role::Role;
use crate::settings::Settings;

/// Creates `directory` (and its missing parents) readable by this user only.
/// Files are private by the process's umask ([`private_files`]).
pub fn create_dir(directory: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;

    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(directory)
        .with_context(|| format!("cannot create the directory {}", directory.display()))
}

/// Creates the data directory as [`create_dir`] does, and warns when an
/// existing one lets other users in: it holds customers' holdings and results.
pub fn create_data_dir(directory: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;

    create_dir(directory)?;
    let mode = std::fs::metadata(directory)
        .with_context(|| format!("cannot read the directory {}", directory.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        tracing::warn!(
            directory = %directory.display(),
            mode = format!("{:o}", mode & 0o777),
            "other users can open this data directory, which holds customers' holdings and results; make it private with `chmod 700`"
        );
    }
    Ok(())
}

/// Every file this process creates (stores, their `-wal` and `-shm`, the
/// cache) is readable and writable by this user only.
pub fn private_files() {
    // SAFETY: umask only sets the process's file-creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

pub const JOBS_FILE: &str = "jobs.sqlite";
pub const REPORTS_FILE: &str = "orchestrator.sqlite";
pub const DATA_FILE: &str = "datasvc.sqlite";

pub async fn open_job_store(
    location: &Location,
    policy: SchemaPolicy,
    max_connections: u32,
) -> Result<AnyJobStore> {
    let options = StoreOptions {
        policy,
        max_connections,
        ..StoreOptions::default()
    };
    AnyJobStore::open(location, options)
        .await
        .with_context(|| format!("cannot open the job store at {location}"))
}

pub async fn open_report_store(
    location: &Location,
    policy: SchemaPolicy,
    connections: u32,
) -> Result<ReportStore> {
    ReportStore::open(location, policy, connections)
        .await
        .with_context(|| format!("cannot open the report store at {location}"))
}

pub async fn open_data_store(
    location: &Location,
    policy: SchemaPolicy,
    settings: &Settings,
) -> Result<DataStore> {
    DataStore::open(
        location,
        policy,
        settings.customers,
        settings.datasvc_connections,
    )
    .await
    .with_context(|| format!("cannot open the data service store at {location}"))
}

/// The stores of a process's roles, each opened once: a gateway and a worker
/// in one process share one job store, with the connections of both.
pub struct Stores {
    jobs: Option<AnyJobStore>,
    reports: Option<ReportStore>,
    data: Option<DataStore>,
}

impl Stores {
    pub async fn open(roles: &[Role], settings: &Settings, policy: SchemaPolicy) -> Result<Stores> {
        let job_connections: u32 = roles
            .iter()
            .map(|role| match role {
                Role::Gateway => settings.gateway_connections,
                Role::Worker => settings.worker_connections,
                _ => 0,
            })
            .sum();
        let jobs = match job_connections {
            0 => None,
            connections => {
                let location = settings.location(JOBS_FILE)?;
                Some(open_job_store(&location, policy, connections).await?)
            }
        };
        let reports = match roles.contains(&Role::Orchestrator) {
            false => None,
            true => {
                let location = settings.location(REPORTS_FILE)?;
                let connections = settings.orchestrator_connections;
                Some(open_report_store(&location, policy, connections).await?)
            }
        };
        let data = match roles.contains(&Role::Datasvc) {
            false => None,
            true => {
                let location = settings.location(DATA_FILE)?;
                Some(open_data_store(&location, policy, settings).await?)
            }
        };
        Ok(Stores {
            jobs,
            reports,
            data,
        })
    }

    pub fn jobs(&self) -> Result<Arc<AnyJobStore>> {
        let jobs = self.jobs.clone().context(NOT_OPENED)?;
        Ok(Arc::new(jobs))
    }

    pub fn reports(&self) -> Result<ReportStore> {
        self.reports.clone().context(NOT_OPENED)
    }

    pub fn data(&self) -> Result<DataStore> {
        self.data.clone().context(NOT_OPENED)
    }

    /// Closes every store, after the roles that use them have stopped.
    pub async fn close(self) {
        if let Some(reports) = self.reports {
            reports.close().await;
        }
        if let Some(data) = self.data {
            data.close().await;
        }
        if let Some(jobs) = self.jobs {
            jobs.close().await;
        }
    }
}

const NOT_OPENED: &str =
    "a role started without the store it uses: this is a defect, please report it";
