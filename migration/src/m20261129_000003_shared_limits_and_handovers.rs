//! Several instances on one database (issue 17): the per-client limits on sign-in starts and on
//! failed authentication live in a table that every instance updates, so that N instances do
//! not give a client N times the allowance; and a sync job counts the times an instance that
//! was stopped handed it over to another.
//!
//! An expand-only migration (see README, "Upgrades"): a new table, and a column with a default
//! that servers of the previous migration set never name and do not need to.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One token bucket per limit and client. Times are Unix seconds as floating point, so
        // that the refill is one arithmetic expression on both databases.
        m.create_table(
            Table::create()
                .table(RateLimitBuckets::Table)
                .if_not_exists()
                .col(string(RateLimitBuckets::Scope))
                .col(string(RateLimitBuckets::BucketKey))
                .col(double(RateLimitBuckets::Tokens))
                .col(double(RateLimitBuckets::UpdatedAt))
                .col(integer(RateLimitBuckets::Allowed))
                .primary_key(
                    Index::create()
                        .col(RateLimitBuckets::Scope)
                        .col(RateLimitBuckets::BucketKey),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_rate_limit_buckets_updated")
                .table(RateLimitBuckets::Table)
                .col(RateLimitBuckets::UpdatedAt)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(SyncJobs::Table)
                .add_column(integer(SyncJobs::Handovers).default(0))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(SyncJobs::Table)
                .drop_column(SyncJobs::Handovers)
                .to_owned(),
        )
        .await?;
        m.drop_table(Table::drop().table(RateLimitBuckets::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum RateLimitBuckets {
    Table,
    Scope,
    BucketKey,
    Tokens,
    UpdatedAt,
    Allowed,
}

#[derive(DeriveIden)]
enum SyncJobs {
    Table,
    Handovers,
}
