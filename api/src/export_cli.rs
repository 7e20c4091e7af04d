//! `dirsync users export`: every user with its addresses and privileges, through the HTTP API
//! (a `reader` key is enough), as CSV or JSON on stdout.

use std::io::Write;

use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::sync_cli::{Remote, RemoteError, ServerArgs};

/// Output formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// One line per user; addresses, privileges and folder access joined with `;` in a cell.
    Csv,
    /// One JSON array of users, each with `privileges` and `folder_access`.
    Json,
}

/// Options of `dirsync users export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    pub format: Format,
}

/// A user as the API lists it.
#[derive(Debug, Serialize, Deserialize)]
struct User {
    id: Uuid,
    user_name: String,
    full_name: String,
    auth_method: String,
    directory_id: Option<String>,
    disabled: bool,
    emails: Vec<String>,
    archive_folder_id: Option<Uuid>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    last_synced_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
struct Page {
    items: Vec<User>,
    next_cursor: Option<String>,
}

/// A user's privileges as the API returns them.
#[derive(Debug, Serialize, Deserialize)]
struct Privileges {
    privileges: Vec<String>,
    folder_access: Vec<FolderAccess>,
}

#[derive(Debug, Serialize, Deserialize)]
struct FolderAccess {
    folder_id: Uuid,
    access: Vec<String>,
}

/// One exported user.
#[derive(Debug, Serialize)]
struct Exported {
    #[serde(flatten)]
    user: User,
    #[serde(flatten)]
    privileges: Privileges,
}

/// Privileges are one request per user: this many run at once, well under the default rate
/// limit's burst, and a 429 is waited out by [`Remote`].
const CONCURRENT_REQUESTS: usize = 8;

/// Runs the export; returns the exit code (0, or the code of [`RemoteError`]).
pub async fn run(args: ExportArgs) -> u8 {
    match export(&args).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("dirsync users export: {e}");
            e.exit_code()
        }
    }
}

async fn export(args: &ExportArgs) -> Result<(), RemoteError> {
    let remote = Remote::new(&args.server)?;
    let mut users = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/api/v1/users?limit=500".to_string();
        if let Some(c) = &cursor {
            path.push_str("&cursor=");
            path.push_str(&url_encode(c));
        }
        let (page, _): (Page, String) = remote.get(&path).await?;
        users.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let remote = &remote;
    let exported: Vec<Exported> = futures_util::stream::iter(users)
        .map(|user| async move {
            let (privileges, _) = remote
                .get(&format!("/api/v1/users/{}/privileges", user.id))
                .await?;
            Ok::<_, RemoteError>(Exported { user, privileges })
        })
        .buffered(CONCURRENT_REQUESTS)
        .try_collect()
        .await?;
    let mut out = std::io::stdout().lock();
    let written = match args.format {
        Format::Json => serde_json::to_writer_pretty(&mut out, &exported)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out)),
        Format::Csv => write_csv(&mut out, &exported),
    };
    written
        .and_then(|()| out.flush())
        .map_err(|e| RemoteError::Other(format!("writing the export: {e}")))?;
    eprintln!("exported {} users from {}", exported.len(), remote.base());
    Ok(())
}

const CSV_HEADER: [&str; 12] = [
    "id",
    "user_name",
    "full_name",
    "auth_method",
    "directory_id",
    "disabled",
    "emails",
    "privileges",
    "folder_access",
    "archive_folder_id",
    "created_at",
    "last_synced_at",
];

fn write_csv(out: &mut impl Write, users: &[Exported]) -> std::io::Result<()> {
    writeln!(out, "{}", CSV_HEADER.join(","))?;
    for e in users {
        let u = &e.user;
        let folder_access: Vec<String> = e
            .privileges
            .folder_access
            .iter()
            .map(|f| format!("{}:{}", f.folder_id, f.access.join("+")))
            .collect();
        let cells = [
            u.id.to_string(),
            u.user_name.clone(),
            u.full_name.clone(),
            u.auth_method.clone(),
            u.directory_id.clone().unwrap_or_default(),
            u.disabled.to_string(),
            u.emails.join(";"),
            e.privileges.privileges.join(";"),
            folder_access.join(";"),
            u.archive_folder_id
                .map(|i| i.to_string())
                .unwrap_or_default(),
            u.created_at.to_rfc3339(),
            u.last_synced_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
        ];
        let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        writeln!(out, "{}", line.join(","))?;
    }
    Ok(())
}

/// RFC 4180 quoting; a cell starting with a formula character is prefixed with `'` so that a
/// spreadsheet opening the file does not run a name that a directory supplied.
fn csv_cell(v: &str) -> String {
    let v = if v.starts_with(['=', '+', '-', '@']) {
        format!("'{v}")
    } else {
        v.to_string()
    };
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

/// Percent-encodes a cursor for a query string (cursors are opaque text).
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("Doe, Jane"), "\"Doe, Jane\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_cell("line\nbreak"), "\"line\nbreak\"");
    }

    #[test]
    fn cursors_are_percent_encoded() {
        assert_eq!(url_encode("a+b/c=="), "a%2Bb%2Fc%3D%3D");
        assert_eq!(url_encode("abc-_.~"), "abc-_.~");
    }
}
