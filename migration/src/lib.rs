//! Database migrations. They run at server start and in every test, on SQLite and PostgreSQL.
//! A shipped migration is never edited: changes come as new migrations.
#![forbid(unsafe_code)]

pub use sea_orm_migration::prelude::*;

mod m20261127_000001_initial;
mod m20261129_000002_login_attempt_clients;
mod m20261129_000003_drop_stored_groups;

/// The ordered list of dirsync's migrations.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261127_000001_initial::Migration),
            Box::new(m20261129_000002_login_attempt_clients::Migration),
            Box::new(m20261129_000003_drop_stored_groups::Migration),
        ]
    }
}
