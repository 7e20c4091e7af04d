//! Login attempts remember the client address that started them, so that the attempts one
//! client has open can be counted (and capped) with one indexed query.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Null for attempts that no client started (an administrator's auth test) and for those
        // stored before this migration.
        m.alter_table(
            Table::alter()
                .table(LoginAttempts::Table)
                .add_column(string_null(LoginAttempts::ClientKey))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_login_attempts_client")
                .table(LoginAttempts::Table)
                .col(LoginAttempts::ClientKey)
                .col(LoginAttempts::ExpiresAt)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("idx_login_attempts_client")
                .table(LoginAttempts::Table)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(LoginAttempts::Table)
                .drop_column(LoginAttempts::ClientKey)
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum LoginAttempts {
    Table,
    ClientKey,
    ExpiresAt,
}
