//! The one directory configuration of an installation (row id 1 of `directory_config`): which
//! Google account to read, how, and the rules a sync follows.

use chrono::Utc;
use dirsync_entity::directory_config;
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, Set};

use crate::Result;

/// The id of the only row.
pub const ROW_ID: i32 = 1;

/// The stored row, created with the defaults of product.md §1 when it does not exist yet.
pub async fn config_row<C: ConnectionTrait>(db: &C) -> Result<directory_config::Model> {
    if let Some(row) = directory_config::Entity::find_by_id(ROW_ID).one(db).await? {
        return Ok(row);
    }
    let row = directory_config::ActiveModel {
        id: Set(ROW_ID),
        provider: Set("none".into()),
        admin_email: Set(None),
        customer_id: Set(Some("my_customer".into())),
        domain: Set(None),
        sync_groups: Set("[]".into()),
        auto_delete_users: Set(false),
        deletion_limit: Set(None),
        schedule_minutes: Set(None),
        default_privileges: Set(r#"["login"]"#.into()),
        default_folder_access: Set(r#"["read"]"#.into()),
        sa_client_email: Set(None),
        sa_private_key_id: Set(None),
        sa_client_id: Set(None),
        sa_project_id: Set(None),
        sa_token_uri: Set(None),
        sa_private_key: Set(None),
        updated_at: Set(Utc::now()),
    };
    // Two first requests may race to create the row; the loser reads the winner's.
    match row.insert(db).await {
        Ok(row) => Ok(row),
        Err(_) => Ok(directory_config::Entity::find_by_id(ROW_ID)
            .one(db)
            .await?
            .ok_or(crate::Error::NotFound("directory configuration"))?),
    }
}
