//! Database migrations. They run at server start and in every test, on SQLite and PostgreSQL.
//! A shipped migration is never edited: changes come as new migrations.
#![forbid(unsafe_code)]

pub use sea_orm_migration::prelude::*;

mod m20261127_000001_initial;
mod m20261129_000002_login_attempt_clients;
mod m20261129_000003_shared_limits_and_handovers;
mod m20261129_000004_notifications;
mod m20261129_000005_drop_stored_groups;
mod m20261129_000006_incremental_sync;
mod m20261130_000007_microsoft_entra;

/// The ordered list of dirsync's migrations.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261127_000001_initial::Migration),
            Box::new(m20261129_000002_login_attempt_clients::Migration),
            Box::new(m20261129_000003_shared_limits_and_handovers::Migration),
            Box::new(m20261129_000004_notifications::Migration),
            Box::new(m20261129_000005_drop_stored_groups::Migration),
            Box::new(m20261129_000006_incremental_sync::Migration),
            Box::new(m20261130_000007_microsoft_entra::Migration),
        ]
    }
}

#[cfg(test)]
mod tests {
    /// The upgrade policy (README, "Upgrades"): instances of the previous release keep running on
    /// a database this release migrated, so a migration only expands, unless it says it is the
    /// contract step of a change the previous release already stopped depending on.
    #[test]
    fn a_migration_that_drops_renames_or_retypes_says_it_is_a_contract_step() {
        const DESTRUCTIVE: &[&str] = &[
            "drop_table(",
            "drop_column(",
            "rename_table(",
            "rename_column(",
            "modify_column(",
            "truncate_table(",
        ];
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.starts_with('m') || !name.ends_with(".rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // Only `up` counts: `down` undoes, and is destructive by nature.
            let up = text
                .split("async fn up")
                .nth(1)
                .and_then(|rest| rest.split("async fn down").next())
                .unwrap_or_else(|| panic!("{name} has no `up`"));
            let found: Vec<_> = DESTRUCTIVE.iter().filter(|d| up.contains(*d)).collect();
            assert!(
                found.is_empty() || text.contains("//! Contract:"),
                "{name} runs {found:?} in `up` without a `//! Contract:` line naming the release \
                 that stopped using what it removes; old instances may still run on it"
            );
            checked += 1;
        }
        assert!(checked >= 3, "only {checked} migrations found in {dir:?}");
    }
}
