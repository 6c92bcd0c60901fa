//! The roles a process can take.

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
}
