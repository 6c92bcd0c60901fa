//! The roles a process can take.

use crate::settings::Settings;

/// A role: its command starts it, its settings are the keys it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    Gateway,
    Worker,
    Orchestrator,
    Datasvc,
    /// Every role in one process.
    Up,
}

impl Role {
    /// The role's name, as its command and `projector config --role` spell it.
    pub fn name(self) -> &'static str {
        match self {
            Role::Gateway => "gateway",
            Role::Worker => "worker",
            Role::Orchestrator => "orchestrator",
            Role::Datasvc => "datasvc",
            Role::Up => "up",
        }
    }

    /// The roles a process of this role runs, in the order they start: each
    /// after the ones it calls. `up` starts a data service unless
    /// `datasvc_url` names one elsewhere.
    pub fn members(self, settings: &Settings) -> Vec<Role> {
        match self {
            Role::Up => {
                let data_service = settings.datasvc_url.is_none().then_some(Role::Datasvc);
                data_service
                    .into_iter()
                    .chain([Role::Gateway, Role::Orchestrator, Role::Worker])
                    .collect()
            }
            alone => vec![alone],
        }
    }

    /// A process of this role that stops keeps answering 503 for
    /// `drain_seconds` first, so that load balancers stop sending to it. A
    /// worker's drain lasts as long as its running jobs instead.
    pub fn waits_for_balancers(self) -> bool {
        matches!(self, Role::Gateway | Role::Orchestrator | Role::Datasvc)
    }
}
