//! A process's roles: started in order from the settings over the stores they
//! share, run until the first signal (or until one stops by itself), stopped
//! in order. `projector gateway` runs one role this way, `up` all of them.

use std::future::Future;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use database::SchemaPolicy;
use service::Tenants;
use service::server::Shutdown;
use tokio::task::JoinSet;

use crate::listen::{bind, url_of};
use crate::role::Role;
use crate::settings::Settings;
use crate::signals::Signals;
use crate::stores::Stores;

/// Runs a one-role process until the first signal.
pub async fn run(role: Role, settings: Settings) -> Result<()> {
    let signals = Signals::install()?;
    let process = Process::start(role, settings).await?;
    for started in &process.started {
        println!("{}", started.line);
    }
    process.until_signal(signals).await
}

/// A role serving in this process.
pub struct Started {
    pub role: Role,
    pub url: String,
    /// What the role prints when it is up, such as `gateway       http://…`.
    pub line: String,
}

pub struct Process {
    pub started: Vec<Started>,
    shutdown: Shutdown,
    running: JoinSet<Result<()>>,
    stores: Stores,
    /// One set of tenants for every role of the process: a key guessed wrong
    /// at one role counts at the others.
    tenants: Option<Tenants>,
    /// How long the process answers 503 before its servers stop.
    drain_pause: Duration,
}

impl Process {
    /// Starts the roles of `role` in order: each one learns the URLs of those
    /// started before it. A role that cannot start stops the ones that did.
    pub async fn start(role: Role, mut settings: Settings) -> Result<Process> {
        let members = role.members(&settings);
        for member in &members {
            check(&settings, *member)?;
        }
        // `up` owns its stores: it brings them to this release's schema.
        let policy = match role {
            Role::Up => SchemaPolicy::Apply,
            _ => settings.policy(),
        };
        let stores = Stores::open(&members, &settings, policy).await?;
        let mut process = Process {
            started: Vec::new(),
            shutdown: Shutdown::new(),
            running: JoinSet::new(),
            stores,
            tenants: None,
            drain_pause: match role.waits_for_balancers() {
                true => Duration::from_secs(settings.drain_seconds),
                false => Duration::ZERO,
            },
        };
        for member in members {
            match process.start_role(member, role, &settings).await {
                Ok(started) => {
                    settings.learn(member, &started.url);
                    process.started.push(started);
                }
                Err(error) => {
                    if let Err(stopping) = process.stop().await {
                        tracing::warn!(
                            error = format!("{stopping:#}"),
                            "a role that started stopped with an error"
                        );
                    }
                    return Err(error);
                }
            }
        }
        Ok(process)
    }

    /// The URL `role` serves on, when it runs in this process.
    pub fn url(&self, role: Role) -> Option<&str> {
        let started = self.started.iter().find(|started| started.role == role)?;
        Some(&started.url)
    }

    /// Starts `role` as part of a `process` role's process, from `settings`.
    async fn start_role(
        &mut self,
        role: Role,
        process: Role,
        settings: &Settings,
    ) -> Result<Started> {
        let (address, name) = match role {
            Role::Gateway => (settings.gateway_addr, "gateway"),
            Role::Datasvc => (settings.datasvc_addr, "data service"),
            Role::Orchestrator => (settings.orchestrator_addr, "orchestrator"),
            Role::Worker => (settings.worker_addr, "worker"),
            Role::Up => bail!("up is every role, not one of them: start it with `projector up`"),
        };
        let listener = bind(address, name, &settings.listening()).await?;
        let url = url_of(&listener)?;
        let shutdown = self.shutdown.clone();
        let line = match role {
            Role::Gateway => {
                let config = settings.gateway(self.tenants(settings, "the gateway")?);
                self.spawn(gateway::run(
                    config,
                    self.stores.jobs()?,
                    listener,
                    shutdown,
                ));
                format!("gateway       {url}")
            }
            Role::Datasvc => {
                let config = settings.service()?;
                if config.access.allow_anonymous {
                    tracing::warn!(
                        "the data service answers callers without credentials (datasvc_allow_anonymous): any client that reaches it can read every portfolio"
                    );
                }
                self.spawn(datasvc::run(
                    config,
                    self.stores.data()?,
                    listener,
                    shutdown,
                ));
                format!("data service  {url}/api")
            }
            Role::Orchestrator => {
                let config = settings.orchestrator(self.tenants(settings, "the orchestrator")?);
                self.spawn(orchestrator::run(
                    config,
                    self.stores.reports()?,
                    listener,
                    shutdown,
                ));
                format!("orchestrator  {url}")
            }
            // `up` itself was refused above: it is never a member.
            Role::Worker | Role::Up => {
                // The only process on its node id: a crash's registration is its own.
                let config = settings.worker(process == Role::Up);
                let node_id = settings.node_id.clone();
                let running = worker::run(config, self.stores.jobs()?, listener, shutdown);
                self.spawn(async move {
                    running
                        .await
                        .with_context(|| format!("worker node {node_id:?} cannot run"))
                });
                format!("worker        {} {url}", settings.node_id)
            }
        };
        Ok(Started { role, url, line })
    }

    /// The process's tenants, made from the settings when `role` is the first to need them.
    fn tenants(&mut self, settings: &Settings, role: &str) -> Result<Tenants> {
        if let Some(tenants) = &self.tenants {
            return Ok(tenants.clone());
        }
        let tenants = settings.tenants(role)?;
        self.tenants = Some(tenants.clone());
        Ok(tenants)
    }

    fn spawn<E>(&mut self, role: impl Future<Output = Result<(), E>> + Send + 'static)
    where
        E: Into<anyhow::Error>,
    {
        self.running
            .spawn(async move { role.await.map_err(Into::into) });
    }

    /// Runs until the first signal, or until a role stops by itself (its
    /// store or its listener failed), then stops every role in order.
    pub async fn until_signal(mut self, signals: Signals) -> Result<()> {
        let outcome = tokio::select! {
            () = signals.first() => Ok(()),
            stopped = self.running.join_next() => match stopped {
                Some(Ok(Err(error))) => Err(error),
                Some(Err(error)) => Err(error).context("a role stopped unexpectedly"),
                Some(Ok(Ok(()))) | None => Ok(()),
            },
        };
        let stopped = self.stop().await;
        outcome.and(stopped)
    }

    /// Stops taking work (health answers 503), lets running jobs finish or
    /// gives them back, stops the servers, then closes the stores: nothing
    /// accepted is lost.
    pub async fn stop(mut self) -> Result<()> {
        self.shutdown.drain();
        tokio::join!(
            tokio::time::sleep(self.drain_pause),
            self.shutdown.drained()
        );
        self.shutdown.stop();
        let mut outcome = Ok(());
        while let Some(stopped) = self.running.join_next().await {
            let failed = match stopped {
                Ok(result) => result,
                Err(error) => Err(error).context("a role stopped unexpectedly"),
            };
            match (failed, &outcome) {
                (Err(error), Ok(())) => outcome = Err(error),
                (Err(error), Err(_)) => {
                    tracing::error!(error = format!("{error:#}"), "a role stopped with an error")
                }
                (Ok(()), _) => {}
            }
        }
        self.stores.close().await;
        outcome
    }
}

/// Refuses settings a role cannot use before any store is opened.
fn check(settings: &Settings, role: Role) -> Result<()> {
    match role {
        Role::Gateway => settings.tenants("the gateway").map(drop),
        Role::Orchestrator => settings.tenants("the orchestrator").map(drop),
        Role::Datasvc => settings.service().map(drop),
        Role::Worker | Role::Up => Ok(()),
    }
}
