//! Database connection and migrations: SQLite by default (nothing to install), PostgreSQL when
//! `DATABASE_URL` says so.

use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait;

/// Connects to `url`, creating the directory of a SQLite file when it is missing.
///
/// SQLite gets a single connection: it serialises writers anyway, and one connection means no
/// SQLITE_BUSY on lock upgrades and one shared database for `sqlite::memory:`.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.sqlx_logging(false)
        .acquire_timeout(Duration::from_secs(30));
    if url.starts_with("sqlite:") {
        if let Some(dir) = sqlite_file_dir(url) {
            std::fs::create_dir_all(&dir)
                .map_err(|e| DbErr::Custom(format!("cannot create {}: {e}", dir.display())))?;
        }
        opts.max_connections(1);
    } else {
        opts.max_connections(16).min_connections(1);
    }
    Database::connect(opts).await
}

/// Connects to `url` and applies the migrations of `M` that are not applied yet.
pub async fn connect_and_migrate<M: MigratorTrait>(url: &str) -> Result<DatabaseConnection, DbErr> {
    let db = connect(url).await?;
    M::up(&db, None).await?;
    Ok(db)
}

fn sqlite_file_dir(url: &str) -> Option<std::path::PathBuf> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = path.split('?').next()?;
    if path.is_empty() || path.contains(":memory:") {
        return None;
    }
    std::path::Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Into::into)
}

/// True when `db` is PostgreSQL (some statements differ, e.g. row locks).
pub fn is_postgres(db: &impl sea_orm::ConnectionTrait) -> bool {
    db.get_database_backend() == sea_orm::DatabaseBackend::Postgres
}

#[cfg(test)]
mod tests {
    use super::sqlite_file_dir;

    #[test]
    fn sqlite_dirs() {
        assert_eq!(
            sqlite_file_dir("sqlite://data/culture.db?mode=rwc")
                .unwrap()
                .to_str(),
            Some("data")
        );
        assert_eq!(
            sqlite_file_dir("sqlite:///tmp/x/a.db").unwrap().to_str(),
            Some("/tmp/x")
        );
        assert!(sqlite_file_dir("sqlite::memory:").is_none());
        assert!(sqlite_file_dir("sqlite://a.db").is_none());
    }
}
