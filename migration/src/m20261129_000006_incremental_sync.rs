//! Incremental sync (issue 15): a job has a kind (`full` or `incremental`) and, when an
//! incremental job had to run as a full one, why; the directory configuration has the
//! incremental schedule; and `directory_state` keeps what an incremental job starts from: the
//! admin-log cursor, the activities already applied within the overlap window, and the
//! directory as the last sync read it (the users in scope and the sync groups' membership
//! graph), so that an incremental job re-reads only what the log says changed and still plans
//! over the whole directory, exactly as a full sync would.
//!
//! An expand-only migration (see README, "Upgrades"): new columns with defaults that servers of
//! the previous migration set never name, and a new table they never read.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        for col in [
            string(SyncJobs::Kind).default("full").to_owned(),
            text_null(SyncJobs::FallbackReason).to_owned(),
        ] {
            m.alter_table(
                Table::alter()
                    .table(SyncJobs::Table)
                    .add_column(col)
                    .to_owned(),
            )
            .await?;
        }
        for col in [
            integer_null(DirectoryConfig::IncrementalSeconds).to_owned(),
            integer(DirectoryConfig::FullSyncHours)
                .default(24)
                .to_owned(),
            integer(DirectoryConfig::EventOverlapMinutes)
                .default(10)
                .to_owned(),
        ] {
            m.alter_table(
                Table::alter()
                    .table(DirectoryConfig::Table)
                    .add_column(col)
                    .to_owned(),
            )
            .await?;
        }
        m.create_table(
            Table::create()
                .table(DirectoryState::Table)
                .if_not_exists()
                .col(integer(DirectoryState::Id).primary_key())
                .col(timestamp_with_time_zone_null(DirectoryState::Cursor))
                .col(timestamp_with_time_zone_null(DirectoryState::NewestEventAt))
                .col(text(DirectoryState::Applied))
                .col(text_null(DirectoryState::Snapshot))
                .col(boolean_null(DirectoryState::EventsAvailable))
                .col(text_null(DirectoryState::EventsReason))
                .col(uuid_null(DirectoryState::LastIncrementalJobId))
                .col(timestamp_with_time_zone(DirectoryState::UpdatedAt))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(DirectoryState::Table).to_owned())
            .await?;
        for col in [
            DirectoryConfig::IncrementalSeconds,
            DirectoryConfig::FullSyncHours,
            DirectoryConfig::EventOverlapMinutes,
        ] {
            m.alter_table(
                Table::alter()
                    .table(DirectoryConfig::Table)
                    .drop_column(col)
                    .to_owned(),
            )
            .await?;
        }
        for col in [SyncJobs::Kind, SyncJobs::FallbackReason] {
            m.alter_table(
                Table::alter()
                    .table(SyncJobs::Table)
                    .drop_column(col)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum SyncJobs {
    Table,
    Kind,
    FallbackReason,
}

#[derive(DeriveIden)]
enum DirectoryConfig {
    Table,
    IncrementalSeconds,
    FullSyncHours,
    EventOverlapMinutes,
}

#[derive(DeriveIden)]
enum DirectoryState {
    Table,
    Id,
    Cursor,
    NewestEventAt,
    Applied,
    Snapshot,
    EventsAvailable,
    EventsReason,
    LastIncrementalJobId,
    UpdatedAt,
}
