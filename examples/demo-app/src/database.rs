//! The optional database: with `DATABASE_URL` set, `GET /visit` records a
//! visit in the table `visits`, writing the app's version into the column
//! `DB_WRITE_COLUMN` names. Two versions that write different columns are
//! what a schema migration's expand and contract phases must keep working
//! while both serve.

use std::sync::Arc;

use axum::{extract::State, http::StatusCode};
use tokio_postgres::NoTls;

use crate::state::AppState;

/// A connection and the column this version writes.
pub struct Database {
    client: tokio_postgres::Client,
    /// The `INSERT` of one visit, built once from the column name.
    insert: String,
}

impl Database {
    /// Connects to `url`; the connection is driven by a task of its own.
    pub async fn connect(url: &str, column: &str) -> Result<Database, String> {
        let valid = column
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && !column.is_empty();
        if !valid {
            return Err(format!(
                "DB_WRITE_COLUMN={column:?}: expected a lower-case column name"
            ));
        }
        let (client, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .map_err(|err| format!("cannot connect to DATABASE_URL: {err}"))?;
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::warn!("database connection ended: {err}");
            }
        });
        Ok(Database {
            client,
            insert: format!("INSERT INTO visits ({column}) VALUES ($1) RETURNING id"),
        })
    }
}

/// `GET /visit`: inserts a visit; 500 with the database's message if the
/// schema does not have what this version needs.
pub async fn visit(State(state): State<Arc<AppState>>) -> (StatusCode, String) {
    let Some(database) = &state.database else {
        return (
            StatusCode::NOT_FOUND,
            "no DATABASE_URL: this app has no database\n".to_owned(),
        );
    };
    match database
        .client
        .query_one(&database.insert, &[&state.version])
        .await
    {
        Ok(row) => {
            let id: i64 = row.get(0);
            (
                StatusCode::OK,
                format!("visit {id} recorded by {}\n", state.version),
            )
        }
        Err(err) => {
            let message = err
                .as_db_error()
                .map_or_else(|| err.to_string(), |db| db.message().to_owned());
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("{} could not record a visit: {message}\n", state.version),
            )
        }
    }
}
