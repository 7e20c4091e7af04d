//! Microsoft Entra ID as a second directory (issue 16): the directory configuration gains the
//! Entra tenant, the app registration's client id, whether guests are synced, and the app's
//! credential (a client secret, or a certificate and its private key; the secret and the key
//! encrypted like the Google key); `directory_state` gains the delta links an Entra incremental
//! job continues from.
//!
//! An expand-only migration (see README, "Upgrades"): new nullable columns, or columns with
//! defaults, that servers of the previous migration set never name.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        for col in [
            string_null(DirectoryConfig::TenantId).to_owned(),
            string_null(DirectoryConfig::EntraClientId).to_owned(),
            boolean(DirectoryConfig::IncludeGuests)
                .default(false)
                .to_owned(),
            string_null(DirectoryConfig::EntraCredentialKind).to_owned(),
            text_null(DirectoryConfig::EntraSecret).to_owned(),
            text_null(DirectoryConfig::EntraCertificatePem).to_owned(),
            string_null(DirectoryConfig::EntraThumbprint).to_owned(),
        ] {
            m.alter_table(
                Table::alter()
                    .table(DirectoryConfig::Table)
                    .add_column(col)
                    .to_owned(),
            )
            .await?;
        }
        m.alter_table(
            Table::alter()
                .table(DirectoryState::Table)
                .add_column(text_null(DirectoryState::DeltaLinks))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(DirectoryState::Table)
                .drop_column(DirectoryState::DeltaLinks)
                .to_owned(),
        )
        .await?;
        for col in [
            DirectoryConfig::TenantId,
            DirectoryConfig::EntraClientId,
            DirectoryConfig::IncludeGuests,
            DirectoryConfig::EntraCredentialKind,
            DirectoryConfig::EntraSecret,
            DirectoryConfig::EntraCertificatePem,
            DirectoryConfig::EntraThumbprint,
        ] {
            m.alter_table(
                Table::alter()
                    .table(DirectoryConfig::Table)
                    .drop_column(col)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum DirectoryConfig {
    Table,
    TenantId,
    EntraClientId,
    IncludeGuests,
    EntraCredentialKind,
    EntraSecret,
    EntraCertificatePem,
    EntraThumbprint,
}

#[derive(DeriveIden)]
enum DirectoryState {
    Table,
    DeltaLinks,
}
