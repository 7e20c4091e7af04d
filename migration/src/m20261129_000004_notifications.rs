//! Notifications: the webhook endpoints an administrator configures, and the log of deliveries,
//! which is also their queue. Deliveries live in the database so that a restart, or another
//! instance on the same PostgreSQL, carries on with the pending ones; a delivery is claimed with
//! a lease (as sync jobs are), so that no two instances send it at once.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(NotificationEndpoints::Table)
                .col(uuid(NotificationEndpoints::Id).primary_key())
                .col(text(NotificationEndpoints::Url))
                // A JSON list of event types.
                .col(text(NotificationEndpoints::Events))
                // Encrypted, bound to its row (`notification_endpoints.secret:<id>`).
                .col(text(NotificationEndpoints::Secret))
                .col(boolean(NotificationEndpoints::OnlyWhenChanged).default(false))
                .col(timestamp_with_time_zone(NotificationEndpoints::CreatedAt))
                .col(timestamp_with_time_zone(NotificationEndpoints::UpdatedAt))
                .to_owned(),
        )
        .await?;
        // No foreign key to the endpoint: the log outlives an endpoint that is removed.
        m.create_table(
            Table::create()
                .table(NotificationDeliveries::Table)
                .col(uuid(NotificationDeliveries::Id).primary_key())
                .col(uuid(NotificationDeliveries::EndpointId))
                .col(uuid_null(NotificationDeliveries::JobId))
                .col(string(NotificationDeliveries::EventType))
                // The exact bytes sent at every attempt.
                .col(text(NotificationDeliveries::Body))
                .col(string(NotificationDeliveries::Status))
                .col(integer(NotificationDeliveries::Attempts).default(0))
                .col(text_null(NotificationDeliveries::LastError))
                .col(timestamp_with_time_zone(NotificationDeliveries::CreatedAt))
                .col(timestamp_with_time_zone_null(
                    NotificationDeliveries::DeliveredAt,
                ))
                // When the next attempt is due; null once delivered or given up.
                .col(timestamp_with_time_zone_null(
                    NotificationDeliveries::NextAttemptAt,
                ))
                .col(string_null(NotificationDeliveries::LeaseOwner))
                .col(timestamp_with_time_zone_null(
                    NotificationDeliveries::LeaseExpiresAt,
                ))
                .to_owned(),
        )
        .await?;
        // One delivery of a job's event per endpoint, however many workers see the job end.
        m.create_index(
            Index::create()
                .name("idx_notification_deliveries_job_event")
                .table(NotificationDeliveries::Table)
                .col(NotificationDeliveries::EndpointId)
                .col(NotificationDeliveries::EventType)
                .col(NotificationDeliveries::JobId)
                .unique()
                .to_owned(),
        )
        .await?;
        // The senders' question: what is due now.
        m.create_index(
            Index::create()
                .name("idx_notification_deliveries_due")
                .table(NotificationDeliveries::Table)
                .col(NotificationDeliveries::Status)
                .col(NotificationDeliveries::NextAttemptAt)
                .to_owned(),
        )
        .await?;
        // The log, newest first.
        m.create_index(
            Index::create()
                .name("idx_notification_deliveries_created")
                .table(NotificationDeliveries::Table)
                .col(NotificationDeliveries::CreatedAt)
                .col(NotificationDeliveries::Id)
                .to_owned(),
        )
        .await?;
        // `dirsync_users` counts users by these two columns at every scrape: an index that holds
        // both answers it without reading the table (PostgreSQL's index-only scan).
        m.create_index(
            Index::create()
                .name("idx_users_auth_method_disabled")
                .table(Users::Table)
                .col(Users::AuthMethod)
                .col(Users::Disabled)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("idx_users_auth_method_disabled")
                .table(Users::Table)
                .to_owned(),
        )
        .await?;
        m.drop_table(
            Table::drop()
                .table(NotificationDeliveries::Table)
                .to_owned(),
        )
        .await?;
        m.drop_table(Table::drop().table(NotificationEndpoints::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum NotificationEndpoints {
    Table,
    Id,
    Url,
    Events,
    Secret,
    OnlyWhenChanged,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum NotificationDeliveries {
    Table,
    Id,
    EndpointId,
    JobId,
    EventType,
    Body,
    Status,
    Attempts,
    LastError,
    CreatedAt,
    DeliveredAt,
    NextAttemptAt,
    LeaseOwner,
    LeaseExpiresAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    AuthMethod,
    Disabled,
}
