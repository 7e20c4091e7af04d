//! Groups are read live from Google for each run and never stored (README, Decisions): the two
//! tables the first migration made for them were never written. Dropping them keeps the schema
//! saying what dirsync keeps.
//!
//! Contract: no release ever wrote or read these tables (their entities were never queried), so
//! an instance of the previous release keeps working without them (README, "Upgrades").

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Memberships first: they reference the groups.
        m.drop_table(Table::drop().table(GroupMemberships::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(DirectoryGroups::Table).to_owned())
            .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // As the first migration made them.
        m.create_table(
            Table::create()
                .table(DirectoryGroups::Table)
                .col(string(DirectoryGroups::DirectoryId).primary_key())
                .col(string(DirectoryGroups::Email))
                .col(string(DirectoryGroups::EmailKey).unique_key())
                .col(string(DirectoryGroups::Name))
                .col(timestamp_with_time_zone(DirectoryGroups::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(GroupMemberships::Table)
                .col(string(GroupMemberships::GroupId))
                .col(string(GroupMemberships::MemberId))
                .col(string(GroupMemberships::MemberType))
                .primary_key(
                    Index::create()
                        .col(GroupMemberships::GroupId)
                        .col(GroupMemberships::MemberId),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(GroupMemberships::Table, GroupMemberships::GroupId)
                        .to(DirectoryGroups::Table, DirectoryGroups::DirectoryId)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_group_memberships_member")
                .table(GroupMemberships::Table)
                .col(GroupMemberships::MemberId)
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum DirectoryGroups {
    Table,
    DirectoryId,
    Email,
    EmailKey,
    Name,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum GroupMemberships {
    Table,
    GroupId,
    MemberId,
    MemberType,
}
