//! What a user may do in the archive server: privileges (product.md §1) and access to archive
//! folders; and the default privileges that users created by synchronization receive.
//!
//! Names arrive as strings and are parsed here rather than by serde in the HTTP layer, so that
//! an unknown name is answered with the list of valid ones instead of a generic body error.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;
use dirsync_entity::{archive_folders, directory_config, folder_access, user_privileges, users};
use sea_orm::{
    sea_query::Expr, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    FromQueryResult, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::db::{insert_rows, SqlText};
use crate::{audit, directory, Error, Result};

/// A privilege (product.md §1), and access to an archive folder: their names are declared once
/// in `dirsync-entity`, with the other enums stored by name.
pub use dirsync_entity::{Access, Privilege};

/// Parses privilege names into a sorted set without duplicates; every unknown name is reported
/// at once, with the valid ones (422 `unknown_privilege`).
pub fn parse_privileges<S: AsRef<str>>(
    names: impl IntoIterator<Item = S>,
) -> Result<Vec<Privilege>> {
    parse_names(
        names,
        Privilege::ALL,
        Privilege::from_name,
        Privilege::as_str,
        "unknown_privilege",
        "privilege",
    )
}

/// Parses folder access names into a sorted set without duplicates (422 `unknown_access`
/// listing the valid ones).
pub fn parse_access<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> Result<Vec<Access>> {
    parse_names(
        names,
        Access::ALL,
        Access::from_name,
        Access::as_str,
        "unknown_access",
        "folder access",
    )
}

fn parse_names<T: Copy + Ord, S: AsRef<str>>(
    names: impl IntoIterator<Item = S>,
    all: &[T],
    from_name: fn(&str) -> Option<T>,
    name_of: fn(T) -> &'static str,
    code: &'static str,
    what: &str,
) -> Result<Vec<T>> {
    let mut found = BTreeSet::new();
    let mut unknown = Vec::new();
    for name in names {
        let name = name.as_ref();
        match from_name(name) {
            Some(t) => {
                found.insert(t);
            }
            None => unknown.push(name.to_string()),
        }
    }
    if unknown.is_empty() {
        return Ok(found.into_iter().collect());
    }
    let valid: Vec<&str> = all.iter().map(|t| name_of(*t)).collect();
    Err(Error::invalid(
        code,
        format!(
            "unknown {what} {}; valid names are {}",
            unknown
                .iter()
                .map(|u| format!("{u:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            valid.join(", ")
        ),
    )
    .with_details(json!({ "unknown": unknown, "valid": valid })))
}

/// A user's access to one archive folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FolderAccess {
    /// The folder.
    pub folder_id: Uuid,
    /// In the order read, write, delete; never empty.
    pub access: Vec<Access>,
}

/// What a user may do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Privileges {
    /// Privileges, in the documented order.
    pub privileges: Vec<Privilege>,
    /// Folder access, by folder id.
    pub folder_access: Vec<FolderAccess>,
}

/// A requested access to one folder, names not yet checked.
#[derive(Debug, Clone)]
pub struct FolderAccessInput {
    /// The folder.
    pub folder_id: Uuid,
    /// Names of `read`, `write`, `delete`.
    pub access: Vec<String>,
}

/// A requested set of privileges, names not yet checked.
#[derive(Debug, Clone, Default)]
pub struct PrivilegesInput {
    /// Privilege names.
    pub privileges: Vec<String>,
    /// Folder access.
    pub folder_access: Vec<FolderAccessInput>,
}

impl PrivilegesInput {
    /// Checks names and folder ids (existence of the folders is checked by [`replace`]).
    pub(crate) fn parse(&self) -> Result<Privileges> {
        let privileges = parse_privileges(&self.privileges)?;
        let mut by_folder: BTreeMap<Uuid, Vec<Access>> = BTreeMap::new();
        for fa in &self.folder_access {
            let access = parse_access(&fa.access)?;
            if by_folder.insert(fa.folder_id, access).is_some() {
                return Err(Error::invalid(
                    "duplicate_folder",
                    format!(
                        "folder {} is listed twice in folder_access; list each folder once",
                        fa.folder_id
                    ),
                )
                .with_details(json!({ "folder_id": fa.folder_id })));
            }
        }
        Ok(Privileges {
            privileges,
            // An entry without access grants nothing: it is the same as leaving it out.
            folder_access: by_folder
                .into_iter()
                .filter(|(_, a)| !a.is_empty())
                .map(|(folder_id, access)| FolderAccess { folder_id, access })
                .collect(),
        })
    }
}

/// The privileges of a user (404 when there is no such user).
#[tracing::instrument(level = "debug", skip(db))]
pub async fn get<C: ConnectionTrait>(db: &C, user_id: Uuid) -> Result<Privileges> {
    static EXISTS: SqlText = SqlText::new();
    let query = EXISTS.statement(db, vec![user_id.into()], || {
        users::Entity::find_by_id(user_id)
            .select_only()
            .column(users::Column::Id)
    });
    if db.query_one(query).await?.is_none() {
        return Err(Error::NotFound("user"));
    }
    load(db, user_id).await
}

/// The privilege names stored for a user, as written: names a newer version wrote included,
/// in no particular order.
pub(crate) async fn names<C: ConnectionTrait>(db: &C, user_id: Uuid) -> Result<Vec<String>> {
    static NAMES: SqlText = SqlText::new();
    let query = NAMES.statement(db, vec![user_id.into()], || {
        user_privileges::Entity::find()
            .select_only()
            .column(user_privileges::Column::Privilege)
            .filter(user_privileges::Column::UserId.eq(user_id))
    });
    let rows = db.query_all(query).await?;
    Ok(rows
        .iter()
        .map(|row| row.try_get::<String>("", "privilege"))
        .collect::<std::result::Result<_, _>>()?)
}

/// The privileges of a user known to exist.
pub(crate) async fn load<C: ConnectionTrait>(db: &C, user_id: Uuid) -> Result<Privileges> {
    let names = names(db, user_id).await?;
    // A name this version does not know (written by a newer one) is left out, not fatal.
    let mut privileges: Vec<Privilege> = names
        .iter()
        .filter_map(|n| Privilege::from_name(n))
        .collect();
    privileges.sort();
    static FOLDER_ACCESS: SqlText = SqlText::new();
    let query = FOLDER_ACCESS.statement(db, vec![user_id.into()], || {
        folder_access::Entity::find()
            .filter(folder_access::Column::UserId.eq(user_id))
            .order_by_asc(folder_access::Column::FolderId)
    });
    let mut folder_access = folder_access::Model::find_by_statement(query)
        .all(db)
        .await?
        .into_iter()
        .map(|row| FolderAccess {
            folder_id: row.folder_id,
            access: access_of(&row),
        })
        .filter(|fa| !fa.access.is_empty())
        .collect::<Vec<_>>();
    // Sorted here as well: SQLite orders UUID blobs and PostgreSQL UUIDs the same way, but the
    // answer should not depend on it.
    folder_access.sort_by_key(|fa| fa.folder_id);
    Ok(Privileges {
        privileges,
        folder_access,
    })
}

fn access_of(row: &folder_access::Model) -> Vec<Access> {
    [
        (row.can_read, Access::Read),
        (row.can_write, Access::Write),
        (row.can_delete, Access::Delete),
    ]
    .into_iter()
    .filter_map(|(on, a)| on.then_some(a))
    .collect()
}

/// Writes privileges and folder access for users that have none yet, in batched inserts.
pub(crate) async fn insert<C: ConnectionTrait>(
    db: &C,
    grants: &[(Uuid, &Privileges)],
) -> Result<()> {
    let privilege_rows = grants.iter().flat_map(|(user_id, p)| {
        p.privileges
            .iter()
            .map(move |privilege| user_privileges::ActiveModel {
                user_id: Set(*user_id),
                privilege: Set(privilege.as_str().to_owned()),
            })
    });
    insert_rows(db, Box::new(privilege_rows)).await?;
    let access_rows = grants.iter().flat_map(|(user_id, p)| {
        p.folder_access
            .iter()
            .map(move |fa| folder_access::ActiveModel {
                user_id: Set(*user_id),
                folder_id: Set(fa.folder_id),
                can_read: Set(fa.access.contains(&Access::Read)),
                can_write: Set(fa.access.contains(&Access::Write)),
                can_delete: Set(fa.access.contains(&Access::Delete)),
            })
    });
    insert_rows(db, Box::new(access_rows)).await?;
    Ok(())
}

/// Replaces a user's whole set of privileges and folder access in one transaction, recorded in
/// the audit trail (`privileges.update`). Directory users' privileges are editable too: they are
/// not managed by Google.
#[tracing::instrument(skip(db, input))]
pub async fn replace(
    db: &DatabaseConnection,
    actor: &str,
    user_id: Uuid,
    input: &PrivilegesInput,
) -> Result<Privileges> {
    let after = input.parse()?;
    let txn = crate::db::begin_write(db).await?;
    // Locked: two replacements of one user's set run one after the other.
    let user_name: String = users::Entity::find_by_id(user_id)
        .select_only()
        .column(users::Column::UserName)
        .lock_exclusive()
        .into_tuple()
        .one(&txn)
        .await?
        .ok_or(Error::NotFound("user"))?;
    let wanted: Vec<Uuid> = after.folder_access.iter().map(|f| f.folder_id).collect();
    if !wanted.is_empty() {
        let found: BTreeSet<Uuid> = archive_folders::Entity::find()
            .select_only()
            .column(archive_folders::Column::Id)
            .filter(archive_folders::Column::Id.is_in(wanted.clone()))
            .into_tuple::<Uuid>()
            .all(&txn)
            .await?
            .into_iter()
            .collect();
        let missing: Vec<Uuid> = wanted
            .into_iter()
            .filter(|id| !found.contains(id))
            .collect();
        if !missing.is_empty() {
            return Err(Error::invalid(
                "unknown_folder",
                format!(
                    "no archive folder with id {}; see GET /api/v1/archive-folders",
                    missing
                        .iter()
                        .map(Uuid::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .with_details(json!({ "folder_ids": missing })));
        }
    }
    let before = load(&txn, user_id).await?;
    user_privileges::Entity::delete_many()
        .filter(user_privileges::Column::UserId.eq(user_id))
        .exec(&txn)
        .await?;
    folder_access::Entity::delete_many()
        .filter(folder_access::Column::UserId.eq(user_id))
        .exec(&txn)
        .await?;
    insert(&txn, &[(user_id, &after)]).await?;
    // Without `login` the user could not sign in now: its sessions end with the right.
    let lost_login = before.privileges.contains(&Privilege::Login)
        && !after.privileges.contains(&Privilege::Login);
    let sessions_ended = if lost_login {
        crate::auth::end_sessions(&txn, user_id).await?
    } else {
        0
    };
    audit::record(
        &txn,
        actor,
        "privileges.update",
        "user",
        Some(user_id.to_string()),
        json!({ "user_name": user_name, "before": before, "after": after,
                "sessions_ended": sessions_ended }),
    )
    .await?;
    txn.commit().await?;
    Ok(after)
}

/// What users created by synchronization receive.
// (product.md §1.) The doc line above is the OpenAPI description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DefaultPrivileges {
    /// Privileges, in the documented order.
    pub privileges: Vec<Privilege>,
    /// Access to the user's own archive folder.
    pub own_folder_access: Vec<Access>,
}

impl DefaultPrivileges {
    /// The privileges a new user owning `folder_id` receives.
    pub fn for_new_user(&self, folder_id: Uuid) -> Privileges {
        Privileges {
            privileges: self.privileges.clone(),
            folder_access: if self.own_folder_access.is_empty() {
                Vec::new()
            } else {
                vec![FolderAccess {
                    folder_id,
                    access: self.own_folder_access.clone(),
                }]
            },
        }
    }

    /// Grants the defaults to newly created users, given as `(user_id, own_folder_id)`, in
    /// batched inserts (no query per user). The users must not hold privileges yet.
    pub async fn grant<C: ConnectionTrait>(&self, db: &C, users: &[(Uuid, Uuid)]) -> Result<()> {
        let sets: Vec<Privileges> = users
            .iter()
            .map(|(_, folder_id)| self.for_new_user(*folder_id))
            .collect();
        let grants: Vec<(Uuid, &Privileges)> =
            users.iter().map(|(u, _)| *u).zip(sets.iter()).collect();
        insert(db, &grants).await
    }
}

/// A requested change of the defaults, names not yet checked.
#[derive(Debug, Clone, Default)]
pub struct DefaultPrivilegesInput {
    /// Privilege names.
    pub privileges: Vec<String>,
    /// Access names for the user's own folder.
    pub own_folder_access: Vec<String>,
}

/// The stored defaults. A list that does not decode fails closed (never "no defaults"); a name
/// that a newer version wrote is skipped, which grants less, never more.
pub(crate) fn defaults_of(row: &directory_config::Model) -> Result<DefaultPrivileges> {
    const REPAIR: &str = "save them again with PUT /api/v1/directory/default-privileges";
    fn known<T: Ord>(
        column: &'static str,
        text: &str,
        from_name: fn(&str) -> Option<T>,
    ) -> Result<Vec<T>> {
        let names = crate::stored::string_list(column, text, REPAIR)?;
        let set: BTreeSet<T> = names.iter().filter_map(|n| from_name(n)).collect();
        Ok(set.into_iter().collect())
    }
    Ok(DefaultPrivileges {
        privileges: known(
            "directory_config.default_privileges",
            &row.default_privileges,
            Privilege::from_name,
        )?,
        own_folder_access: known(
            "directory_config.default_folder_access",
            &row.default_folder_access,
            Access::from_name,
        )?,
    })
}

/// The default privileges in force: what the sync engine grants to the users it creates.
#[tracing::instrument(level = "debug", skip(db))]
pub async fn load_defaults<C: ConnectionTrait>(db: &C) -> Result<DefaultPrivileges> {
    defaults_of(&directory::config_row(db).await?)
}

/// Changes the default privileges (recorded as `default_privileges.update`). They apply to users
/// created from then on; existing users keep theirs.
#[tracing::instrument(skip(db, input))]
pub async fn save_defaults(
    db: &DatabaseConnection,
    actor: &str,
    input: &DefaultPrivilegesInput,
) -> Result<DefaultPrivileges> {
    let after = DefaultPrivileges {
        privileges: parse_privileges(&input.privileges)?,
        own_folder_access: parse_access(&input.own_folder_access)?,
    };
    // Created outside the transaction: on PostgreSQL a lost creation race would abort it.
    directory::config_row(db).await?;
    let txn = crate::db::begin_write(db).await?;
    let row = directory_config::Entity::find_by_id(directory::ROW_ID)
        .one(&txn)
        .await?
        .ok_or(Error::NotFound("directory configuration"))?;
    // Saving is how damaged defaults are repaired: an undecodable "before" is recorded as null.
    let before = defaults_of(&row).ok();
    let privileges: Vec<&str> = after.privileges.iter().map(|p| p.as_str()).collect();
    let access: Vec<&str> = after.own_folder_access.iter().map(|a| a.as_str()).collect();
    directory_config::Entity::update_many()
        .col_expr(
            directory_config::Column::DefaultPrivileges,
            Expr::value(serde_json::to_string(&privileges).expect("strings serialize")),
        )
        .col_expr(
            directory_config::Column::DefaultFolderAccess,
            Expr::value(serde_json::to_string(&access).expect("strings serialize")),
        )
        .col_expr(directory_config::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(directory_config::Column::Id.eq(directory::ROW_ID))
        .exec(&txn)
        .await?;
    audit::record(
        &txn,
        actor,
        "default_privileges.update",
        "directory",
        None,
        json!({ "before": before, "after": after }),
    )
    .await?;
    txn.commit().await?;
    Ok(after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privilege_names_round_trip_and_come_back_sorted_without_duplicates() {
        for &p in Privilege::ALL {
            assert_eq!(parse_privileges([p.as_str()]).unwrap(), [p]);
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
        assert_eq!(
            parse_privileges(["delete_email", "login", "admin", "login"]).unwrap(),
            vec![Privilege::Admin, Privilege::Login, Privilege::DeleteEmail]
        );
    }

    #[test]
    fn unknown_privileges_are_all_named_with_the_valid_ones() {
        let err = parse_privileges(["login", "root", "Admin"]).unwrap_err();
        let Error::Invalid {
            code,
            message,
            details,
        } = err
        else {
            panic!("not a validation error");
        };
        assert_eq!(code, "unknown_privilege");
        assert!(message.contains("\"root\"") && message.contains("\"Admin\""));
        for p in Privilege::ALL {
            assert!(message.contains(p.as_str()), "{message}");
        }
        let details = details.unwrap();
        assert_eq!(details["unknown"], json!(["root", "Admin"]));
        assert_eq!(details["valid"].as_array().unwrap().len(), 10);
    }

    #[test]
    fn folder_access_input_is_normalised() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let input = PrivilegesInput {
            privileges: vec!["login".into()],
            folder_access: vec![
                FolderAccessInput {
                    folder_id: a,
                    access: vec!["delete".into(), "read".into(), "read".into()],
                },
                FolderAccessInput {
                    folder_id: b,
                    access: vec![],
                },
            ],
        };
        let p = input.parse().unwrap();
        assert_eq!(
            p.folder_access,
            vec![FolderAccess {
                folder_id: a,
                access: vec![Access::Read, Access::Delete]
            }]
        );
        let dup = PrivilegesInput {
            privileges: vec![],
            folder_access: vec![
                FolderAccessInput {
                    folder_id: a,
                    access: vec!["read".into()],
                },
                FolderAccessInput {
                    folder_id: a,
                    access: vec!["write".into()],
                },
            ],
        };
        assert!(matches!(
            dup.parse(),
            Err(Error::Invalid {
                code: "duplicate_folder",
                ..
            })
        ));
        let bad = parse_access(["read", "execute"]).unwrap_err();
        assert!(bad.to_string().contains("read, write, delete"), "{bad}");
    }
}
