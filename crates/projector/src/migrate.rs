//! `projector migrate`: brings the schemas the roles share to this release.

use anyhow::{Context, Result, bail};
use database::{Location, Pool, SchemaPolicy};

use crate::flags::StoreKind;
use crate::settings::Settings;

pub async fn migrate(settings: Settings, store: Option<StoreKind>) -> Result<()> {
    let Some(url) = &settings.database_url else {
        bail!(
            "migrate needs the database to bring up to date: pass --database-url, or set database_url (PROJECTOR_DATABASE_URL)"
        );
    };
    let location = Location::parse(url)?;
    let kinds = match (store, &location) {
        (Some(kind), _) => vec![kind],
        (None, Location::Postgres(_)) => vec![StoreKind::Jobs, StoreKind::Reports, StoreKind::Data],
        (None, Location::Sqlite(_)) => bail!(
            "a SQLite file holds one store: name it with --store jobs, --store reports or --store data"
        ),
    };
    for kind in kinds {
        let store = match kind {
            StoreKind::Jobs => &jobstore::STORE,
            StoreKind::Reports => &orchestrator::STORE,
            StoreKind::Data => &datasvc::STORE,
        };
        let pool = Pool::open(&location, store, SchemaPolicy::Apply, 1)
            .await
            .with_context(|| format!("cannot migrate the {}", store.name))?;
        pool.close().await;
        println!("{} at {location} is up to date", store.name);
    }
    Ok(())
}
