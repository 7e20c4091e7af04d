//! The initial schema: every table of product.md §1.
//!
//! Case-insensitive uniqueness (user names, e-mail addresses) is enforced through `*_key`
//! columns holding the lower-cased value under a unique index: it works the same on SQLite and
//! PostgreSQL, and lookups use the index directly.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Users::Table)
                .col(uuid(Users::Id).primary_key())
                .col(string(Users::UserName))
                .col(string(Users::UserNameKey).unique_key())
                .col(string(Users::FullName))
                .col(string(Users::AuthMethod))
                .col(string_null(Users::DirectoryId).unique_key())
                .col(boolean(Users::Disabled))
                .col(text_null(Users::PasswordHash))
                .col(timestamp_with_time_zone(Users::CreatedAt))
                .col(timestamp_with_time_zone(Users::UpdatedAt))
                .col(timestamp_with_time_zone_null(Users::LastSyncedAt))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "idx_users_auth_method",
            Users::Table,
            &[Users::AuthMethod, Users::UserNameKey],
        )
        .await?;

        m.create_table(
            Table::create()
                .table(UserEmails::Table)
                .col(string(UserEmails::AddressKey).primary_key())
                .col(string(UserEmails::Address))
                .col(uuid(UserEmails::UserId))
                .col(string(UserEmails::Kind))
                .foreign_key(
                    ForeignKey::create()
                        .from(UserEmails::Table, UserEmails::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        index(
            m,
            "idx_user_emails_user",
            UserEmails::Table,
            &[UserEmails::UserId],
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ArchiveFolders::Table)
                .col(uuid(ArchiveFolders::Id).primary_key())
                .col(string(ArchiveFolders::Name))
                .col(uuid_null(ArchiveFolders::UserId).unique_key())
                .col(big_integer(ArchiveFolders::MessageCount).default(0))
                .col(timestamp_with_time_zone(ArchiveFolders::CreatedAt))
                .col(timestamp_with_time_zone_null(ArchiveFolders::DetachedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(ArchiveFolders::Table, ArchiveFolders::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::SetNull),
                )
                .to_owned(),
        )
        .await?;
        index(
            m,
            "idx_archive_folders_name",
            ArchiveFolders::Table,
            &[ArchiveFolders::Name],
        )
        .await?;

        m.create_table(
            Table::create()
                .table(UserPrivileges::Table)
                .col(uuid(UserPrivileges::UserId))
                .col(string(UserPrivileges::Privilege))
                .primary_key(
                    Index::create()
                        .col(UserPrivileges::UserId)
                        .col(UserPrivileges::Privilege),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(UserPrivileges::Table, UserPrivileges::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(FolderAccess::Table)
                .col(uuid(FolderAccess::UserId))
                .col(uuid(FolderAccess::FolderId))
                .col(boolean(FolderAccess::CanRead))
                .col(boolean(FolderAccess::CanWrite))
                .col(boolean(FolderAccess::CanDelete))
                .primary_key(
                    Index::create()
                        .col(FolderAccess::UserId)
                        .col(FolderAccess::FolderId),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(FolderAccess::Table, FolderAccess::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(FolderAccess::Table, FolderAccess::FolderId)
                        .to(ArchiveFolders::Table, ArchiveFolders::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        index(
            m,
            "idx_folder_access_folder",
            FolderAccess::Table,
            &[FolderAccess::FolderId],
        )
        .await?;

        m.create_table(
            Table::create()
                .table(DirectoryConfig::Table)
                .col(integer(DirectoryConfig::Id).primary_key())
                .col(string(DirectoryConfig::Provider))
                .col(string_null(DirectoryConfig::AdminEmail))
                .col(string_null(DirectoryConfig::CustomerId))
                .col(string_null(DirectoryConfig::Domain))
                .col(text(DirectoryConfig::SyncGroups))
                .col(boolean(DirectoryConfig::AutoDeleteUsers))
                .col(integer_null(DirectoryConfig::DeletionLimit))
                .col(integer_null(DirectoryConfig::ScheduleMinutes))
                .col(text(DirectoryConfig::DefaultPrivileges))
                .col(text(DirectoryConfig::DefaultFolderAccess))
                .col(string_null(DirectoryConfig::SaClientEmail))
                .col(string_null(DirectoryConfig::SaPrivateKeyId))
                .col(string_null(DirectoryConfig::SaClientId))
                .col(string_null(DirectoryConfig::SaProjectId))
                .col(string_null(DirectoryConfig::SaTokenUri))
                .col(text_null(DirectoryConfig::SaPrivateKey))
                .col(timestamp_with_time_zone(DirectoryConfig::UpdatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(OidcConfig::Table)
                .col(integer(OidcConfig::Id).primary_key())
                .col(string(OidcConfig::ClientId))
                .col(text_null(OidcConfig::ClientSecret))
                .col(string(OidcConfig::RedirectUri))
                .col(text(OidcConfig::AllowedDomains))
                .col(integer(OidcConfig::SessionTtlMinutes))
                .col(timestamp_with_time_zone(OidcConfig::UpdatedAt))
                .to_owned(),
        )
        .await?;

        // `active_slot` is 1 while a job is queued or running and NULL otherwise; its unique
        // index makes "at most one active job" a database guarantee, across server instances.
        m.create_table(
            Table::create()
                .table(SyncJobs::Table)
                .col(uuid(SyncJobs::Id).primary_key())
                .col(boolean(SyncJobs::DryRun))
                .col(string(SyncJobs::Trigger))
                .col(string(SyncJobs::Status))
                .col(integer_null(SyncJobs::ActiveSlot).unique_key())
                .col(string_null(SyncJobs::Phase))
                .col(big_integer(SyncJobs::UsersFetched).default(0))
                .col(big_integer(SyncJobs::GroupsFetched).default(0))
                .col(big_integer(SyncJobs::MembersFetched).default(0))
                .col(big_integer(SyncJobs::PagesFetched).default(0))
                .col(text_null(SyncJobs::Summary))
                .col(integer_null(SyncJobs::PlannedDeletions))
                .col(integer_null(SyncJobs::ConfirmDeletions))
                .col(string_null(SyncJobs::ErrorCode))
                .col(text_null(SyncJobs::ErrorMessage))
                .col(string(SyncJobs::RequestedBy))
                .col(timestamp_with_time_zone(SyncJobs::CreatedAt))
                .col(timestamp_with_time_zone_null(SyncJobs::StartedAt))
                .col(timestamp_with_time_zone_null(SyncJobs::FinishedAt))
                .col(string_null(SyncJobs::LeaseOwner))
                .col(timestamp_with_time_zone_null(SyncJobs::LeaseExpiresAt))
                .col(boolean(SyncJobs::CancelRequested).default(false))
                .col(integer(SyncJobs::Attempts).default(0))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "idx_sync_jobs_created",
            SyncJobs::Table,
            &[SyncJobs::CreatedAt, SyncJobs::Id],
        )
        .await?;

        m.create_table(
            Table::create()
                .table(SyncChanges::Table)
                .col(big_integer(SyncChanges::Id).auto_increment().primary_key())
                .col(uuid(SyncChanges::JobId))
                .col(string(SyncChanges::Kind))
                .col(string(SyncChanges::UserName))
                .col(string_null(SyncChanges::DirectoryId))
                .col(text(SyncChanges::Fields))
                .col(text_null(SyncChanges::Reason))
                .foreign_key(
                    ForeignKey::create()
                        .from(SyncChanges::Table, SyncChanges::JobId)
                        .to(SyncJobs::Table, SyncJobs::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        index(
            m,
            "idx_sync_changes_job",
            SyncChanges::Table,
            &[SyncChanges::JobId, SyncChanges::Id],
        )
        .await?;
        index(
            m,
            "idx_sync_changes_job_kind",
            SyncChanges::Table,
            &[SyncChanges::JobId, SyncChanges::Kind, SyncChanges::Id],
        )
        .await?;

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
        index(
            m,
            "idx_group_memberships_member",
            GroupMemberships::Table,
            &[GroupMemberships::MemberId],
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ApiKeys::Table)
                .col(uuid(ApiKeys::Id).primary_key())
                .col(string(ApiKeys::Name))
                .col(string(ApiKeys::Role))
                .col(string(ApiKeys::Prefix).unique_key())
                .col(string(ApiKeys::KeyHash))
                .col(string(ApiKeys::CreatedBy))
                .col(timestamp_with_time_zone(ApiKeys::CreatedAt))
                .col(timestamp_with_time_zone_null(ApiKeys::LastUsedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Sessions::Table)
                .col(uuid(Sessions::Id).primary_key())
                .col(string(Sessions::TokenHash).unique_key())
                .col(uuid(Sessions::UserId))
                .col(timestamp_with_time_zone(Sessions::CreatedAt))
                .col(timestamp_with_time_zone(Sessions::ExpiresAt))
                .col(timestamp_with_time_zone_null(Sessions::RevokedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Sessions::Table, Sessions::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        index(m, "idx_sessions_user", Sessions::Table, &[Sessions::UserId]).await?;

        m.create_table(
            Table::create()
                .table(AuthTests::Table)
                .col(uuid(AuthTests::Id).primary_key())
                .col(uuid(AuthTests::UserId))
                .col(string(AuthTests::Status))
                .col(text_null(AuthTests::Reason))
                .col(text(AuthTests::AuthorizationUrl))
                .col(string(AuthTests::CreatedBy))
                .col(timestamp_with_time_zone(AuthTests::CreatedAt))
                .col(timestamp_with_time_zone_null(AuthTests::FinishedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(AuthTests::Table, AuthTests::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;

        // The state is looked up by its hash; nonce and PKCE verifier are stored encrypted.
        m.create_table(
            Table::create()
                .table(LoginAttempts::Table)
                .col(uuid(LoginAttempts::Id).primary_key())
                .col(string(LoginAttempts::StateHash).unique_key())
                .col(text(LoginAttempts::Nonce))
                .col(text(LoginAttempts::PkceVerifier))
                .col(text_null(LoginAttempts::ReturnTo))
                .col(string_null(LoginAttempts::LoginHint))
                .col(uuid_null(LoginAttempts::AuthTestId))
                .col(timestamp_with_time_zone(LoginAttempts::CreatedAt))
                .col(timestamp_with_time_zone(LoginAttempts::ExpiresAt))
                .col(timestamp_with_time_zone_null(LoginAttempts::ConsumedAt))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "idx_login_attempts_expires",
            LoginAttempts::Table,
            &[LoginAttempts::ExpiresAt],
        )
        .await?;

        m.create_table(
            Table::create()
                .table(AuditEvents::Table)
                .col(big_integer(AuditEvents::Id).auto_increment().primary_key())
                .col(timestamp_with_time_zone(AuditEvents::OccurredAt))
                .col(string(AuditEvents::Actor))
                .col(string(AuditEvents::Action))
                .col(string(AuditEvents::TargetType))
                .col(string_null(AuditEvents::TargetId))
                .col(text(AuditEvents::Details))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            AuditEvents::Table.into_iden(),
            LoginAttempts::Table.into_iden(),
            AuthTests::Table.into_iden(),
            Sessions::Table.into_iden(),
            ApiKeys::Table.into_iden(),
            GroupMemberships::Table.into_iden(),
            DirectoryGroups::Table.into_iden(),
            SyncChanges::Table.into_iden(),
            SyncJobs::Table.into_iden(),
            OidcConfig::Table.into_iden(),
            DirectoryConfig::Table.into_iden(),
            FolderAccess::Table.into_iden(),
            UserPrivileges::Table.into_iden(),
            ArchiveFolders::Table.into_iden(),
            UserEmails::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}

async fn index<T: IntoIden + Copy + 'static, C: IntoIden + Copy + 'static>(
    m: &SchemaManager<'_>,
    name: &str,
    table: T,
    cols: &[C],
) -> Result<(), DbErr> {
    let mut idx = Index::create();
    idx.name(name).table(table);
    for c in cols {
        idx.col(*c);
    }
    m.create_index(idx.to_owned()).await
}

#[derive(DeriveIden, Clone, Copy)]
enum Users {
    Table,
    Id,
    UserName,
    UserNameKey,
    FullName,
    AuthMethod,
    DirectoryId,
    Disabled,
    PasswordHash,
    CreatedAt,
    UpdatedAt,
    LastSyncedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum UserEmails {
    Table,
    AddressKey,
    Address,
    UserId,
    Kind,
}

#[derive(DeriveIden, Clone, Copy)]
enum ArchiveFolders {
    Table,
    Id,
    Name,
    UserId,
    MessageCount,
    CreatedAt,
    DetachedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum UserPrivileges {
    Table,
    UserId,
    Privilege,
}

#[derive(DeriveIden, Clone, Copy)]
enum FolderAccess {
    Table,
    UserId,
    FolderId,
    CanRead,
    CanWrite,
    CanDelete,
}

#[derive(DeriveIden, Clone, Copy)]
enum DirectoryConfig {
    Table,
    Id,
    Provider,
    AdminEmail,
    CustomerId,
    Domain,
    SyncGroups,
    AutoDeleteUsers,
    DeletionLimit,
    ScheduleMinutes,
    DefaultPrivileges,
    DefaultFolderAccess,
    SaClientEmail,
    SaPrivateKeyId,
    SaClientId,
    SaProjectId,
    SaTokenUri,
    SaPrivateKey,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum OidcConfig {
    Table,
    Id,
    ClientId,
    ClientSecret,
    RedirectUri,
    AllowedDomains,
    SessionTtlMinutes,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum SyncJobs {
    Table,
    Id,
    DryRun,
    Trigger,
    Status,
    ActiveSlot,
    Phase,
    UsersFetched,
    GroupsFetched,
    MembersFetched,
    PagesFetched,
    Summary,
    PlannedDeletions,
    ConfirmDeletions,
    ErrorCode,
    ErrorMessage,
    RequestedBy,
    CreatedAt,
    StartedAt,
    FinishedAt,
    LeaseOwner,
    LeaseExpiresAt,
    CancelRequested,
    Attempts,
}

#[derive(DeriveIden, Clone, Copy)]
enum SyncChanges {
    Table,
    Id,
    JobId,
    Kind,
    UserName,
    DirectoryId,
    Fields,
    Reason,
}

#[derive(DeriveIden, Clone, Copy)]
enum DirectoryGroups {
    Table,
    DirectoryId,
    Email,
    EmailKey,
    Name,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum GroupMemberships {
    Table,
    GroupId,
    MemberId,
    MemberType,
}

#[derive(DeriveIden, Clone, Copy)]
enum ApiKeys {
    Table,
    Id,
    Name,
    Role,
    Prefix,
    KeyHash,
    CreatedBy,
    CreatedAt,
    LastUsedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Sessions {
    Table,
    Id,
    TokenHash,
    UserId,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum AuthTests {
    Table,
    Id,
    UserId,
    Status,
    Reason,
    AuthorizationUrl,
    CreatedBy,
    CreatedAt,
    FinishedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum LoginAttempts {
    Table,
    Id,
    StateHash,
    Nonce,
    PkceVerifier,
    ReturnTo,
    LoginHint,
    AuthTestId,
    CreatedAt,
    ExpiresAt,
    ConsumedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum AuditEvents {
    Table,
    Id,
    OccurredAt,
    Actor,
    Action,
    TargetType,
    TargetId,
    Details,
}
